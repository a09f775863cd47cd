"""Hosts of our own on one machine: network namespaces joined by a bridge in a switch namespace.

    with Network() as net:
        data = net.host("data")          # 10.231.N.2: Redis and PostgreSQL listen here
        a, b = net.host("a"), net.host("b")
        a.argv(["python", "-m", "mcp_bridge.worker"])   # → ip netns exec … python …

The suite's own (root) namespace gets one veth into the switch too (address .1), so the checks
reach every host; traffic goes only to addresses of namespaces made here. Needs root and
`ip` (iproute2); `Network.unavailable()` says why not, for a skip.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass

from .process import StartStop


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Host:
    """One namespace: a name for `ip netns exec` and the address the others reach it at."""

    netns: str
    address: str

    def argv(self, command: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *command]


class Network(StartStop):
    """A /24 of private addresses unused on this machine, a switch, and hosts on it."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.subnet = self._free_subnet()
        self.switch = f"qs-{self.tag}"
        self._namespaces: list[str] = []
        self._next = 2
        self.address = str(self.subnet.network_address + 1)  # the suite's own end

    @staticmethod
    def unavailable() -> str | None:
        """Why namespaces cannot be made here (None: they can)."""
        if shutil.which("ip") is None:
            return "no `ip` command (iproute2): cannot make network namespaces"
        if os.geteuid() != 0:
            return "network namespaces need root"
        probe = f"qp-{secrets.token_hex(3)}"
        try:
            _ip("netns", "add", probe)
        except RuntimeError as why:
            return f"cannot create a network namespace here: {why}"
        _ip("netns", "del", probe)
        return None

    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        used = _ip("-4", "-o", "addr", "show") + _ip("-4", "route", "show")
        for _ in range(50):
            subnet = ipaddress.IPv4Network(f"10.231.{secrets.randbelow(250) + 1}.0/24")
            if f"10.231.{subnet.network_address.packed[2]}." not in used:
                return subnet
        raise RuntimeError("no free 10.231.x.0/24 subnet on this machine")

    def start(self) -> None:
        self._add_namespace(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        # The suite's own end: a veth from the root namespace into the switch.
        self._wire(None, f"qr{self.tag}", self.address)

    def host(self, name: str) -> Host:
        netns = f"qh-{self.tag}-{name}"
        self._add_namespace(netns)
        address = str(self.subnet.network_address + self._next)
        self._next += 1
        self._wire(netns, f"qv{self.tag}{name[:4]}", address)
        return Host(netns, address)

    def close(self) -> None:
        """Deleting the namespaces deletes their veths, and so the root namespace's end."""
        for netns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
        self._namespaces.clear()

    def _add_namespace(self, netns: str) -> None:
        _ip("netns", "add", netns)
        self._namespaces.append(netns)
        _ip("-n", netns, "link", "set", "lo", "up")

    def _wire(self, netns: str | None, name: str, address: str) -> None:
        """A veth pair: `name` in `netns` (root if None) with `address`, its peer on the bridge."""
        peer = f"{name}p"[:15]
        _ip("link", "add", name, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", peer, "master", "br0", "up")
        where = [] if netns is None else ["-n", netns]
        if netns is not None:
            _ip("link", "set", name, "netns", netns)
        _ip(*where, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", name)
        _ip(*where, "link", "set", name, "up")
