"""Bridge processes launched as an operator would: each either refuses its configuration with one
line naming a variable, or starts and serves."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from .deadlines import PROBE_SECONDS, STARTUP_SECONDS
from .managed import ManagedProcess
from .process import free_port, wait_until

#: Settings the bridge reads from the environment; stripped from the inherited environment.
BRIDGE_VAR_PREFIXES = (
    "ENVIRONMENT",
    "JOB_",
    "CELERY_",
    "AUTH_",
    "METRICS_",
    "MAX_",
    "INLINE_",
    "MCP_",
    "DISPATCH_",
    "PUBLISH_",
)


def shell_env(*layers: dict[str, str]) -> dict[str, str]:
    """An operator's shell: the inherited environment without bridge settings, plus `layers`;
    `python` on PATH is the interpreter under test."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(BRIDGE_VAR_PREFIXES)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for layer in layers:
        env.update(layer)
    return env


class Launch(ManagedProcess):
    """A process spawned at once, its output in `<workdir>/<name>.log`; `settled` once it has
    exited or serves, and `started` says whether it served."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        workdir: Path,
        serving: Callable[[Launch], bool],
        cwd: Path | None = None,
        url: str = "",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(name, argv, env, workdir, lambda: serving(self), cwd=cwd or workdir)
        self.url, self.started = url, False
        self.spawn()

    def settled(self) -> bool:
        """Exited, or serving (recorded in `started`)."""
        if not self.running:
            return True
        try:
            self.started = self._ready()
        except httpx.HTTPError:
            self.started = False
        return self.started

    def output(self) -> str:
        """What the process wrote to stdout and stderr (the log without its start header)."""
        text = self.log_path.read_text(errors="replace").lstrip("\n")
        header, _, rest = text.partition("\n")
        return rest if header.startswith("--- start #") else text

    def refusal(self) -> dict[str, Any]:
        """Exit code and output of a process expected to refuse its configuration."""
        text = self.output()
        return {
            "started": self.started,
            "exitCode": None if self.started or self.proc is None else self.proc.poll(),
            "lines": [line for line in text.splitlines() if line.strip()][:20],
            "traceback": "Traceback" in text,
        }


#: `api` or `worker`: (name, env, workdir) -> a spawned `Launch`.
Starter = Callable[[str, dict[str, str], Path], Launch]


def healthz(url: str) -> Callable[[Launch], bool]:
    """A `serving` probe: `GET <url>/healthz` answers 200."""
    return lambda _: httpx.get(f"{url}/healthz", timeout=PROBE_SECONDS).status_code == 200


def api(name: str, env: dict[str, str], workdir: Path) -> Launch:
    """`python -m uvicorn mcp_bridge.app:create_app --factory` on a free loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "uvicorn", "mcp_bridge.app:create_app", "--factory"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    return Launch(name, argv, env, workdir, healthz(url), url=url)


def worker(name: str, env: dict[str, str], workdir: Path) -> Launch:
    """`python -m mcp_bridge.worker --pool solo`; serving once it logs `<node> ready.`."""
    node = f"{name}-{secrets.token_hex(3)}@qualification"
    argv = [sys.executable, "-m", "mcp_bridge.worker", "--pool", "solo", "-n", node]
    return Launch(name, argv, env, workdir, lambda launch: f"{node} ready." in launch.output())


def settle(launches: Iterable[Launch], timeout: float = STARTUP_SECONDS) -> None:
    """Wait until every launch has exited or serves."""
    pending = list(launches)
    wait_until(
        lambda: all(launch.settled() for launch in pending),
        timeout,
        what="every process to exit or serve",
    )


def assert_refused(name: str, refusal: dict[str, Any], variable: str) -> None:
    """Assert a `Launch.refusal`: exit != 0, one output line naming `variable`, no traceback."""
    lines = refusal["lines"]
    assert not refusal["started"], f"{name}: started and served instead of refusing to start"
    assert refusal["exitCode"] not in (None, 0), f"{name}: exit code {refusal['exitCode']}"
    assert not refusal["traceback"], f"{name}: traceback instead of one line: {lines}"
    assert len(lines) == 1, f"{name}: expected one line, got {lines}"
    assert variable in lines[0], f"{name}: {lines[0]!r} lacks {variable}"
