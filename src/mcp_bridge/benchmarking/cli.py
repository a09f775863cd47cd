"""Command line: `python -m mcp_bridge.benchmarking --scenario smoke --iterations 5 ...`.

Errors end with one line on stderr and a non-zero exit (2 for bad flags, 1 for a failed run,
130 when interrupted); the artefact path and a summary line go to stdout.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn

PROG = "python -m mcp_bridge.benchmarking"
ERROR_PREFIX = "benchmark: error: "


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag ends with one line instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{ERROR_PREFIX}{message} (see --help)\n")


def _whole(minimum: int, bound: str) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum` (`bound` says so in errors)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{bound}, got {value}")
        return value

    return parse


positive = _whole(1, "must be at least 1")
non_negative = _whole(0, "must not be negative")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _polling(text: str) -> float | None:
    if text.lower() in ("kombu", "default"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds or 'kombu', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from mcp_bridge.benchmarking.inline_worker import INLINE_POLLING_INTERVAL
    from mcp_bridge.benchmarking.scenarios import DEFAULT_CPU_SIZE, DEFAULT_SLEEP_MS, SCENARIOS

    parser = Parser(
        prog=PROG,
        description="Benchmark the MCP bridge job API and write a JSON artefact.",
        epilog="Scenarios: "
        + "; ".join(
            f"{s.name} = {s.description} ({s.default_jobs} jobs)" for s in SCENARIOS.values()
        ),
    )
    run = parser.add_argument_group("workload")
    run.add_argument("--scenario", choices=sorted(SCENARIOS), default="smoke")
    run.add_argument(
        "--iterations", metavar="N", type=positive, default=5, help="measured iterations"
    )
    run.add_argument(
        "--warmup", metavar="N", type=non_negative, default=0, help="unmeasured iterations first"
    )
    run.add_argument(
        "--concurrency",
        metavar="N",
        type=positive,
        default=4,
        help="API requests in flight (default 4)",
    )
    run.add_argument(
        "--jobs-per-iteration",
        metavar="N",
        type=positive,
        default=None,
        help="jobs per iteration (default: the scenario's)",
    )
    run.add_argument(
        "--sleep-ms",
        metavar="N",
        type=non_negative,
        default=DEFAULT_SLEEP_MS,
        help=f"sleep scenario: milliseconds per job (default {DEFAULT_SLEEP_MS})",
    )
    run.add_argument(
        "--cpu-size",
        metavar="N",
        type=positive,
        default=DEFAULT_CPU_SIZE,
        help=f"cpu scenario: SHA-256 rounds per job (default {DEFAULT_CPU_SIZE})",
    )
    run.add_argument(
        "--job-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=120.0,
        help="seconds an iteration's jobs may take to finish (default 120)",
    )

    backend = parser.add_argument_group("job backend")
    backend.add_argument(
        "--job-backend",
        choices=("inline", "celery"),
        default=None,
        help="asgi: the in-process bridge's backend (default: JOB_BACKEND or inline); "
        "http: must match the API's",
    )
    backend.add_argument(
        "--celery-inline-worker",
        action="store_true",
        help="asgi + celery: run a Celery worker (threads pool) in this process over memory://",
    )
    backend.add_argument(
        "--celery-inline-worker-concurrency",
        metavar="N",
        type=positive,
        default=4,
        help="threads of the inline worker (default 4)",
    )
    backend.add_argument(
        "--celery-polling-interval",
        type=_polling,
        default=INLINE_POLLING_INTERVAL,
        metavar="SECONDS|kombu",
        help="inline worker: kombu memory-transport poll sleep "
        f"(default {INLINE_POLLING_INTERVAL:g}; 'kombu' keeps kombu's 1 s)",
    )

    target = parser.add_argument_group("target")
    target.add_argument(
        "--transport",
        choices=("asgi", "http"),
        default="asgi",
        help="asgi: the bridge in this process (default); http: a running API at --base-url",
    )
    target.add_argument(
        "--base-url", default=None, metavar="URL", help="http: the API, e.g. http://localhost:8000"
    )
    target.add_argument(
        "--token",
        default=None,
        help="bearer token (asgi: minted; http: minted from AUTH_SECRET/AUTH_DEV_SECRET if unset)",
    )

    out = parser.add_argument_group("output")
    out.add_argument(
        "--output-dir",
        type=Path,
        default=Path("var/benchmarks"),
        metavar="DIR",
        help="where <UTC timestamp>-<scenario>.json goes (default var/benchmarks)",
    )
    out.add_argument("--label", default=None, metavar="TEXT", help="stored in the artefact")
    out.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the in-process run (all threads); saved next to the artefact",
    )
    out.add_argument(
        "--profile-top",
        metavar="N",
        type=positive,
        default=25,
        help="functions to print, by cumulative time (default 25)",
    )
    out.add_argument(
        "--verbose", action="store_true", help="keep the in-process bridge's library logs"
    )
    out.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _fail(message: str, code: int = 1) -> int:
    line = " ".join(str(message).split()) or "failed"
    print(f"{ERROR_PREFIX}{line}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded(lambda: _run(args), args.debug)


def run_guarded(run: Callable[[], int], debug: bool = False) -> int:
    """Run a CLI's body: a failure ends with one line and a non-zero exit (a traceback only
    with `debug`)."""
    try:
        return run()
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except SystemExit as stop:  # e.g. the bridge's ConfigError: one line already
        if isinstance(stop.code, str):
            return _fail(stop.code)
        raise
    except Exception as error:
        if debug:
            raise
        from mcp_bridge.benchmarking.errors import BenchmarkError

        if isinstance(error, BenchmarkError):
            return _fail(str(error))
        return _fail(f"{type(error).__name__}: {error} (rerun with --debug for a traceback)")


def _run(args: argparse.Namespace) -> int:
    from mcp_bridge.benchmarking import profiling
    from mcp_bridge.benchmarking.artefact import artefact_path, write_artefact
    from mcp_bridge.benchmarking.progress import ProgressBar, wanted
    from mcp_bridge.benchmarking.runner import BenchmarkOptions, run_benchmark, summary_line

    options = BenchmarkOptions(
        scenario=args.scenario,
        iterations=args.iterations,
        concurrency=args.concurrency,
        jobs_per_iteration=args.jobs_per_iteration,
        job_backend=args.job_backend,
        celery_inline_worker=args.celery_inline_worker,
        celery_inline_worker_concurrency=args.celery_inline_worker_concurrency,
        celery_polling_interval=args.celery_polling_interval,
        transport=args.transport,
        base_url=args.base_url,
        token=args.token,
        label=args.label,
        warmup=args.warmup,
        sleep_ms=args.sleep_ms,
        cpu_size=args.cpu_size,
        job_timeout=args.job_timeout,
        verbose=args.verbose,
    )
    options.check()
    # Before the bridge's own basicConfig(INFO): its start-up chatter would bury the summary.
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    output_dir: Path = args.output_dir
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return _fail(f"cannot create --output-dir {output_dir}: {error.strerror or error}")
    if not os.access(output_dir, os.W_OK):
        return _fail(f"--output-dir {output_dir} is not writable")

    bar = ProgressBar(label=args.scenario) if wanted() else None
    profiler = profiling.ThreadProfiler() if args.profile else None
    try:
        artefact = run_benchmark(options, progress=bar, profiler=profiler)
    finally:
        if bar is not None:
            bar.close()

    path = artefact_path(output_dir, datetime.fromisoformat(artefact["startedAt"]), args.scenario)
    if profiler is not None and profiler.stats is not None:
        stats_path = path.with_suffix(".prof")
        top_path = path.with_suffix(".profile.txt")
        artefact["profile"] = {
            "stats": stats_path.name,
            "top": top_path.name,
            "topN": args.profile_top,
        }
        header = (
            f"cProfile of {PROG} --scenario {args.scenario} ({profiler.threads} threads merged; "
            f"cumulative time sums over threads, so idle pool threads count their waits)"
        )
        text = profiling.save(profiler.stats, stats_path, top_path, args.profile_top, header)
        print(text)
        print(f"profile: {stats_path} (python -m pstats {stats_path}), top: {top_path}")
    written = write_artefact(artefact, output_dir, filename=path.name)
    print(f"artefact: {written}")
    print(summary_line(artefact))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
