"""No-op job throughput on the SQLite and the PostgreSQL registry, 1 and 4 workers, side by side
with plain Celery on the same machine and broker, in one run (interleaved rounds).

    python -m qualification.registry_table [--rounds 3] [--jobs 200] [--out DIR]

Each round runs, for each registry and worker count, one iteration of the benchmarking CLI's
`echo` scenario over HTTP against a stack of its own (API + N solo-pool workers), then plain
Celery no-op tasks with 1 and 4 workers. Throughput = jobs / wall seconds of the iteration; the
figure per cell is the median over rounds. Prints a Markdown table and writes `table.json`.

Reference-only by nature: it boots this repository's bridge on each registry itself (the SQLite
file, or a PostgreSQL database through JOB_REGISTRY_URL) and drives it with the bridge's own
benchmarking CLI; it reads no registry, only the CLI's artefacts.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import raw_celery
from .drivers.reference import ReferenceTarget
from .stack.bridge import BridgeStack
from .stack.managed import ManagedProcess
from .stack.postgres import provision as provision_postgres
from .stack.redis import provision as provision_redis

CONCURRENCY = 16
WORKERS = (1, 4)


def bench(target: ReferenceTarget, jobs: int, out: Path, label: str) -> float:
    """Wall seconds of one `echo` iteration of `jobs` jobs through the target's API."""
    command = [
        sys.executable, "-m", "mcp_bridge.benchmarking", "--scenario", "echo",
        "--iterations", "1", "--warmup", "0", "--jobs-per-iteration", str(jobs),
        "--concurrency", str(CONCURRENCY), "--transport", "http",
        "--base-url", target.nodes.api.url, "--token", target.client.token(),
        "--job-backend", "celery", "--output-dir", str(out / label), "--label", label,
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=jobs + 120, env={**os.environ, "CI": "1"}
    )
    if done.returncode != 0:
        raise RuntimeError(f"{label}: {done.stderr.strip()[-500:]}")
    artefact = max((out / label).glob("*.json"))
    return json.loads(artefact.read_text())["runs"][0]["wallSeconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="registry-table-"))
    out.mkdir(parents=True, exist_ok=True)
    walls: dict[str, list[float]] = {}
    targets: dict[tuple[str, int], ReferenceTarget] = {}
    raws: list[ManagedProcess] = []
    with provision_redis("binary", aof=False) as redis, provision_postgres("postgres") as pg:
        try:
            for kind in ("sqlite", "postgres"):
                for n in WORKERS:
                    url = pg.create_database(f"table_{n}w") if kind == "postgres" else None
                    queue = {"CELERY_QUEUE": f"table-{kind}-{n}-{secrets.token_hex(3)}"}
                    stack = BridgeStack(
                        out / f"{kind}-{n}w", redis, "celery", env=queue, registry_url=url
                    )
                    targets[kind, n] = ReferenceTarget(stack)
                    stack.start(workers=n)
            broker = redis.url_for(0)
            for n in WORKERS:
                raws += raw_celery.start_workers(broker, f"raw{n}", n, out, host="table")
            for round_no in range(args.rounds + 1):  # round 0 warms up, unmeasured
                for (kind, n), target in targets.items():
                    wall = bench(target, args.jobs, out, f"{kind}-{n}w-r{round_no}")
                    if round_no:
                        walls.setdefault(f"{kind}-{n}", []).append(wall)
                for n in WORKERS:
                    wall = raw_celery.run_round(
                        broker, f"raw{n}", args.jobs, 0, timeout=args.jobs + 60
                    )
                    if round_no:
                        walls.setdefault(f"celery-{n}", []).append(wall)
                print(f"round {round_no} done", file=sys.stderr, flush=True)
        finally:
            for part in raws:
                part.close()
            for target in targets.values():
                target.close()
    table = {key: args.jobs / statistics.median(values) for key, values in walls.items()}
    rows = []
    for kind in ("sqlite", "postgres", "celery"):
        one, four = table[f"{kind}-1"], table[f"{kind}-4"]
        rows.append({"registry": kind, "w1": one, "w4": four, "speedup": four / one})
    result = {"jobs": args.jobs, "rounds": args.rounds, "walls": walls, "rows": rows}
    (out / "table.json").write_text(json.dumps(result, indent=2))
    print("| registry | jobs/s, 1 worker | jobs/s, 4 workers | 1 → 4 speedup |")
    print("|---|---|---|---|")
    for row in rows:
        name = "plain Celery" if row["registry"] == "celery" else row["registry"]
        print(f"| {name} | {row['w1']:.1f} | {row['w4']:.1f} | {row['speedup']:.2f}× |")
    sq, pgr, raw = rows
    print(f"PostgreSQL speedup / SQLite's: {pgr['speedup'] / sq['speedup']:.3f} (goal ≥ 0.95)")
    for n, key in ((1, "w1"), (4, "w4")):
        print(f"PostgreSQL / plain Celery, {n} worker(s): {pgr[key] / raw[key]:.2f} (goal ≥ 0.8)")
    print(f"artefacts: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
