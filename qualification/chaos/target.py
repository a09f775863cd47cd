"""The one door between the chaos package and the target under test.

The generator, nemesis and checker speak only to this `Target`, an adapter over a driver's target
(`qualification.drivers.Target`): the checklist's verbs through its client, executions and the
jobs it holds through its observer, faults through its nodes. Nothing else in
`qualification/chaos/` knows how the target is reached.

Every chaos thread shares the driver's one client: its HTTP connection pool is thread-safe, and
each long poll carries its own timeout (`Client.get` derives it from the wait). The nodes' side
(workers, broker, API) speaks to the processes the reference driver started (`Target.nodes`); a
check using it declares `kill-worker`, `restart-broker`, `restart-api` or `broker` (test_chaos.py:
NEEDS), and a target without nodes raises `Unsupported`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery

from .. import drivers
from ..drivers import Reply, Unsupported
from ..stack.deadlines import PROBE_SECONDS, Deadlines
from ..stack.latch import Latch

OPERATOR = ("operator",)
ADMIN = ("admin",)


def job_of(reply: Reply) -> Mapping[str, Any] | None:
    """The job a reply shows: its `job`, or the job an error answer shows as it is (a cancel of
    a job that already ended answers 409 with it; `drivers.Reply.job` is set for 2xx only)."""
    if reply.job is not None:
        return reply.job
    if reply.problem is not None and isinstance(reply.body, dict):
        shown = reply.body.get("job")
        return shown if isinstance(shown, dict) else None
    return None


def status_of(reply: Reply) -> str | None:
    return (job_of(reply) or {}).get("status")


class Target:
    """The chaos check's view of one target: verbs, observation and node control."""

    def __init__(self, target: drivers.Target) -> None:
        self.target = target
        self.deadlines: Deadlines = target.deadlines
        self._tokens: dict[tuple[str | None, tuple[str, ...]], str] = {}

    # -- the client's verbs (one driver client, shared by every thread) ----------------------

    def token(self, subject: str | None, roles: tuple[str, ...]) -> str:
        if (subject, roles) not in self._tokens:
            self._tokens[subject, roles] = self.target.client.token(subject, roles)
        return self._tokens[subject, roles]

    def submit(self, tool: str, arguments: dict[str, Any], key: str | None, subject: str) -> Reply:
        """Submit as `subject` (an operator); never raises for a lost answer (`status` None)."""
        token = self.token(subject, OPERATOR)
        return self.target.client.submit(tool, arguments, key, token=token)

    def cancel(self, job_id: str, subject: str) -> Reply:
        return self.target.client.cancel(job_id, token=self.token(subject, OPERATOR))

    def job(self, job_id: str, wait: float = 0.0) -> Reply:
        """The job as an administrator reads it; `wait` > 0 long-polls for a final status."""
        return self.target.client.get(job_id, wait=wait, token=self.token(None, ADMIN))

    def metrics(self) -> str:
        reply = self.target.client.metrics()
        if reply.status != 200:
            raise AssertionError(f"metrics: {reply.describe()}")
        return reply.text

    def latch(self) -> Latch:
        return self.target.latch()

    # -- the observer ------------------------------------------------------------------------

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        """The job's executions: `{attempt, worker, outcome, startedAt, finishedAt}`."""
        return self.target.observer.executions(job_id)

    def statuses(self) -> dict[str, str]:
        """Every job the target holds → its status, as the observer sees it."""
        return {job["id"]: job["status"] for job in self.target.observer.jobs()}

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the target holds: the observer's facts (status, attempts, tool), with the
        timestamps of the job as the API shows it to an administrator."""
        found = []
        for row in self.target.observer.jobs():
            reply = self.job(row["id"])
            if reply.status != 200 or reply.job is None:
                raise AssertionError(f"read job {row['id']}: {reply.describe()}")
            found.append({**reply.job, **row})
        return found

    def broker_idle(self) -> bool:
        """Nothing left to deliver: the queue is empty and no message awaits an ack."""
        return self.target.observer.broker_drained()

    def broker_backlog(self) -> dict[str, int]:
        """What the broker still holds: messages queued, messages delivered but not acked, and
        the seconds left on kombu's redelivery-sweep lock (-2: not held)."""
        queued = self.target.observer.queue_depth()
        with self._broker().client(0) as client:
            return {
                "queued": queued,
                "unacked": int(client.hlen("unacked")),
                "sweepLockTtl": int(client.ttl("unacked_mutex")),
            }

    def worker_settings(self) -> dict[str, dict[str, Any]]:
        """Each live worker's effective configuration and stats, asked over Celery's remote
        control: node → {"conf": …, "stats": …} (a worker that did not answer is missing)."""
        app = Celery("qualification-inspect", broker=self.target.settings["CELERY_BROKER_URL"])
        nodes = [w.node for w in self._workers() if w.running]
        try:
            inspect = app.control.inspect(destination=nodes, timeout=PROBE_SECONDS)
            conf = inspect.conf(with_defaults=True) or {}
            stats = inspect.stats() or {}
        finally:
            app.close()
        return {node: {"conf": conf.get(node), "stats": stats.get(node)} for node in nodes}

    # -- the nodes ---------------------------------------------------------------------------

    def _nodes(self, capability: str) -> Any:
        if self.target.nodes is None:
            raise Unsupported(capability, f"target {self.target.name}")
        return self.target.nodes

    def _workers(self) -> list[Any]:
        return self._nodes("kill-worker").workers

    def _broker(self) -> Any:
        broker = self._nodes("broker").broker
        if broker is None:
            raise Unsupported("broker", f"target {self.target.name}")
        return broker

    @property
    def workers(self) -> list[str]:
        """Worker node names, by slot."""
        return [w.node for w in self._workers()]

    def worker_running(self, slot: int) -> bool:
        return self._workers()[slot].running

    def worker_pid(self, slot: int) -> int | None:
        return self._workers()[slot].pid

    def worker_slot(self, pid: int) -> int | None:
        return next((i for i, w in enumerate(self._workers()) if w.pid == pid), None)

    def worker_log(self, slot: int) -> str:
        return self._workers()[slot].logs()

    def kill_worker(self, slot: int) -> None:
        self._workers()[slot].kill()

    def pause_worker(self, slot: int) -> None:
        self._workers()[slot].pause()

    def resume_worker(self, slot: int) -> None:
        self._workers()[slot].resume()

    def start_worker(self, slot: int, wait: bool = True) -> None:
        """Start a killed worker again (same node name); `wait`: until it answers a ping."""
        worker = self._workers()[slot]
        if not worker.running:
            worker.spawn()
        if wait:
            worker.wait_ready()

    def add_worker(self) -> int:
        self._nodes("kill-worker").add_worker()
        return len(self._workers()) - 1

    @property
    def broker_controllable(self) -> bool:
        nodes = self.target.nodes
        broker = None if nodes is None else nodes.broker
        return broker is not None and broker.can_restart

    def broker_kill_restart(self) -> None:
        """SIGKILL the broker and start it again on its data (append-only file)."""
        broker = self._nodes("restart-broker").broker
        broker.kill()
        broker.start()

    def broker_stop(self) -> None:
        self._nodes("restart-broker").broker.stop()

    def broker_start(self) -> None:
        self._nodes("restart-broker").broker.start()

    def broker_running(self) -> bool:
        broker = self._nodes("restart-broker").broker
        return broker is not None and broker.ready()

    def api_restart(self) -> None:
        """SIGTERM the API, start it again, wait until it is ready."""
        self._nodes("restart-api").api.restart()

    def api_running(self) -> bool:
        return self._nodes("restart-api").api.running
