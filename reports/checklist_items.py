"""The GA checklist (docs/celery-ga-checklist.md, sections 1-5) as report items.

Each item quotes the checklist, names the catalogue check ids (qualification/contract.py) that
prove it — a parametrised check by its base id, covering every case the run expected — and/or the
generator steps (``generator``) the report itself performs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contract import CATALOGUE


def _area(prefix: str) -> tuple[str, ...]:
    """Every catalogue check of an area, e.g. ``_area("faults.")``."""
    return tuple(cid for cid in CATALOGUE if cid.startswith(prefix))


SECTIONS: dict[str, str] = {
    "1": "Runtime configuration",
    "2": "Benchmark harness with Celery backend",
    "3": "Throughput validation (1 → 4 workers)",
    "4": "Operational checklist",
    "5": "Release packaging",
}

# Generator steps (keys of the results computed in reports/generate.py).
GEN_BENCH_1W = "benchmark-1w"
GEN_BENCH_4W = "benchmark-4w"
GEN_BENCH_PAIR = "benchmark-pair"
GEN_BENCH_CONFIG = "benchmark-config"
GEN_LICENSE = "license-review"
GEN_GA_NOTE = "ga-note"
GEN_CHANGELOG = "changelog"


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    section: str
    title: str
    text: str
    checks: tuple[str, ...] = ()
    generator: tuple[str, ...] = ()
    required: bool = True
    note: str = ""


ITEMS: tuple[ChecklistItem, ...] = (
    ChecklistItem(
        "1.1",
        "1",
        "Environment variables",
        "JOB_BACKEND=celery, CELERY_BROKER_URL, CELERY_RESULT_BACKEND, JOB_REGISTRY_PATH and "
        "AUTH_DEV_SECRET configure the Celery path (and bad values fail fast).",
        checks=(
            "config.env-vars",
            "config.readyz-celery",
            "config.bad-broker-url",
            "config.bad-config",
        ),
    ),
    ChecklistItem(
        "1.2",
        "1",
        "Worker start (local helper)",
        "`make celery-worker` starts a Celery worker that answers ping.",
        checks=("config.worker-start",),
    ),
    ChecklistItem(
        "1.3",
        "1",
        "Multi-node: shared env and durable registry",
        "For multi-node deployments reuse the same environment variables and mount the durable "
        "job registry so that job metadata survives restarts.",
        checks=("registry.durable", "faults.api-restart"),
    ),
    ChecklistItem(
        "1.4",
        "1",
        "API start",
        "`uvicorn mcp_bridge.app:create_app --factory --host 0.0.0.0 --port 8000` serves the API.",
        checks=("config.api-start",),
    ),
    ChecklistItem(
        "1.5",
        "1",
        "docker-compose.celery.yml",
        "With the provided `docker-compose.celery.yml`, API and worker share the Redis broker "
        "and a persistent job registry volume.",
        required=False,
        note="Not exercised by the qualification suite (no check id); informational.",
    ),
    ChecklistItem(
        "1.6",
        "1",
        "Multi-node: workers on separate hosts",
        "API replicas and workers on separate hosts (network namespaces of their own) share "
        "only the broker and a PostgreSQL registry: every job runs once and every API sees it.",
        checks=("registry.multi-host",),
        note="Proves the checklist's multi-node sentence across real network links.",
    ),
    ChecklistItem(
        "2.1",
        "2",
        "In-process benchmark with Celery inline worker",
        "`python -m mcp_bridge.benchmarking --scenario smoke --job-backend celery "
        "--celery-inline-worker ...` (also `make benchmark-celery`) runs and writes artefacts.",
        checks=("bench.inline-worker",),
    ),
    ChecklistItem(
        "2.2",
        "2",
        "Benchmark against external API with dedicated workers",
        "A token minted with `mcp_bridge.security.simple_jwt` drives "
        "`python -m mcp_bridge.benchmarking --transport http --job-backend celery ...`.",
        checks=("config.token-command", "bench.http"),
    ),
    ChecklistItem(
        "2.3",
        "2",
        "Artefacts record the resolved backend and Celery settings",
        "Each benchmark artefact's `config` block records `jobBackend` and the Celery settings "
        "(`brokerUrl`, `resultBackend`, eager flags, inline worker).",
        generator=(GEN_BENCH_CONFIG,),
    ),
    ChecklistItem(
        "3.1",
        "3",
        "Baseline run with a single worker",
        "Capture a baseline run with a single worker.",
        checks=("scaling.bridge",),
        generator=(GEN_BENCH_1W,),
    ),
    ChecklistItem(
        "3.2",
        "3",
        "Second run with four workers",
        "Capture a second run with four workers.",
        checks=("scaling.bridge",),
        generator=(GEN_BENCH_4W,),
    ),
    ChecklistItem(
        "3.3",
        "3",
        "Compare the benchmark summaries",
        "Compare the 1-worker and 4-worker benchmark summaries (bridge and raw Celery).",
        checks=("scaling.bridge", "scaling.raw-celery"),
    ),
    ChecklistItem(
        "3.4",
        "3",
        "Record the ratio and store the artefact pair",
        "Record the ratio and store the artefact pair alongside the release notes.",
        generator=(GEN_BENCH_PAIR, GEN_CHANGELOG),
    ),
    ChecklistItem(
        "3.5",
        "3",
        "Inline worker path speed-up",
        "Inline worker path (memory transport): speed-up measured and published "
        "(the seed recorded ≈1.5×).",
        checks=("scaling.inline",),
    ),
    ChecklistItem(
        "3.6",
        "3",
        "Redis-backed multiprocess workers scale",
        "Against Redis-backed multiprocess workers the workflow achieves ≥3.5× throughput "
        "gains; captured and published with every release candidate.",
        checks=("scaling.checklist-figure",),
        note="PASS when the bridge's CI lower bound clears 3.5×; FAIL only when plain Celery "
        "clears it on the same machine and the bridge does not; otherwise UNKNOWN (this "
        "machine cannot show the figure).",
    ),
    ChecklistItem(
        "3.7",
        "3",
        "What the MCP hop costs",
        "The same sleep over a real MCP server (`demo.sleep`, the packaged servers file) scales "
        "1 → 4 workers beside the built-in tool; its per-job overhead is published.",
        checks=("scaling.mcp",),
        note="Beyond the seed checklist: the bridge runs MCP tools, so releases show their cost.",
    ),
    ChecklistItem(
        "4.1",
        "4",
        "Durable registry",
        "Durable registry stored at `var/jobs/registry.db` (mounted volume in containers).",
        checks=("registry.durable",),
    ),
    ChecklistItem(
        "4.2",
        "4",
        "Idempotency tests green",
        "Idempotency tests green (Celery eager and registry restart flows).",
        checks=_area("idempotency."),
    ),
    ChecklistItem(
        "4.3",
        "4",
        "Monitoring",
        "Prometheus `/metrics` exposes queue/runtime histograms.",
        checks=_area("monitoring."),
    ),
    ChecklistItem(
        "4.4",
        "4",
        "Celery failure modes",
        "Runbooks updated with Celery failure modes and worker restart instructions: the "
        "failure modes behave as documented.",
        checks=tuple(cid for cid in _area("faults.") if cid != "faults.chaos"),
    ),
    ChecklistItem(
        "4.5",
        "4",
        "Bench artefacts from CI",
        "Bench artefacts uploaded from CI (e2e job + smoke benchmark job).",
        checks=("bench.inline-worker", "bench.http"),
        generator=(GEN_BENCH_PAIR,),
    ),
    ChecklistItem(
        "4.6",
        "4",
        "Authentication and authorisation",
        "Token validation, role checks, tenant isolation; dev secret refused in production.",
        checks=_area("security."),
        note="Suite addition (docs/design.md §4 security), not a bullet of the seed.",
    ),
    ChecklistItem(
        "4.7",
        "4",
        "Input validation",
        "Malformed requests are rejected with RFC 9457 problem details.",
        checks=_area("input."),
        note="Suite addition (docs/design.md §4 input), not a bullet of the seed.",
    ),
    ChecklistItem(
        "4.8",
        "4",
        "Real MCP tool calls",
        "Tools of stdio and streamable-HTTP MCP servers run as jobs end to end (a server crash and "
        "a tool timeout end the job clearly), and MCP clients reach the catalog at `/mcp`.",
        checks=_area("mcp."),
        note="Beyond the seed checklist: the bridge's own MCP guarantees.",
    ),
    ChecklistItem(
        "4.9",
        "4",
        "The suite's power",
        "The suite caught N/M realistic faults seeded into copies of the bridge (one per "
        "guarantee of the README and item of §4), the misses listed; GA needs ≥ 95%.",
        checks=("power.seeded-faults",),
        note="Beyond the seed checklist: evidence that a PASS means something.",
    ),
    ChecklistItem(
        "4.10",
        "4",
        "Chaos: no acknowledged job lost or run twice",
        "Under a seeded nemesis (worker SIGKILL and SIGSTOP past the lease, Redis SIGKILL, API "
        "restart, broker outage) over a live mixed workload, every acknowledged job ends, each "
        "succeeded job ran once, no job ran after its cancel, and /metrics agrees with the "
        "registry.",
        checks=("faults.chaos",),
        note="Jepsen-style: the history, the schedule and the timeline are in the evidence.",
    ),
    ChecklistItem(
        "5.1",
        "5",
        "Benchmark artefact pair",
        "Include the benchmark artefacts for both 1-worker and 4-worker measurements.",
        generator=(GEN_BENCH_PAIR,),
    ),
    ChecklistItem(
        "5.2",
        "5",
        "License review (SBOM)",
        "Updated `docs/compliance/license-review.md` (SBOM), regenerated with no policy "
        "violations.",
        generator=(GEN_LICENSE,),
    ),
    ChecklistItem(
        "5.3",
        "5",
        "Celery GA note",
        "Include this Celery GA note.",
        generator=(GEN_GA_NOTE,),
    ),
    ChecklistItem(
        "5.4",
        "5",
        "Change log entry",
        "Change log entry summarising scaling figures and broker configuration.",
        generator=(GEN_CHANGELOG,),
    ),
)
