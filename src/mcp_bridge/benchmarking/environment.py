"""Where a benchmark ran: CPU, Python, platform, library versions and the git checkout."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTIONS = ("mcp-bridge", "celery", "kombu", "redis")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def cpu_affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_state(directory: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout holding the bridge's code; (None, None) outside git."""
    where = directory or Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(where), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = git("status", "--porcelain")
    return commit.strip(), (None if status is None else bool(status.strip()))


def environment() -> dict[str, Any]:
    commit, dirty = git_state()
    return {
        "cpuCount": os.cpu_count(),
        "cpuAffinity": cpu_affinity(),
        "cpuModel": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions(),
        "gitCommit": commit,
        "gitDirty": dirty,
    }
