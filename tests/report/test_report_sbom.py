"""The real cyclonedx-py CLI produces the SBOM the licence review reads."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from reports.cli import main
from reports.sample_evidence import write_sample_evidence, write_sample_repo

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("cyclonedx_py") is None,
    reason="cyclonedx-bom is not installed (pip install 'mcp-bridge[qualification]')",
)


def test_generates_cyclonedx_sbom_of_installed_runtime(tmp_path: Path) -> None:
    write_sample_evidence(tmp_path / "run")
    root = write_sample_repo(tmp_path / "repo")
    main(["--evidence-dir", str(tmp_path / "run"), "--repo-root", str(root), "--draft"])
    out = root / "reports" / "0.1.0"
    sbom = json.loads((out / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    assert sbom["metadata"]["component"]["name"] == "mcp-bridge"
    names = {c["name"].lower() for c in sbom["components"]}
    assert {"jinja2", "cyclonedx-bom"} <= names  # the generator's own runtime is in it
    review = (out / "license-review.md").read_text()
    assert not (root / "docs" / "compliance").exists()  # --draft never writes the repository
    assert f"across {len(sbom['components'])} components" in review or "**FAIL" in review
    assert "| jinja2 |" in review.lower()
