"""The HTML report is one self-contained file that renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reports.cli import main
from reports.sample_evidence import write_sample_evidence, write_sample_repo, write_sample_sbom

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary on PATH (Debian: apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("html")
    write_sample_evidence(base / "run")
    root = write_sample_repo(base / "repo")
    write_sample_sbom(base / "sbom.json")
    # one failing check so both badge colours and the blocking list are rendered
    record = base / "run" / "checks" / "faults.broker-down.json"
    record.write_text(record.read_text().replace('"passed"', '"failed"'))
    args = [
        "--evidence-dir",
        str(base / "run"),
        "--repo-root",
        str(root),
        "--sbom",
        str(base / "sbom.json"),
        "--draft",
    ]
    assert main(args) == 0
    return root / "reports" / "0.1.0" / "ga-checklist.html"


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_html_is_self_contained(html: Path) -> None:
    text = html.read_text()
    assert "<style>" in text and "<svg" in text
    assert not re.search(r"<(script|link|img|iframe)\b", text, re.I)
    assert not re.search(r"(src|href)=\"(https?:)?//", text, re.I)
    assert "url(" not in text and "@import" not in text


@needs_chromium
def test_chromium_renders_checklist_table_and_chart(html: Path, tmp_path: Path) -> None:
    proc = chromium("--dump-dom", html.as_uri(), profile=tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert 'id="checklist-table"' in dom
    assert re.search(r"<svg[^>]*class=\"scaling-chart\"", dom)
    assert dom.count('data-item="') >= 20
    assert 'data-status="FAIL"' in dom and "GA gate: FAIL" in dom


@needs_chromium
def test_chromium_screenshot(html: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    proc = chromium(
        "--hide-scrollbars",
        "--window-size=1280,2000",
        f"--screenshot={shot}",
        html.as_uri(),
        profile=tmp_path / "profile",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
