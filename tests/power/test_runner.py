"""The power runner can itself fail: a no-op fault is MISSED, a fault that breaks import or whose
text is not found is INVALID (never counted as caught); the catalogue applies cleanly."""

from __future__ import annotations

from pathlib import Path

from qualification.contract import CATALOGUE
from qualification.power.runner import (
    Fault,
    Verdict,
    bridge_source,
    load_catalogue,
    patch_copy,
    run_fault,
)

FAST_CHECK = "security.alg-none"  # one shared stack, a few requests


def test_catalogue_applies_cleanly_and_names_known_checks() -> None:
    faults = load_catalogue()
    assert len(faults) >= 30
    source = bridge_source() / "mcp_bridge"
    for fault in faults:
        text = (source / fault.file).read_text(encoding="utf-8")
        assert text.count(fault.find) == 1, fault.id
        assert fault.find != fault.replace, fault.id
        assert set(fault.checks) <= set(CATALOGUE), fault.id


def test_a_fault_whose_text_is_not_found_is_invalid(tmp_path: Path) -> None:
    fault = Fault("gone", "text not there", "config.py", "no such text", "x", (FAST_CHECK,))
    assert isinstance(patch_copy(fault, tmp_path), str)
    assert run_fault(fault, ["--redis=binary"], tmp_path / "run").verdict is Verdict.INVALID


def test_a_fault_that_breaks_import_is_invalid_not_caught(tmp_path: Path) -> None:
    fault = Fault(
        "syntax", "breaks import", "security/tokens.py", "ALGORITHM = ", "ALGORITHM == ", ()
    )
    result = run_fault(fault, ["--redis=binary"], tmp_path)
    assert result.verdict is Verdict.INVALID
    assert "does not import" in result.detail


def test_a_no_op_fault_is_missed(tmp_path: Path) -> None:
    """The unmodified bridge passes the check, so a fault that changes nothing is MISSED."""
    fault = Fault(
        "no-op",
        "changes nothing",
        "security/tokens.py",
        'ALGORITHM = "HS256"',
        'ALGORITHM = "HS256"  # unchanged',
        (FAST_CHECK,),
    )
    result = run_fault(fault, ["--redis=binary"], tmp_path)
    assert result.verdict is Verdict.MISSED, result.detail


def test_a_real_fault_is_caught_by_the_check_it_names(tmp_path: Path) -> None:
    faults = {f.id: f for f in load_catalogue()}
    result = run_fault(faults["auth.expiry-ignored"], ["--redis=binary"], tmp_path)
    assert result.verdict is Verdict.CAUGHT and result.named_caught, result.line()
    assert any(entry.startswith("security.expired-token") for entry in result.caught_by)


def test_a_fault_whose_checks_never_ran_is_unverified_not_missed(tmp_path: Path) -> None:
    """A nested run that executes nothing (here: an unknown pytest option) proves nothing."""
    faults = {f.id: f for f in load_catalogue()}
    result = run_fault(faults["auth.expiry-ignored"], ["--no-such-option"], tmp_path)
    assert result.verdict is Verdict.UNVERIFIED, result.line()
