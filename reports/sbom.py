"""CycloneDX SBOM of the installed runtime via the ``cyclonedx-bom`` CLI (cyclonedx-py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


class SbomError(RuntimeError):
    pass


def sbom_command(output: Path, pyproject: Path | None, python: str = sys.executable) -> list[str]:
    """``cyclonedx-py environment`` for *python*, reproducible CycloneDX 1.6 JSON into *output*."""
    cmd = [
        sys.executable,
        "-m",
        "cyclonedx_py",
        "environment",
        "--sv",
        "1.6",
        "--of",
        "JSON",
        "--output-reproducible",
        "--mc-type",
        "application",
        "-o",
        str(output),
    ]
    if pyproject is not None and pyproject.is_file():
        cmd += ["--pyproject", str(pyproject)]
    return [*cmd, python]


def generate_sbom(
    output: Path, pyproject: Path | None, source_date_epoch: int | None = None
) -> list[str]:
    """Write the SBOM; returns the command used. Raises SbomError with a one-line reason."""
    cmd = sbom_command(output, pyproject)
    env = dict(os.environ)
    if source_date_epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(source_date_epoch)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SbomError(f"cyclonedx-py could not run: {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SbomError(f"cyclonedx-py exited {proc.returncode}: {tail[0]}")
    return cmd


def load_sbom(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SbomError(f"unreadable SBOM {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("bomFormat") != "CycloneDX":
        raise SbomError(f"{path} is not a CycloneDX JSON document")
    return data


def display_command(cmd: list[str]) -> str:
    """The command as an operator would type it (``cyclonedx-py`` instead of ``python -m``)."""
    shown = ["cyclonedx-py", *cmd[3:]]
    return " ".join(shown)
