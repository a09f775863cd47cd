"""Tracked files the report may update: ``CHANGELOG.md`` and the licence review.

They are written only on a GA PASS, and only by a plain run (no ``--draft``, no ``--out``) unless
``--write-repo`` asks for it. A run that did not pass never writes, so partial evidence cannot
replace committed figures and "Qualified by run" never reaches the repository after a FAIL.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .changelog import write_changelog_section
from .license_review import LICENSE_REVIEW_PATH, REVIEW_NAME

CHANGELOG = Path("CHANGELOG.md")


def repo_write_refusal(
    *, gate_passed: bool, draft: bool, out: Path | None, write_repo: bool
) -> str | None:
    """None when the repository files are to be written, else the reason they are not."""
    if not gate_passed:
        return "the GA gate did not pass"
    if write_repo:
        return None
    if draft:
        return "--draft (add --write-repo to write them on a PASS)"
    if out is not None:
        return "--out (add --write-repo to write them on a PASS)"
    return None


def write_repository(root: Path, out: Path, version: str, section: str) -> list[Path]:
    """The version's section into CHANGELOG.md, the bundle's licence review into docs/compliance."""
    changelog = root / CHANGELOG
    write_changelog_section(changelog, version, section)
    written = [changelog]
    review = out / REVIEW_NAME
    if review.is_file():
        doc = root / LICENSE_REVIEW_PATH
        doc.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(review, doc)
        written.append(doc)
    return written
