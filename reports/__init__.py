"""Release report generator: turns a qualification evidence directory into a GA bundle.

Run ``python -m reports --help``. The evidence-directory contract is in ``docs/design.md``.
"""

__all__ = ["__version__"]

__version__ = "1"
