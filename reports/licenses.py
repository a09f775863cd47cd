"""Normalise SBOM licence declarations and apply the policy in ``license_policy.toml``."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from license_expression import (
    OR,
    ExpressionError,
    LicenseExpression,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
    ParseError,
    get_spdx_licensing,
)

DEFAULT_POLICY = Path(__file__).with_name("license_policy.toml")
RANK = {"allowed": 0, "review": 1, "unknown": 2, "denied": 3}

# Trove classifier tails ("License :: OSI Approved :: <tail>") and common free-text names.
ALIASES: dict[str, str] = {
    "mit": "MIT",
    "mit license": "MIT",
    "the mit license": "MIT",
    "expat": "MIT",
    "mit no attribution": "MIT-0",
    "mit-0": "MIT-0",
    "bsd": "BSD",
    "bsd license": "BSD",
    "new bsd": "BSD-3-Clause",
    "new bsd license": "BSD-3-Clause",
    "bsd-3": "BSD-3-Clause",
    "3-clause bsd": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "modified bsd": "BSD-3-Clause",
    "simplified bsd": "BSD-2-Clause",
    "bsd-2": "BSD-2-Clause",
    "2-clause bsd": "BSD-2-Clause",
    "bsd 2-clause": "BSD-2-Clause",
    "apache": "Apache",
    "apache software license": "Apache",
    "apache license": "Apache",
    "apache 2": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache-2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache license version 2.0": "Apache-2.0",
    "apache software license 2.0": "Apache-2.0",
    "isc": "ISC",
    "isc license": "ISC",
    "isc license (iscl)": "ISC",
    "psf": "PSF-2.0",
    "psfl": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "psf license": "PSF-2.0",
    "python": "Python-2.0",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "mpl 2.0": "MPL-2.0",
    "mpl-2": "MPL-2.0",
    "the unlicense (unlicense)": "Unlicense",
    "unlicense": "Unlicense",
    "zero-clause bsd (0bsd)": "0BSD",
    "zlib/libpng license": "Zlib",
    "historical permission notice and disclaimer (hpnd)": "HPND",
    "boost software license 1.0 (bsl-1.0)": "BSL-1.0",
    "zope public license": "ZPL-2.1",
    "universal permissive license (upl)": "UPL-1.0",
    "public domain": "Public-Domain",
    "cc0 1.0 universal (cc0 1.0) public domain dedication": "CC0-1.0",
    "gnu lesser general public license v2 (lgplv2)": "LGPL-2.0-only",
    "gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
    "gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "gnu lesser general public license v3 or later (lgplv3+)": "LGPL-3.0-or-later",
    "gnu library or lesser general public license (lgpl)": "LGPL",
    "lgpl": "LGPL",
    "gnu general public license (gpl)": "GPL",
    "gpl": "GPL",
    "gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "gnu general public license v2 or later (gplv2+)": "GPL-2.0-or-later",
    "gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "gnu general public license v3 or later (gplv3+)": "GPL-3.0-or-later",
    "gnu affero general public license v3": "AGPL-3.0-only",
    "gnu affero general public license v3 or later (agplv3+)": "AGPL-3.0-or-later",
    "eclipse public license 2.0 (epl-2.0)": "EPL-2.0",
    "other/proprietary license": "Proprietary",
}
SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
CLASSIFIER = re.compile(r"^License\s*::\s*(?:OSI Approved\s*::\s*)?(?P<tail>.+)$")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Policy:
    allowed: tuple[str, ...]
    review: tuple[str, ...]
    denied: tuple[str, ...]
    exceptions: dict[str, dict[str, str]]

    def verdict(self, license_id: str) -> str:
        for name, patterns in (
            ("denied", self.denied),
            ("allowed", self.allowed),
            ("review", self.review),
        ):
            if any(_matches(p, license_id) for p in patterns):
                return name
        return "unknown"


def _matches(pattern: str, value: str) -> bool:
    if pattern.endswith("*"):
        return value.lower().startswith(pattern[:-1].lower())
    return value.lower() == pattern.lower()


def load_policy(path: Path = DEFAULT_POLICY) -> Policy:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"licence policy {path}: {exc}") from None
    policy = data.get("policy", {})
    exceptions: dict[str, dict[str, str]] = {}
    for name, entry in data.get("exceptions", {}).items():
        if not isinstance(entry, dict) or not str(entry.get("reason", "")).strip():
            raise PolicyError(f"licence policy {path}: exception {name!r} needs a reason")
        exceptions[canonical_name(name)] = {k: str(v) for k, v in entry.items()}
    return Policy(
        allowed=tuple(policy.get("allowed", ())),
        review=tuple(policy.get("review", ())),
        denied=tuple(policy.get("denied", ())),
        exceptions=exceptions,
    )


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def normalise_name(name: str) -> str:
    """A free-text licence name or trove classifier → SPDX-ish id (or the name itself)."""
    text = " ".join(name.split())
    match = CLASSIFIER.match(text)
    if match:
        text = match["tail"]
    alias = ALIASES.get(text.lower())
    if alias:
        return alias
    if SPDX_ID.match(text):
        return text
    if len(text) > 60:
        return "unknown (licence text)"
    return text


# --- SPDX expressions (parsed by license-expression): OR picks the best alternative, AND the worst

INVALID = "review"  # an expression that does not parse needs a person (and a recorded exception)


@cache
def _licensing() -> Licensing:
    return get_spdx_licensing()


def parse_expression(expression: str) -> tuple[LicenseExpression | None, str | None]:
    """(tree, None) for a well-formed SPDX expression, else (None, the parser's reason).

    Well-formed is syntactic: licence keys outside the SPDX list ("BSD", "LicenseRef-x") parse and
    are left to the policy, which calls them unknown unless it names them.
    """
    try:
        tree = _licensing().parse(expression, validate=False)
    except (ExpressionError, ParseError) as exc:
        return None, str(exc)
    if tree is None:
        return None, "empty expression"
    return tree, None


def _symbol_verdict(key: str, policy: Policy) -> str:
    verdict = policy.verdict(normalise_name(key))
    return policy.verdict(key.rstrip("+")) if verdict == "unknown" else verdict


def _tree_verdict(node: LicenseExpression, policy: Policy) -> str:
    if isinstance(node, LicenseWithExceptionSymbol):
        lic = node.license_symbol.key
        whole = policy.verdict(f"{lic} WITH {node.exception_symbol.key}")
        return whole if whole != "unknown" else _symbol_verdict(lic, policy)
    if isinstance(node, LicenseSymbol):
        return _symbol_verdict(node.key, policy)
    verdicts = [_tree_verdict(arg, policy) for arg in node.args]
    pick = min if isinstance(node, OR) else max  # AND: every part applies
    return pick(verdicts, key=RANK.__getitem__)


def evaluate_expression(expression: str, policy: Policy) -> str:
    """The policy verdict for an SPDX expression; ``INVALID`` when it does not parse."""
    tree, _problem = parse_expression(expression)
    return INVALID if tree is None else _tree_verdict(tree, policy)


# --- components -------------------------------------------------------------------------------


@dataclass
class ComponentReview:
    name: str
    version: str
    declared: list[str]  # normalised declarations ("MIT", "Apache-2.0 OR MIT", ...)
    verdict: str  # allowed | review | unknown | denied
    runtime: bool  # in mcp-bridge's dependency closure
    purl: str = ""
    exception: str | None = None  # reason, when an exception applies
    note: str = ""

    @property
    def license_display(self) -> str:
        return " AND ".join(self.declared) if self.declared else "unknown"

    @property
    def violation(self) -> bool:
        return self.verdict != "allowed" and self.exception is None


@dataclass
class LicenseReview:
    components: list[ComponentReview]
    unused_exceptions: list[str] = field(default_factory=list)

    @property
    def violations(self) -> list[ComponentReview]:
        return [c for c in self.components if c.violation]

    def count(self, verdict: str) -> int:
        return sum(1 for c in self.components if c.verdict == verdict)


def declared_licenses(component: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind, value) pairs: kind "expr" for SPDX expressions, "id" for a normalised licence id."""
    out: list[tuple[str, str]] = []
    for entry in component.get("licenses") or []:
        if not isinstance(entry, dict):
            continue
        if entry.get("expression"):
            out.append(("expr", str(entry["expression"])))
            continue
        lic = entry.get("license") or {}
        if lic.get("id"):
            out.append(("id", str(lic["id"])))
        elif lic.get("name"):
            out.append(("id", normalise_name(str(lic["name"]))))
    return out


def _dedupe(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def review_component(component: dict[str, Any], policy: Policy, runtime: bool) -> ComponentReview:
    declared = _dedupe(declared_licenses(component))
    # An unversioned family next to a precise id of the same family adds nothing ("BSD" + BSD-3).
    ids = {value for kind, value in declared if kind == "id"}
    declared = [
        (kind, value)
        for kind, value in declared
        if not (
            kind == "id"
            and value in ("BSD", "Apache")
            and any(i.startswith(value + "-") for i in ids)
        )
    ]
    verdicts = [
        evaluate_expression(value, policy) if kind == "expr" else policy.verdict(value)
        for kind, value in declared
    ]
    verdict = max(verdicts, key=RANK.__getitem__) if verdicts else "unknown"
    display = [
        f"({v})" if k == "expr" and " " in v and len(declared) > 1 else v for k, v in declared
    ]
    invalid = [
        f"invalid SPDX expression {value!r} ({problem})"
        for kind, value in declared
        if kind == "expr" and (problem := parse_expression(value)[1])
    ]
    review = ComponentReview(
        name=str(component.get("name", "?")),
        version=str(component.get("version", "")),
        declared=display,
        verdict=verdict,
        runtime=runtime,
        purl=str(component.get("purl", "")),
        note="; ".join(invalid),
    )
    exception = policy.exceptions.get(canonical_name(review.name))
    if exception and verdict != "allowed":
        pinned = exception.get("license")
        if pinned is None or pinned == review.license_display:
            review.exception = exception["reason"]
        else:
            stale = f"exception covers {pinned!r}, SBOM now declares {review.license_display!r}"
            review.note = "; ".join(filter(None, (review.note, stale)))
    return review


def runtime_closure(sbom: dict[str, Any]) -> set[str]:
    """bom-refs reachable from the root component through the SBOM's dependency graph."""
    root = ((sbom.get("metadata") or {}).get("component") or {}).get("bom-ref")
    graph = {d.get("ref"): d.get("dependsOn") or [] for d in sbom.get("dependencies") or []}
    seen: set[str] = set()
    stack = list(graph.get(root, []))
    while stack:
        ref = stack.pop()
        if ref not in seen:
            seen.add(ref)
            stack.extend(graph.get(ref, []))
    return seen


def review_sbom(sbom: dict[str, Any], policy: Policy) -> LicenseReview:
    closure = runtime_closure(sbom)
    components = [
        review_component(c, policy, runtime=c.get("bom-ref") in closure)
        for c in sbom.get("components") or []
        if isinstance(c, dict)
    ]
    components.sort(key=lambda c: (canonical_name(c.name), c.version))
    used = {canonical_name(c.name) for c in components if c.exception}
    unused = sorted(n for n in policy.exceptions if n not in used)
    return LicenseReview(components=components, unused_exceptions=unused)
