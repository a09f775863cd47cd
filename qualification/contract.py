"""The evidence contract: what the suite writes and the release report reads (one model).

A run directory holds `run.json` (a `RunRecord`) and `checks/<id>.json` (one `CheckRecord` per
executed check). The run records, pass by pass, which checks it was asked to run (the manifest):
a check that was expected but left no record, or a catalogue check no pass selected, makes its
checklist item UNKNOWN in the report, never PASS.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Every check id of the suite (parametrised checks by their base id, e.g. `input.malformed`),
#: with the checklist section it belongs to. The plugin refuses a check marker not listed here;
#: the report maps checklist items to these ids.
CATALOGUE: dict[str, str] = {
    # §1 runtime configuration
    "config.env-vars": "1",
    "config.readyz-celery": "1",
    "config.bad-broker-url": "1",
    "config.bad-config": "1",
    "config.worker-start": "1",
    "config.api-start": "1",
    # §2 benchmark harness
    "config.token-command": "2",
    "bench.inline-worker": "2",
    "bench.http": "2",
    # §3 throughput validation
    "scaling.bridge": "3",
    "scaling.checklist-figure": "3",
    "scaling.raw-celery": "3",
    "scaling.inline": "3",
    "scaling.mcp": "3",
    # §4 registry and idempotency
    "registry.durable": "4",
    "registry.multi-host": "4",
    "idempotency.same-key": "4",
    "idempotency.concurrent": "4",
    "idempotency.conflict": "4",
    "idempotency.subject-scope": "4",
    "idempotency.eager": "4",
    "idempotency.inline": "4",
    "idempotency.restart": "4",
    # §4 faults
    "faults.worker-sigkill": "4",
    "faults.worker-sigterm": "4",
    "faults.api-restart": "4",
    "faults.redis-restart": "4",
    "faults.broker-down": "4",
    "faults.visibility-timeout": "4",
    "faults.cancel-durable": "4",
    "faults.cancel-running": "4",
    "faults.registry-restart": "4",
    "faults.chaos": "4",
    "faults.worker-conformance": "4",
    "faults.redelivery-only": "4",
    "faults.lease-only": "4",
    "faults.fencing": "4",
    # §4 monitoring, security, input, MCP
    "monitoring.histograms": "4",
    "monitoring.metrics-token": "4",
    "security.missing-token": "4",
    "security.tampered-token": "4",
    "security.expired-token": "4",
    "security.alg-none": "4",
    "security.wrong-role": "4",
    "security.isolation": "4",
    "security.production-dev-secret": "4",
    "input.malformed": "4",
    "input.openapi-conformance": "4",
    "mcp.stdio": "4",
    "mcp.http": "4",
    "mcp.server-crash": "4",
    "mcp.server-gone-idle": "4",
    "mcp.tool-timeout": "4",
    "mcp.endpoint": "4",
    # §4 the suite's own power (seeded faults)
    "power.seeded-faults": "4",
}


def base_id(check_id: str) -> str:
    """`input.malformed[empty-body]` → `input.malformed`."""
    return check_id.split("[", 1)[0]


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


Op = Literal["==", "!=", "<", "<=", ">", ">=", "in"]

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda measured, limit: measured in limit,
}


class Expectation(BaseModel):
    """A figure a check asserted: `measured op limit`, and whether it held."""

    name: str
    measured: Any
    op: Op
    limit: Any
    met: bool
    note: str | None = None

    def describe(self) -> str:
        note = f" ({self.note})" if self.note else ""
        seen = _short(self.measured)
        return f"{self.name}: expected {self.op} {_short(self.limit)}, saw {seen}{note}"


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"


class EvidenceFileRef(BaseModel):
    path: str  # relative to the run directory
    sha256: str


class CheckRecord(BaseModel):
    """`checks/<id>.json`: one executed check (one parametrised case)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    section: str = ""
    title: str = ""
    outcome: Outcome
    reason: str | None = None  # one line: what was expected and what was seen
    measured: dict[str, Any] = Field(default_factory=dict)
    expectations: list[Expectation] = Field(default_factory=list)
    evidence: list[EvidenceFileRef] = Field(default_factory=list)
    duration_seconds: float = Field(alias="durationSeconds")
    command: str | None = None
    nodeid: str | None = None
    started_at: str | None = Field(default=None, alias="startedAt")
    finished_at: str | None = Field(default=None, alias="finishedAt")

    @property
    def base_id(self) -> str:
        return base_id(self.id)


class Selection(BaseModel):
    """What produced a pass's list of checks: the command line, markers, `-k`, node ids."""

    model_config = ConfigDict(populate_by_name=True)

    args: list[str] = Field(default_factory=list)
    markers: str | None = None
    keyword: str | None = None
    check_ids: list[str] = Field(default_factory=list, alias="checkIds")


class PassRecord(BaseModel):
    """One pytest session that wrote into the run (`make qualify` runs two)."""

    model_config = ConfigDict(populate_by_name=True)

    command: str
    selection: Selection
    expected: list[str] = Field(default_factory=list)  # check ids it would execute
    started_at: str = Field(alias="startedAt")
    finished_at: str | None = Field(default=None, alias="finishedAt")
    exit_status: int | None = Field(default=None, alias="exitStatus")
    #: The driver this pass qualified through: name, capabilities (and, for a deployed target,
    #: its URL and the jobs the pass created there).
    target: dict[str, Any] | None = None


class RunRecord(BaseModel):
    """`run.json`: the run, its passes and the machine it ran on."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    run_id: str = Field(alias="runId")
    started_at: str = Field(alias="startedAt")
    finished_at: str | None = Field(default=None, alias="finishedAt")
    mode: str = "quick"
    passes: list[PassRecord] = Field(default_factory=list)
    git_commit: str | None = Field(default=None, alias="gitCommit")
    git_dirty: bool | None = Field(default=None, alias="gitDirty")
    python: str | None = None
    platform: str | None = None
    cpu_count: int | None = Field(default=None, alias="cpuCount")
    cpu_model: str | None = Field(default=None, alias="cpuModel")
    versions: dict[str, str | None] = Field(default_factory=dict)
    redis_provisioner: str | None = Field(default=None, alias="redisProvisioner")
    redis_version: str | None = Field(default=None, alias="redisVersion")

    @property
    def expected(self) -> list[str]:
        """Every check id some pass expected to execute, in first-seen order."""
        return list(dict.fromkeys(cid for p in self.passes for cid in p.expected))

    def unselected(self) -> list[str]:
        """Catalogue checks no pass selected: a run with any is partial."""
        chosen = {base_id(cid) for cid in self.expected}
        return [cid for cid in CATALOGUE if cid not in chosen]

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
