"""What a benchmark run is asked to do (`BenchmarkOptions`), and the refusal of bad options."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mcp_bridge.benchmarking.errors import BenchmarkError
from mcp_bridge.benchmarking.inline_worker import INLINE_POLLING_INTERVAL
from mcp_bridge.benchmarking.scenarios import (
    DEFAULT_CPU_SIZE,
    DEFAULT_SLEEP_MS,
    Scenario,
    ScenarioParams,
    get_scenario,
)


@dataclass
class BenchmarkOptions:
    scenario: str = "smoke"
    iterations: int = 5
    concurrency: int = 4
    jobs_per_iteration: int | None = None  # None: the scenario's default
    job_backend: Literal["inline", "celery"] | None = None  # None: from the environment / API
    celery_inline_worker: bool = False
    celery_inline_worker_concurrency: int = 4
    celery_polling_interval: float | None = INLINE_POLLING_INTERVAL  # None: kombu's default
    transport: Literal["asgi", "http"] = "asgi"
    base_url: str | None = None
    token: str | None = None
    label: str | None = None
    warmup: int = 0
    sleep_ms: int = DEFAULT_SLEEP_MS
    cpu_size: int = DEFAULT_CPU_SIZE
    wait_seconds: float = 30.0  # long-poll length of one job status request (`wait=`)
    job_timeout: float = 120.0  # an iteration's jobs must all be terminal by then
    request_timeout: float = 30.0
    verbose: bool = False  # keep library INFO logs (httpx, celery) of the in-process bridge
    environment_overrides: dict[str, Any] = field(default_factory=dict)  # extra Settings fields

    def check(self) -> None:
        """Refuse contradictory or out-of-range options with one line."""
        get_scenario_or_fail(self.scenario)
        for name in ("iterations", "concurrency", "celery_inline_worker_concurrency"):
            if getattr(self, name) < 1:
                raise BenchmarkError(f"{_flag(name)} must be at least 1")
        if self.jobs_per_iteration is not None and self.jobs_per_iteration < 1:
            raise BenchmarkError("--jobs-per-iteration must be at least 1")
        if self.warmup < 0:
            raise BenchmarkError("--warmup must not be negative")
        if self.sleep_ms < 0 or self.cpu_size < 1:
            raise BenchmarkError("--sleep-ms must be >= 0 and --cpu-size >= 1")
        if self.transport not in ("asgi", "http"):
            raise BenchmarkError(f"unknown transport {self.transport!r} (asgi or http)")
        if self.job_backend not in (None, "inline", "celery"):
            raise BenchmarkError(f"unknown job backend {self.job_backend!r} (inline or celery)")
        if self.transport == "http" and not self.base_url:
            raise BenchmarkError("--transport http needs --base-url (the running API)")
        if self.transport == "asgi" and self.base_url:
            raise BenchmarkError("--base-url only applies to --transport http")
        if self.celery_inline_worker:
            if self.transport != "asgi":
                raise BenchmarkError(
                    "--celery-inline-worker runs in-process: it needs --transport asgi"
                )
            if self.job_backend == "inline":
                raise BenchmarkError("--celery-inline-worker needs --job-backend celery")
        if self.wait_seconds <= 0 or self.job_timeout <= 0 or self.request_timeout <= 0:
            raise BenchmarkError("timeouts must be positive")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def get_scenario_or_fail(name: str) -> Scenario:
    try:
        return get_scenario(name)
    except ValueError as error:
        raise BenchmarkError(str(error)) from None


def scenario_params(options: BenchmarkOptions, **changes: Any) -> ScenarioParams:
    """The scenario knobs the options give, with `changes` applied."""
    return replace(ScenarioParams(sleep_ms=options.sleep_ms, cpu_size=options.cpu_size), **changes)
