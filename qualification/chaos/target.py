"""The one door between the chaos package and the system under test.

The generator, nemesis and checker speak only to `Target` (clients, nodes, observer); nothing else
in `qualification/chaos/` knows about HTTP paths, the broker or `BridgeStack`. Porting chaos to
another driver is a change to this file alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx
from celery import Celery

from ..stack.bridge import BridgeStack, broker_drained
from ..stack.deadlines import PROBE_SECONDS, Deadlines
from ..stack.latch import Latch

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ADMIN = "chaos-observer"


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, or why there was none (`code` None: the outcome is unknown)."""

    code: int | None
    body: dict[str, Any] | None = None
    error: str | None = None

    @property
    def job_id(self) -> str | None:
        body = self.body or {}
        return body.get("id") or (body.get("job") or {}).get("id")

    @property
    def job_status(self) -> str | None:
        body = self.body or {}
        return body.get("status") if "id" in body else (body.get("job") or {}).get("status")

    def dump(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "jobId": self.job_id,
            "status": self.job_status,
            "error": self.error,
        }


class Client:
    """One client's HTTP connection (one per thread); never raises for transport errors."""

    def __init__(self, target: Target, timeout: float) -> None:
        self._target = target
        # Plain HTTP on loopback: no CA bundle to load for each client (a burst makes several).
        self._http = httpx.Client(base_url=target.stack.api.url, timeout=timeout, verify=False)

    def _call(
        self, method: str, path: str, subject: str, roles: tuple[str, ...], **kw: Any
    ) -> Reply:
        headers = {
            **self._target.stack.headers(self._target.token(subject, roles)),
            **kw.pop("headers", {}),
        }
        try:
            response = self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as error:
            return Reply(None, error=f"{type(error).__name__}: {error}"[:200])
        try:
            body = response.json()
        except ValueError:
            body = None
        return Reply(response.status_code, body if isinstance(body, dict) else None)

    def submit(self, tool: str, arguments: dict[str, Any], key: str | None, subject: str) -> Reply:
        headers = {"Idempotency-Key": key} if key is not None else {}
        body = {"tool": tool, "arguments": arguments}
        return self._call("POST", "/v1/jobs", subject, ("operator",), json=body, headers=headers)

    def get(self, job_id: str, wait: float = 0.0) -> Reply:
        params = {"wait": wait} if wait else None
        return self._call("GET", f"/v1/jobs/{job_id}", ADMIN, ("admin",), params=params)

    def cancel(self, job_id: str, subject: str) -> Reply:
        return self._call("POST", f"/v1/jobs/{job_id}/cancel", subject, ("operator",))

    def close(self) -> None:
        self._http.close()


class Target:
    """Clients, node control and observation of one bridge stack."""

    def __init__(self, stack: BridgeStack) -> None:
        self.stack = stack
        self.deadlines: Deadlines = stack.deadlines
        self._tokens: dict[tuple[str, tuple[str, ...]], str] = {}
        self._observer = self.client()
        self._pollers = threading.local()
        self._clients: list[Client] = []

    # -- clients -----------------------------------------------------------------------------

    def token(self, subject: str, roles: tuple[str, ...]) -> str:
        if (subject, roles) not in self._tokens:
            self._tokens[subject, roles] = self.stack.token(subject, roles)
        return self._tokens[subject, roles]

    def client(self, server_wait: float = 0.0) -> Client:
        return Client(self, self.deadlines.client(server_wait))

    def latch(self) -> Latch:
        return self.stack.latch()

    # -- observer ----------------------------------------------------------------------------

    def job(self, job_id: str, wait: float = 0.0) -> Reply:
        return self._observer.get(job_id, wait) if not wait else self._long_poll(job_id, wait)

    def _long_poll(self, job_id: str, wait: float) -> Reply:
        """One long-poll client per thread, its timeout above the server's longest wait."""
        client = getattr(self._pollers, "client", None)
        if client is None:
            client = self.client(self.deadlines.long_poll(float("inf")))
            self._pollers.client = client
            self._clients.append(client)
        return client.get(job_id, wait)

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        """The job's execution attempts: `{attempt, worker, outcome, startedAt, finishedAt}`."""
        reply = self._observer._call("GET", f"/v1/jobs/{job_id}/attempts", ADMIN, ("admin",))
        if reply.code != 200 or reply.body is None:
            raise RuntimeError(f"attempts of {job_id}: {reply.code} {reply.error or reply.body}")
        return list(reply.body["items"])

    def jobs(self) -> list[dict[str, Any]]:
        """Every job of the registry (the admin's listing, all pages)."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"pageToken": token} if token else {})}
            reply = self._observer._call("GET", "/v1/jobs", ADMIN, ("admin",), params=params)
            if reply.code != 200 or reply.body is None:
                raise RuntimeError(f"job listing: {reply.code} {reply.error or reply.body}")
            found.extend(reply.body["items"])
            token = reply.body.get("nextPageToken")
            if not token:
                return found

    def metrics(self) -> str:
        response = httpx.get(f"{self.stack.api.url}/metrics", timeout=self.deadlines.client())
        response.raise_for_status()
        return response.text

    def broker_idle(self) -> bool:
        """Nothing left to deliver: the queue is empty and no message awaits an ack."""
        return broker_drained(self.stack)

    def broker_backlog(self) -> dict[str, int]:
        """What the broker still holds: messages queued, messages delivered but not acked, and
        the seconds left on kombu's redelivery-sweep lock (-2: not held)."""
        assert self.stack.redis is not None
        with self.stack.redis.client(0) as client:
            return {
                "queued": int(client.llen(self.stack.env["CELERY_QUEUE"])),
                "unacked": int(client.hlen("unacked")),
                "sweepLockTtl": int(client.ttl("unacked_mutex")),
            }

    def worker_settings(self) -> dict[str, dict[str, Any]]:
        """Each live worker's effective configuration and stats, asked over Celery's remote
        control: node → {"conf": …, "stats": …} (a worker that did not answer is missing)."""
        app = Celery("qualification-inspect", broker=self.stack.env["CELERY_BROKER_URL"])
        nodes = [w.node for w in self.stack.workers if w.running]
        try:
            inspect = app.control.inspect(destination=nodes, timeout=PROBE_SECONDS)
            conf = inspect.conf(with_defaults=True) or {}
            stats = inspect.stats() or {}
        finally:
            app.close()
        return {node: {"conf": conf.get(node), "stats": stats.get(node)} for node in nodes}

    # -- nodes -------------------------------------------------------------------------------

    @property
    def workers(self) -> list[str]:
        """Worker node names, by slot."""
        return [w.node for w in self.stack.workers]

    def worker_running(self, slot: int) -> bool:
        return self.stack.workers[slot].running

    def worker_pid(self, slot: int) -> int | None:
        return self.stack.workers[slot].pid

    def worker_slot(self, pid: int) -> int | None:
        return next((i for i, w in enumerate(self.stack.workers) if w.pid == pid), None)

    def worker_log(self, slot: int) -> str:
        return self.stack.workers[slot].tail(lines=100_000)

    def kill_worker(self, slot: int) -> None:
        self.stack.workers[slot].kill()

    def pause_worker(self, slot: int) -> None:
        self.stack.workers[slot].pause()

    def resume_worker(self, slot: int) -> None:
        self.stack.workers[slot].resume()

    def start_worker(self, slot: int, wait: bool = True) -> None:
        """Start a killed worker again (same node name); `wait`: until it answers a ping."""
        worker = self.stack.workers[slot]
        if not worker.running:
            worker.spawn()
        if wait:
            worker.wait_ready()

    def add_worker(self) -> int:
        self.stack.add_worker()
        return len(self.stack.workers) - 1

    @property
    def broker_controllable(self) -> bool:
        return self.stack.redis is not None and self.stack.redis.can_restart

    def broker_kill_restart(self) -> None:
        """SIGKILL the broker and start it again on its data (append-only file)."""
        assert self.stack.redis is not None
        self.stack.redis.restart(kill=True)

    def broker_stop(self) -> None:
        assert self.stack.redis is not None
        self.stack.redis.stop()

    def broker_start(self) -> None:
        assert self.stack.redis is not None
        self.stack.redis.start()

    def broker_running(self) -> bool:
        return self.stack.redis is not None and self.stack.redis.ping()

    def api_restart(self) -> None:
        """SIGTERM the API, start it again, wait until it is ready."""
        self.stack.api.restart()

    def api_running(self) -> bool:
        return self.stack.api.running

    def close(self) -> None:
        for client in [self._observer, *self._clients]:
            client.close()
