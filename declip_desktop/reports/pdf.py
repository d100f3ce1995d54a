"""Painting a report into a PDF with QPdfWriter and QPainter.

Page plan (fixed, so a reader and a test can predict it):
  1                       cover
  2 .. 1+S                summary table (S = 1 for up to ~25 items)
  then for each item      an image page (overlay, colour scale, original, mask) and a details page
  then M pages            method and limitations (M = 1 with the models we ship)
  then A pages            appendix: audit trail (and full notes that did not fit a details page)

The plan is laid out before anything is drawn, so every page can say "Page i of N". Images are
loaded one item at a time while drawing and released afterwards: memory stays flat for large cases.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from PySide6.QtCore import QMarginsF
from PySide6.QtGui import QPageLayout, QPageSize, QPainter, QPdfWriter

from declip_desktop.common.progress import StepProgress as ProgressFn
from declip_desktop.reports import layout as L
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
from declip_desktop.reports.pages_details import DetailPages
from declip_desktop.reports.pages_front import FrontPages
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


@dataclass
class _Plan:
    summary_pages: int
    method_pages: int
    appendix_pages: int
    notes_fit: dict[int, str]  # item id -> notes text as shown (truncated if needed)
    truncated_notes: list[EvidenceItem]
    pin_pages: int = 0  # pages of pinned views (reports.pinned_pages)

    def total(self, n_items: int) -> int:
        return 1 + self.summary_pages + 2 * n_items + self.pin_pages + self.method_pages + self.appendix_pages


class ReportRenderer(FrontPages, ImagePages, DetailPages, PageCanvas):
    """Lays out the page plan, then draws the pages in order (see the module docstring)."""

    def __init__(
        self,
        data: ReportData,
        progress: ProgressFn | None = None,
        should_stop: Callable[[], bool] | None = None,
        image_budget_total: int = IMAGE_BUDGET_TOTAL,
    ) -> None:
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
            self._document_pages(self.appendix_doc, plan.appendix_pages)
            if self.progress:
                self.progress(len(d.evidence), len(d.evidence), "finishing")
        finally:
            painter.end()
        if self.page_no != self.total_pages:  # a layout bug, not a user error: fail loudly
            raise ReportError(f"internal layout error: planned {self.total_pages} pages, drew {self.page_no}")
        return RenderStats(self.page_no, time.perf_counter() - t0, self.estimated_image_bytes, self.phases, self.sides,
                           self.items)

    def _tick(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        with self._phase_lock:  # the worker thread and the painter both record phases
            self.phases[phase] = self.phases.get(phase, 0.0) + now - since
        return now

    # -- planning ----------------------------------------------------------------------------

    def _plan(self) -> _Plan:
        area = L.content_rect()
        d = self.data
        summary_pages = max(1, math.ceil(len(d.evidence) / SUMMARY_ROWS_PER_PAGE))
        models = distinct_models(d.evidence)
        uniform = d.threshold_override
        self.method_doc = L.new_document(self.writer, area.width(), self.fonts.body, method_html(models, uniform), area.height())
        notes_fit: dict[int, str] = {}
        truncated: list[EvidenceItem] = []
        width, height = self._notes_box_size()
        for item in d.evidence:
            shown = self._fit_text(item.notes or "(no notes)", width, height)
            notes_fit[item.id] = shown
            if shown != (item.notes or "(no notes)"):
                truncated.append(item)
        self.appendix_doc = L.new_document(
            self.writer, area.width(), self.fonts.small, self._appendix_html(truncated), area.height()
        )
        return _Plan(
            summary_pages=summary_pages,
            method_pages=self.method_doc.pageCount(),
            appendix_pages=self.appendix_doc.pageCount(),
            notes_fit=notes_fit,
            truncated_notes=truncated,
            pin_pages=sum(pin_page_count(item.pinned) for item in d.evidence),
        )

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

    def _appendix_html(self, truncated: list[EvidenceItem]) -> str:
        d = self.data
        names = {item.id: item.name for item in d.evidence}
        rows = "".join(
            "<tr>"
            f"<td>{escape(a.time)}</td><td>{escape(a.actor)}</td><td>{escape(a.action)}</td>"
            f"<td>{escape(a.object)}</td><td>{escape(a.details)}</td>"
            "</tr>"
            for a in d.audit
        ) or "<tr><td colspan='5'>The audit log holds no entry for this evidence.</td></tr>"
        html = (
            "<h2>Appendix A — Audit trail of the included evidence</h2>"
            "<p class='muted'>Entries from the case's audit log that concern the case or the evidence in this report, "
            f"oldest first ({len(d.audit)} entries). Times as recorded by the case store.</p>"
            + _anchor_html(d) +
            "<table width='100%' border='0.5' cellspacing='0' cellpadding='2'>"
            "<thead><tr><th width='14%'>Time</th><th width='9%'>By</th><th width='15%'>Action</th>"
            "<th width='11%'>Object</th><th width='51%'>Details</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
        if truncated:
            html += "<h2>Appendix B — Notes in full</h2>"
            for item in truncated:
                html += (
                    f"<h3>ID {item.id} · {escape(names[item.id])}</h3>"
                    f"<p style='white-space: pre-wrap'>{escape(item.notes)}</p>"
                )
        return html


def _anchor_html(d: ReportData) -> str:
    """The audit head this report was made at: `declip case verify CASE --anchor THIS.pdf` proves the
    case's history still holds it (docs/INTEGRITY.md)."""
    if not d.audit_head:
        return ""
    return (f"<p><b>History anchor.</b> When this report was made the case's audit trail had {d.audit_count} "
            f"entries; the last one's SHA-256 is <tt>{escape(d.audit_head)}</tt>. Keep this page: "
            "<tt>declip case verify</tt> with this report as <tt>--anchor</tt> checks the history still holds it.</p>")
