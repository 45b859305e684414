"""Errors raised by the data pipeline."""

from __future__ import annotations

from typing import Any


class DataError(ValueError):
    """Raw input the pipeline cannot use: missing or empty files, or too many malformed rows.

    The message always says what was expected and, for row problems, names the file and the
    1-based line number.

    Args:
        message: human-readable description.
        report: optional machine-readable details (malformed counts per file and reason, the first
            offending lines), the same structure that goes into ``manifest.json``.
    """

    def __init__(self, message: str, *, report: dict[str, Any] | None = None):
        super().__init__(message)
        self.report = report or {}
