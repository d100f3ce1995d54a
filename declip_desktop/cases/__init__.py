"""Case folders: SQLite store, evidence import, audit trail, verification. No Qt, no torch.

Public surface (see docs/ARCHITECTURE.md): `Case`, its records and `CaseError`.
"""

from declip_desktop.cases.case import Case
from declip_desktop.cases.errors import CaseBusyError, CaseError, CaseReadOnlyError, NewerSchemaError
from declip_desktop.cases.records import (
    STATUSES,
    VERDICTS,
    Analysis,
    AuditEntry,
    CaseInfo,
    Evidence,
    ImportReport,
    Problem,
    Rejection,
    VerifyReport,
)

__all__ = [
    "STATUSES",
    "VERDICTS",
    "Analysis",
    "AuditEntry",
    "Case",
    "CaseBusyError",
    "CaseError",
    "CaseReadOnlyError",
    "CaseInfo",
    "Evidence",
    "ImportReport",
    "NewerSchemaError",
    "Problem",
    "Rejection",
    "VerifyReport",
]
