"""cProfile of the in-process run, every thread included (API loop, job threads, Celery pool).

cProfile only sees the thread that enabled it, so each thread started while profiling enables
its own profiler on its first event (via `threading.setprofile`); the stats are merged at the end.
Threads already running when profiling starts are not seen: start it before building the app.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import threading
from pathlib import Path
from typing import Any


class ThreadProfiler:
    def __init__(self) -> None:
        self._main = cProfile.Profile()
        self._threads: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        self._active = False
        self.stats: pstats.Stats | None = None

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        if not self._active:
            return
        profile = cProfile.Profile()
        with self._lock:
            self._threads.append(profile)
        profile.enable()

    def start(self) -> None:
        self._active = True
        threading.setprofile(self._hook)
        self._main.enable()

    def stop(self) -> pstats.Stats:
        self._main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
        self._active = False
        stats = pstats.Stats(self._main)
        with self._lock:
            profiles = list(self._threads)
        for profile in profiles:
            profile.create_stats()  # disables this thread's profiler (already off) and snapshots
            if profile.stats:  # type: ignore[attr-defined]
                stats.add(profile)
        self.stats = stats
        return stats

    @property
    def threads(self) -> int:
        return len(self._threads) + 1

    def __enter__(self) -> ThreadProfiler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def top(stats: pstats.Stats, n: int, sort: str = "cumulative") -> str:
    """The n heaviest functions as pstats prints them."""
    buffer = io.StringIO()
    stats.stream = buffer  # type: ignore[attr-defined]
    stats.sort_stats(sort).print_stats(n)
    return buffer.getvalue()


def save(stats: pstats.Stats, stats_path: Path, top_path: Path, n: int, header: str) -> str:
    """Write the binary stats (for `python -m pstats` / snakeviz) and the top-n text (cumulative,
    then own time); return the cumulative part."""
    stats.dump_stats(str(stats_path))
    text = f"{header}\n\n{top(stats, n)}"
    own = top(stats, n, sort="tottime")
    top_path.write_text(f"{text}\nBy own time (tottime):\n{own}", encoding="utf-8")
    return text
