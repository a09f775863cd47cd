"""Drive a benchmark: submit each iteration's jobs through the API, wait for them, measure.

Programmatic use (e.g. a qualification check against an API that is already running)::

    from mcp_bridge.benchmarking import BenchmarkOptions, run_benchmark, write_artefact

    artefact = run_benchmark(
        BenchmarkOptions(scenario="smoke", transport="http", base_url=url, token=token)
    )
    write_artefact(artefact, "var/benchmarks")
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from mcp_bridge.benchmarking import stats
from mcp_bridge.benchmarking.artefact import iso, redact_url, validate
from mcp_bridge.benchmarking.environment import environment
from mcp_bridge.benchmarking.errors import BenchmarkError
from mcp_bridge.benchmarking.inline_worker import INLINE_POLLING_INTERVAL
from mcp_bridge.benchmarking.scenarios import (
    DEFAULT_CPU_SIZE,
    DEFAULT_SLEEP_MS,
    JobSpec,
    Scenario,
    ScenarioParams,
    get_scenario,
    offers_demo,
)

if TYPE_CHECKING:
    from mcp_bridge.config import Settings

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ASGI_BASE_URL = "http://mcp-bridge.asgi"
BENCH_SUBJECT = "bench"
QUIET_LOGGERS = ("httpx", "httpcore", "celery", "kombu", "amqp")

Progress = Callable[[int, int], None]
"""Called with (jobs finished so far, jobs in the whole run) as jobs reach a terminal state."""


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
    wait_seconds: float = 30.0  # long-poll length of one GET /v1/jobs/{id}?wait=
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


@dataclass
class Target:
    """Where requests go, and what the run is measuring."""

    client: httpx.AsyncClient
    config: dict[str, Any]
    base_url: str
    parameters: dict[str, Any]


# -- settings and config -----------------------------------------------------------------------


def _env_has(name: str) -> bool:
    return any(key.upper() == name for key in os.environ)


def _load_settings(**overrides: Any) -> Settings:
    from mcp_bridge.config import ConfigError, load_settings

    try:
        return load_settings(**overrides)
    except ConfigError as error:
        raise BenchmarkError(str(error)) from None


def in_process_settings(options: BenchmarkOptions, registry_dir: Path | None) -> Settings:
    """The Settings the in-process bridge runs with (environment + what the options imply)."""
    overrides: dict[str, Any] = dict(options.environment_overrides)
    if options.celery_inline_worker:
        overrides.update(
            job_backend="celery",
            celery_broker_url="memory://",
            celery_result_backend="cache+memory://",
        )
    elif options.job_backend is not None:
        overrides["job_backend"] = options.job_backend
    if registry_dir is not None:
        overrides["job_registry_path"] = registry_dir / "registry.db"
    if not (_env_has("AUTH_SECRET") or _env_has("AUTH_DEV_SECRET")):
        # A throw-away secret for this process's tokens (AUTH_SECRET: valid in production too).
        overrides.setdefault("auth_secret", secrets.token_urlsafe(48))
    return _load_settings(**overrides)


def local_settings() -> Settings:
    """Settings as this environment resolves them (for an external API's config block)."""
    overrides: dict[str, Any] = {}
    if not (_env_has("AUTH_SECRET") or _env_has("AUTH_DEV_SECRET")):
        overrides["auth_secret"] = secrets.token_urlsafe(48)  # not used: only Celery fields are
    return _load_settings(**overrides)


def config_block(
    job_backend: str, settings: Settings, inline_worker: bool, inline_concurrency: int
) -> dict[str, Any]:
    """The checklist's `config` block, broker and result URLs redacted."""
    return {
        "jobBackend": job_backend,
        "celery": {
            "brokerUrl": redact_url(settings.celery_broker_url),
            "resultBackend": redact_url(settings.celery_result_backend),
            "taskAlwaysEager": bool(settings.celery_task_always_eager),
            "taskEagerPropagates": bool(settings.celery_task_eager_propagates),
            "inlineWorker": {
                "enabled": inline_worker,
                "concurrency": inline_concurrency if inline_worker else None,
            },
        },
    }


@contextmanager
def _quiet_logs(verbose: bool) -> Iterator[None]:
    """Library INFO chatter (a line per request/task) off for the run; levels restored after."""
    if verbose:
        yield
        return
    levels = {name: logging.WARNING for name in QUIET_LOGGERS}
    # memory:// has no host: kombu warns "No hostname was supplied" on every connection.
    levels["kombu.connection"] = logging.ERROR
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


# -- targets -----------------------------------------------------------------------------------


@asynccontextmanager
async def _asgi_target(options: BenchmarkOptions) -> AsyncIterator[Target]:
    from mcp_bridge.app import create_app
    from mcp_bridge.benchmarking.asgi import Lifespan
    from mcp_bridge.benchmarking.inline_worker import InlineWorker
    from mcp_bridge.config import ConfigError
    from mcp_bridge.security.tokens import mint

    with (
        tempfile.TemporaryDirectory(prefix="mcp-bridge-bench-") as tmp,
        _quiet_logs(options.verbose),
    ):
        settings = in_process_settings(options, None)
        # A throw-away registry, unless the user named one or external workers must share it.
        own_registry = not _env_has("JOB_REGISTRY_PATH") and (
            options.celery_inline_worker or settings.job_backend == "inline"
        )
        if own_registry:
            settings = in_process_settings(options, Path(tmp))
        try:
            app = create_app(settings)
        except ConfigError as error:
            raise BenchmarkError(str(error)) from None
        token = options.token or mint(BENCH_SUBJECT, ["operator"], settings.signing_secret)
        location = settings.job_registry_url or str(settings.job_registry_path)
        parameters: dict[str, Any] = {
            "registry": "temporary" if own_registry else redact_url(location),
            "registryKind": registry_kind(location),
        }
        if settings.job_backend == "inline":
            parameters["inlineBackendConcurrency"] = settings.inline_concurrency
        async with Lifespan(app):
            worker = None
            if options.celery_inline_worker:
                parameters["celeryPollingInterval"] = options.celery_polling_interval
                worker = InlineWorker(
                    app.state.backend.app,
                    options.celery_inline_worker_concurrency,
                    polling_interval=options.celery_polling_interval,
                    loglevel="INFO" if options.verbose else "WARNING",
                )
                await asyncio.to_thread(worker.start)
            try:
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url=ASGI_BASE_URL,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=options.request_timeout,
                ) as client:
                    yield Target(
                        client,
                        config_block(
                            settings.job_backend,
                            settings,
                            options.celery_inline_worker,
                            options.celery_inline_worker_concurrency,
                        ),
                        ASGI_BASE_URL,
                        parameters,
                    )
            finally:
                if worker is not None:
                    await asyncio.to_thread(worker.stop)


@asynccontextmanager
async def _http_target(options: BenchmarkOptions) -> AsyncIterator[Target]:
    assert options.base_url is not None
    base_url = options.base_url.rstrip("/")
    limits = httpx.Limits(
        max_connections=max(options.concurrency, 1) + 2,
        max_keepalive_connections=max(options.concurrency, 1) + 2,
    )
    with _quiet_logs(options.verbose):
        async with httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(options.request_timeout, connect=5.0),
            limits=limits,
        ) as client:
            readiness = await _readiness(client, base_url)  # reachable at all? (no token yet)
            server_backend = readiness.get("jobBackend")
            if server_backend not in ("inline", "celery"):
                raise BenchmarkError(
                    f"the API at {base_url} did not name its job backend on /readyz"
                )
            if options.job_backend is not None and options.job_backend != server_backend:
                raise BenchmarkError(
                    f"--job-backend {options.job_backend}, but the API at {base_url} runs the "
                    f"{server_backend} backend"
                )
            token = options.token
            if token is None:
                if not (_env_has("AUTH_SECRET") or _env_has("AUTH_DEV_SECRET")):
                    raise BenchmarkError(
                        "--transport http needs --token (or AUTH_SECRET/AUTH_DEV_SECRET to "
                        "mint one)"
                    )
                from mcp_bridge.security.tokens import mint

                token = mint(BENCH_SUBJECT, ["operator"], _load_settings().signing_secret)
            client.headers["Authorization"] = f"Bearer {token}"
            yield Target(
                client,
                config_block(
                    server_backend,
                    local_settings(),
                    False,
                    options.celery_inline_worker_concurrency,
                ),
                base_url,
                {"celerySettingsFrom": "local environment", **_served_registry(readiness)},
            )


def _open_target(options: BenchmarkOptions) -> AbstractAsyncContextManager[Target]:
    return _asgi_target(options) if options.transport == "asgi" else _http_target(options)


# -- HTTP helpers ------------------------------------------------------------------------------


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = body.get("detail") or body.get("title")
        if text:
            return f"{response.status_code} {text}"
    snippet = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return f"{response.status_code} {response.reason_phrase}" + (f": {snippet}" if snippet else "")


def _where(base_url: str) -> str:
    return "the in-process API" if base_url == ASGI_BASE_URL else f"the API at {base_url}"


def _reason(error: BaseException) -> str:
    """The most specific line in the exception chain (e.g. "Connection refused")."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            if isinstance(seen.errno, int) and seen.errno > 0:  # not getaddrinfo's negatives
                return os.strerror(seen.errno)
            return str(seen.strerror)
        seen = seen.__cause__ or seen.__context__
    return str(error) or type(error).__name__


def _unreachable(base_url: str, error: httpx.HTTPError) -> BenchmarkError:
    return BenchmarkError(f"cannot reach {_where(base_url)}: {_reason(error)}")


async def _readiness(client: httpx.AsyncClient, base_url: str) -> dict[str, Any]:
    try:
        response = await client.get("/readyz")
    except httpx.HTTPError as error:
        raise _unreachable(base_url, error) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BenchmarkError(
            f"GET {base_url}/readyz answered {_problem(response)}: not the bridge?"
        )
    if response.status_code != 200:
        failing = [
            f"{name}: {check.get('detail')}"
            for name, check in (body.get("checks") or {}).items()
            if isinstance(check, dict) and not check.get("ok")
        ]
        raise BenchmarkError(
            f"{_where(base_url)} is not ready ({'; '.join(failing) or response.status_code})"
        )
    return body


def registry_kind(location: str) -> str:
    """`postgresql` for a database URL, else `sqlite` (a file path)."""
    return "postgresql" if location.startswith(("postgresql://", "postgres://")) else "sqlite"


def _served_registry(readiness: dict[str, Any]) -> dict[str, Any]:
    """The registry an API reports in /readyz (`writable: <location>`), URL redacted."""
    detail = ((readiness.get("checks") or {}).get("registry") or {}).get("detail")
    if not isinstance(detail, str) or not detail.startswith("writable: "):
        return {"registryKind": "unknown"}
    location = detail.removeprefix("writable: ")
    return {"registry": redact_url(location), "registryKind": registry_kind(location)}


async def _preflight(target: Target) -> set[str]:
    """Readiness and token, before anything is measured; returns the names of the API's tools."""
    await _readiness(target.client, target.base_url)
    try:
        response = await target.client.get("/v1/tools")
    except httpx.HTTPError as error:
        raise _unreachable(target.base_url, error) from None
    if response.status_code in (401, 403):
        raise BenchmarkError(f"the API refused the token: {_problem(response)}")
    if response.status_code != 200:
        raise BenchmarkError(f"GET /v1/tools answered {_problem(response)}")
    return {tool.get("name") for tool in response.json().get("items", [])}


def _batch(
    scenario: Scenario, jobs: int, options: BenchmarkOptions, offered: set[str]
) -> list[JobSpec]:
    """The jobs of one iteration, for the tools the API offers; fails naming any it lacks."""
    params = _params(options, mcp=offers_demo(offered))
    specs = scenario.batch(jobs, params)
    missing = sorted({spec.tool for spec in specs} - offered)
    if missing:
        raise BenchmarkError(f"the API has no tool(s) {', '.join(missing)}")
    return specs


def _params(options: BenchmarkOptions, **changes: Any) -> ScenarioParams:
    """The scenario knobs the options give, with `changes` applied."""
    return replace(ScenarioParams(sleep_ms=options.sleep_ms, cpu_size=options.cpu_size), **changes)


async def _submit(target: Target, spec: JobSpec) -> dict[str, Any]:
    try:
        response = await target.client.post("/v1/jobs", json=spec.body())
    except httpx.HTTPError as error:
        raise BenchmarkError(
            f"POST /v1/jobs failed: {str(error) or type(error).__name__}"
        ) from None
    if response.status_code not in (200, 202):
        raise BenchmarkError(f"POST /v1/jobs ({spec.tool}) answered {_problem(response)}")
    return response.json()


async def _await_terminal(
    target: Target, job: dict[str, Any], deadline: float, options: BenchmarkOptions
) -> dict[str, Any]:
    """Long-poll GET /v1/jobs/{id}?wait= until the job is terminal or the deadline passes."""
    while job.get("status") not in TERMINAL:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BenchmarkError(
                f"job {job['id']} ({job['tool']}) still {job['status']} after "
                f"{options.job_timeout:g} s: is a worker consuming its queue?"
            )
        wait = min(options.wait_seconds, remaining)
        try:
            response = await target.client.get(
                f"/v1/jobs/{job['id']}",
                params={"wait": f"{wait:.3f}"},
                timeout=wait + options.request_timeout,
            )
        except httpx.HTTPError as error:
            raise BenchmarkError(
                f"GET /v1/jobs/{job['id']} failed: {str(error) or type(error).__name__}"
            ) from None
        if response.status_code != 200:
            raise BenchmarkError(f"GET /v1/jobs/{job['id']} answered {_problem(response)}")
        job = response.json()
    return job


async def _all(coroutines: list[Coroutine[Any, Any, None]]) -> None:
    """Run together; the first failure cancels the rest and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except BaseExceptionGroup as group_error:
        first: BaseException = group_error
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


# -- iterations --------------------------------------------------------------------------------


@dataclass
class Iteration:
    wall: float
    jobs: list[dict[str, Any]]


async def run_iteration(
    target: Target,
    specs: list[JobSpec],
    options: BenchmarkOptions,
    on_done: Callable[[], None] | None = None,
) -> Iteration:
    """Submit the batch (`concurrency` POSTs in flight), then long-poll every job to a terminal
    state (`concurrency` GETs in flight); the wall time covers both."""
    submitted: list[dict[str, Any] | None] = [None] * len(specs)
    finished: list[dict[str, Any] | None] = [None] * len(specs)
    lanes = min(options.concurrency, len(specs))
    started = time.perf_counter()
    deadline = time.monotonic() + options.job_timeout
    to_submit = iter(enumerate(specs))

    async def submitter() -> None:
        for index, spec in to_submit:
            submitted[index] = await _submit(target, spec)

    await _all([submitter() for _ in range(lanes)])
    to_wait = iter(enumerate(submitted))

    async def waiter() -> None:
        for index, job in to_wait:
            assert job is not None
            finished[index] = await _await_terminal(target, job, deadline, options)
            if on_done is not None:
                on_done()

    await _all([waiter() for _ in range(lanes)])
    wall = time.perf_counter() - started
    return Iteration(wall, [job for job in finished if job is not None])


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value).timestamp()


def job_figures(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Queue wait (startedAt - createdAt) and runtime (finishedAt - startedAt), in seconds."""
    waits: list[float] = []
    runtimes: list[float] = []
    for job in jobs:
        created, started, ended = (
            _seconds(job.get(key)) for key in ("createdAt", "startedAt", "finishedAt")
        )
        if created is not None and started is not None:
            waits.append(max(started - created, 0.0))
        if started is not None and ended is not None:
            runtimes.append(max(ended - started, 0.0))
    return {
        "queueWait": stats.brief(waits),
        "runtime": stats.brief(runtimes),
        "statuses": dict(Counter(str(job.get("status")) for job in jobs)),
        "tools": dict(Counter(str(job.get("tool")) for job in jobs)),
    }


def _failure_line(jobs: list[dict[str, Any]]) -> str | None:
    bad = [job for job in jobs if job.get("status") != "succeeded"]
    if not bad:
        return None
    first = bad[0]
    more = f" ({len(bad) - 1} more did not succeed)" if len(bad) > 1 else ""
    error = f": {first.get('error')}" if first.get("error") else ""
    return f"job {first.get('id')} ({first.get('tool')}) {first.get('status')}{error}{more}"


def _scenario_parameters(scenario: Scenario, options: BenchmarkOptions) -> dict[str, Any]:
    """The knobs the scenario actually reads (probed: smoke's job mix, for one, is fixed)."""
    base = _params(options)
    probes = {
        "sleepMs": (options.sleep_ms, _params(options, sleep_ms=options.sleep_ms + 1)),
        "cpuSize": (options.cpu_size, _params(options, cpu_size=options.cpu_size + 1)),
    }
    reads = {}
    for key, (value, changed) in probes.items():
        if any(scenario.make(i, base) != scenario.make(i, changed) for i in range(3)):
            reads[key] = value
    return reads


# -- the run -----------------------------------------------------------------------------------


async def run_benchmark_async(
    options: BenchmarkOptions,
    progress: Progress | None = None,
    profiler: Any | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return the validated artefact (not written; see write_artefact).

    `profiler` (e.g. profiling.ThreadProfiler) is started before the in-process bridge is built
    and stopped after it shut down. Raises BenchmarkError with a one-line reason on failure.
    """
    options.check()
    scenario = get_scenario_or_fail(options.scenario)
    jobs_per_iteration = options.jobs_per_iteration or scenario.default_jobs
    total = (options.warmup + options.iterations) * jobs_per_iteration
    done = 0

    def on_done() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    started_at = datetime.now(UTC)
    runs: list[dict[str, Any]] = []
    measured_jobs: list[dict[str, Any]] = []
    if profiler is not None:
        profiler.start()
    try:
        async with _open_target(options) as target:
            specs = _batch(scenario, jobs_per_iteration, options, await _preflight(target))
            for round_ in range(options.warmup + options.iterations):
                result = await run_iteration(target, specs, options, on_done)
                failure = _failure_line(result.jobs)
                if failure and scenario.expects_success:
                    raise BenchmarkError(failure)
                if round_ < options.warmup:
                    continue
                succeeded = sum(job.get("status") == "succeeded" for job in result.jobs)
                runs.append(
                    {
                        "iteration": len(runs) + 1,
                        "wallSeconds": result.wall,
                        "jobs": len(result.jobs),
                        "succeeded": succeeded,
                        "failed": len(result.jobs) - succeeded,
                    }
                )
                measured_jobs.extend(result.jobs)
            config, base_url, parameters = target.config, target.base_url, target.parameters
    finally:
        if profiler is not None:
            profiler.stop()
    finished_at = datetime.now(UTC)
    artefact = {
        "label": options.label,
        "scenario": scenario.name,
        "scenarioDescription": scenario.description,
        "transport": options.transport,
        "baseUrl": base_url if options.transport == "http" else None,
        "iterations": options.iterations,
        "warmup": options.warmup,
        "concurrency": options.concurrency,
        "jobsPerIteration": len(specs),
        "parameters": {
            **_scenario_parameters(scenario, options),
            "waitSeconds": options.wait_seconds,
            "jobTimeout": options.job_timeout,
            **parameters,
        },
        "config": config,
        "summary": stats.summarize_runs(
            [run["wallSeconds"] for run in runs], [run["jobs"] for run in runs]
        ),
        "jobs": job_figures(measured_jobs),
        "runs": runs,
        "environment": environment(),
        "startedAt": iso(started_at),
        "finishedAt": iso(finished_at),
    }
    return validate(artefact)


def run_benchmark(
    options: BenchmarkOptions,
    progress: Progress | None = None,
    profiler: Any | None = None,
) -> dict[str, Any]:
    """Synchronous `run_benchmark_async` (runs its own event loop)."""
    return asyncio.run(run_benchmark_async(options, progress, profiler))


def summary_line(artefact: dict[str, Any]) -> str:
    """One human line: what ran and the headline numbers."""
    summary, config = artefact["summary"], artefact["config"]
    backend = config["jobBackend"]
    worker = config["celery"]["inlineWorker"]
    if backend == "celery" and worker["enabled"]:
        backend += f" (inline worker x{worker['concurrency']})"
    label = f" [{artefact['label']}]" if artefact.get("label") else ""
    return (
        f"{artefact['scenario']}{label}: {artefact['iterations']} iterations x "
        f"{artefact['jobsPerIteration']} jobs, concurrency {artefact['concurrency']}, "
        f"{artefact['transport']}, {backend}: mean {summary['mean']:.3f} s "
        f"(p50 {summary['p50']:.3f}, p95 {summary['p95']:.3f}, min {summary['min']:.3f}, "
        f"max {summary['max']:.3f}, stdev {summary['stdev']:.3f}), "
        f"throughput {summary['throughput']:.1f} jobs/s"
    )


__all__ = [
    "BenchmarkOptions",
    "Iteration",
    "Progress",
    "Target",
    "config_block",
    "job_figures",
    "run_benchmark",
    "run_benchmark_async",
    "run_iteration",
    "summary_line",
]
