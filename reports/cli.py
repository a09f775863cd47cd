"""Command line: ``python -m reports --evidence-dir var/qualification/<run-id> [...]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import ReportInputError
from .generate import Options, Outcome, generate
from .licenses import DEFAULT_POLICY

EXIT_GATE_FAILED = 1
EXIT_BAD_INPUT = 2
MAX_LINE = 300  # one readable stderr line per blocking item; the report has the rest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Render the GA checklist report bundle from a qualification evidence "
        "directory. Exit 0 when every required item is PASS, 1 when the GA gate fails "
        "(0 with --draft), 2 on bad input.",
    )
    parser.add_argument(
        "--evidence-dir",
        required=True,
        type=Path,
        help="var/qualification/<run-id> (run.json, checks/, files/, benchmarks/)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="bundle directory (default: reports/<version>); also writes <out>.tar.gz",
    )
    parser.add_argument(
        "--version", help="release version (default: [project].version from pyproject.toml)"
    )
    parser.add_argument(
        "--draft",
        action="store_true",
        help="build the report even when the gate fails, and exit 0; never writes tracked files",
    )
    parser.add_argument(
        "--write-repo",
        action="store_true",
        help="on a GA PASS, update CHANGELOG.md and docs/compliance/license-review.md even with "
        "--draft or --out (a plain run does so on a PASS; a run that did not pass never does)",
    )
    parser.add_argument(
        "--repo-root",
        type=Path,
        default=Path("."),
        help="repository root holding pyproject.toml, CHANGELOG.md, "
        "docs/celery-ga-checklist.md and docs/compliance/ (default: .)",
    )
    parser.add_argument(
        "--sbom", type=Path, help="use this CycloneDX JSON instead of running cyclonedx-py"
    )
    parser.add_argument(
        "--license-policy",
        type=Path,
        default=DEFAULT_POLICY,
        help="licence policy TOML (default: reports/license_policy.toml)",
    )
    return parser


def step_summary(outcome: Outcome) -> None:
    """Append the report's Markdown to ``$GITHUB_STEP_SUMMARY`` (GitHub Actions) when it is set."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    markdown = (outcome.out / "ga-checklist.md").read_text(encoding="utf-8")
    try:
        with open(target, "a", encoding="utf-8") as summary:
            summary.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        print(
            f"python -m reports: warning: GITHUB_STEP_SUMMARY {target}: {exc.strerror}",
            file=sys.stderr,
        )


def repo_line(outcome: Outcome) -> str:
    if outcome.repo_written:
        return "updated: " + ", ".join(str(p) for p in outcome.repo_written)
    return (
        f"CHANGELOG.md and the licence review not written to the repository: {outcome.repo_skipped}"
    )


def summarise(outcome: Outcome, draft: bool) -> int:
    required = sum(1 for r in outcome.items if r.item.required)
    report = outcome.out / "ga-checklist.html"
    print(repo_line(outcome))
    if not outcome.blocking:
        print(f"GA gate: PASS ({required}/{required} required items) — {report}")
        print(f"bundle: {outcome.tarball}")
        return 0
    print(
        f"GA gate: FAIL — {len(outcome.blocking)} of {required} required items not PASS "
        f"(report: {report})",
        file=sys.stderr,
    )
    for result in outcome.blocking:
        why = "; ".join(result.reasons) or "no detail"
        line = f"  {result.item.id} {result.status.value}: {result.item.title} — {why}"
        print(line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…", file=sys.stderr)
    if draft:
        print(f"--draft: report built anyway, bundle: {outcome.tarball}", file=sys.stderr)
        return 0
    return EXIT_GATE_FAILED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = Options(
        evidence_dir=args.evidence_dir,
        out=args.out,
        draft=args.draft,
        version=args.version,
        repo_root=args.repo_root,
        sbom=args.sbom,
        license_policy=args.license_policy,
        write_repo=args.write_repo,
    )
    try:
        outcome = generate(options)
    except ReportInputError as exc:
        print(f"python -m reports: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(
            f"python -m reports: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    step_summary(outcome)
    return summarise(outcome, args.draft)
