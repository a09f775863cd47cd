"""GA gate: PASS/FAIL/UNKNOWN per item from a synthetic evidence directory (real files)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qualification.contract import CATALOGUE, RunRecord
from reports import checklist_items as ci
from reports.cli import main
from reports.evaluate import ItemResult, evaluate_all, unmapped_catalogue
from reports.evidence import load_evidence_dir
from reports.models import GeneratorResult, Status
from reports.sample_evidence import (
    write_check,
    write_sample_evidence,
    write_sample_repo,
    write_sample_sbom,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Path]:
    return {
        "run": write_sample_evidence(tmp_path / "var" / "qualification" / "run-1"),
        "root": write_sample_repo(tmp_path / "repo"),
        "sbom": write_sample_sbom(tmp_path / "sbom.cdx.json"),
        "out": tmp_path / "repo" / "reports" / "0.1.0",
    }


def run_cli(env: dict[str, Path], *extra: str) -> int:
    return main(
        [
            "--evidence-dir",
            str(env["run"]),
            "--repo-root",
            str(env["root"]),
            "--sbom",
            str(env["sbom"]),
            *extra,
        ]
    )


def statuses(env: dict[str, Path]) -> dict[str, str]:
    report = json.loads((env["out"] / "report.json").read_text())
    return {item["id"]: item["status"] for item in report["items"]}


def edit_record(run: Path, check_id: str, **changes: object) -> None:
    path = run / "checks" / f"{check_id}.json"
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


def test_all_green_evidence_passes_the_gate(env: dict[str, Path], capsys) -> None:
    assert run_cli(env) == 0
    result = statuses(env)
    for item in ci.ITEMS:
        assert result[item.id] == ("PASS" if item.required else "UNKNOWN"), item.id
    md = (env["out"] / "ga-checklist.md").read_text()
    html = (env["out"] / "ga-checklist.html").read_text()
    for item in ci.ITEMS:
        assert f"| {item.id} |" in md
        assert f'data-item="{item.id}"' in html
    assert "GA gate: PASS" in capsys.readouterr().out
    assert "3.68×" in md and "20261124T010000Z-sample" in md  # scaling + fingerprint


def test_missing_evidence_file_makes_item_unknown(env: dict[str, Path], capsys) -> None:
    (env["run"] / "files" / "registry.durable" / "output.log").unlink()
    assert run_cli(env) == 1
    result = statuses(env)
    assert result["4.1"] == "UNKNOWN"
    assert result["1.3"] == "UNKNOWN"  # shares registry.durable
    assert result["4.2"] == "PASS"
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("  ")]
    assert {line.split()[0] for line in lines} == {"1.3", "4.1"}
    assert "files/registry.durable/output.log: missing" in err


def test_failed_check_makes_item_fail(env: dict[str, Path], capsys) -> None:
    edit_record(env["run"], "idempotency.restart", outcome="failed", reason="ran twice")
    assert run_cli(env) == 1
    assert statuses(env)["4.2"] == "FAIL"
    assert re.search(r"^  4\.2 FAIL: .*ran twice", capsys.readouterr().err, re.M)


def test_error_outcome_is_fail_even_with_missing_evidence(env: dict[str, Path]) -> None:
    edit_record(env["run"], "faults.broker-down", outcome="error", reason="fixture crashed")
    (env["run"] / "files" / "faults.broker-down" / "output.log").unlink()
    assert run_cli(env) == 1
    assert statuses(env)["4.4"] == "FAIL"


def test_tampered_evidence_sha_is_unknown(env: dict[str, Path]) -> None:
    log = env["run"] / "files" / "monitoring.histograms" / "output.log"
    log.write_text(log.read_text() + "edited after the run\n")
    assert run_cli(env) == 1
    assert statuses(env)["4.3"] == "UNKNOWN"
    html = (env["out"] / "ga-checklist.html").read_text()
    assert "sha256 mismatch" in html


@pytest.mark.parametrize(
    "breakage",
    ["skipped", "unreadable", "absent", "no-sha", "outside"],
)
def test_never_pass_without_verifiable_evidence(env: dict[str, Path], breakage: str) -> None:
    record = env["run"] / "checks" / "monitoring.histograms.json"
    if breakage == "skipped":
        edit_record(env["run"], "monitoring.histograms", outcome="skipped", reason="quick")
    elif breakage == "unreadable":
        record.write_text("{truncated")
    elif breakage == "absent":
        record.unlink()
    elif breakage == "no-sha":
        edit_record(
            env["run"],
            "monitoring.histograms",
            evidence=[{"path": "files/monitoring.histograms/output.log"}],
        )
    else:
        edit_record(
            env["run"],
            "monitoring.histograms",
            evidence=[{"path": "../../../etc/hostname", "sha256": "0" * 64}],
        )
    assert run_cli(env) == 1
    assert statuses(env)["4.3"] == "UNKNOWN"


def test_missing_benchmark_half_is_unknown(env: dict[str, Path]) -> None:
    for path in (env["run"] / "benchmarks").glob("*-scaling-4w.json"):
        path.unlink()
    assert run_cli(env) == 1
    result = statuses(env)
    assert result["3.1"] == "PASS"
    assert result["3.2"] == result["5.1"] == result["3.4"] == "UNKNOWN"


def test_non_celery_scaling_artefact_fails_config_item(env: dict[str, Path]) -> None:
    for path in (env["run"] / "benchmarks").glob("*.json"):
        data = json.loads(path.read_text())
        data["config"]["jobBackend"] = "inline"
        path.write_text(json.dumps(data))
    assert run_cli(env) == 1
    assert statuses(env)["2.3"] == "FAIL"


def test_draft_builds_and_exits_zero(env: dict[str, Path], capsys) -> None:
    edit_record(env["run"], "security.isolation", outcome="failed", reason="leak")
    assert run_cli(env, "--draft") == 0
    assert statuses(env)["4.6"] == "FAIL"
    assert "DRAFT" in (env["out"] / "ga-checklist.html").read_text()
    assert "4.6 FAIL" in capsys.readouterr().err


def test_version_flag_and_out_dir(env: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "elsewhere" / "9.9.9rc1"
    assert run_cli(env, "--version", "9.9.9rc1", "--out", str(out)) == 0
    assert (out / "ga-checklist.html").is_file()
    assert out.with_name("9.9.9rc1.tar.gz").is_file()
    assert "## [9.9.9rc1]" in (out / "release-notes.md").read_text()
    assert not (env["root"] / "CHANGELOG.md").exists()  # --out never writes the repository


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-dir", "evidence directory not found"),
        ("no-run-json", "no run.json"),
        ("bad-run-json", "unreadable run.json"),
        ("no-version", "[project].version"),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    env: dict[str, Path], setup: str, message: str
) -> None:
    evidence = env["run"]
    if setup == "no-dir":
        evidence = evidence.with_name("does-not-exist")
    elif setup == "no-run-json":
        (evidence / "run.json").unlink()
    elif setup == "bad-run-json":
        (evidence / "run.json").write_text("[1, 2")
    else:
        (env["root"] / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reports",
            "--evidence-dir",
            str(evidence),
            "--repo-root",
            str(env["root"]),
            "--sbom",
            str(env["sbom"]),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert message in proc.stderr


def test_every_catalogue_check_is_mapped_to_an_item() -> None:
    assert unmapped_catalogue(ci.ITEMS) == []
    for item in ci.ITEMS:
        assert set(item.checks) <= set(CATALOGUE), item.id


def test_every_check_marker_of_the_suite_is_in_the_catalogue() -> None:
    source = "".join(p.read_text() for p in (REPO / "qualification").glob("test_*.py"))
    ids = set(re.findall(r'mark\.check\(\s*"([a-z]+\.[a-z0-9.-]+)"', source))
    assert ids == set(CATALOGUE)


def test_items_cover_seed_sections_one_to_five() -> None:
    seed = (REPO / "docs" / "celery-ga-checklist.md").read_text()
    for number, title in ci.SECTIONS.items():
        assert f"## {number}. {title.split(' (')[0]}" in seed
        assert any(item.section == number for item in ci.ITEMS)
    assert len({item.id for item in ci.ITEMS}) == len(ci.ITEMS)


def _expected(run: Path) -> list[str]:
    return RunRecord.model_validate_json((run / "run.json").read_text()).expected


def _gate(run: Path) -> dict[str, ItemResult]:
    """The gate's item results, evaluated in-process (generator steps taken as PASS)."""
    evidence = load_evidence_dir(run)
    steps = {
        key: GeneratorResult(key, Status.PASS, "sample")
        for item in ci.ITEMS
        for key in item.generator
    }
    results = evaluate_all(ci.ITEMS, evidence.checks, steps, evidence.record)
    return {r.item.id: r for r in results}


def test_the_sample_evidence_passes_every_required_item(env: dict[str, Path]) -> None:
    assert not [r.item.id for r in _gate(env["run"]).values() if r.gating]


@pytest.mark.parametrize("item", [i for i in ci.ITEMS if i.checks], ids=lambda i: i.id)
def test_deleting_any_expected_record_of_an_item_makes_it_unknown(
    env: dict[str, Path], item: ci.ChecklistItem
) -> None:
    """For every item and every check it maps: that one record gone → UNKNOWN, gate blocked."""
    records = [cid for cid in _expected(env["run"]) if cid.split("[")[0] in item.checks]
    assert records, f"{item.id}: the sample evidence has no record for it"
    for check_id in records:
        record = env["run"] / "checks" / f"{check_id}.json"
        kept = record.read_bytes()
        record.unlink()
        result = _gate(env["run"])[item.id]
        assert result.status is Status.UNKNOWN, check_id
        assert result.gating == item.required, check_id
        assert check_id in result.missing, check_id
        record.write_bytes(kept)


def test_a_partial_run_never_passes_and_says_so(env: dict[str, Path], capsys) -> None:
    """A run that did not select a catalogue check: its items UNKNOWN, the gate fails."""
    run = json.loads((env["run"] / "run.json").read_text())
    run["passes"][0]["expected"].remove("security.alg-none")
    (env["run"] / "run.json").write_text(json.dumps(run))
    (env["run"] / "checks" / "security.alg-none.json").unlink()
    assert run_cli(env) == 1
    assert statuses(env)["4.6"] == "UNKNOWN"
    report = json.loads((env["out"] / "report.json").read_text())
    assert report["partial"] is True and report["unselectedChecks"] == ["security.alg-none"]
    assert "Partial run" in (env["out"] / "ga-checklist.md").read_text()


def test_a_run_without_manifest_passes_nothing(env: dict[str, Path]) -> None:
    run = json.loads((env["run"] / "run.json").read_text())
    run["passes"] = []
    (env["run"] / "run.json").write_text(json.dumps(run))
    assert run_cli(env) == 1
    result = statuses(env)
    assert all(result[i.id] == "UNKNOWN" for i in ci.ITEMS if i.checks and not i.generator)


def test_a_passed_record_with_an_unmet_expectation_is_fail(env: dict[str, Path]) -> None:
    edit_record(
        env["run"],
        "monitoring.histograms",
        expectations=[{"name": "x", "measured": 1, "op": "==", "limit": 2, "met": False}],
    )
    assert run_cli(env) == 1
    assert statuses(env)["4.3"] == "FAIL"


def test_many_parametrised_cases_are_summarised(env: dict[str, Path]) -> None:
    for n in range(10):
        outcome = "failed" if n == 3 else "passed"
        write_check(env["run"], f"input.malformed[case-{n}]", "4", outcome)
    assert run_cli(env) == 1
    assert statuses(env)["4.7"] == "FAIL"
    md = (env["out"] / "ga-checklist.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 4.7 |"))
    assert (
        "`input.malformed[case-3]`" in row and "13 of 14 records PASS" in row
    )  # + input.openapi-conformance


def test_a_record_the_run_did_not_expect_still_counts_against_the_item(
    env: dict[str, Path],
) -> None:
    write_check(env["run"], "input.malformed[stray]", "4", "failed")
    assert run_cli(env) == 1
    assert statuses(env)["4.7"] == "FAIL"
