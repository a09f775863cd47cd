"""The generator's own section-5 steps; each returns a GeneratorResult."""

from __future__ import annotations

from pathlib import Path

from . import checklist_items as ci
from .benchmarks import Artefact, BenchmarkSet
from .bundle import copy_into
from .licenses import LicenseReview
from .models import GeneratorResult, Status


def copy_benchmarks(bench: BenchmarkSet, out: Path) -> list[GeneratorResult]:
    """benchmark-1w / -4w / -pair: present, parseable, copied to ``benchmarks/`` in the bundle."""
    results = []
    copied: list[tuple[str, str]] = []
    halves = ((ci.GEN_BENCH_1W, 1, bench.one), (ci.GEN_BENCH_4W, 4, bench.four))
    for key, workers, artefact in halves:
        if artefact is None:
            results.append(
                GeneratorResult(
                    key,
                    Status.UNKNOWN,
                    f"no benchmarks/<ts>-scaling-{workers}w.json in the evidence",
                )
            )
            continue
        rel = f"benchmarks/{artefact.path.name}"
        sha = copy_into(artefact.path, out, rel)
        if artefact.problem:
            results.append(
                GeneratorResult(key, Status.UNKNOWN, f"{rel}: {artefact.problem}", [(rel, sha)])
            )
            continue
        copied.append((rel, sha))
        results.append(
            GeneratorResult(key, Status.PASS, f"{rel} ({workers} worker(s))", [(rel, sha)])
        )
    if len(copied) == 2:
        pair = GeneratorResult(
            ci.GEN_BENCH_PAIR,
            Status.PASS,
            "1-worker and 4-worker artefacts copied into the bundle",
            copied,
        )
    else:
        missing = "; ".join(r.detail for r in results if r.status is not Status.PASS)
        pair = GeneratorResult(
            ci.GEN_BENCH_PAIR, Status.UNKNOWN, f"pair incomplete: {missing}", copied
        )
    return [*results, pair]


def check_benchmark_config(bench: BenchmarkSet) -> GeneratorResult:
    """Every artefact records its config; the scaling pair ran with ``jobBackend: celery``."""
    artefacts: list[Artefact] = [*bench.pair, *bench.others]
    if not bench.pair:
        return GeneratorResult(ci.GEN_BENCH_CONFIG, Status.UNKNOWN, "no scaling artefacts")
    problems: list[str] = []
    for artefact in artefacts:
        name = artefact.path.name
        cfg = artefact.config
        if artefact.problem:
            problems.append(f"{name}: {artefact.problem}")
        elif not cfg.get("jobBackend"):
            problems.append(f"{name}: no config.jobBackend")
        elif cfg.get("jobBackend") == "celery" and not isinstance(cfg.get("celery"), dict):
            problems.append(f"{name}: no config.celery block")
    wrong = [
        a.path.name for a in bench.pair if a.config.get("jobBackend") not in (None, "", "celery")
    ]
    if wrong:
        return GeneratorResult(
            ci.GEN_BENCH_CONFIG,
            Status.FAIL,
            "scaling artefacts not run with jobBackend=celery: " + ", ".join(wrong),
        )
    if problems:
        return GeneratorResult(ci.GEN_BENCH_CONFIG, Status.UNKNOWN, "; ".join(problems))
    return GeneratorResult(
        ci.GEN_BENCH_CONFIG,
        Status.PASS,
        f"{len(artefacts)} artefact(s) record jobBackend and Celery settings",
    )


def license_result(
    review: LicenseReview | None, error: str | None, files: list[tuple[str, str]]
) -> GeneratorResult:
    if review is None:
        return GeneratorResult(
            ci.GEN_LICENSE, Status.UNKNOWN, f"licence review not regenerated: {error}", files
        )
    bad = review.violations
    if bad:
        names = ", ".join(f"{c.name} ({c.license_display}: {c.verdict})" for c in bad)
        return GeneratorResult(
            ci.GEN_LICENSE, Status.FAIL, f"{len(bad)} licence policy violation(s): {names}", files
        )
    return GeneratorResult(
        ci.GEN_LICENSE,
        Status.PASS,
        f"{len(review.components)} components reviewed, no policy violations",
        files,
    )


def copy_ga_note(seed: Path, out: Path) -> GeneratorResult:
    rel = "celery-ga-checklist.md"
    if not seed.is_file():
        return GeneratorResult(ci.GEN_GA_NOTE, Status.UNKNOWN, f"GA note not found at {seed}")
    return GeneratorResult(
        ci.GEN_GA_NOTE, Status.PASS, f"copied from {seed.name}", [(rel, copy_into(seed, out, rel))]
    )


def changelog_result(has_figures: bool, has_broker: bool) -> GeneratorResult:
    """Item 5.4's step; ``release-notes.md`` joins ``files`` once the entry is rendered."""
    missing = [
        name
        for name, ok in (("scaling figures", has_figures), ("broker configuration", has_broker))
        if not ok
    ]
    if missing:
        return GeneratorResult(
            ci.GEN_CHANGELOG, Status.UNKNOWN, "entry written without " + " and ".join(missing)
        )
    return GeneratorResult(
        ci.GEN_CHANGELOG,
        Status.PASS,
        "changelog entry (release-notes.md) written with scaling figures and broker config",
    )
