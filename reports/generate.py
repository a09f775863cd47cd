"""Orchestration: evidence directory in, GA report bundle out.

The changelog entry and the licence review always go into the bundle; ``CHANGELOG.md`` and
``docs/compliance/license-review.md`` are written only on a GA PASS (see ``reports.publish``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import checklist_items as ci
from .benchmarks import BenchmarkSet, broker_config, load_benchmarks
from .bundle import copy_into, pack, prepare_out_dir, write_manifest
from .changelog import heading, read_changelog, release_section
from .charts import scaling_svg
from .errors import ReportInputError
from .evaluate import ItemResult, evaluate_all, unmapped_checks
from .evidence import EvidenceDir, load_evidence_dir
from .fingerprint import epoch, fingerprint, release_date, run_commands
from .hashing import sha256_file
from .license_review import REVIEW_NAME, SBOM_NAME, regenerate
from .licenses import DEFAULT_POLICY, LicenseReview, PolicyError, load_policy
from .models import GeneratorResult, Status
from .project import read_version
from .publish import repo_write_refusal, write_repository
from .render import make_env, render
from .scaling import COLUMNS, ScalingRow, headline, mcp_hop, scaling_rows
from .steps import (
    changelog_result,
    check_benchmark_config,
    copy_benchmarks,
    copy_ga_note,
    license_result,
)

VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
SEED_PATH = Path("docs/celery-ga-checklist.md")
RELEASE_NOTES = "release-notes.md"


@dataclass
class Options:
    evidence_dir: Path
    out: Path | None = None
    draft: bool = False
    version: str | None = None
    repo_root: Path = Path(".")
    sbom: Path | None = None
    license_policy: Path = DEFAULT_POLICY
    write_repo: bool = False  # also with --draft / --out (still only on a GA PASS)


@dataclass
class Outcome:
    version: str
    out: Path
    tarball: Path
    items: list[ItemResult]
    repo_written: list[Path] = field(default_factory=list)
    repo_skipped: str | None = None  # why CHANGELOG.md / the licence review were not written

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
    review, sbom_error = regenerate(
        supplied_sbom, root, out / SBOM_NAME, out / REVIEW_NAME, version, policy
    )
    lic_files = [(p, sha256_file(out / p)) for p in (SBOM_NAME, REVIEW_NAME) if (out / p).is_file()]
    generated.append(license_result(review, sbom_error, lic_files))
    generated.append(copy_ga_note(root / SEED_PATH, out))
    rows = scaling_rows(evidence.checks)
    entry = changelog_context(version, evidence, rows, bench)
    changelog = changelog_result(bool(entry["rows"]), bool(entry["broker"]))
    generated.append(changelog)

    gen_map = {g.key: g for g in generated}
    items = evaluate_all(ci.ITEMS, evidence.checks, gen_map, evidence.record)
    blocking = sum(1 for r in items if r.gating)
    qualified = not blocking and not evidence.record.unselected()  # a partial run never qualifies
    section = write_release_notes(root, out, entry, blocking, qualified)
    changelog.files.append((RELEASE_NOTES, sha256_file(out / RELEASE_NOTES)))
    refusal = repo_write_refusal(
        gate_passed=qualified, draft=opts.draft, out=opts.out, write_repo=opts.write_repo
    )
    written = [] if refusal else write_repository(root, out, version, section)
    context = report_context(opts, version, evidence, items, rows, bench, review)
    env = make_env()
    (out / "scaling.svg").write_text(context["chart_svg"] + "\n", encoding="utf-8")
    (out / "ga-checklist.md").write_text(render(env, "ga-checklist.md.j2", context), "utf-8")
    (out / "ga-checklist.html").write_text(render(env, "ga-checklist.html.j2", context), "utf-8")
    (out / "report.json").write_text(json.dumps(report_json(context), indent=2) + "\n", "utf-8")
    write_manifest(out)
    tarball = pack(out, mtime=epoch(evidence.run.get("finishedAt")) or 0)
    return Outcome(version, out, tarball, items, repo_written=written, repo_skipped=refusal)


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


def changelog_context(
    version: str, evidence: EvidenceDir, rows: list[ScalingRow], bench: BenchmarkSet
) -> dict[str, Any]:
    configs = [a.config for a in bench.pair if a.config]
    config = configs[-1] if configs else {}
    return {
        "version": version,
        "date": release_date(evidence.run),
        "run": evidence.run,
        "rows": [r for r in rows if r.number("speedup") is not None],
        "headline": headline(rows),
        "mcp_hop": mcp_hop(rows),
        "broker": broker_config(config),
        "differs": len(configs) == 2 and configs[0] != configs[1],
        "pair": [a.path.name for a in bench.pair],
        "bundle": f"reports/{version}.tar.gz",
    }


def write_release_notes(
    root: Path, out: Path, entry: dict[str, Any], blocking: int, qualified: bool
) -> str:
    """``release-notes.md``: the version's CHANGELOG section as it reads with the new entry.

    Hand-written notes under the version heading come from the repository's CHANGELOG.md (read
    only). "Qualified by run" is written only when the gate passed (*qualified*).
    """
    context = {**entry, "gate_passed": qualified, "blocking": blocking}
    block = render(make_env(), "changelog-entry.md.j2", context)
    version = entry["version"]
    section = release_section(
        read_changelog(root / "CHANGELOG.md"), version, heading(version, entry["date"]), block
    )
    (out / RELEASE_NOTES).write_text(section, encoding="utf-8")
    return section


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
        "target": target_line(evidence.run),
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
        "pictures": pictures(evidence),
        "evidence_prefix": "evidence/",
        "Status": Status,
    }


def pictures(evidence: EvidenceDir) -> dict[str, str]:
    """Verified SVG evidence (e.g. the chaos timeline), inlined by the HTML report."""
    found = {}
    for check in evidence.checks.values():
        for item in check.evidence:
            if item.ok and item.path.endswith(".svg"):
                found[item.path] = (evidence.root / item.path).read_text(encoding="utf-8")
    return found


def target_line(run: dict[str, Any]) -> str:
    """Which bridge the run qualified, through which driver; jobs created summed over passes."""
    created: dict[str, int | None] = {}
    for one in run.get("passes") or []:
        target = one.get("target") or {"name": "reference"}
        name = str(target.get("name", "reference"))
        name += f" at {target['baseUrl']}" if target.get("baseUrl") else ""
        if "jobsCreated" in target:
            created[name] = (created.get(name) or 0) + int(target["jobsCreated"])
        else:
            created.setdefault(name, None)
    return (
        "; ".join(
            name if jobs is None else f"{name} ({jobs} job(s) created there)"
            for name, jobs in created.items()
        )
        or "reference"
    )


def report_json(context: dict[str, Any]) -> dict[str, Any]:
    items: list[ItemResult] = context["items"]
    return {
        "version": context["version"],
        "draft": context["draft"],
        "generatedAt": context["generated_at"],
        "runId": context["run"].get("runId"),
        "target": context["target"],
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
