"""Evidence records: one JSON file per check in the run's evidence directory (docs/design.md)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from .contract import (
    OPS,
    CheckRecord,
    EvidenceFileRef,
    Expectation,
    Op,
    Outcome,
    PassRecord,
    RunRecord,
)


def stamp(seconds: float) -> str:
    """A `time.time()` value as ISO 8601 UTC with milliseconds."""
    return (
        datetime.fromtimestamp(seconds, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def utc_now() -> str:
    return stamp(time.time())


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Write atomically, so a reader never sees half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


class CheckRecorder:
    """What one check measured, the expectations it asserted and the files that back it; written
    once the check has run (`write`), as a `CheckRecord` of the evidence contract."""

    def __init__(
        self,
        run_dir: Path,
        check_id: str,
        section: str,
        title: str,
        nodeid: str,
        command: str,
        started: float | None = None,
    ) -> None:
        self.run_dir, self.check_id, self.section, self.title = run_dir, check_id, section, title
        self.nodeid, self.command = nodeid, command
        self.measured: dict[str, Any] = {}
        self.expectations: list[Expectation] = []
        self.files: list[Path] = []
        #: wall clock (time.time) when the check's setup began, module-scoped fixtures included
        self.started = started if started is not None else time.time()

    @property
    def files_dir(self) -> Path:
        return self.run_dir / "files" / self.check_id

    def measure(self, **values: Any) -> None:
        """Context figures (not asserted): shown in the report beside the expectations."""
        self.measured.update(values)

    def expect(self, name: str, measured: Any, op: Op, limit: Any, note: str | None = None) -> None:
        """Record `measured op limit` and assert it: the one way a check states a target."""
        met = bool(OPS[op](measured, limit))
        expectation = Expectation(
            name=name, measured=measured, op=op, limit=limit, met=met, note=note
        )
        self.expectations.append(expectation)
        if not met:
            raise AssertionError(expectation.describe())

    def attach(self, source: Path, name: str | None = None) -> Path:
        """Copy a file into the evidence directory."""
        target = self.files_dir / (name or source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        self.files.append(target)
        return target

    def attach_text(self, name: str, text: str) -> Path:
        target = self.files_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        self.files.append(target)
        return target

    def attach_json(self, name: str, data: Any) -> Path:
        return self.attach_text(name, json.dumps(data, indent=2, sort_keys=True, default=str))

    def write(self, outcome: Outcome, reason: str | None) -> Path:
        finished = time.time()
        record = CheckRecord(
            id=self.check_id,
            section=self.section,
            title=self.title,
            outcome=outcome,
            reason=reason,
            measured=self.measured,
            expectations=self.expectations,
            evidence=[
                EvidenceFileRef(path=str(path.relative_to(self.run_dir)), sha256=sha256_file(path))
                for path in dict.fromkeys(self.files)
                if path.exists()
            ],
            durationSeconds=round(finished - self.started, 3),
            command=self.command,
            nodeid=self.nodeid,
            startedAt=stamp(self.started),
            finishedAt=stamp(finished),
        )
        path = self.run_dir / "checks" / f"{self.check_id}.json"
        write_json(path, record.model_dump(mode="json", by_alias=True))
        return path


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def write_run(run_dir: Path, this_pass: PassRecord, **fields: Any) -> Path:
    """Create or extend run.json with one pass (a serial pass after a parallel one extends the
    same run); machine facts are refreshed, the run's start is the first pass's."""
    path = run_dir / "run.json"
    previous = RunRecord.model_validate_json(path.read_text()) if path.exists() else None
    passes = [*(previous.passes if previous else []), this_pass]
    run = RunRecord(
        runId=run_dir.name,
        startedAt=previous.started_at if previous else this_pass.started_at,
        finishedAt=utc_now(),
        passes=passes,
        gitCommit=_git("rev-parse", "HEAD"),
        gitDirty=bool(_git("status", "--porcelain")),
        python=platform.python_version(),
        platform=platform.platform(),
        cpuCount=os.cpu_count(),
        cpuModel=_cpu_model(),
        versions={d: _version(d) for d in ("mcp-bridge", "celery", "kombu", "redis")},
        **{k: v for k, v in fields.items() if v is not None},
    )
    write_json(path, run.dump())
    return path
