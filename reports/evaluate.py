"""Map checklist items to check records and generator results, and decide PASS/FAIL/UNKNOWN."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reports.checklist_items import ChecklistItem
from reports.models import CheckResult, GeneratorResult, Status


@dataclass
class ItemResult:
    item: ChecklistItem
    status: Status
    reasons: list[str] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    generated: list[GeneratorResult] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # check globs that matched no record

    @property
    def gating(self) -> bool:
        """True when this item blocks GA (required and not PASS)."""
        return self.item.required and self.status is not Status.PASS


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` are wildcards; everything else (brackets included) is literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts) + r"\Z")


def match_checks(pattern: str, checks: dict[str, CheckResult]) -> list[CheckResult]:
    regex = glob_to_regex(pattern)
    return [checks[cid] for cid in sorted(checks) if regex.match(cid)]


def evaluate_item(
    item: ChecklistItem,
    checks: dict[str, CheckResult],
    generated: dict[str, GeneratorResult],
) -> ItemResult:
    statuses: list[Status] = []
    reasons: list[str] = []
    matched: list[CheckResult] = []
    missing: list[str] = []
    for pattern in item.checks:
        found = match_checks(pattern, checks)
        if not found:
            missing.append(pattern)
            statuses.append(Status.UNKNOWN)
            reasons.append(f"{pattern}: no check record")
        for check in found:
            if check not in matched:
                matched.append(check)
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
) -> list[ItemResult]:
    return [evaluate_item(item, checks, generated) for item in items]


def unmapped_checks(items: tuple[ChecklistItem, ...], checks: dict[str, CheckResult]) -> list[str]:
    """Check ids present in the evidence that no checklist item refers to."""
    regexes = [glob_to_regex(p) for item in items for p in item.checks]
    return sorted(cid for cid in checks if not any(r.match(cid) for r in regexes))
