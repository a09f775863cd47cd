"""Read an evidence directory (run.json, checks/*.json) through the evidence contract, and
verify every listed evidence file by sha256."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .contract import CheckRecord, EvidenceFileRef, Outcome, RunRecord
from .errors import ReportInputError
from .hashing import sha256_file
from .models import CheckResult, EvidenceFile, Status


@dataclass
class EvidenceDir:
    root: Path
    run: dict[str, Any]  # run.json as written (templates read it)
    record: RunRecord
    checks: dict[str, CheckResult] = field(default_factory=dict)


def load_evidence_dir(root: Path) -> EvidenceDir:
    if not root.is_dir():
        raise ReportInputError(f"evidence directory not found: {root}")
    run_path = root / "run.json"
    if not run_path.is_file():
        raise ReportInputError(f"not an evidence directory (no run.json): {root}")
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
        record = RunRecord.model_validate(run)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"unreadable run.json in {root}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "run.json"
        problem = f"{where}: {first['msg']}"
        raise ReportInputError(f"run.json in {root} breaks the contract: {problem}") from None
    return EvidenceDir(root=root, run=run, record=record, checks=load_checks(root))


def load_checks(root: Path) -> dict[str, CheckResult]:
    checks: dict[str, CheckResult] = {}
    checks_dir = root / "checks"
    if not checks_dir.is_dir():
        return checks
    for path in sorted(checks_dir.glob("*.json")):
        result = _load_check(root, path)
        checks[result.id] = result
    return checks


def _load_check(root: Path, path: Path) -> CheckResult:
    rel = path.relative_to(root).as_posix()
    try:
        record = CheckRecord.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        problem = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        return CheckResult(
            id=path.stem,
            status=Status.UNKNOWN,
            outcome="unreadable",
            reason=f"check record breaks the contract: {problem}",
            source_file=rel,
        )
    evidence = [_verify(root, item) for item in record.evidence]
    status, reason = _status(record, evidence)
    return CheckResult(
        id=record.id,
        status=status,
        outcome=record.outcome.value,
        reason=reason,
        title=record.title,
        section=record.section,
        measured=record.measured,
        expectations=record.expectations,
        evidence=evidence,
        command=record.command,
        nodeid=record.nodeid,
        duration_seconds=record.duration_seconds,
        source_file=rel,
    )


def _status(record: CheckRecord, evidence: list[EvidenceFile]) -> tuple[Status, str | None]:
    if record.outcome in (Outcome.FAILED, Outcome.ERROR):
        return Status.FAIL, record.reason or record.outcome.value
    if record.outcome is not Outcome.PASSED:
        reason = f": {record.reason}" if record.reason else ""
        return Status.UNKNOWN, f"outcome {record.outcome.value}{reason}"
    unmet = [e.describe() for e in record.expectations if not e.met]
    if unmet:  # a record that says passed but carries an unmet expectation is not believed
        return Status.FAIL, "passed with an unmet expectation: " + "; ".join(unmet)
    bad = [f"{e.path}: {e.problem}" for e in evidence if not e.ok]
    if bad:
        return Status.UNKNOWN, "evidence not verifiable: " + "; ".join(bad)
    return Status.PASS, None


def _verify(root: Path, item: EvidenceFileRef) -> EvidenceFile:
    rel = item.path
    recorded = item.sha256.lower()
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()):
        return EvidenceFile(rel, recorded, ok=False, problem="path outside evidence directory")
    if not recorded:
        return EvidenceFile(rel, recorded, ok=False, problem="no sha256 recorded")
    if not target.is_file():
        return EvidenceFile(rel, recorded, ok=False, problem="missing")
    try:
        actual = sha256_file(target)
    except OSError as exc:
        return EvidenceFile(rel, recorded, ok=False, problem=f"unreadable ({exc.strerror})")
    if actual != recorded:
        return EvidenceFile(rel, recorded, False, "sha256 mismatch", actual_sha256=actual)
    return EvidenceFile(rel, recorded, ok=True, actual_sha256=actual)
