"""`python -m qualification.power [--fault ID …] [--subset N --seed S] [-- pytest args]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .runner import load_catalogue, run, select, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qualification.power", description=__doc__)
    parser.add_argument("--fault", action="append", default=[], help="only these fault ids")
    parser.add_argument("--subset", type=int, default=None, help="a rotating subset of N faults")
    parser.add_argument("--seed", default="", help="picks the subset's offset (e.g. a commit)")
    parser.add_argument("--out", type=Path, default=None, help="write the score as JSON here")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument("pytest_args", nargs="*", help="passed to each pytest run (after --)")
    args = parser.parse_args(argv)
    try:
        faults = load_catalogue()
    except (OSError, ValueError, KeyError) as error:
        print(f"power: catalogue: {error}", file=sys.stderr)
        return 2
    if args.list:
        for fault in faults:
            print(f"{fault.id:<36} {', '.join(fault.checks):<40} {fault.description}")
        return 0
    if args.fault:
        unknown = sorted(set(args.fault) - {f.id for f in faults})
        if unknown:
            print(f"power: no such fault: {', '.join(unknown)}", file=sys.stderr)
            return 2
        faults = [f for f in faults if f.id in args.fault]
    score = run(select(faults, args.subset, args.seed), args.pytest_args)
    if args.out:
        write(score, args.out)
    figures = score.as_dict()
    return 0 if score.share >= 0.95 and not figures["invalid"] and not figures["unverified"] else 1


if __name__ == "__main__":
    sys.exit(main())
