"""Evidence records: one JSON file per check in the run's evidence directory (docs/design.md)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
    """What one check measured and the files that back it; written once the check has run."""

    def __init__(
        self, run_dir: Path, check_id: str, section: str, title: str, nodeid: str, command: str
    ) -> None:
        self.run_dir, self.check_id, self.section, self.title = run_dir, check_id, section, title
        self.nodeid, self.command = nodeid, command
        self.measured: dict[str, Any] = {}
        self.thresholds: dict[str, Any] = {}
        self.files: list[Path] = []
        self.started = time.monotonic()
        self.started_at = utc_now()

    @property
    def files_dir(self) -> Path:
        return self.run_dir / "files" / self.check_id

    def measure(self, **values: Any) -> None:
        self.measured.update(values)

    def threshold(self, **values: Any) -> None:
        self.thresholds.update(values)

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

    def write(self, outcome: str, reason: str | None) -> Path:
        record = {
            "id": self.check_id,
            "section": self.section,
            "title": self.title,
            "outcome": outcome,
            "reason": reason,
            "measured": self.measured,
            "thresholds": self.thresholds,
            "evidence": [
                {"path": str(path.relative_to(self.run_dir)), "sha256": sha256_file(path)}
                for path in dict.fromkeys(self.files)
                if path.exists()
            ],
            "durationSeconds": round(time.monotonic() - self.started, 3),
            "command": self.command,
            "nodeid": self.nodeid,
            "startedAt": self.started_at,
        }
        path = self.run_dir / "checks" / f"{self.check_id}.json"
        write_json(path, record)
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


def write_run(run_dir: Path, **fields: Any) -> Path:
    """Create or update run.json (a serial pass after a parallel one extends the same run)."""
    path = run_dir / "run.json"
    run: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    commands = run.get("commands", [])
    command = " ".join(["pytest", *sys.argv[1:]])
    if command not in commands:
        commands.append(command)
    run.update(
        {
            "runId": run_dir.name,
            "startedAt": run.get("startedAt") or fields.pop("startedAt", utc_now()),
            "finishedAt": utc_now(),
            "command": commands[0],
            "commands": commands,
            "gitCommit": _git("rev-parse", "HEAD"),
            "gitDirty": bool(_git("status", "--porcelain")),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpuCount": os.cpu_count(),
            "cpuModel": _cpu_model(),
            "versions": {d: _version(d) for d in ("mcp-bridge", "celery", "kombu", "redis")},
        }
    )
    run.update({key: value for key, value in fields.items() if value is not None})
    write_json(path, run)
    return path
