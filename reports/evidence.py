"""Read an evidence directory (run.json, checks/*.json) and verify evidence files by sha256."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.errors import ReportInputError
from reports.hashing import sha256_file
from reports.models import CheckResult, EvidenceFile, Status


@dataclass
class EvidenceDir:
    root: Path
    run: dict[str, Any]
    checks: dict[str, CheckResult] = field(default_factory=dict)


def load_evidence_dir(root: Path) -> EvidenceDir:
    if not root.is_dir():
        raise ReportInputError(f"evidence directory not found: {root}")
    run_path = root / "run.json"
    if not run_path.is_file():
        raise ReportInputError(f"not an evidence directory (no run.json): {root}")
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"unreadable run.json in {root}: {exc}") from None
    if not isinstance(run, dict):
        raise ReportInputError(f"run.json in {root} is not a JSON object")
    return EvidenceDir(root=root, run=run, checks=load_checks(root))


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
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return CheckResult(
            id=path.stem,
            status=Status.UNKNOWN,
            outcome="unreadable",
            reason=f"unreadable check record: {exc}",
            source_file=rel,
        )
    evidence = [_verify(root, item) for item in _as_list(record.get("evidence"))]
    outcome = str(record.get("outcome") or "missing")
    status, reason = _status(outcome, record.get("reason"), evidence)
    duration = record.get("durationSeconds")
    return CheckResult(
        id=str(record.get("id") or path.stem),
        status=status,
        outcome=outcome,
        reason=reason,
        title=str(record.get("title") or ""),
        section=str(record.get("section") or ""),
        measured=_as_dict(record.get("measured")),
        thresholds=_as_dict(record.get("thresholds")),
        evidence=evidence,
        command=_opt_str(record.get("command")),
        nodeid=_opt_str(record.get("nodeid")),
        duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        source_file=rel,
    )


def _status(outcome: str, reason: Any, evidence: list[EvidenceFile]) -> tuple[Status, str | None]:
    recorded = _opt_str(reason)
    if outcome in ("failed", "error"):
        return Status.FAIL, recorded or outcome
    if outcome != "passed":
        return Status.UNKNOWN, f"outcome {outcome}" + (f": {recorded}" if recorded else "")
    bad = [f"{e.path}: {e.problem}" for e in evidence if not e.ok]
    if bad:
        return Status.UNKNOWN, "evidence not verifiable: " + "; ".join(bad)
    return Status.PASS, None


def _verify(root: Path, item: Any) -> EvidenceFile:
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        return EvidenceFile(path=str(item), sha256="", ok=False, problem="malformed entry")
    rel = item["path"]
    recorded = str(item.get("sha256") or "").lower()
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


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
