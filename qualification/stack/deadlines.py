"""How long the suite may wait on the bridge: the stack's own configured durations plus one margin.

A deadline is reached only when something is wrong, so a generous margin costs time only on a red
verdict, while a margin too small turns a busy machine into a false FAIL. Every wait of the suite
(job long-polls, HTTP client timeouts, drains, process readiness) is computed here from the
stack's environment, never hand-picked in a check; and no client timeout is shorter than the
server-side wait it depends on.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The bridge's documented defaults (README, "Configuration") for variables a stack leaves unset.
BRIDGE_DEFAULTS: dict[str, float] = {
    "CELERY_VISIBILITY_TIMEOUT": 3600.0,
    "JOB_LEASE_SECONDS": 30.0,
    "DISPATCH_INTERVAL_SECONDS": 1.0,
    "PUBLISH_TIMEOUT_SECONDS": 2.0,
    "JOB_REDISPATCH_SECONDS": 600.0,
    "MAX_WAIT_SECONDS": 60.0,
    "MCP_CALL_WAIT_SECONDS": 30.0,
}
#: What a busy 2-core machine may add to any wait: scheduling, imports, fsyncs, SQLite locks.
SLACK_SECONDS = 30.0
#: What a busy machine may add per job beyond its own work: claim, registry writes, broker trips.
PER_JOB_SECONDS = 1.0
#: A process start has no configured bound: interpreter, imports, broker and registry connections
#: (an MCP server's spawn and handshake included). Readiness waits end as soon as it serves.
STARTUP_SECONDS = 60.0
#: Celery/kombu's longest pause between broker reconnection attempts (`interval_max`, not
#: configured by the bridge).
RECONNECT_SECONDS = 30.0
#: How often a readiness probe is retried at most: its own timeout (the probed call answers at
#: once when the process serves; a slow answer is retried until `STARTUP_SECONDS`).
PROBE_SECONDS = 5.0


class Deadlines:
    """Deadlines derived from one stack's environment (a `BridgeStack.env`)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def setting(self, name: str) -> float:
        """A duration the bridge is configured with: the stack's value, else its default."""
        value = self._env.get(name)
        return float(value) if value not in (None, "") else BRIDGE_DEFAULTS[name]

    # -- what the bridge does, as configured -------------------------------------------------

    @property
    def dispatch(self) -> float:
        """One dispatcher period: re-publish, reap expired leases."""
        return self.setting("DISPATCH_INTERVAL_SECONDS")

    @property
    def lease(self) -> float:
        return self.setting("JOB_LEASE_SECONDS")

    @property
    def renew(self) -> float:
        """How often a running job's lease is renewed (and a cancel request noticed)."""
        return self.lease / 3

    @property
    def redelivery(self) -> float:
        """The longest an unacknowledged message takes to come back: the visibility timeout, then
        kombu's sweep, which the bridge runs every tenth of it (1 to 10 s)."""
        visibility = self.setting("CELERY_VISIBILITY_TIMEOUT")
        return visibility + max(1.0, min(10.0, visibility // 10))

    @property
    def redispatch(self) -> float:
        """How long a published job may wait unclaimed before the dispatcher publishes it again
        (its message was lost, e.g. with a broker that died before it was persisted)."""
        return self.setting("JOB_REDISPATCH_SECONDS")

    def long_poll(self, wait: float) -> float:
        """The server's part of a long-poll read of a job: `wait`, capped by MAX_WAIT_SECONDS."""
        return min(wait, self.setting("MAX_WAIT_SECONDS"))

    def mcp_call(self, wait: float | None = None) -> float:
        """The server's part of an `/mcp` `tools/call`: MCP_CALL_WAIT_SECONDS, or the call's own
        `mcp-bridge/waitSeconds`, capped by MAX_WAIT_SECONDS."""
        asked = self.setting("MCP_CALL_WAIT_SECONDS") if wait is None else wait
        return min(asked, self.setting("MAX_WAIT_SECONDS"))

    # -- deadlines: the above plus the margin -----------------------------------------------

    def client(self, server_wait: float = 0.0) -> float:
        """An HTTP client's read timeout for a request the server may hold `server_wait` s."""
        return server_wait + SLACK_SECONDS

    def jobs(self, count: int = 1, work: float = 0.0, spawn: bool = False) -> float:
        """Until `count` jobs doing `work` seconds in all, published to live workers, are terminal
        (`spawn`: the first call also starts an MCP server)."""
        start = STARTUP_SECONDS if spawn else 0.0
        return self.dispatch + work + start + count * PER_JOB_SECONDS + SLACK_SECONDS

    def lost_attempt(self, work: float = 0.0) -> float:
        """Until a job whose worker died runs again elsewhere and ends: its lease runs out, the
        dispatcher re-queues and re-publishes it (a tick each), then the `work`."""
        return self.lease + 2 * self.dispatch + self.jobs(work=work)

    def redelivered_attempt(self, work: float = 0.0) -> float:
        """Until a job whose worker died runs again from its redelivered message alone (no
        dispatcher tick): the message is back after the visibility timeout and kombu's sweep,
        and its claim takes the job over once the lease has run out too; then the `work`."""
        return max(self.redelivery, self.lease) + work + PER_JOB_SECONDS + SLACK_SECONDS

    def drain(self) -> float:
        """Until the broker holds nothing: a dead worker's message is back and dropped."""
        return self.redelivery + self.jobs()

    def broker_return(self, count: int = 1, work: float = 0.0) -> float:
        """Until `count` jobs accepted while the broker was down have run once it is back: the
        workers reconnect, the dispatcher publishes."""
        return RECONNECT_SECONDS + self.jobs(count, work)

    def cancel_noticed(self) -> float:
        """Until a running cooperative tool sees a cancel request (the next lease renewal)."""
        return self.renew + self.jobs()

    def stranded(self, count: int = 1, work: float = 0.0) -> float:
        """Until `count` jobs stranded by any fault (a dead or paused worker's claim, a lost or
        unacknowledged message, a broker outage) have run: the slowest rescue path (the lease
        and dispatcher, the visibility timeout, or the re-publish of an unclaimed job) after the
        workers reconnect, then the jobs themselves."""
        rescue = max(
            self.lease + 2 * self.dispatch, self.redelivery, self.redispatch + self.dispatch
        )
        return RECONNECT_SECONDS + rescue + self.jobs(count, work)

    @staticmethod
    def startup() -> float:
        return STARTUP_SECONDS

    @staticmethod
    def shutdown(work: float = 0.0) -> float:
        """Until a process given SIGTERM has finished `work` seconds in flight and exited."""
        return work + SLACK_SECONDS
