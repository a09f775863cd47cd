"""The report writes tracked files only on a GA PASS of a plain run (issue 10, item 7).

Each test runs ``python -m reports`` against a fresh ``git clone`` of this repository, so "did
it touch tracked files" is ``git status --porcelain`` of that clone.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reports.changelog import BEGIN, END, merge_section
from reports.cli import main
from reports.sample_evidence import RUN_ID, write_sample_evidence, write_sample_sbom

REPO = Path(__file__).resolve().parents[2]
NOTE = "- Hand-written: the upgrade from 0.0.x needs `make install` again."

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs git and the repo"
)


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    dest = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    git(dest, "config", "user.email", "t@example.invalid")
    git(dest, "config", "user.name", "test")
    assert git(dest, "status", "--porcelain") == ""
    return dest


def run(tmp_path: Path, clone: Path, *extra: str, violation: bool = False) -> int:
    evidence = tmp_path / "run"
    if not evidence.exists():
        write_sample_evidence(evidence)
    bad = [{"bom-ref": "gpl-lib", "name": "gpl-lib", "version": "1.0",
            "licenses": [{"license": {"id": "GPL-3.0-only"}}]}]  # fmt: skip
    sbom = write_sample_sbom(tmp_path / "sbom.json", extra=bad if violation else None)
    args = ["--evidence-dir", str(evidence), "--repo-root", str(clone), "--sbom", str(sbom)]
    return main([*args, "--version", "0.1.0", *extra])


def tracked_bytes(root: Path) -> dict[str, bytes]:
    return {p: (root / p).read_bytes() for p in git(root, "ls-files").splitlines()}


def test_draft_never_touches_tracked_files(tmp_path: Path, clone: Path) -> None:
    before = tracked_bytes(clone)
    assert run(tmp_path, clone, "--draft") == 0  # the sample evidence passes the gate
    assert git(clone, "status", "--porcelain") == ""
    assert tracked_bytes(clone) == before
    bundle = clone / "reports" / "0.1.0"  # ignored by .gitignore, like a real bundle
    notes = (bundle / "release-notes.md").read_text()
    assert f"Qualified by run `{RUN_ID}`" in notes and BEGIN in notes
    assert (bundle / "license-review.md").is_file()


def test_out_elsewhere_never_touches_tracked_files(tmp_path: Path, clone: Path) -> None:
    out = tmp_path / "elsewhere" / "0.1.0"
    assert run(tmp_path, clone, "--out", str(out)) == 0
    assert git(clone, "status", "--porcelain") == ""
    assert (out / "release-notes.md").is_file() and (out / "license-review.md").is_file()


def test_pass_writes_the_generated_subsection_and_keeps_hand_notes(
    tmp_path: Path, clone: Path
) -> None:
    changelog = clone / "CHANGELOG.md"
    text = changelog.read_text()
    assert text.count(BEGIN) == 1, "CHANGELOG.md: the 0.1.0 section's generated part is marked"
    changelog.write_text(text.replace(BEGIN, f"{NOTE}\n\n{BEGIN}", 1))  # under the heading
    git(clone, "commit", "-qam", "hand-written note")
    unreleased = text[text.index("## [Unreleased]") : text.index("## [0.1.0]")]

    assert run(tmp_path, clone) == 0
    status = set(git(clone, "status", "--porcelain").splitlines())
    assert status == {" M CHANGELOG.md", " M docs/compliance/license-review.md"}
    written = changelog.read_text()
    assert written.count("## [0.1.0]") == 1 and written.count(BEGIN) == written.count(END) == 1
    assert NOTE in written and unreleased in written
    section = written[written.index("## [0.1.0]") :]
    assert section.index(NOTE) < section.index(BEGIN)
    assert f"Qualified by run `{RUN_ID}`" in section and "3.68×" in section
    assert "20261124T051749Z" not in section  # the previous generated block was replaced
    notes = (clone / "reports" / "0.1.0" / "release-notes.md").read_text()
    assert notes.strip() in written
    review = (clone / "docs" / "compliance" / "license-review.md").read_text()
    assert review == (clone / "reports" / "0.1.0" / "license-review.md").read_text()

    assert run(tmp_path, clone) == 0
    assert changelog.read_text() == written  # a re-run is stable


@pytest.mark.parametrize("extra", [(), ("--write-repo",)])
def test_fail_writes_nothing_to_the_repository(
    tmp_path: Path, clone: Path, extra: tuple[str, ...]
) -> None:
    assert run(tmp_path, clone, *extra, violation=True) == 1
    assert git(clone, "status", "--porcelain") == ""
    notes = (clone / "reports" / "0.1.0" / "release-notes.md").read_text()
    assert "Qualified by run" not in notes and "**Not qualified:**" in notes


def test_partial_evidence_keeps_the_committed_scaling_figures(
    tmp_path: Path, clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sample_evidence(tmp_path / "run")
    (tmp_path / "run" / "checks" / "scaling.bridge.json").unlink()
    before = (clone / "CHANGELOG.md").read_bytes()
    assert run(tmp_path, clone) == 1
    assert (clone / "CHANGELOG.md").read_bytes() == before
    assert git(clone, "status", "--porcelain") == ""
    out = capsys.readouterr().out
    assert "not written to the repository: the GA gate did not pass" in out


def test_write_repo_flag_writes_on_a_pass_with_out(tmp_path: Path, clone: Path) -> None:
    out = tmp_path / "elsewhere" / "0.1.0"
    assert run(tmp_path, clone, "--out", str(out), "--write-repo") == 0
    assert " M CHANGELOG.md" in git(clone, "status", "--porcelain").splitlines()
    assert (out / "release-notes.md").read_text().strip() in (clone / "CHANGELOG.md").read_text()


def test_merge_keeps_notes_around_the_block_and_adopts_unmarked_sections() -> None:
    head = "## [1.0.0] - 2026-12-01"
    old = f"## [1.0.0] - 2026-11-30\n\nintro\n\n{BEGIN}\nold figures\n{END}\n\noutro\n"
    merged = merge_section(old, head, "new figures\n")
    assert merged == f"{head}\n\nintro\n\n{BEGIN}\nnew figures\n{END}\n\noutro\n"
    assert merge_section(merged, head, "new figures") == merged
    # A section written by hand (no markers): all of it is kept, the block goes under the heading.
    unmarked = merge_section("## [1.0.0]\n\n- only notes\n", head, "figures")
    assert unmarked == f"{head}\n\n{BEGIN}\nfigures\n{END}\n\n- only notes\n"
    assert merge_section(None, head, "figures") == f"{head}\n\n{BEGIN}\nfigures\n{END}\n"
