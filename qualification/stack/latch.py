"""The check's end of the bridge's built-in `latch` tool: a job holds until the check releases it.

The tool appends `{"jobId", "pid"}` to `<dir>/<name>.held` when it starts holding and returns once
`<dir>/<name>` exists, where `<dir>` is `mcp-bridge-latches` in the bridge process's temporary
directory (the stack sets `TMPDIR`). A fault injected between `wait_held` and `release` lands
mid-job with certainty, whatever the machine's speed.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from .process import wait_until

DIR_NAME = "mcp-bridge-latches"
#: The tool's own bound: beyond every deadline of a check, so a check's deadline speaks first.
BOUND_MS = 300_000


class Latch:
    def __init__(self, tmpdir: Path) -> None:
        self.directory = tmpdir / DIR_NAME
        self.name = f"latch-{secrets.token_hex(6)}"

    def arguments(self) -> dict[str, Any]:
        """The `latch` tool's arguments."""
        return {"name": self.name, "ms": BOUND_MS}

    def holders(self) -> list[dict[str, Any]]:
        """Every hold so far, oldest first: `{"jobId", "pid"}` of the process running the tool."""
        path = self.directory / f"{self.name}.held"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]

    def wait_held(self, job_id: str, timeout: float, holds: int = 1) -> dict[str, Any]:
        """Wait until the job's `holds`-th attempt is inside the tool; returns that hold."""

        def held() -> dict[str, Any] | None:
            mine = [hold for hold in self.holders() if hold["jobId"] == job_id]
            return mine[holds - 1] if len(mine) >= holds else None

        return wait_until(held, timeout, what=f"job {job_id} to hold on {self.name} ({holds})")

    @property
    def released(self) -> bool:
        return (self.directory / self.name).exists()

    def release(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / self.name).touch()
