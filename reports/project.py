"""Facts about the repository the report is built for."""

from __future__ import annotations

import tomllib
from pathlib import Path

from .errors import ReportInputError


def read_version(pyproject: Path) -> str:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        return str(data["project"]["version"])
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise ReportInputError(
            f"cannot read [project].version from {pyproject} ({exc}); pass --version"
        ) from None
