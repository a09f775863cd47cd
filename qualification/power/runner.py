"""Seeded faults: prove the suite's power the way mutation testing proves a test suite.

Each fault of the catalogue (`catalogue.toml`) is one small, realistic mistake patched into a
scratch copy of the bridge (`find` → `replace` in one file). The copy must still import; then the
checks the fault names are run against it (the stack processes take the copy through
`PYTHONPATH`) and the fault is CAUGHT when one of them fails, MISSED when all pass. A fault caught
only by a check it does not name counts, but is flagged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from ..contract import CATALOGUE, CheckRecord, Outcome, RunRecord, base_id

HERE = Path(__file__).resolve().parent
CATALOGUE_FILE = HERE / "catalogue.toml"
#: Importing these must work in a patched copy, or the fault is invalid (not a realistic mistake).
ENTRY_MODULES = ("mcp_bridge.app", "mcp_bridge.worker", "mcp_bridge.benchmarking")
IMPORT_SECONDS = 120  # a cold interpreter importing the bridge on a busy machine


class Verdict(StrEnum):
    CAUGHT = "CAUGHT"
    MISSED = "MISSED"
    INVALID = "INVALID"  # the fault cannot be applied, or the copy does not import
    UNVERIFIED = "UNVERIFIED"  # its checks did not all run and pass or fail: never "missed"


@dataclass(frozen=True)
class Fault:
    id: str
    description: str
    file: str  # relative to the bridge package root, e.g. "security/tokens.py"
    find: str
    replace: str
    checks: tuple[str, ...]  # catalogue ids that must catch it


@dataclass
class FaultResult:
    id: str
    verdict: Verdict
    caught_by: list[str] = field(default_factory=list)
    named_caught: bool = False
    detail: str = ""
    seconds: float = 0.0

    @property
    def flagged(self) -> bool:
        """Caught, but only by checks the fault does not name."""
        return self.verdict is Verdict.CAUGHT and not self.named_caught

    def line(self) -> str:
        if self.verdict is Verdict.CAUGHT:
            flag = "  (flagged: only by checks it does not name)" if self.flagged else ""
            return f"CAUGHT  {self.id} by {', '.join(self.caught_by)}{flag}"
        return f"{self.verdict.value:<7} {self.id}: {self.detail}"


def load_catalogue(path: Path = CATALOGUE_FILE) -> list[Fault]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    faults = [
        Fault(
            id=entry["id"],
            description=entry["description"],
            file=entry["file"],
            find=entry["find"],
            replace=entry["replace"],
            checks=tuple(entry["checks"]),
        )
        for entry in data.get("fault", [])
    ]
    ids = [f.id for f in faults]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path.name}: duplicate fault ids {duplicates}")
    for fault in faults:
        unknown = [c for c in fault.checks if c not in CATALOGUE]
        if unknown or not fault.checks:
            raise ValueError(f"{path.name}: fault {fault.id} names unknown checks {unknown}")
    return faults


def bridge_source() -> Path:
    """The `src` directory whose `mcp_bridge` the patched copies start from."""
    import importlib.util

    spec = importlib.util.find_spec("mcp_bridge")
    if spec is None or spec.origin is None:
        raise RuntimeError("mcp_bridge is not importable: install the bridge first")
    return Path(spec.origin).resolve().parent.parent


def patch_copy(fault: Fault, scratch: Path, source: Path | None = None) -> Path | str:
    """Copy the bridge into `scratch/src` and apply the fault; the copy's `src`, or why the fault
    cannot be applied (its text is not found exactly once)."""
    source = source or bridge_source()
    target = scratch / "src"
    shutil.copytree(
        source / "mcp_bridge", target / "mcp_bridge", ignore=shutil.ignore_patterns("__pycache__")
    )
    path = target / "mcp_bridge" / fault.file
    if not path.is_file():
        return f"no file mcp_bridge/{fault.file}"
    text = path.read_text(encoding="utf-8")
    count = text.count(fault.find)
    if count != 1:
        return f"`find` occurs {count} times in mcp_bridge/{fault.file} (needs exactly 1)"
    path.write_text(text.replace(fault.find, fault.replace), encoding="utf-8")
    return target


def _env(src: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def imports(src: Path) -> str | None:
    """None when the patched copy imports, else the error's last line."""
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)"
    env = {
        **_env(src),  # what importing the worker module needs from its environment
        "AUTH_DEV_SECRET": "power-import-check",
        "JOB_REGISTRY_PATH": str(src.parent / "import-check" / "registry.db"),
        "JOB_REGISTRY_URL": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *ENTRY_MODULES],
        env=env,
        capture_output=True,
        text=True,
        timeout=IMPORT_SECONDS,
    )
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {done.returncode}"


def run_fault(fault: Fault, pytest_args: list[str], workdir: Path) -> FaultResult:
    """Patch a copy, run the fault's checks against it, read their records."""
    started = time.monotonic()
    src = patch_copy(fault, workdir)
    if isinstance(src, str):
        return FaultResult(fault.id, Verdict.INVALID, detail=src)
    broken = imports(src)
    if broken:
        return FaultResult(fault.id, Verdict.INVALID, detail=f"the copy does not import: {broken}")
    evidence = workdir / "evidence"
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(Path(__file__).resolve().parents[1]),
        "-p",
        "no:cacheprovider",
        "-q",
        "--evidence-dir",
        str(evidence),
        *[f"--check-id={check}" for check in fault.checks],
        *pytest_args,
    ]
    done = subprocess.run(command, env=_env(src), capture_output=True, text=True, check=False)
    seconds = round(time.monotonic() - started, 1)
    run_json = evidence / "run.json"
    expected = (
        RunRecord.model_validate_json(run_json.read_bytes()).expected if run_json.exists() else []
    )
    if not expected:
        tail = (done.stdout + done.stderr).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return FaultResult(
            fault.id, Verdict.UNVERIFIED, detail=f"no check ran: {tail[0]}"[:300], seconds=seconds
        )
    failed, unrun = [], []
    for check_id in expected:
        path = evidence / "checks" / f"{check_id}.json"
        if not path.exists():
            unrun.append(f"{check_id} (no record)")
            continue
        record = CheckRecord.model_validate_json(path.read_bytes())
        if record.outcome in (Outcome.FAILED, Outcome.ERROR):
            failed.append(f"{record.id} ({record.reason or record.outcome.value})"[:300])
        elif record.outcome is not Outcome.PASSED:
            unrun.append(f"{record.id} ({record.outcome.value}: {record.reason})"[:300])
    if not failed and unrun:
        return FaultResult(fault.id, Verdict.UNVERIFIED, detail="; ".join(unrun), seconds=seconds)
    if not failed:
        return FaultResult(fault.id, Verdict.MISSED, detail="every check passed", seconds=seconds)
    named = any(base_id(entry.split(" ")[0]) in fault.checks for entry in failed)
    return FaultResult(fault.id, Verdict.CAUGHT, failed, named, seconds=seconds)


@dataclass
class Score:
    results: list[FaultResult]

    @property
    def unverified(self) -> list[FaultResult]:
        return [r for r in self.results if r.verdict is Verdict.UNVERIFIED]

    @property
    def valid(self) -> list[FaultResult]:
        return [r for r in self.results if r.verdict is not Verdict.INVALID]

    @property
    def caught(self) -> int:
        return sum(r.verdict is Verdict.CAUGHT for r in self.results)

    @property
    def share(self) -> float:
        return self.caught / len(self.valid) if self.valid else 0.0

    def line(self) -> str:
        return (
            f"power: the suite caught {self.caught}/{len(self.valid)} seeded faults "
            f"({self.share:.0%}); {len(self.results) - len(self.valid)} invalid, "
            f"{len(self.unverified)} unverified"
        )

    def as_dict(self) -> dict:
        return {
            "caught": self.caught,
            "valid": len(self.valid),
            "share": round(self.share, 4),
            "missed": [r.id for r in self.results if r.verdict is Verdict.MISSED],
            "invalid": [r.id for r in self.results if r.verdict is Verdict.INVALID],
            "unverified": [r.id for r in self.unverified],
            "flagged": [r.id for r in self.results if r.flagged],
            "results": [asdict(r) for r in self.results],
        }


def select(faults: list[Fault], subset: int | None, seed: str) -> list[Fault]:
    """All faults, or a rotating subset: `subset` faults starting at an offset the seed picks
    (e.g. the commit), so successive CI runs cover the whole catalogue."""
    if not subset or subset >= len(faults):
        return faults
    offset = int.from_bytes(seed.encode(), "big") % len(faults) if seed else 0
    return [faults[(offset + i) % len(faults)] for i in range(subset)]


def run(
    faults: list[Fault], pytest_args: list[str], echo=print, workroot: Path | None = None
) -> Score:
    results = []
    with tempfile.TemporaryDirectory(prefix="power-", dir=workroot) as tmp:
        for index, fault in enumerate(faults, start=1):
            result = run_fault(fault, pytest_args, Path(tmp) / fault.id)
            results.append(result)
            echo(f"[{index}/{len(faults)}] {result.line()}  ({result.seconds:.0f} s)")
    score = Score(results)
    echo(score.line())
    return score


def write(score: Score, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(score.as_dict(), indent=2) + "\n", encoding="utf-8")
