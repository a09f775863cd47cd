"""Environment fingerprint rows from run.json (design.md: runId, gitCommit, versions, ...)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

DASH = "—"


def _get(run: dict[str, Any], key: str) -> str:
    value = run.get(key)
    return DASH if value in (None, "") else str(value)


def fingerprint(run: dict[str, Any]) -> list[tuple[str, str]]:
    commit = _get(run, "gitCommit")
    dirty = run.get("gitDirty")
    if commit != DASH and dirty is not None:
        commit += " (dirty working tree)" if dirty else " (clean)"
    versions = run.get("versions") if isinstance(run.get("versions"), dict) else {}
    cpu = _get(run, "cpuModel")
    if run.get("cpuCount") is not None:
        cpu = f"{run['cpuCount']} × {cpu}" if cpu != DASH else f"{run['cpuCount']} CPUs"
    redis = (
        " ".join(
            v
            for v in (_get(run, "redisVersion"), _paren(run.get("redisProvisioner")))
            if v and v != DASH
        )
        or DASH
    )
    rows = [
        ("Run id", _get(run, "runId")),
        ("Mode", _get(run, "mode")),
        ("Started", _get(run, "startedAt")),
        ("Finished", _get(run, "finishedAt")),
        ("Command", " && ".join(run_commands(run)) or DASH),
        ("Git commit", commit),
        ("Python", _get(run, "python")),
        ("Platform", _get(run, "platform")),
        ("CPU", cpu),
        ("Redis", redis),
    ]
    for name in ("mcp-bridge", "celery", "kombu", "redis"):
        rows.append((f"{name} version", str(versions.get(name) or DASH)))
    rows += [
        (f"{k} version", str(v))
        for k, v in versions.items()
        if k not in ("mcp-bridge", "celery", "kombu", "redis")
    ]
    return rows


def run_commands(run: dict[str, Any]) -> list[str]:
    """Every pass's command, in the order the passes ran."""
    passes = run.get("passes")
    if not isinstance(passes, list):
        return []
    return [str(p["command"]) for p in passes if isinstance(p, dict) and p.get("command")]


def _paren(value: Any) -> str:
    return f"(via {value})" if value else ""


def epoch(timestamp: Any) -> int | None:
    """ISO 8601 → UNIX seconds (None when absent/unparseable)."""
    if not isinstance(timestamp, str) or not timestamp:
        return None
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def release_date(run: dict[str, Any]) -> str:
    """The date of the qualification run (stable across re-runs), else today (UTC)."""
    stamp = epoch(run.get("finishedAt")) or epoch(run.get("startedAt"))
    moment = datetime.fromtimestamp(stamp, UTC) if stamp else datetime.now(UTC)
    return moment.strftime("%Y-%m-%d")
