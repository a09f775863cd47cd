"""A plain progress bar on stderr, shown only on a terminal (never under CI=true)."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

WIDTH = 30


def wanted(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """`bar(done, total)` redraws at most every 50 ms (and always at the end)."""

    def __init__(self, stream: TextIO | None = None, label: str = "benchmark") -> None:
        self._stream = stream or sys.stderr
        self._label = label
        self._started: float | None = None  # the first job's end, not the bridge's start-up
        self._drawn = 0.0
        self._visible = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._started is None:
            self._started = now
        if done < total and now - self._drawn < 0.05:
            return
        self._drawn = now
        filled = WIDTH * done // total if total else WIDTH
        bar = "#" * filled + "." * (WIDTH - filled)
        self._stream.write(
            f"\r{self._label} [{bar}] {done}/{total} jobs {now - self._started:6.1f} s"
        )
        self._stream.flush()
        self._visible = True

    def close(self) -> None:
        if self._visible:
            self._stream.write("\r\033[K")
            self._stream.flush()
            self._visible = False
