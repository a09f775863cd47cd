"""Map checklist items to check records and generator results, and decide PASS/FAIL/UNKNOWN.

An item's checks are catalogue ids (qualification/contract.py). Which concrete checks (one per
parametrised case) a run had to produce comes from its manifest (run.json `passes[].expected`):
a catalogue check no pass selected, or an expected check without a record, is UNKNOWN — a record
that is missing can never let an item pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .checklist_items import ChecklistItem
from .contract import CATALOGUE, RunRecord, base_id
from .models import CheckResult, GeneratorResult, Status


@dataclass
class ItemResult:
    item: ChecklistItem
    status: Status
    reasons: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    generated: list[GeneratorResult] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # expected or catalogue ids without a record

    @property
    def gating(self) -> bool:
        """True when this item blocks GA (required and not PASS)."""
        return self.item.required and self.status is not Status.PASS


def evaluate_item(
    item: ChecklistItem,
    checks: dict[str, CheckResult],
    generated: dict[str, GeneratorResult],
    run: RunRecord,
) -> ItemResult:
    statuses: list[Status] = []
    reasons: list[str] = []
    matched: list[CheckResult] = []
    missing: list[str] = []
    expected = run.expected
    for catalogue_id in item.checks:
        wanted = [cid for cid in expected if base_id(cid) == catalogue_id]
        if not wanted:
            missing.append(catalogue_id)
            statuses.append(Status.UNKNOWN)
            reasons.append(f"{catalogue_id}: not selected in this run (partial run)")
        for cid in wanted:
            if cid not in checks:
                missing.append(cid)
                statuses.append(Status.UNKNOWN)
                reasons.append(f"{cid}: expected by the run, but no check record")
        extra = [c for c in sorted(checks) if base_id(c) == catalogue_id and c not in wanted]
        for cid in [*wanted, *extra]:
            if cid in checks and checks[cid] not in matched:
                matched.append(checks[cid])
    for check in matched:
        statuses.append(check.status)
        if check.status is not Status.PASS:
            reasons.append(f"{check.id}: {check.reason or check.outcome}")
    gens: list[GeneratorResult] = []
    for key in item.generator:
        gen = generated.get(key) or GeneratorResult(key, Status.UNKNOWN, "step did not run")
        gens.append(gen)
        statuses.append(gen.status)
        if gen.status is not Status.PASS:
            reasons.append(f"{key}: {gen.detail}")
    if not item.checks and not item.generator:
        reasons.append("not verified by the qualification suite")
    status = Status.combine(statuses)
    return ItemResult(item, status, reasons, checks=matched, generated=gens, missing=missing)


def evaluate_all(
    items: tuple[ChecklistItem, ...],
    checks: dict[str, CheckResult],
    generated: dict[str, GeneratorResult],
    run: RunRecord,
) -> list[ItemResult]:
    return [evaluate_item(item, checks, generated, run) for item in items]


def unmapped_checks(items: tuple[ChecklistItem, ...], checks: dict[str, CheckResult]) -> list[str]:
    """Check ids present in the evidence that no checklist item refers to."""
    mapped = {cid for item in items for cid in item.checks}
    return sorted(cid for cid in checks if base_id(cid) not in mapped)


def unmapped_catalogue(items: tuple[ChecklistItem, ...]) -> list[str]:
    """Catalogue checks no checklist item refers to (a test keeps this empty)."""
    mapped = {cid for item in items for cid in item.checks}
    return [cid for cid in CATALOGUE if cid not in mapped]
