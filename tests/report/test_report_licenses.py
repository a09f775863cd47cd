"""Licence normalisation and policy (SBOM → license-review.md → gate item 5.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports.cli import main
from reports.licenses import (
    DEFAULT_POLICY,
    Policy,
    PolicyError,
    evaluate_expression,
    load_policy,
    normalise_name,
    parse_expression,
    review_component,
    review_sbom,
)
from reports.sample_evidence import (
    SAMPLE_SBOM,
    write_sample_evidence,
    write_sample_repo,
    write_sample_sbom,
)


@pytest.fixture
def policy() -> Policy:
    return load_policy(DEFAULT_POLICY)


def comp(name: str, *licenses: dict) -> dict:
    return {"bom-ref": name, "name": name, "version": "1.0", "licenses": list(licenses)}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("License :: OSI Approved :: MIT License", "MIT"),
        ("License :: OSI Approved :: BSD License", "BSD"),
        ("License :: OSI Approved :: Apache Software License", "Apache"),
        ("License :: OSI Approved :: ISC License (ISCL)", "ISC"),
        ("License :: OSI Approved :: Python Software Foundation License", "PSF-2.0"),
        ("License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)", "MPL-2.0"),
        (
            "License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)",
            "LGPL-3.0-only",
        ),
        ("License :: OSI Approved :: GNU General Public License (GPL)", "GPL"),
        ("License :: Public Domain", "Public-Domain"),
        ("Apache License, Version 2.0", "Apache-2.0"),
        ("BSD-3-Clause", "BSD-3-Clause"),
    ],
)
def test_normalise_names(name: str, expected: str) -> None:
    assert normalise_name(name) == expected


@pytest.mark.parametrize(
    ("expression", "verdict"),
    [
        ("Apache-2.0 OR MIT", "allowed"),
        ("GPL-3.0-only OR MIT", "allowed"),
        ("MIT AND GPL-2.0-or-later", "denied"),
        ("(MIT OR GPL-2.0-only) AND LGPL-2.1-only", "review"),
        ("BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0", "allowed"),
        ("Apache-2.0 AND CNRI-Python", "allowed"),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", "denied"),
        ("LicenseRef-Custom", "unknown"),
    ],
)
def test_expressions(expression: str, verdict: str, policy: Policy) -> None:
    assert evaluate_expression(expression, policy) == verdict


@pytest.mark.parametrize(
    ("expression", "verdict"),
    [
        ("MIT OR Apache-2.0", "allowed"),
        ("(MIT AND BSD-3-Clause)", "allowed"),
        ("Apache-2.0 WITH LLVM-exception", "allowed"),  # no rule for the pair: the licence's
        ("mit or apache-2.0", "allowed"),  # operators and SPDX keys are case-insensitive
        ("MIT AND GPL-2.0+", "denied"),  # AND: the worst part decides
        ("GPL-3.0-only OR LicenseRef-Custom", "unknown"),  # OR: the best alternative decides
    ],
)
def test_valid_expressions_are_decided_by_the_policy(
    expression: str, verdict: str, policy: Policy
) -> None:
    assert parse_expression(expression)[1] is None
    assert evaluate_expression(expression, policy) == verdict
    reviewed = review_component(comp("pkg", {"expression": expression}), policy, runtime=True)
    assert reviewed.verdict == verdict and reviewed.note == ""


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("MIT GPL-3.0-only", "Invalid symbols sequence"),  # two licences, no operator
        ("MIT / GPL-3.0-only", "Invalid license key"),  # "/" is not an SPDX operator
        ("MIT OR", "OR requires two or more licenses"),  # dangling operator
    ],
)
def test_invalid_expressions_are_flagged_not_allowed(
    expression: str, reason: str, policy: Policy
) -> None:
    tree, problem = parse_expression(expression)
    assert tree is None and problem is not None and reason in problem
    assert evaluate_expression(expression, policy) == "review"
    reviewed = review_component(comp("odd-pkg", {"expression": expression}), policy, runtime=True)
    assert reviewed.verdict == "review" and reviewed.violation
    assert reviewed.note.startswith(f"invalid SPDX expression {expression!r}")
    review = review_sbom({"components": [comp("odd-pkg", {"expression": expression})]}, policy)
    assert [c.name for c in review.violations] == ["odd-pkg"]


def test_an_exception_can_accept_a_reviewed_invalid_expression(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[policy]\nallowed = ["MIT"]\n'
        '[exceptions.odd-pkg]\nreason = "upstream means MIT OR GPL"\n'
        'license = "MIT / GPL-3.0-only"\n'
    )
    reviewed = review_component(
        comp("odd-pkg", {"expression": "MIT / GPL-3.0-only"}), load_policy(path), runtime=True
    )
    assert reviewed.exception == "upstream means MIT OR GPL" and not reviewed.violation


def test_several_entries_count_as_and(policy: Policy) -> None:
    mixed = comp(
        "mixed",
        {"license": {"id": "MIT"}},
        {"license": {"name": "License :: OSI Approved :: GNU General Public License v3 (GPLv3)"}},
    )
    assert review_component(mixed, policy, runtime=True).verdict == "denied"
    dup = comp(
        "dup",
        {"license": {"id": "BSD-3-Clause"}},
        {"license": {"name": "License :: OSI Approved :: BSD License"}},
    )
    reviewed = review_component(dup, policy, runtime=True)
    assert reviewed.verdict == "allowed" and reviewed.declared == ["BSD-3-Clause"]


def test_missing_licence_is_unknown_and_a_violation(policy: Policy) -> None:
    reviewed = review_component(comp("mystery-pkg"), policy, runtime=False)
    assert reviewed.verdict == "unknown" and reviewed.violation


def test_exceptions_need_reasons_and_pins_expire(tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text('[policy]\nallowed = ["MIT"]\n[exceptions.foo]\nlicense = "GPL"\n')
    with pytest.raises(PolicyError, match="needs a reason"):
        load_policy(bad)
    good = tmp_path / "good.toml"
    good.write_text(
        '[policy]\nallowed = ["MIT"]\ndenied = ["GPL*"]\n'
        '[exceptions.Foo_Bar]\nreason = "reviewed by legal"\nlicense = "GPL-2.0-only"\n'
    )
    policy = load_policy(good)
    same = review_component(comp("foo-bar", {"license": {"id": "GPL-2.0-only"}}), policy, True)
    assert same.exception == "reviewed by legal" and not same.violation
    changed = review_component(comp("foo.bar", {"license": {"id": "GPL-3.0-only"}}), policy, True)
    assert changed.violation and "exception covers" in changed.note


def test_shipped_policy_has_a_reason_for_every_exception(policy: Policy) -> None:
    assert policy.exceptions
    assert all(entry["reason"].strip() for entry in policy.exceptions.values())


def test_runtime_closure_from_dependency_graph(policy: Policy) -> None:
    review = review_sbom(json.loads(json.dumps(SAMPLE_SBOM)), policy)
    runtime = {c.name for c in review.components if c.runtime}
    assert runtime == {"celery", "kombu"}
    assert not review.violations


def test_policy_violation_fails_item_5_2(tmp_path: Path, capsys) -> None:
    write_sample_evidence(tmp_path / "run")
    root = write_sample_repo(tmp_path / "repo")
    sbom = write_sample_sbom(
        tmp_path / "sbom.json",
        extra=[
            comp("copyleft-lib", {"license": {"id": "AGPL-3.0-only"}}),
            comp("no-metadata"),
        ],
    )
    code = main(
        ["--evidence-dir", str(tmp_path / "run"), "--repo-root", str(root), "--sbom", str(sbom)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "5.2 FAIL" in err and "copyleft-lib" in err and "no-metadata" in err
    review = (root / "reports" / "0.1.0" / "license-review.md").read_text()
    assert "**FAIL — 2 component(s) violate the licence policy:**" in review
    assert "`copyleft-lib` 1.0: AGPL-3.0-only — denied" in review
    # The gate failed: the review is in the bundle only, the repository is not touched.
    assert not (root / "docs" / "compliance" / "license-review.md").exists()
    assert not (root / "CHANGELOG.md").exists()
