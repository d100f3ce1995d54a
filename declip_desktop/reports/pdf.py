"""Painting a report into a PDF with QPdfWriter and QPainter.

Page plan (fixed, so a reader and a test can predict it):
  1                       cover
  2 .. 1+S                summary table (S = 1 for up to ~25 items; compact layout: the summary starts
                          on the cover, and S = 0 while all rows fit there)
  then for each item      layout "full": an image page (overlay, colour scale, original, mask) and a
                          details page; layout "compact": one page with both
  then M pages            how to read, method and limitations, the examiner's declaration; compact layout:
                          then the audit trail summarised per action and notes in full, in the same flow
  then A pages            full layout: appendices (audit trail, hash annex, notes that did not fit)

The cover carries the table of contents; the same sections become the PDF's outline (bookmarks,
added by `reports.build`), so the ToC's page numbers and the outline cannot disagree.

The plan is laid out before anything is drawn, so every page can say "Page i of N". Images are
loaded one item at a time while drawing and released afterwards: memory stays flat for large cases.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QMarginsF
from PySide6.QtGui import QPageLayout, QPageSize, QPainter, QPdfWriter

from declip_desktop.common.progress import StepProgress as ProgressFn
from declip_desktop.reports import layout as L
from declip_desktop.reports.annotation_pages import AnnotationPages
from declip_desktop.reports.appendix import APPENDIX_A, APPENDIX_B, APPENDIX_C, appendix_html, notes_in_full_html
from declip_desktop.reports.audit_summary import audit_summary_html
from declip_desktop.reports.attestation import DECLARATION_HEADING, attestation_html
from declip_desktop.reports.calibration_section import calibration_html
from declip_desktop.reports.errors import ReportError
from declip_desktop.reports.fonts import ensure_gui_application
from declip_desktop.reports.formatting import distinct_models
from declip_desktop.reports.model import EvidenceItem, ReportData
from declip_desktop.reports.pages_base import (
    IMAGE_BUDGET_ITEM_MAX,
    IMAGE_BUDGET_TOTAL,
    SUMMARY_ROWS_PER_PAGE,
    PageCanvas,
)
from declip_desktop.reports.pages_compact import CompactPages
from declip_desktop.reports.pages_details import DetailPages
from declip_desktop.reports.pages_front import MIN_SUMMARY_ROW_MM, SUMMARY_LEGEND_MM, FrontPages
from declip_desktop.reports.pages_images import ImagePages
from declip_desktop.reports.pinned_pages import pin_page_count
from declip_desktop.reports.texts import method_html


@dataclass
class RenderStats:
    pages: int
    seconds: float
    estimated_image_bytes: int
    phases: dict  # seconds spent per phase (load, map, prepare, paint, …), for the benchmark
    sides: list  # (overlay long side, original long side) embedded per analysed item
    items: list = field(default_factory=list)  # pages_images.ItemFigures per item, in report order
    sections: list = field(default_factory=list)  # Section per ToC / outline entry, in page order


LAYOUTS = ("full", "compact")


@dataclass(frozen=True)
class Section:
    """One table-of-contents line and PDF bookmark: `page` is 1-based; level 1 nests under 0."""

    title: str
    page: int
    level: int = 0


@dataclass
class _Plan:
    summary_pages: int  # pages after the cover
    method_pages: int
    appendix_pages: int
    notes_fit: dict[int, str]  # item id -> notes text as shown (truncated if needed)
    truncated_notes: list[EvidenceItem]
    pin_pages: int = 0  # pages of pinned views (reports.pinned_pages)
    item_pages: int = 2  # per evidence item: 2 in the full layout, 1 in the compact one
    sections: list[Section] = field(default_factory=list)
    item_starts: list[int] = field(default_factory=list)  # first page of each item (pinned views vary)
    cover_summary_rows: int = 0  # summary rows on the cover (compact layout)
    summary_row_h: float | None = None  # device pixels; None: the layout's standard row

    def total(self, n_items: int) -> int:
        return (1 + self.summary_pages + self.item_pages * n_items + self.pin_pages + self.method_pages
                + self.appendix_pages)

    def first_item_page(self) -> int:
        return 2 + self.summary_pages


class ReportRenderer(FrontPages, ImagePages, DetailPages, CompactPages, AnnotationPages, PageCanvas):
    """Lays out the page plan, then draws the pages in order (see the module docstring)."""

    def __init__(
        self,
        data: ReportData,
        progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None,
        image_budget_total: int = IMAGE_BUDGET_TOTAL,
        layout: str = "full",
    ) -> None:
        if layout not in LAYOUTS:
            raise ReportError(f"unknown report layout {layout!r}. Choose one of: {', '.join(LAYOUTS)}")
        self.layout = layout
        if not data.evidence:
            raise ReportError("the report would contain no evidence. Import images into the case, or choose evidence IDs that exist")
        self.data = data
        self.progress = progress
        self.should_stop = should_stop
        n = len(data.evidence)
        self.item_budget = int(min(IMAGE_BUDGET_ITEM_MAX, image_budget_total / n))
        self.page_no = 0
        self.total_pages = 0
        self.estimated_image_bytes = 0
        self.phases: dict[str, float] = {}
        self._phase_lock = threading.Lock()
        self.sides: list[tuple[int, int]] = []
        self.items: list = []

    # -- public ------------------------------------------------------------------------------

    def render(self, path: Path) -> RenderStats:
        t0 = time.perf_counter()
        ensure_gui_application()
        self.fonts = L.Fonts()
        writer = QPdfWriter(str(path))
        writer.setResolution(L.RESOLUTION)
        writer.setPageLayout(
            QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait, QMarginsF(0, 0, 0, 0))
        )
        d = self.data
        writer.setTitle(f"Case {d.case_number}: {d.case_title} — forensic image analysis report")
        writer.setAuthor(d.analyst)
        writer.setCreator(d.software)
        painter = QPainter()
        if not painter.begin(writer):
            raise ReportError(f"cannot write the PDF file {path}. Check that the folder exists and is writable")
        self.painter = painter
        self.writer = writer
        try:
            plan = self._plan()
            self.plan = plan
            self.total_pages = plan.total(len(d.evidence))
            self._cover()
            self._summary()
            self._all_evidence()
            self._document_pages(self.method_doc, plan.method_pages)
            if self.appendix_doc is not None:
                self._document_pages(self.appendix_doc, plan.appendix_pages)
            if self.progress:
                self.progress(len(d.evidence), len(d.evidence), "finishing")
        finally:
            painter.end()
        if self.page_no != self.total_pages:  # a layout bug, not a user error: fail loudly
            raise ReportError(f"internal layout error: planned {self.total_pages} pages, drew {self.page_no}")
        return RenderStats(self.page_no, time.perf_counter() - t0, self.estimated_image_bytes, self.phases, self.sides,
                           self.items, list(self.plan.sections))

    def _tick(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        with self._phase_lock:  # the worker thread and the painter both record phases
            self.phases[phase] = self.phases.get(phase, 0.0) + now - since
        return now

    # -- planning ----------------------------------------------------------------------------

    def _plan(self) -> _Plan:
        area = L.content_rect()
        d = self.data
        compact = self.layout == "compact"
        summary_pages = max(1, math.ceil(len(d.evidence) / SUMMARY_ROWS_PER_PAGE))
        notes_fit: dict[int, str] = {}
        truncated: list[EvidenceItem] = []
        if self.layout == "compact":
            box = self._compact_notes_box()
            width, height = box.width(), box.height()
        else:
            width, height = self._notes_box_size()
        for item in d.evidence:
            shown = self._fit_text(item.notes or "(no notes)", width, height)
            notes_fit[item.id] = shown
            if shown != (item.notes or "(no notes)"):
                truncated.append(item)
        models = distinct_models(d.evidence)
        robust = any(getattr(item.robustness, "rows", None) for item in d.evidence)  # agreement / stability
        method = (method_html(models, d.threshold_override, compact=compact,
                              tiled=any(item.tiling for item in d.evidence), robust=robust)
                  + calibration_html(d.calibration))
        # Compact: the audit summary (and notes in full) follow the declaration in the same flow.
        tail = audit_summary_html(d) + notes_in_full_html(truncated) if compact else ""
        self.method_doc = L.new_document(self.writer, area.width(), self.fonts.body,
                                         method + attestation_html(d) + tail, area.height())
        if L.block_split(self.method_doc, DECLARATION_HEADING, APPENDIX_A if compact else None):
            # The declaration and its signature lines stay on one page.
            self.method_doc = L.new_document(self.writer, area.width(), self.fonts.body,
                                             method + attestation_html(d, new_page=True) + tail, area.height())
        self.appendix_doc = None if compact else L.new_document(
            self.writer, area.width(), self.fonts.small, appendix_html(d, truncated), area.height()
        )
        plan = _Plan(
            summary_pages=summary_pages,
            method_pages=self.method_doc.pageCount(),
            appendix_pages=0 if self.appendix_doc is None else self.appendix_doc.pageCount(),
            notes_fit=notes_fit,
            truncated_notes=truncated,
            pin_pages=sum(pin_page_count(item.pinned) for item in d.evidence),
            item_pages=1 if self.layout == "compact" else 2,
        )
        if compact:
            self._plan_cover_summary(plan)
        plan.sections = self._sections(plan)
        return plan

    def _plan_cover_summary(self, plan: _Plan) -> None:
        """How many summary rows fit on the cover under its fields and contents (compact layout)."""
        area = L.content_rect()
        n = len(self.data.evidence)
        sections = sum(1 for s in self._sections(plan) if s.level == 0)  # their number, not their pages
        y = self._demo_box(self._cover_fields(draw=False) + L.mm(4), draw=False) + L.mm(2)
        heading = L.text_height(self.painter, self.fonts.h2, area.width(), "Summary of results") + L.mm(1.5)
        y += self.contents_height(sections) + L.mm(4) + heading + L.mm(6)  # gap, heading, table header
        room = area.bottom() - y - L.mm(2)  # a margin for rounding
        row_h = self.summary_row_height()
        rows = max(0, int((room - L.mm(SUMMARY_LEGEND_MM + 3)) // row_h))  # all of them, and the legend
        if rows < n and (room - L.mm(SUMMARY_LEGEND_MM + 3)) / n >= L.mm(MIN_SUMMARY_ROW_MM):
            rows, plan.summary_row_h = n, (room - L.mm(SUMMARY_LEGEND_MM + 3)) / n  # a little tighter: all fit
        elif rows < n:
            rows = max(0, int(room // row_h))  # not all: the legend goes under the last row, overleaf
        if rows >= min(n, 3):  # fewer than three rows on the cover would only split the table
            plan.cover_summary_rows = min(n, rows)
            plan.summary_pages = math.ceil((n - plan.cover_summary_rows) / SUMMARY_ROWS_PER_PAGE)

    def _sections(self, plan: _Plan) -> list[Section]:
        d = self.data
        first = plan.first_item_page()
        plan.item_starts = []
        page = first
        for item in d.evidence:  # each item's pages, then its pinned views
            plan.item_starts.append(page)
            page += plan.item_pages + pin_page_count(item.pinned)
        method = page
        appendix = method + plan.method_pages
        out = [Section("Cover and table of contents", 1), Section("Summary of results", 1 if plan.cover_summary_rows else 2),
               Section("Evidence items", first)]
        out += [Section(f"{k + 1}. ID {it.id} · {it.name}", plan.item_starts[k], 1)
                for k, it in enumerate(d.evidence)]
        out.append(Section("Method and limitations", method))
        out.append(Section(DECLARATION_HEADING, method + L.heading_page(self.method_doc, DECLARATION_HEADING)))
        for doc, start in ((self.method_doc, method), (self.appendix_doc, appendix)):
            for title in (APPENDIX_A, APPENDIX_B, APPENDIX_C):
                index = L.heading_page(doc, title) if doc is not None else None
                if index is not None:
                    out.append(Section(title, start + index))
        return out

    def _fit_text(self, text: str, width: float, height: float) -> str:
        font = self.fonts.body
        if L.text_height(self.painter, font, width, text) <= height:
            return text
        suffix = " … [notes continue in the appendix]"
        lo, hi = 0, len(text)
        while lo < hi:  # longest prefix that fits with the suffix
            mid = (lo + hi + 1) // 2
            if L.text_height(self.painter, font, width, text[:mid].rstrip() + suffix) <= height:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo].rstrip() + suffix

    # -- flowing documents -------------------------------------------------------------------

    def _document_pages(self, doc, pages: int) -> None:
        for index in range(pages):
            self._start_page()
            L.draw_document_page(self.painter, doc, index, L.content_rect())
