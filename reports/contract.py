"""The evidence contract the report reads (qualification/contract.py), under whichever name it is
importable: `qualification` in a checkout, `mcp_bridge_qualification` when installed."""

from __future__ import annotations

try:
    from qualification.contract import (
        CATALOGUE,
        CheckRecord,
        EvidenceFileRef,
        Expectation,
        Outcome,
        PassRecord,
        RunRecord,
        Selection,
        base_id,
    )
except ImportError:  # pragma: no cover - installed
    from mcp_bridge_qualification.contract import (  # type: ignore[no-redef]
        CATALOGUE,
        CheckRecord,
        EvidenceFileRef,
        Expectation,
        Outcome,
        PassRecord,
        RunRecord,
        Selection,
        base_id,
    )

__all__ = [
    "CATALOGUE",
    "CheckRecord",
    "EvidenceFileRef",
    "Expectation",
    "Outcome",
    "PassRecord",
    "RunRecord",
    "Selection",
    "base_id",
]
