"""Orchestration: evidence directory in, GA report bundle (+ CHANGELOG, licence review) out."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reports import checklist_items as ci
from reports.benchmarks import BenchmarkSet, broker_config, load_benchmarks
from reports.bundle import copy_into, pack, prepare_out_dir, write_manifest
from reports.changelog import extract_section, update_changelog
from reports.charts import scaling_svg
from reports.errors import ReportInputError
from reports.evaluate import ItemResult, evaluate_all, unmapped_checks
from reports.evidence import EvidenceDir, load_evidence_dir
from reports.fingerprint import epoch, fingerprint, release_date, run_commands
from reports.hashing import sha256_file
from reports.license_review import LICENSE_REVIEW_PATH, SBOM_NAME, regenerate
from reports.licenses import DEFAULT_POLICY, LicenseReview, PolicyError, load_policy
from reports.models import GeneratorResult, Status
from reports.project import read_version
from reports.render import make_env, render
from reports.scaling import COLUMNS, ScalingRow, headline, mcp_hop, scaling_rows
from reports.steps import (
    changelog_result,
    check_benchmark_config,
    copy_benchmarks,
    copy_ga_note,
    license_result,
)

VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
SEED_PATH = Path("docs/celery-ga-checklist.md")


@dataclass
class Options:
    evidence_dir: Path
    out: Path | None = None
    draft: bool = False
    version: str | None = None
    repo_root: Path = Path(".")
    sbom: Path | None = None
    license_policy: Path = DEFAULT_POLICY


@dataclass
class Outcome:
    version: str
    out: Path
    tarball: Path
    items: list[ItemResult]

    @property
    def blocking(self) -> list[ItemResult]:
        return [r for r in self.items if r.gating]


def generate(opts: Options) -> Outcome:
    root = opts.repo_root.resolve()
    version = opts.version or read_version(root / "pyproject.toml")
    if not VERSION_RE.match(version):
        raise ReportInputError(f"unusable version {version!r}")
    evidence = load_evidence_dir(opts.evidence_dir.resolve())
    try:
        policy = load_policy(opts.license_policy)
    except PolicyError as exc:
        raise ReportInputError(str(exc)) from None
    out = (opts.out or root / "reports" / version).resolve()
    supplied_sbom = read_supplied_sbom(opts.sbom)  # before --out is wiped: it may live there
    prepare_out_dir(out)

    copy_evidence(evidence, out)
    bench = load_benchmarks(evidence.root)
    generated: list[GeneratorResult] = copy_benchmarks(bench, out)
    generated.append(check_benchmark_config(bench))
    review, sbom_error = regenerate(supplied_sbom, root, out / SBOM_NAME, version, policy)
    if review is not None:
        copy_into(root / LICENSE_REVIEW_PATH, out, "license-review.md")
    lic_files = [
        (p, sha256_file(out / p)) for p in (SBOM_NAME, "license-review.md") if (out / p).is_file()
    ]
    generated.append(license_result(review, sbom_error, lic_files))
    generated.append(copy_ga_note(root / SEED_PATH, out))
    rows = scaling_rows(evidence.checks)
    generated.append(write_changelog(root, out, version, evidence, rows, bench))

    gen_map = {g.key: g for g in generated}
    items = evaluate_all(ci.ITEMS, evidence.checks, gen_map, evidence.record)
    context = report_context(opts, version, evidence, items, rows, bench, review)
    env = make_env()
    (out / "scaling.svg").write_text(context["chart_svg"] + "\n", encoding="utf-8")
    (out / "ga-checklist.md").write_text(render(env, "ga-checklist.md.j2", context), "utf-8")
    (out / "ga-checklist.html").write_text(render(env, "ga-checklist.html.j2", context), "utf-8")
    (out / "report.json").write_text(json.dumps(report_json(context), indent=2) + "\n", "utf-8")
    write_manifest(out)
    tarball = pack(out, mtime=epoch(evidence.run.get("finishedAt")) or 0)
    return Outcome(version=version, out=out, tarball=tarball, items=items)


def copy_evidence(evidence: EvidenceDir, out: Path) -> None:
    """run.json, the check records and every listed evidence file that exists → ``evidence/``."""
    copy_into(evidence.root / "run.json", out, "evidence/run.json")
    for check in evidence.checks.values():
        copy_into(evidence.root / check.source_file, out, f"evidence/{check.source_file}")
        for item in check.evidence:
            src = (evidence.root / item.path).resolve()
            if src.is_relative_to(evidence.root) and src.is_file():
                copy_into(src, out, f"evidence/{src.relative_to(evidence.root).as_posix()}")


def read_supplied_sbom(path: Path | None) -> tuple[str, bytes] | None:
    if path is None:
        return None
    try:
        return path.name, path.read_bytes()
    except OSError as exc:
        raise ReportInputError(f"--sbom {path}: {exc.strerror}") from None


def write_changelog(
    root: Path,
    out: Path,
    version: str,
    evidence: EvidenceDir,
    rows: list[ScalingRow],
    bench: BenchmarkSet,
) -> GeneratorResult:
    configs = [a.config for a in bench.pair if a.config]
    config = configs[-1] if configs else {}
    differs = len(configs) == 2 and configs[0] != configs[1]
    figures = [r for r in rows if r.number("speedup") is not None]
    context = {
        "version": version,
        "date": release_date(evidence.run),
        "run": evidence.run,
        "rows": figures,
        "headline": headline(rows),
        "mcp_hop": mcp_hop(rows),
        "broker": broker_config(config),
        "differs": differs,
        "pair": [a.path.name for a in bench.pair],
        "bundle": f"reports/{version}.tar.gz",
    }
    section = render(make_env(), "changelog-entry.md.j2", context)
    changelog = root / "CHANGELOG.md"
    update_changelog(changelog, version, section)
    notes = out / "release-notes.md"
    notes.write_text(extract_section(changelog.read_text("utf-8"), version) or section, "utf-8")
    return changelog_result(notes, bool(figures), bool(config))


def report_context(
    opts: Options,
    version: str,
    evidence: EvidenceDir,
    items: list[ItemResult],
    rows: list[ScalingRow],
    bench: BenchmarkSet,
    review: LicenseReview | None,
) -> dict[str, Any]:
    counts = Counter(r.status for r in items)
    blocking = [r for r in items if r.gating]
    sections = [
        (num, title, [r for r in items if r.item.section == num])
        for num, title in ci.SECTIONS.items()
    ]
    configs = [a.config for a in bench.pair if a.config]
    return {
        "version": version,
        "draft": opts.draft,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "run": evidence.run,
        "fingerprint": fingerprint(evidence.run),
        "reproduce": " && ".join(run_commands(evidence.run)) or "—",
        "items": items,
        "sections": sections,
        "counts": {s.value: counts.get(s, 0) for s in Status},
        "required_total": sum(1 for r in items if r.item.required),
        "blocking": blocking,
        "gate_passed": not blocking,
        "rows": rows,
        "mcp_hop": mcp_hop(rows),
        "columns": COLUMNS,
        "chart_svg": scaling_svg(rows),
        "bench": bench,
        "broker": broker_config(configs[-1] if configs else {}),
        "review": review,
        "unmapped": unmapped_checks(ci.ITEMS, evidence.checks),
        "unselected": evidence.record.unselected(),
        "evidence_prefix": "evidence/",
        "Status": Status,
    }


def report_json(context: dict[str, Any]) -> dict[str, Any]:
    items: list[ItemResult] = context["items"]
    return {
        "version": context["version"],
        "draft": context["draft"],
        "generatedAt": context["generated_at"],
        "runId": context["run"].get("runId"),
        "gate": "PASS" if context["gate_passed"] else "FAIL",
        "counts": context["counts"],
        "items": [
            {
                "id": r.item.id,
                "section": r.item.section,
                "title": r.item.title,
                "required": r.item.required,
                "status": r.status.value,
                "reasons": r.reasons,
                "checks": {c.id: c.status.value for c in r.checks},
                "generator": {g.key: g.status.value for g in r.generated},
            }
            for r in items
        ],
        "scaling": {row.check_id: row.measured for row in context["rows"]},
        "unmappedChecks": context["unmapped"],
        "partial": bool(context["unselected"]),
        "unselectedChecks": context["unselected"],
    }
