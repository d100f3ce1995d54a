"""What a report needs to know, independent of how the case store keeps it.

`collect.collect_report_data` fills these from a `Case`; tests and the benchmark may also
build them directly. Probability maps are loaded lazily (`EvidenceItem.load_map`) because a
50-item case of 12-megapixel photos would not fit in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from declip_desktop.common.facts import DEFAULT_THRESHOLD  # noqa: F401  (re-exported for callers)


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the model that produced an analysis, from the card snapshot stored with it."""

    name: str
    sha256: str
    backbone: str | None = None
    layer: str | None = None
    decoder: str | None = None
    training_set: str | None = None
    kind: str | None = None
    demo: bool = False
    label: str | None = None
    card_found: bool = False  # False: no snapshot with the result; only its name and hash are known
    software_version: str | None = None  # of the software that wrote the model card
    score_meaning: str | None = None  # what its image score means (common.score_meaning), from the card


@dataclass(frozen=True)
class AnalysisInfo:
    status: str  # "done" or "failed"
    model: ModelInfo
    score: float | None = None
    error: str | None = None
    parameters: dict = field(default_factory=dict)
    device: str | None = None
    seconds: float | None = None
    started: str | None = None
    finished: str | None = None
    software_version: str | None = None


@dataclass(frozen=True)
class AnnotationInfo:
    """An analyst's box or lasso on the item (`cases.annotations`); `shape` in image pixels."""

    id: int
    kind: str  # "box" | "lasso"
    label: str
    note: str
    author: str
    created_at: str
    shape: Any  # common.shapes.Shape
    edited_by: str | None = None
    edited_at: str | None = None


@dataclass(frozen=True)
class EvidenceItem:
    id: int
    name: str
    sha256: str
    md5: str
    size: int | None
    format: str | None
    width: int | None
    height: int | None
    metadata: dict
    status: str  # queued | analysing | done | failed | skipped
    verdict: str
    notes: str
    threshold: float  # the threshold this report applies
    analysis: AnalysisInfo | None
    image_path: Path | None
    #: Returns the float32 map of the latest successful analysis (hash-checked by the case).
    load_map: Callable[[], np.ndarray] | None = None
    imported_by: str | None = None
    imported_at: str | None = None
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    #: Where `threshold` comes from: "reviewed" (set by the analyst for this item), "case" (the
    #: case's default threshold, set in its audit log), "default" (nobody chose one: 0.5) or
    #: "report" (one threshold chosen for this report).
    threshold_source: str = "reviewed"
    #: Metadata, alerts and C2PA rows for the details page (reports.forensics_rows).
    forensics: list[tuple[str, str]] = field(default_factory=list)
    #: Views, alerts and C2PA summaries pinned by the analyst (reports.pinned_pages.PinnedItem).
    pinned: list = field(default_factory=list)
    #: Chain of custody: the path the file was imported from, and its own timestamps then.
    original_path: str | None = None
    file_times: dict = field(default_factory=dict)  # {"modified": ISO time, "changed": ISO time}
    #: The analyst's annotations (`AnnotationInfo`), drawn on the image pages and listed with the regions.
    annotations: list = field(default_factory=list)
    #: The analyst's tags and bookmark (cases.tags): labels for finding items, not findings.
    tags: tuple[str, ...] = ()
    bookmarked: bool = False
    #: The tiled (native-resolution) map's rows for the details page (reports.tiling_rows); empty
    #: when the item was analysed by the squash alone.
    tiling: list = field(default_factory=list)
    #: Agreement across models and stability under re-compression (reports.robustness_rows.Robustness).
    robustness: Any = None

    @property
    def score(self) -> float | None:
        return self.analysis.score if self.analysis and self.analysis.status == "done" else None

    @property
    def failed(self) -> bool:
        return self.analysis is not None and self.analysis.status == "failed"

    @property
    def analysed(self) -> bool:
        return self.analysis is not None and self.analysis.status == "done" and self.load_map is not None


@dataclass(frozen=True)
class AuditRow:
    time: str
    actor: str
    action: str
    object: str
    details: str  # "key: value; …" of every value, as the case's log holds it
    #: The entry's values without those only verify needs; the appendix summarises these.
    fields: dict = field(default_factory=dict)
    #: The whole entry as the case holds it (seq, values, chain hashes): attached to the PDF.
    entry: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Examiner:
    """The case's examiner and request fields (`cases.examiner`), declaration already filled in."""

    name: str = ""
    role: str = ""
    organisation: str = ""
    requester: str = ""
    reference: str = ""
    question: str = ""
    declaration: str = ""


@dataclass(frozen=True)
class ReportData:
    case_number: str
    case_title: str
    analyst: str
    description: str
    case_created: str | None
    generated_at: datetime  # timezone-aware
    software: str
    evidence: list[EvidenceItem]
    audit: list[AuditRow]
    generated_by: str | None = None
    whole_case: bool = True  # False when the analyst chose a subset of the evidence
    case_evidence_count: int | None = None
    threshold_override: float | None = None  # one threshold for every item, chosen for this report
    # The case's audit head when the data was collected: printed, so the report anchors the history.
    audit_head: str = ""
    audit_count: int = 0
    case_uuid: str = ""
    examiner: Examiner = field(default_factory=Examiner)
    #: References and calibrations in force (reports.calibration_section.ReportCalibration) or None.
    calibration: object | None = None

    @property
    def demo(self) -> bool:
        """Any item analysed with a demo model (from the result's own card snapshot)."""
        return any(it.analysis is not None and it.analysis.model.demo for it in self.evidence)

    @property
    def unreviewed(self) -> int:
        """Items the analyst has not reviewed yet: the report is a draft."""
        return sum(1 for it in self.evidence if it.verdict == "not reviewed")
