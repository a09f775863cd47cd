"""Small value types shared by the report modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .contract import Expectation


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"

    @staticmethod
    def combine(statuses: list[Status]) -> Status:
        """FAIL dominates, then UNKNOWN; PASS only when every part passed (and there is one)."""
        if Status.FAIL in statuses:
            return Status.FAIL
        if not statuses or Status.UNKNOWN in statuses:
            return Status.UNKNOWN
        return Status.PASS


@dataclass(frozen=True)
class EvidenceFile:
    """One evidence file as listed in a check record, after verification."""

    path: str  # relative to the run directory (as recorded)
    sha256: str  # as recorded ("" when the record gave none)
    ok: bool
    problem: str | None = None  # "missing", "sha256 mismatch", ...
    actual_sha256: str | None = None


@dataclass
class CheckResult:
    """One ``checks/<id>.json`` record, verified against its evidence files."""

    id: str
    status: Status
    outcome: str  # as recorded, or "unreadable"
    reason: str | None
    title: str = ""
    section: str = ""
    measured: dict[str, Any] = field(default_factory=dict)
    expectations: list[Expectation] = field(default_factory=list)
    evidence: list[EvidenceFile] = field(default_factory=list)
    command: str | None = None
    nodeid: str | None = None
    duration_seconds: float | None = None
    source_file: str = ""  # relative to the run directory


@dataclass
class GeneratorResult:
    """An outcome computed by the generator itself (section 5 packaging steps)."""

    key: str
    status: Status
    detail: str
    files: list[tuple[str, str]] = field(default_factory=list)  # (bundle path, sha256)
