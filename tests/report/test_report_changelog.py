"""CHANGELOG.md: one section per version, replaced (not duplicated) on re-runs."""

from __future__ import annotations

import json
from pathlib import Path

from reports.benchmarks import broker_config, redact_url
from reports.changelog import HEADER, upsert_section
from reports.cli import main
from reports.sample_evidence import write_sample_evidence, write_sample_repo, write_sample_sbom


def generate(tmp_path: Path, *extra: str) -> Path:
    root = tmp_path / "repo"
    args = [
        "--evidence-dir",
        str(tmp_path / "run"),
        "--repo-root",
        str(root),
        "--sbom",
        str(tmp_path / "sbom.json"),
        *extra,
    ]
    assert main(args) == 0
    return root / "CHANGELOG.md"


def setup(tmp_path: Path) -> None:
    write_sample_evidence(tmp_path / "run")
    write_sample_repo(tmp_path / "repo")
    write_sample_sbom(tmp_path / "sbom.json")


def test_rerun_replaces_the_version_section(tmp_path: Path) -> None:
    setup(tmp_path)
    changelog = generate(tmp_path)
    first = changelog.read_text()
    assert first.startswith("# Changelog")
    assert first.count("## [Unreleased]") == 1
    assert first.count("## [0.1.0]") == 1
    assert "3.68×" in first and "redis://localhost:6379/0" in first

    # New measurements for the same version: the section is rewritten, not appended.
    path = tmp_path / "run" / "checks" / "scaling.bridge.json"
    record = json.loads(path.read_text())
    record["measured"]["speedup"] = 3.71
    path.write_text(json.dumps(record))
    second = generate(tmp_path).read_text()
    assert second.count("## [0.1.0]") == 1
    assert "3.71×" in second and "3.68×" not in second
    assert generate(tmp_path).read_text() == second  # stable


def test_other_versions_and_unreleased_notes_are_kept(tmp_path: Path) -> None:
    setup(tmp_path)
    changelog = tmp_path / "repo" / "CHANGELOG.md"
    changelog.write_text(HEADER + "\n- pending fix\n\n## [0.0.9] - 2026-01-01\n\n- older release\n")
    text = generate(tmp_path).read_text()
    assert text.index("- pending fix") < text.index("## [0.1.0]") < text.index("## [0.0.9]")
    assert "- older release" in text
    text = generate(tmp_path).read_text()
    assert text.count("## [0.1.0]") == 1 and text.count("## [0.0.9]") == 1


def test_release_notes_in_bundle_match_the_section(tmp_path: Path) -> None:
    setup(tmp_path)
    changelog = generate(tmp_path).read_text()
    notes = (tmp_path / "repo" / "reports" / "0.1.0" / "release-notes.md").read_text()
    assert notes.startswith("## [0.1.0] - 2026-11-24")
    assert notes.strip() in changelog


def test_upsert_into_empty_file_creates_header() -> None:
    text = upsert_section("", "1.0.0", "## [1.0.0]\n\nx\n")
    assert text.startswith("# Changelog") and "## [Unreleased]" in text
    assert upsert_section(text, "1.0.0", "## [1.0.0]\n\nx\n") == text


def test_broker_passwords_never_reach_the_changelog() -> None:
    assert redact_url("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redact_url("redis://user:pw@h/1") == "redis://user:***@h/1"
    assert redact_url("redis://localhost:6379/0") == "redis://localhost:6379/0"
    rows = dict(broker_config({"celery": {"brokerUrl": "amqp://u:p@mq:5672//", "eager": False}}))
    assert rows == {"celery.brokerUrl": "amqp://u:***@mq:5672//", "celery.eager": "false"}


def test_changelog_and_report_state_the_mcp_hop(tmp_path: Path) -> None:
    setup(tmp_path)
    line = "job runtime +0.9 ms (1 worker), +1.2 ms (4 workers)"
    assert line in generate(tmp_path).read_text()
    report = next((tmp_path / "repo" / "reports").glob("*/ga-checklist.md")).read_text()
    assert f"MCP hop per job (`scaling.mcp` against the built-in tool, same run): {line}" in report

    # No hop figures in the evidence: no line, rather than a made-up one.
    path = tmp_path / "run" / "checks" / "scaling.mcp.json"
    record = json.loads(path.read_text())
    del record["measured"]["mcpHop"]
    path.write_text(json.dumps(record))
    assert "MCP hop" not in generate(tmp_path).read_text()
