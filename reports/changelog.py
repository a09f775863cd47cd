"""CHANGELOG.md upkeep: insert or replace one version's section (idempotent)."""

from __future__ import annotations

import re
from pathlib import Path

HEADER = """# Changelog

All notable changes to this project are documented in this file. The format follows
[Keep a Changelog](https://keepachangelog.com/en/1.1.0/); release sections for GA candidates are
written by `python -m reports` from the qualification evidence.

## [Unreleased]
"""
SECTION_RE = re.compile(r"^## \[(?P<name>[^\]]+)\]", re.MULTILINE)


def upsert_section(text: str, version: str, section: str) -> str:
    """Return *text* with the ``## [version]`` section set to *section* (exactly once).

    An existing section for *version* is replaced in place; otherwise the new one goes right after
    ``## [Unreleased]`` (or after the preamble when there is no Unreleased section).
    """
    if not text.strip():
        text = HEADER
    section = section.strip("\n") + "\n"
    heads = list(SECTION_RE.finditer(text))
    for i, head in enumerate(heads):
        if head["name"] == version:
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            rest = text[end:]
            return text[: head.start()] + section + ("\n" + rest if rest else "")
    unreleased = next((h for h in heads if h["name"].lower() == "unreleased"), None)
    if unreleased is not None:
        idx = heads.index(unreleased)
        insert_at = heads[idx + 1].start() if idx + 1 < len(heads) else len(text)
    else:
        insert_at = heads[0].start() if heads else len(text)
    before, after = text[:insert_at].rstrip("\n") + "\n\n", text[insert_at:]
    return before + section + ("\n" + after if after else "")


def update_changelog(path: Path, version: str, section: str) -> None:
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    path.write_text(upsert_section(existing, version, section), encoding="utf-8")


def extract_section(text: str, version: str) -> str | None:
    heads = list(SECTION_RE.finditer(text))
    for i, head in enumerate(heads):
        if head["name"] == version:
            end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
            return text[head.start() : end].strip("\n") + "\n"
    return None
