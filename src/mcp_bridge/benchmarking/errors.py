"""Errors the benchmark reports as one line (no traceback)."""

from __future__ import annotations


class BenchmarkError(Exception):
    """A run that cannot go on; str() is the one line shown to the user."""
