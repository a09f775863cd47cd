"""Benchmark harness: `python -m mcp_bridge.benchmarking --help`.

Runs a scenario's jobs through the bridge API (in-process over ASGI, or against a running API
over HTTP), with the inline or the Celery job backend, and writes a JSON artefact.
"""

from __future__ import annotations

from mcp_bridge.benchmarking.artefact import (
    ARTEFACT_JSON_SCHEMA,
    load_artefact,
    redact_url,
    write_artefact,
)
from mcp_bridge.benchmarking.errors import BenchmarkError
from mcp_bridge.benchmarking.runner import (
    BenchmarkOptions,
    run_benchmark,
    run_benchmark_async,
    summary_line,
)

__all__ = [
    "ARTEFACT_JSON_SCHEMA",
    "BenchmarkError",
    "BenchmarkOptions",
    "load_artefact",
    "redact_url",
    "run_benchmark",
    "run_benchmark_async",
    "summary_line",
    "write_artefact",
]
