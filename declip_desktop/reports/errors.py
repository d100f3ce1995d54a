"""The reports' errors: every failure a caller handles, with a message for the user."""

from __future__ import annotations


class ReportError(RuntimeError):
    """A report could not be made; the message says why and what to do."""


class ReportCancelled(ReportError):
    """The analyst cancelled the report between items; nothing was kept."""


__all__ = ["ReportCancelled", "ReportError"]
