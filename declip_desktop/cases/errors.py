"""The one exception type of the cases layer: its message says what happened and what to do."""

from __future__ import annotations


class CaseError(Exception):
    """A case could not be created, opened, changed or read as asked."""


class NewerSchemaError(CaseError):
    """The case was written by a newer DeCLIP Desktop; it is refused and left untouched."""


class CaseBusyError(CaseError):
    """Another process or thread holds what this operation needs (e.g. an analysis run)."""


class CaseReadOnlyError(CaseError):
    """The case was opened read-only (verify, status, export, read-only media); nothing can change it."""
