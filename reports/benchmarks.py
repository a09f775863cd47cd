"""Benchmark artefacts in ``benchmarks/``: the 1-worker/4-worker scaling pair and their config."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PAIR_RE = re.compile(r"^(?P<stamp>.+)-scaling-(?P<workers>[14])w\.json$")


@dataclass
class Artefact:
    path: Path
    data: dict[str, Any] | None
    problem: str | None = None

    @property
    def config(self) -> dict[str, Any]:
        cfg = (self.data or {}).get("config")
        return cfg if isinstance(cfg, dict) else {}

    @property
    def summary_mean(self) -> Any:
        summary = (self.data or {}).get("summary")
        return summary.get("mean") if isinstance(summary, dict) else None


@dataclass
class BenchmarkSet:
    one: Artefact | None = None
    four: Artefact | None = None
    others: list[Artefact] = field(default_factory=list)

    @property
    def pair(self) -> list[Artefact]:
        return [a for a in (self.one, self.four) if a is not None]


def load_benchmarks(run_dir: Path) -> BenchmarkSet:
    """Pick the newest stamp that has both ``-scaling-1w.json`` and ``-scaling-4w.json``.

    When no stamp is complete, the newest lone half is kept so the report can say what is missing.
    """
    bench_dir = run_dir / "benchmarks"
    files = sorted(bench_dir.glob("*.json")) if bench_dir.is_dir() else []
    by_stamp: dict[str, dict[str, Path]] = {}
    for path in files:
        match = PAIR_RE.match(path.name)
        if match:
            by_stamp.setdefault(match["stamp"], {})[match["workers"]] = path
    complete = [s for s in sorted(by_stamp) if len(by_stamp[s]) == 2]
    chosen = by_stamp[complete[-1]] if complete else {}
    if not complete:
        for stamp in sorted(by_stamp):
            chosen = {**chosen, **by_stamp[stamp]}
    result = BenchmarkSet()
    if "1" in chosen:
        result.one = _load(chosen["1"])
    if "4" in chosen:
        result.four = _load(chosen["4"])
    pair_paths = set(chosen.values())
    result.others = [_load(p) for p in files if p not in pair_paths]
    return result


def _load(path: Path) -> Artefact:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Artefact(path, None, f"unreadable: {exc}")
    if not isinstance(data, dict):
        return Artefact(path, None, "not a JSON object")
    return Artefact(path, data)


def redact_url(value: Any) -> Any:
    """Hide a password in ``scheme://user:secret@host`` so it never reaches a report."""
    if not isinstance(value, str) or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password is None:
        return value
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def broker_config(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Flatten a benchmark ``config`` block into (dotted key, display value) rows."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key in node:
                walk(f"{prefix}.{key}" if prefix else str(key), node[key])
        else:
            shown = redact_url(node)
            rows.append((prefix, shown if isinstance(shown, str) else json.dumps(shown)))

    walk("", config)
    return rows
