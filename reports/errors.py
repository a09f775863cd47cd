"""Errors the CLI turns into a one-line message and a non-zero exit (no traceback)."""


class ReportInputError(Exception):
    """Bad input: missing evidence directory, unreadable run.json, unsafe output path, ..."""
