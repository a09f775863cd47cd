"""Release report generator: turns a qualification evidence directory into a GA bundle.

Run ``python -m reports --help``. The evidence-directory contract is in ``docs/design.md``.
"""
