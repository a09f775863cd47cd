"""What a check may ask of a target, in the checklist's words: the driver protocol.

A target is one bridge under test. A driver reaches it through three parts, as Jepsen's harness
reaches a database through a client, a db and a nemesis:

- `Client`: the checklist's verbs over the target's wire (submit, get, cancel, list, tools, ready,
  metrics, tokens) and a raw `request` by operation name for the bad-input and security checks.
  Jobs come back normalised (`Job`), errors too (`Problem`).
- `nodes`: the target's processes (broker, API, workers), each with start/stop/kill/pause/resume/
  restart and logs; None for a target the suite did not start.
- `Observer`: what a check needs beyond the API: how often a job's tool really ran, on which
  worker, what the registry holds, what the broker still holds.

A check names what it needs with `@pytest.mark.needs(...)`; a target lacking it skips the check
with the reason (`Unsupported`), and the report shows UNKNOWN, never PASS.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict

from ..stack.deadlines import Deadlines
from ..stack.process import wait_until

#: The checklist's job status words (a driver maps its target's words onto these).
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

#: What a target may or may not let the suite do; the phrase completes "the target cannot …".
CAPABILITIES: dict[str, str] = {
    "boot": "start a fresh bridge for a check (its own broker, API and workers)",
    "configure": "start the bridge with given settings (the checklist's environment variables)",
    "mint-tokens": "sign tokens for any subject, roles and claims",
    "admin-token": "act as an administrator",
    "list-jobs": "list jobs",
    "attempts-endpoint": "serve a job's execution attempts over the API",
    "kill-worker": "kill, stop, pause or add worker processes",
    "restart-api": "stop or restart the API process",
    "restart-broker": "stop, kill or restart the broker",
    "restart-registry": "crash and restart the job registry's database",
    "executions": "observe each execution of a job's tool (how often, on which worker)",
    "registry": "read the job registry directly",
    "own-jobs": "count the jobs its default caller owns",
    "broker": "read the broker's queue",
    "latch": "hold a job in flight until released (the `latch` tool)",
    "commands": "run the bridge's own commands and source (CLI, wheels, source mutations)",
    "openapi": "serve its OpenAPI description",
    "mcp": "serve MCP over streamable HTTP and call MCP servers",
}


class Unsupported(Exception):
    """The target cannot do what the check asked; the check is skipped with this reason."""

    def __init__(self, capability: str, target: str = "the target") -> None:
        self.capability = capability
        what = CAPABILITIES.get(capability, capability)
        super().__init__(f"{target} cannot {what} (needs {capability})")


class Job(TypedDict, total=False):
    """A job in the checklist's words, whatever the target calls its fields."""

    id: str
    tool: str
    arguments: dict[str, Any]
    status: str  # one of STATUSES
    attempts: int
    result: Any
    error: Any
    cancelRequested: bool
    owner: str
    idempotencyKey: str | None
    createdAt: str | None
    startedAt: str | None
    finishedAt: str | None


@dataclass(frozen=True)
class Problem:
    """An error answer, normalised: `kind` is the target's stable identifier of the error
    (same kind ⇔ same error), `wellFormed` whether it came in the target's documented envelope."""

    status: int
    kind: str
    title: str
    detail: str
    well_formed: bool
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    """One answer of the target. `status` None: no answer (`transport_error` says why)."""

    status: int | None
    body: Any = None
    text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    job: Job | None = None
    jobs: list[Job] | None = None
    problem: Problem | None = None
    transport_error: str | None = None
    operation: str = ""
    #: A readiness answer's parts (`broker`, `registry`, …) → whether each is up.
    components: Mapping[str, bool] = field(default_factory=dict)

    @property
    def job_id(self) -> str | None:
        return self.job.get("id") if self.job else None

    def challenge(self) -> str:
        """The authentication challenge of a 401 (`WWW-Authenticate`), "" if none."""
        return self.headers.get("www-authenticate", "")

    def describe(self) -> str:
        if self.status is None:
            return f"{self.operation}: no answer ({self.transport_error})"
        return f"{self.operation}: {self.status} {self.text[:300]}"

    def dump(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body if self.body is not None else self.text}


DEFAULT: Any = object()  # the client's default token
ANONYMOUS = ""  # no credentials at all
OMIT: Any = object()  # a submission field left out


class Client(ABC):
    """The checklist's verbs against one target. Wire methods are the driver's; the waits and
    conveniences below them are the same for every target."""

    target_name = "the target"
    #: Operations this target serves (`request` names), e.g. submit/get/list/cancel/tools/…
    operations: frozenset[str] = frozenset()

    def __init__(self, deadlines: Deadlines) -> None:
        self.deadlines = deadlines
        self.submitted = 0  # jobs created (202) through this client: a deployed target is told
        self._count = threading.Lock()

    def created(self, reply: Reply) -> Reply:
        """Count `reply` if it created a job (drivers call it on each submit answer)."""
        if reply.operation == "submit" and reply.status == 202:
            with self._count:
                self.submitted += 1
        return reply

    # -- the wire: each driver implements these -----------------------------------------------

    @abstractmethod
    def request(
        self,
        operation: str,
        *,
        job_id: str | None = None,
        token: str | None = DEFAULT,
        headers: dict[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """A raw request of `operation` (a name in `operations`): for checks that send what
        the verbs below never would. `token` ANONYMOUS sends no credentials; `content` as an
        iterable of chunks goes with Transfer-Encoding: chunked."""

    @abstractmethod
    def submission(
        self, tool: Any, arguments: Any = OMIT, idempotency_key: Any = None, **extra: Any
    ) -> dict[str, Any]:
        """A submit request's parts in this target's wire: `{"json": body, "headers": {...}}`
        for `request("submit", **parts)`. Any value may be of the wrong type, `OMIT` leaves a
        field out and `extra` adds top-level fields: the bad-input checks build wrong
        submissions with it."""

    def submit(
        self,
        tool: str,
        arguments: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        token: str | None = DEFAULT,
    ) -> Reply:
        """Create a job; the reply's `job` holds at least its id (202 new, 200 replayed)."""
        parts = self.submission(tool, arguments or {}, idempotency_key)
        return self.request("submit", token=token, **parts)

    def job_location(self, job_id: str) -> str | None:
        """Where the target says a new job lives (a 202's `Location`), if its contract has one."""
        return None

    def get(self, job_id: str, wait: float = 0.0, token: str | None = DEFAULT) -> Reply:
        """The job (`reply.job`); `wait` > 0 long-polls that many seconds for a final status
        (the client's timeout outlasts the server's wait)."""
        timeout = self.deadlines.client(self.deadlines.long_poll(wait))
        params = {"wait": wait} if wait else None
        return self.request("get", job_id=job_id, token=token, params=params, timeout=timeout)

    def cancel(self, job_id: str, token: str | None = DEFAULT) -> Reply:
        return self.request("cancel", job_id=job_id, token=token)

    def list(
        self, token: str | None = DEFAULT, status: str | None = None, limit: int | None = None
    ) -> Reply:
        """One page of the caller's jobs (`reply.jobs`)."""
        raise Unsupported("list-jobs", self.target_name)

    def tools(self, token: str | None = DEFAULT) -> Reply:
        return self.request("tools", token=token)

    def ready(self) -> Reply:
        """Readiness (no credentials)."""
        return self.request("ready", token=ANONYMOUS)

    @abstractmethod
    def metrics(self, token: str | None = DEFAULT) -> Reply:
        """The Prometheus exposition (`reply.text`)."""

    @abstractmethod
    def token(
        self, subject: str | None = None, roles: Iterable[str] | None = None, **claims: Any
    ) -> str:
        """A bearer token for `subject` with `roles` (None: the client's default identity);
        raises Unsupported("mint-tokens") when the target's tokens are given, not minted."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""

    # -- the same for every target ----------------------------------------------------------

    def submit_ok(self, tool: str, arguments: dict[str, Any] | None = None, **kw: Any) -> str:
        """Submit and insist that a job was created; its id."""
        reply = self.submit(tool, arguments, **kw)
        assert reply.status in (200, 202) and reply.job_id, f"submit {tool}: {reply.describe()}"
        return reply.job_id

    def job(self, job_id: str, wait: float = 0.0, token: str | None = DEFAULT) -> Job:
        reply = self.get(job_id, wait=wait, token=token)
        if reply.status != 200 or reply.job is None:
            raise AssertionError(f"read job {job_id}: {reply.describe()}")
        return reply.job

    def wait_terminal(self, job_ids: Iterable[str], timeout: float | None = None) -> dict[str, Job]:
        """Long-poll each job until final; id → job. Default deadline: as many short jobs on
        live workers (`deadlines.jobs`)."""
        job_ids = list(job_ids)
        timeout = self.deadlines.jobs(len(job_ids)) if timeout is None else timeout
        deadline = time.monotonic() + timeout
        done: dict[str, Job] = {}
        for job_id in job_ids:
            while True:
                remaining = deadline - time.monotonic()
                job = self.job(job_id, wait=max(min(remaining, 10), 0))
                if job["status"] in TERMINAL:
                    done[job_id] = job
                    break
                if remaining <= 0:
                    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:g}s")
        return done

    def wait_status(self, job_id: str, status: str, timeout: float | None = None) -> Job:
        """Poll until the job has `status` (default deadline: one job on a live worker)."""
        timeout = self.deadlines.jobs() if timeout is None else timeout
        return wait_until(
            lambda: (job := self.job(job_id))["status"] == status and job,
            timeout,
            what=f"job {job_id} to be {status}",
        )


class Node(Protocol):
    """One process of a target the suite started: the broker, an API, a worker."""

    name: str

    def start(self) -> object: ...

    def stop(self) -> object:
        """SIGTERM (or the engine's stop), waiting for a clean exit."""
        ...

    def kill(self) -> object:
        """SIGKILL: no chance to clean up."""
        ...

    def pause(self) -> None:
        """SIGSTOP: it keeps its connections and work, doing nothing."""
        ...

    def resume(self) -> None: ...

    def restart(self) -> object: ...

    def ready(self) -> bool:
        """It serves now (one probe)."""
        ...

    def logs(self) -> str: ...


class Observer(Protocol):
    """What the suite sees of a target beyond its API (each method may raise Unsupported)."""

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        """Each real execution of the job's tool: `{attempt, worker, outcome, startedAt,
        finishedAt}` (times in epoch seconds), in order."""
        ...

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the target holds (registry rows in the checklist's words: `id`, `owner`,
        `status`, `attempts`, `cancelRequested`, `idempotencyKey`)."""
        ...

    def job_count(self) -> int: ...

    def own_job_count(self) -> int:
        """The jobs the client's default caller owns (what its own requests could create)."""
        ...

    def present(self) -> bool:
        """The registry exists where the target was told to keep it."""
        ...

    def queue_depth(self) -> int: ...

    def broker_drained(self) -> bool: ...


class Target(ABC):
    """One bridge under test, as a check holds it."""

    name: str = "target"
    capabilities: frozenset[str] = frozenset()
    client: Client
    observer: Observer
    nodes: Any = None  # the processes, for a target the suite started
    deadlines: Deadlines
    #: The settings the bridge runs with (the checklist's environment variables), where known.
    settings: Mapping[str, str] = {}

    def require(self, *needed: str) -> None:
        for capability in needed:
            if capability not in self.capabilities:
                raise Unsupported(capability, f"target {self.name}")

    def latch(self) -> Any:
        raise Unsupported("latch", f"target {self.name}")

    def endpoint(self, protocol: str) -> str:
        """The URL of a standard protocol the target serves beside its API, for that protocol's
        own tools: `mcp` (streamable HTTP, the MCP SDK's client), `openapi` (its OpenAPI
        document, schemathesis)."""
        raise Unsupported(protocol, f"target {self.name}")

    def bridge_client(self, url: str | None = None) -> Client:
        """This repository's own wire to the target's API process (or to one at `url` that a
        check started with the checklist's commands): for the §1 checks, which read the bridge
        as the checklist writes it, whatever contract the target puts in front."""
        raise Unsupported("commands", f"target {self.name}")

    def log_files(self) -> list[Path]:
        return []

    def close(self) -> None:
        self.client.close()


class Driver(ABC):
    """Makes targets: `launch` one per check (or returns the one deployed bridge)."""

    name: str = "driver"
    capabilities: frozenset[str] = frozenset()
    #: Every check shares one target (a deployment): checks must not run in parallel, since
    #: those that count what the target holds would count each other's jobs.
    shared: bool = False

    @abstractmethod
    def launch(
        self,
        workdir: Path,
        *,
        workers: int = 1,
        settings: Mapping[str, str | None] | None = None,
        backend: str = "celery",
        start_api: bool = True,
        broker: bool | None = None,
    ) -> Target:
        """A target for one check. `settings` (the checklist's environment variables; None
        unsets one) need `configure`; a driver that cannot honour them raises Unsupported."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what the driver holds for the session."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "capabilities": sorted(self.capabilities)}
