"""Bundle layout, MANIFEST.sha256, tarball, --out safety, scaling table/chart tolerance."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from pathlib import Path

import pytest

from qualification.contract import Expectation
from reports.charts import scaling_svg
from reports.cli import main
from reports.models import Status
from reports.sample_evidence import write_sample_evidence, write_sample_repo, write_sample_sbom
from reports.scaling import ScalingRow


@pytest.fixture
def built(tmp_path: Path) -> Path:
    write_sample_evidence(tmp_path / "run")
    root = write_sample_repo(tmp_path / "repo")
    write_sample_sbom(tmp_path / "sbom.json")
    args = [
        "--evidence-dir",
        str(tmp_path / "run"),
        "--repo-root",
        str(root),
        "--sbom",
        str(tmp_path / "sbom.json"),
    ]
    assert main(args) == 0
    return root / "reports" / "0.1.0"


def test_bundle_contents_and_manifest(built: Path) -> None:
    for name in (
        "ga-checklist.md",
        "ga-checklist.html",
        "sbom.cdx.json",
        "license-review.md",
        "release-notes.md",
        "celery-ga-checklist.md",
        "scaling.svg",
        "report.json",
        "evidence/run.json",
        "evidence/checks/scaling.bridge.json",
        "evidence/files/scaling.bridge/output.log",
        "benchmarks/20261124T012000Z-scaling-1w.json",
        "benchmarks/20261124T012000Z-scaling-4w.json",
    ):
        assert (built / name).is_file(), name
    lines = (built / "MANIFEST.sha256").read_text().splitlines()
    listed = {}
    for line in lines:
        digest, rel = line.split("  ", 1)  # sha256sum format
        listed[rel] = digest
        assert hashlib.sha256((built / rel).read_bytes()).hexdigest() == digest
    files = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    assert set(listed) == files - {"MANIFEST.sha256"}


def test_tarball_holds_the_bundle(built: Path) -> None:
    tarball = built.with_name("0.1.0.tar.gz")
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        assert {
            "0.1.0/MANIFEST.sha256",
            "0.1.0/ga-checklist.html",
            "0.1.0/celery-ga-checklist.md",
        } <= names
        assert all(n == "0.1.0" or n.startswith("0.1.0/") for n in names)


def test_rebuild_replaces_previous_bundle(built: Path, tmp_path: Path) -> None:
    (built / "stale.txt").write_text("from an older run")
    args = [
        "--evidence-dir",
        str(tmp_path / "run"),
        "--repo-root",
        str(tmp_path / "repo"),
        "--sbom",
        str(tmp_path / "sbom.json"),
    ]
    assert main(args) == 0
    assert not (built / "stale.txt").exists()


def test_refuses_to_wipe_a_directory_it_did_not_create(tmp_path: Path, capsys) -> None:
    write_sample_evidence(tmp_path / "run")
    root = write_sample_repo(tmp_path / "repo")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("x")
    code = main(
        ["--evidence-dir", str(tmp_path / "run"), "--repo-root", str(root), "--out", str(precious)]
    )
    assert code == 2
    assert (precious / "keep.txt").is_file()
    assert "not a previous report bundle" in capsys.readouterr().err


def test_report_json_is_machine_readable(built: Path) -> None:
    report = json.loads((built / "report.json").read_text())
    assert report["gate"] == "PASS"
    assert report["scaling"]["scaling.bridge"]["speedup"] == 3.68


def test_scaling_tolerates_absent_keys() -> None:
    sparse = ScalingRow("scaling.bridge", "Bridge", Status.PASS, {"speedup": 3.2}, {})
    empty = ScalingRow("scaling.inline", "Inline", None, {}, {})
    assert sparse.cells[0] == "—" and sparse.cells[2] == "3.20×"
    assert set(empty.cells) == {"—"}
    svg = scaling_svg([sparse, empty])
    assert svg.startswith("<svg") and "no medians recorded" in svg and "3.20×" in svg
    assert "no speed-up recorded" in scaling_svg([empty])


def test_chart_draws_per_round_points_and_threshold() -> None:
    row = ScalingRow(
        "scaling.bridge",
        "Bridge",
        Status.PASS,
        {
            "medianW1": 10.0,
            "medianW4": 2.8,
            "speedup": 3.57,
            "ciLow": 3.4,
            "ciHigh": 3.7,
            "roundsW1": [9.8, 10.0, 10.3],
            "roundsW4": [2.7, 2.8, 2.9],
        },
        [Expectation(name="speedup", measured=3.57, op=">=", limit=3.5, met=True)],
    )
    svg = scaling_svg([row])
    assert svg.count("<title>round ") == 6  # one point per round and worker count
    assert "per-round value" in svg
    assert "threshold 3.5×" in svg
    assert row.unit == "s"
    ci_bound = ScalingRow(
        "scaling.raw-celery",
        "Raw",
        Status.PASS,
        {"speedup": 3.9},
        [Expectation(name="ciLow", measured=3.6, op=">=", limit=3.5, met=True)],
    )
    assert "threshold 3.5×" in scaling_svg([ci_bound])


def test_bar_heights_follow_the_medians() -> None:
    row = ScalingRow(
        "scaling.bridge",
        "Bridge",
        Status.PASS,
        {"medianW1": 12.0, "medianW4": 3.0, "roundsW1": [11.0, 13.0], "roundsW4": [2.9, 3.1]},
        {},
    )
    heights = [
        float(h)
        for h in re.findall(
            r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', scaling_svg([row])
        )
    ]
    bars = [h for h in heights if h not in (300.0, 10.0)]  # background and legend swatches
    assert len(bars) == 2 and abs(bars[0] / bars[1] - 4.0) < 0.05


def test_markdown_report_is_appended_to_the_github_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_sample_evidence(tmp_path / "run")
    root = write_sample_repo(tmp_path / "repo")
    sbom = write_sample_sbom(tmp_path / "sbom.json")
    summary = tmp_path / "step-summary.md"
    summary.write_text("## an earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = ["--evidence-dir", str(tmp_path / "run"), "--repo-root", str(root), "--sbom", str(sbom)]
    assert main([*args, "--draft"]) == 0
    report = (root / "reports" / "0.1.0" / "ga-checklist.md").read_text()
    first = "## an earlier step\n" + report.rstrip("\n") + "\n\n"
    assert summary.read_text() == first
    assert main([*args, "--draft"]) == 0  # appended, never overwritten
    again = (root / "reports" / "0.1.0" / "ga-checklist.md").read_text()
    assert summary.read_text() == first + again.rstrip("\n") + "\n\n"

    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    before = summary.read_text()
    assert main([*args, "--draft"]) == 0
    assert summary.read_text() == before


def test_unwritable_step_summary_is_one_warning_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sample_evidence(tmp_path / "run")
    root = write_sample_repo(tmp_path / "repo")
    sbom = write_sample_sbom(tmp_path / "sbom.json")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no-such-dir" / "summary.md"))
    args = ["--evidence-dir", str(tmp_path / "run"), "--repo-root", str(root), "--sbom", str(sbom)]
    assert main(args) == 0  # the verdict stands; the summary is a courtesy
    err = capsys.readouterr().err
    assert "warning: GITHUB_STEP_SUMMARY" in err and "Traceback" not in err
