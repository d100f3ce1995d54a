"""Forensic examination of case evidence: metadata, alerts and Content Credentials at import
(`records`), classical views on demand, cached in the case (`views`).

Why here (application layer, below `analysis`/`reports`, above `cases`/`forensics`): `cases`
and `forensics` are independent peers; this package is the one place that joins them, so
neither imports the other and the case's import code stays as it is. Everything under
`CASE/forensics/` is derived data, recomputable from the evidence; never evidence.
"""

from declip_desktop.examination.records import (
    ACTION,
    FAILED_ACTION,
    FORENSICS_DIR,
    TRUST_SETTING,
    Examination,
    ExaminationChanged,
    ExaminationError,
    alert_summaries,
    examine_evidence,
    examine_many,
    import_and_examine,
    load_c2pa_manifest,
    load_examination,
    verify_examinations,
)
from declip_desktop.examination.views import cached_view, store_view, view_context

__all__ = [
    "ACTION",
    "FAILED_ACTION",
    "FORENSICS_DIR",
    "TRUST_SETTING",
    "Examination",
    "ExaminationChanged",
    "ExaminationError",
    "alert_summaries",
    "cached_view",
    "examine_evidence",
    "examine_many",
    "import_and_examine",
    "load_c2pa_manifest",
    "load_examination",
    "store_view",
    "verify_examinations",
    "view_context",
]
