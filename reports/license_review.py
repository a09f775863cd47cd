"""SBOM → licence review (``license-review.md`` in the bundle; also runnable alone).

``python -m reports.license_review [--repo-root .] [--sbom FILE] [--version X]`` regenerates
``docs/compliance/license-review.md`` without an evidence directory (that is what it is asked for);
exit 1 on policy violations, 2 on bad input. ``python -m reports`` writes the review into its bundle
and copies it into the repository only on a GA PASS.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from .licenses import (
    DEFAULT_POLICY,
    LicenseReview,
    Policy,
    PolicyError,
    load_policy,
    review_sbom,
)
from .project import read_version
from .render import make_env, render
from .sbom import SbomError, generate_sbom, load_sbom

SBOM_NAME = "sbom.cdx.json"
REVIEW_NAME = "license-review.md"
LICENSE_REVIEW_PATH = Path("docs/compliance/license-review.md")
SBOM_DISPLAY = (
    "cyclonedx-py environment --sv 1.6 --of JSON --output-reproducible --mc-type application "
    '--pyproject pyproject.toml -o reports/{version}/sbom.cdx.json "$(command -v python)"'
)


def regenerate(
    supplied: tuple[str, bytes] | None,
    root: Path,
    sbom_target: Path,
    doc: Path,
    version: str,
    policy: Policy,
) -> tuple[LicenseReview | None, str | None]:
    """Write the SBOM to *sbom_target* (generated, or the *supplied* bytes) and the review to *doc*.

    Returns (review, None), or (None, reason) when no SBOM could be produced; *doc* is then left
    untouched.
    """
    try:
        if supplied is not None:
            sbom_target.write_bytes(supplied[1])
            how = f"supplied with --sbom ({supplied[0]})"
        else:
            generate_sbom(sbom_target, root / "pyproject.toml")
            how = SBOM_DISPLAY.format(version=version)
        sbom = load_sbom(sbom_target)
    except (SbomError, OSError) as exc:
        return None, str(exc)
    review = review_sbom(sbom, policy)
    context = {
        "version": version,
        "review": review,
        "how": how,
        "policy": policy,
        "spec": sbom.get("specVersion", "?"),
        "root": (sbom.get("metadata") or {}).get("component") or {},
        "bundle_sbom": f"reports/{version}/{SBOM_NAME}",
    }
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(make_env(), "license-review.md.j2", context), encoding="utf-8")
    return review, None


def main(argv: list[str] | None = None) -> int:
    from .errors import ReportInputError

    parser = argparse.ArgumentParser(prog="python -m reports.license_review")
    parser.add_argument("--repo-root", type=Path, default=Path("."))
    parser.add_argument("--sbom", type=Path, help="existing CycloneDX JSON (default: generate)")
    parser.add_argument("--sbom-out", type=Path, help="also keep the SBOM here")
    parser.add_argument("--version")
    parser.add_argument("--license-policy", type=Path, default=DEFAULT_POLICY)
    args = parser.parse_args(argv)
    root = args.repo_root.resolve()
    try:
        version = args.version or read_version(root / "pyproject.toml")
        policy = load_policy(args.license_policy)
        supplied = (args.sbom.name, args.sbom.read_bytes()) if args.sbom else None
    except (ReportInputError, PolicyError) as exc:
        print(f"python -m reports.license_review: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"python -m reports.license_review: error: {args.sbom}: {exc.strerror}", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / SBOM_NAME
        review, error = regenerate(
            supplied, root, target, root / LICENSE_REVIEW_PATH, version, policy
        )
        if review is not None and args.sbom_out:
            args.sbom_out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target, args.sbom_out)
    if review is None:
        print(f"python -m reports.license_review: error: {error}", file=sys.stderr)
        return 2
    print(
        f"{root / LICENSE_REVIEW_PATH}: {len(review.components)} components, "
        f"{len(review.violations)} violation(s)"
    )
    for comp in review.violations:
        print(
            f"  {comp.name} {comp.version}: {comp.license_display} ({comp.verdict})",
            file=sys.stderr,
        )
    return 1 if review.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
