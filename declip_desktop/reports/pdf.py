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

import itertools
import math
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import (
    QColor,
    QFontMetricsF,
    QLinearGradient,
    QPageLayout,
    QPageSize,
    QPainter,
    QPainterPath,
    QPdfWriter,
    QPen,
    QPolygonF,
)

from declip_desktop.common import regions as regions_mod
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.images import ImageError
from declip_desktop.reports import imaging
from declip_desktop.reports import layout as L
from declip_desktop.reports.fonts import ensure_gui_application
from declip_desktop.reports.model import EvidenceItem, ModelInfo, ReportData
from declip_desktop.reports.texts import DEMO_LABEL, method_html

#: Bytes of embedded raster images for a whole report; split evenly between items.
IMAGE_BUDGET_TOTAL = 50 * 1024 * 1024
#: No single item needs more than this (two 2000-px JPEGs of a busy photo at Qt's quality).
IMAGE_BUDGET_ITEM_MAX = 8 * 1024 * 1024
SUMMARY_ROWS_PER_PAGE = 25
MAX_REGION_ROWS = 12
#: Longer metadata values are cut (the full metadata is in the case's JSON export).
MAX_VALUE_CHARS = 160
COLORMAP = "inferno"


class ReportError(RuntimeError):
    """A report could not be made; the message says why and what to do."""


class ReportCancelled(ReportError):
    pass


ProgressFn = Callable[[int, int, str], None]


def fmt_score(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def fmt_threshold(value: float) -> str:
    return f"{value:.2f}"


def short_hash(sha: str) -> str:
    return f"{sha[:12]}…{sha[-4:]}" if len(sha) > 16 else sha


def result_label(item: EvidenceItem) -> str:
    if item.analysed:
        return "analysed"
    if item.failed:
        return "ANALYSIS FAILED"
    return f"not analysed ({item.status})"


VERDICT_COLORS = {
    "manipulated": L.ALERT,
    "authentic": L.OK,
    "inconclusive": QColor(160, 100, 0),
}


# ----------------------------------------------------------------------------------------------
# Metadata shown on the details page


def _flatten(meta: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in (meta or {}).items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}".lower()] = value
    return flat


def _pick(flat: dict[str, object], *names: str) -> str | None:
    for name in names:
        for key, value in flat.items():
            if (key == name or key.endswith("." + name)) and value not in (None, ""):
                return str(value).strip()
    return None


def key_metadata(item: EvidenceItem) -> list[tuple[str, str]]:
    """Camera, capture date, software and dimensions, whatever names the importer used."""
    flat = _flatten(item.metadata)
    camera = _pick(flat, "camera")
    if camera is None:
        make, model = _pick(flat, "make", "camera_make"), _pick(flat, "model", "camera_model")
        if model and make and model.lower().startswith(make.lower()):
            make = None  # many cameras repeat the maker in the model name
        camera = " ".join(filter(None, (make, model))) or None
    captured = _pick(flat, "capture_date", "captured", "datetimeoriginal", "datetime_original", "datetime", "date_time")
    software = _pick(flat, "software", "processing_software")
    dims = f"{item.width} × {item.height} px" if item.width and item.height else "unknown"
    return [
        ("Camera", camera or "not recorded"),
        ("Capture date", captured or "not recorded"),
        ("Software", software or "not recorded"),
        ("Dimensions", dims),
    ]


# ----------------------------------------------------------------------------------------------


@dataclass
class RenderStats:
    pages: int
    seconds: float
    estimated_image_bytes: int
    phases: dict  # seconds spent per phase (load, map, prepare, paint, …), for the benchmark
    sides: list  # (overlay long side, original long side) embedded per analysed item


#: Worker threads preparing items (hashing, decoding, regions, JPEG sizing release the GIL),
#: and how many items may be prepared ahead of the one being painted (each holds a reduced
#: image, overlay and mask, a few tens of MB).
PREPARE_WORKERS = max(1, min(2, (os.cpu_count() or 1)))
PREFETCH = PREPARE_WORKERS + 1


@dataclass
class _Prepared:
    integrity: str
    visuals: imaging.Visuals | None
    original: np.ndarray | None
    image_problem: str | None
    map_problem: str | None
    estimated_bytes: int


@dataclass
class _Plan:
    summary_pages: int
    method_pages: int
    appendix_pages: int
    notes_fit: dict[int, str]  # item id -> notes text as shown (truncated if needed)
    truncated_notes: list[EvidenceItem]

    def total(self, n_items: int) -> int:
        return 1 + self.summary_pages + 2 * n_items + self.method_pages + self.appendix_pages


class ReportRenderer:
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
        return RenderStats(self.page_no, time.perf_counter() - t0, self.estimated_image_bytes, self.phases, self.sides)

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
        models = _distinct_models(d.evidence)
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

    # -- page furniture ----------------------------------------------------------------------

    def _start_page(self) -> None:
        if self.page_no > 0:
            self.writer.newPage()
        self.page_no += 1
        p, f, d = self.painter, self.fonts, self.data
        left, right = L.mm(L.MARGIN_MM), L.mm(L.PAGE_W_MM - L.MARGIN_MM)
        top = L.mm(L.HEADER_TOP_MM)
        width = right - left
        head = f"Case {d.case_number} — {d.case_title}"
        p.setFont(f.small_bold)
        p.setPen(L.MUTED)
        p.drawText(
            QRectF(left, top, width * 0.68, L.mm(6)),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom),
            L.elide(p, f.small_bold, head, width * 0.68),
        )
        p.setFont(f.small)
        p.drawText(
            QRectF(left + width * 0.68, top, width * 0.32, L.mm(6)),
            int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom),
            "Forensic image analysis report",
        )
        L.hline(p, top + L.mm(7), left, right)
        foot = L.mm(L.FOOTER_TOP_MM)
        L.hline(p, foot, left, right)
        p.setFont(f.small)
        p.drawText(
            QRectF(left, foot + L.mm(1), width * 0.75, L.mm(5)),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
            f"{d.software} · generated {_fmt_time(d)}",
        )
        p.drawText(
            QRectF(left + width * 0.75, foot + L.mm(1), width * 0.25, L.mm(5)),
            int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop),
            f"Page {self.page_no} of {self.total_pages}",
        )

    def _heading(self, y: float, text: str, font=None) -> float:
        p = self.painter
        area = L.content_rect()
        font = font or self.fonts.h1
        h = L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(12)), L.elide(p, font, text, area.width()), font)
        return y + h + L.mm(1.5)

    # -- cover -------------------------------------------------------------------------------

    def _cover(self) -> None:
        self._start_page()
        p, f, d = self.painter, self.fonts, self.data
        area = L.content_rect()
        y = area.top() + L.mm(12)
        y += L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(12)), "Forensic image analysis report", f.title, L.MUTED)
        y += L.mm(6)
        y += L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(16)), f"Case {d.case_number}", f.big)
        y += L.mm(2)
        y += L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(26)), d.case_title, f.h1)
        y += L.mm(8)
        n_case = d.case_evidence_count if d.case_evidence_count is not None else len(d.evidence)
        included = f"{len(d.evidence)} of {n_case} in the case" + ("" if d.whole_case else " (selected by the analyst)")
        failed = sum(1 for it in d.evidence if it.failed)
        pending = sum(1 for it in d.evidence if not it.analysed and not it.failed)
        rows = [
            ("Case number", d.case_number),
            ("Case title", d.case_title),
            ("Analyst", d.analyst),
        ]
        if d.generated_by and d.generated_by != d.analyst:
            rows.append(("Report made by", d.generated_by))
        rows += [
            ("Report date and time", _fmt_time(d)),
            ("Software", d.software),
            ("Case created", d.case_created or "not recorded"),
            ("Evidence items", included),
            (
                "Threshold",
                (
                    f"{fmt_threshold(d.threshold_override)} for every item (chosen for this report)"
                    if d.threshold_override is not None
                    else "as set by the analyst for each item"
                ),
            ),
        ]
        if failed or pending:
            rows.append(("Not analysed", f"{failed} failed analysis, {pending} without a result (see their pages)"))
        y = self._kv_table(rows, y, area.left(), area.width(), L.mm(42))
        if d.description:
            y += L.mm(4)
            y += L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(8)), "Description", f.h2)
            y += L.mm(1)
            y += L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(40)), d.description, f.body)
        demo = [m for m in _distinct_models(d.evidence) if m.demo]
        box_y = max(y + L.mm(8), area.bottom() - L.mm(48))
        if demo:
            box = QRectF(area.left(), box_y - L.mm(16), area.width(), L.mm(13))
            L.frame(p, box, L.ALERT, L.ALERT_BG, 0.5)
            L.draw_text(
                p,
                box.adjusted(L.mm(3), L.mm(2), -L.mm(3), -L.mm(2)),
                f"DEMO MODEL — NOT FOR CASEWORK. At least one result in this report comes from "
                f"{', '.join(m.name for m in demo)}, which was trained on synthetic edits only.",
                f.body_bold,
                L.ALERT,
            )
        box = QRectF(area.left(), box_y, area.width(), L.mm(40))
        L.frame(p, box, L.RULE, L.SHADE)
        method_page = self.total_pages - self.plan.appendix_pages - self.plan.method_pages + 1
        L.draw_text(
            p,
            box.adjusted(L.mm(3), L.mm(3), -L.mm(3), -L.mm(3)),
            "How to read this report. Each evidence item has an image page (heat map, mask, original) and a "
            "details page (hashes, metadata, model, regions, the analyst's verdict and notes). Scores come from "
            "an automated model: a low score is not proof that an image is authentic, and a high score is "
            "evidence to weigh, not a verdict. The method, what the model was trained on and its limits are "
            f"explained on page {method_page}; the audit trail is in the appendix. "
            "The SHA-256 of this PDF is recorded in the case's audit log.",
            f.body,
        )

    def _kv_table(self, rows, y: float, x: float, width: float, key_w: float, font=None, mono_keys=()) -> float:
        """Label/value rows; values that look like hashes (no spaces, long) wrap anywhere."""
        p, f = self.painter, self.fonts
        font = font or f.body
        kfont = f.body_bold if font is f.body else f.small_bold
        for key, value in rows:
            value = value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"
            vfont = f.mono if key in mono_keys else font
            flags = L.HASH_FLAGS if (" " not in value and len(value) > 24) else L.TEXT_FLAGS
            h = max(L.text_height(p, kfont, key_w - L.mm(2), key), L.text_height(p, vfont, width - key_w, value, flags))
            L.draw_text(p, QRectF(x, y, key_w - L.mm(2), h + 2), key, kfont, L.MUTED)
            L.draw_text(p, QRectF(x + key_w, y, width - key_w, h + 2), value, vfont, flags=flags)
            y += h + L.mm(1.2)
        return y

    # -- summary -----------------------------------------------------------------------------

    def _summary(self) -> None:
        d = self.data
        first_evidence_page = 2 + self.plan.summary_pages
        for page in range(self.plan.summary_pages):
            self._start_page()
            chunk = d.evidence[page * SUMMARY_ROWS_PER_PAGE : (page + 1) * SUMMARY_ROWS_PER_PAGE]
            area = L.content_rect()
            y = self._heading(area.top(), "Summary" + (f" (continued)" if page else ""))
            y += L.mm(2)
            cols = [("#", 8), ("Evidence", 46), ("SHA-256", 36), ("Score", 14), ("Thr.", 11), ("Verdict", 22), ("Result", 25), ("Page", 12)]
            scale = area.width() / L.mm(sum(c[1] for c in cols))
            xs = [area.left()]
            for _, w in cols:
                xs.append(xs[-1] + L.mm(w) * scale)
            row_h = L.mm(8.6)
            self._table_header(cols, xs, y, L.mm(6))
            y += L.mm(6)
            for offset, item in enumerate(chunk):
                index = page * SUMMARY_ROWS_PER_PAGE + offset
                if offset % 2:
                    self.painter.fillRect(QRectF(area.left(), y, area.width(), row_h), L.SHADE)
                verdict_color = VERDICT_COLORS.get(item.verdict, L.MUTED)
                cells = [
                    (str(index + 1), self.fonts.small, L.INK),
                    (item.name, self.fonts.small, L.INK),
                    (short_hash(item.sha256), self.fonts.mono_small, L.INK),
                    (fmt_score(item.score), self.fonts.small_bold, L.INK),
                    (fmt_threshold(item.threshold) + ("*" if item.threshold_source == "default" else ""), self.fonts.small, L.INK),
                    (item.verdict, self.fonts.small_bold, verdict_color),
                    (result_label(item), self.fonts.small_bold if not item.analysed else self.fonts.small, L.ALERT if item.failed else L.INK),
                    (str(first_evidence_page + 2 * index), self.fonts.small, L.INK),
                ]
                for col, (text, font, color) in enumerate(cells):
                    rect = QRectF(xs[col] + L.mm(1), y + L.mm(1), xs[col + 1] - xs[col] - L.mm(2), row_h - L.mm(2))
                    if col == 1:  # one line; the full name is on the item's pages
                        text = L.elide(self.painter, font, text, rect.width())
                    L.draw_text(self.painter, rect, text, font, color)
                y += row_h
            L.hline(self.painter, y, area.left(), area.right())
            if page == self.plan.summary_pages - 1:
                y += L.mm(3)
                L.draw_text(
                    self.painter,
                    QRectF(area.left(), y, area.width(), L.mm(20)),
                    "Score: the model's image-level score in [0, 1]. Thr.: the threshold applied to the heat map for "
                    "the mask and regions (* = the default; the analyst did not set one for that item). Verdict: the analyst's review, not the model's output. The full SHA-256 "
                    "and MD5 of each file are on its details page.",
                    self.fonts.small,
                    L.MUTED,
                )

    def _table_header(self, cols, xs, y, h) -> None:
        p = self.painter
        p.fillRect(QRectF(xs[0], y, xs[-1] - xs[0], h), QColor(225, 225, 225))
        for col, (title, _) in enumerate(cols):
            L.draw_text(p, QRectF(xs[col] + L.mm(1), y + L.mm(1), xs[col + 1] - xs[col] - L.mm(2), h), title, self.fonts.small_bold)

    # -- evidence ----------------------------------------------------------------------------

    def _prepare(self, item: EvidenceItem) -> _Prepared:
        """Everything slow for one item (hash, decode, map, regions, JPEG budget). Runs in a worker
        thread one item ahead of the painting; touches no painter and no page."""
        t = time.perf_counter()
        integrity, rgb, image_problem = self._load_original(item)
        t = self._tick("hash+decode original", t)
        visuals = None
        map_problem = None
        if item.analysed and rgb is not None:
            try:
                prob = item.load_map()
                t = self._tick("load map", t)
                visuals = imaging.prepare_visuals(rgb, prob, item.threshold, self.item_budget, colormap=COLORMAP)
                t = self._tick("regions+overlay+budget", t)
            except Exception as exc:  # noqa: BLE001 - a damaged map must not sink the whole report; the page says so
                map_problem = f"the stored heat map could not be used: {exc}"
        elif item.analysed:
            map_problem = "the heat map is not shown because the original image could not be used"
        original_small = None
        if visuals is not None:
            original_small = visuals.original
            estimate = visuals.estimated_bytes
        elif rgb is not None:
            original_small = imaging.scale_to_side(rgb, imaging.MIN_ORIGINAL_SIDE + 300)
            estimate = imaging.jpeg_bytes(original_small)
        else:
            estimate = 0
        return _Prepared(integrity, visuals, original_small, image_problem, map_problem, estimate)

    def _evidence_pages(self, index: int, item: EvidenceItem, prep: _Prepared) -> None:
        t = time.perf_counter()
        self.estimated_image_bytes += prep.estimated_bytes
        if prep.visuals is not None:
            self.sides.append((max(prep.visuals.overlay.shape[:2]), max(prep.visuals.original.shape[:2])))
        self._image_page(index, item, prep.visuals, prep.original, prep.image_problem, prep.map_problem)
        self._details_page(index, item, prep.visuals, prep.integrity)
        self._tick("paint", t)

    def _all_evidence(self) -> None:
        """Paint the evidence pages in order while a worker prepares the next items."""
        items = list(enumerate(self.data.evidence))
        pending: deque = deque()
        with ThreadPoolExecutor(max_workers=PREPARE_WORKERS, thread_name_prefix="report-prepare") as pool:
            try:
                feed = iter(items)
                for index, item in itertools.islice(feed, PREFETCH):
                    pending.append((index, item, pool.submit(self._prepare, item)))
                while pending:
                    index, item, future = pending.popleft()
                    if self.should_stop is not None and self.should_stop():
                        raise ReportCancelled("report cancelled; no file was kept")
                    if self.progress:
                        self.progress(index, len(items), f"evidence {item.id}: {item.name}")
                    prep = future.result()
                    nxt = next(feed, None)
                    if nxt is not None:
                        pending.append((nxt[0], nxt[1], pool.submit(self._prepare, nxt[1])))
                    self._evidence_pages(index, item, prep)
            finally:
                for _, _, future in pending:
                    future.cancel()

    def _load_original(self, item: EvidenceItem):
        """(integrity sentence, pixels or None, problem or None); the file is re-hashed first."""
        path = item.image_path
        if path is None or not Path(path).is_file():
            return ("MISSING: the evidence file is not in the case folder", None, "the evidence file is missing from the case folder")
        actual = sha256_file(path)
        if actual != item.sha256:
            return (
                f"MISMATCH: the file in the case folder now has SHA-256 {actual}",
                None,
                "the file in the case folder no longer matches the SHA-256 recorded at import; it is not shown",
            )
        try:
            rgb = imaging.load_for_report(path)
        except ImageError as exc:
            return ("matches the SHA-256 recorded at import", None, f"the image could not be decoded: {exc.reason}")
        return ("matches the SHA-256 recorded at import (re-hashed for this report)", rgb, None)

    def _item_title(self, index: int, item: EvidenceItem, suffix: str = "") -> str:
        return f"Evidence {index + 1} of {len(self.data.evidence)} · ID {item.id} · {item.name}{suffix}"

    def _image_page(self, index, item, visuals, original, image_problem, map_problem) -> None:
        self._start_page()
        p, f = self.painter, self.fonts
        area = L.content_rect()
        y = self._heading(area.top(), self._item_title(index, item), f.h2)
        verdict_color = VERDICT_COLORS.get(item.verdict, L.MUTED)
        line = f"Score {fmt_score(item.score)}  ·  threshold {fmt_threshold(item.threshold)}{_source(item)}  ·  verdict: {item.verdict}"
        if visuals is not None:
            area_pct = sum(r.area_pct for r in visuals.regions)
            line += f"  ·  {len(visuals.regions)} region(s), {area_pct:.2f} % of the image"
        fits = QFontMetricsF(f.body, p.device()).horizontalAdvance(line) <= area.width()
        L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(6)), line, f.body if fits else f.small,
                    verdict_color if item.verdict in VERDICT_COLORS else L.INK)
        y += L.mm(7)
        big = QRectF(area.left(), y + L.mm(5), area.width(), L.mm(118))
        L.draw_text(
            p,
            QRectF(area.left(), y, area.width(), L.mm(5)),
            "Heat overlay (model probability per pixel); regions above the threshold outlined and numbered",
            f.small_bold,
        )
        if visuals is not None:
            target = self._draw_image(imaging.qimage_rgb(visuals.overlay), big, visuals.overlay.shape)
            self._draw_outlines(target, visuals, numbered=True)
            y = target.bottom() + L.mm(2)
            y = self._colour_scale(QRectF(area.left(), y, area.width(), L.mm(11)), item.threshold)
        else:
            message = self._no_result_message(item, map_problem or image_problem)
            box = QRectF(big.left(), big.top(), big.width(), L.mm(50))
            L.frame(p, box, L.ALERT if item.failed or map_problem else L.RULE, L.ALERT_BG if item.failed or map_problem else L.SHADE, 0.5)
            L.draw_text(p, box.adjusted(L.mm(4), L.mm(4), -L.mm(4), -L.mm(4)), message, f.body_bold, L.ALERT if item.failed or map_problem else L.INK)
            y = box.bottom() + L.mm(4)
        y += L.mm(3)
        half = (area.width() - L.mm(6)) / 2
        box_h = area.bottom() - y - L.mm(6)
        left = QRectF(area.left(), y + L.mm(5), half, box_h)
        right = QRectF(area.left() + half + L.mm(6), y + L.mm(5), half, box_h)
        if original is not None:
            L.draw_text(
                p,
                QRectF(left.left(), y, half, L.mm(5)),
                f"Original, {item.width} × {item.height} px (embedded at {original.shape[1]} × {original.shape[0]})",
                f.small_bold,
            )
            self._draw_image(imaging.qimage_rgb(original), left, original.shape)
        else:
            L.draw_text(p, QRectF(left.left(), y, half, L.mm(5)), "Original", f.small_bold)
            L.frame(p, QRectF(left.left(), left.top(), half, L.mm(30)), L.ALERT, L.ALERT_BG)
            L.draw_text(p, QRectF(left.left(), left.top(), half, L.mm(30)).adjusted(L.mm(3), L.mm(3), -L.mm(3), -L.mm(3)), f"Not shown: {image_problem}.", f.body_bold, L.ALERT)
        L.draw_text(
            p,
            QRectF(right.left(), y, half, L.mm(5)),
            f"Mask at threshold {fmt_threshold(item.threshold)} (white = above)",
            f.small_bold,
        )
        if visuals is not None:
            target = self._draw_image(imaging.qimage_mask(visuals.mask), right, visuals.mask.shape)
            self._draw_outlines(target, visuals, numbered=False)
        else:
            L.frame(p, QRectF(right.left(), right.top(), half, L.mm(30)), L.RULE, L.SHADE)
            L.draw_text(p, QRectF(right.left(), right.top(), half, L.mm(30)).adjusted(L.mm(3), L.mm(3), -L.mm(3), -L.mm(3)), "No mask: there is no analysis result to threshold.", f.body)

    def _no_result_message(self, item: EvidenceItem, problem: str | None) -> str:
        if item.failed:
            a = item.analysis
            return (
                "ANALYSIS FAILED — there is no heat map, score or mask for this item.\n"
                f"Error recorded: {a.error or 'no message recorded'}\n"
                f"Model: {a.model.name} · finished {a.finished or 'unknown'}"
            )
        if item.analysed and problem:
            return f"RESULT NOT SHOWN — {problem}."
        return f"NOT ANALYSED — this item has no analysis result (status: {item.status}). There is no heat map, score or mask."

    def _draw_image(self, qimg, box: QRectF, shape) -> QRectF:
        h, w = shape[:2]
        scale = min(box.width() / w, box.height() / h)
        target = QRectF(box.left(), box.top(), w * scale, h * scale)
        self.painter.drawImage(target, qimg)
        L.frame(self.painter, target, L.RULE)
        return target

    def _draw_outlines(self, target: QRectF, visuals: imaging.Visuals, numbered: bool) -> None:
        if not visuals.regions:
            return
        p = self.painter
        sx = target.width() / visuals.full_width
        sy = target.height() / visuals.full_height
        path = QPainterPath()
        for region in visuals.regions:
            for contour in region.contours:
                if len(contour) == 0:
                    continue
                # One polygon per contour (not a call per point): few Qt calls, fast painting.
                xs = target.left() + (contour[:, 0].astype(np.float64) + 0.5) * sx
                ys = target.top() + (contour[:, 1].astype(np.float64) + 0.5) * sy
                path.addPolygon(QPolygonF([QPointF(x, y) for x, y in zip(xs.tolist(), ys.tolist())]))
                path.closeSubpath()
        p.save()
        p.setClipRect(target)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(0, 0, 0), L.mm(0.55)))
        p.drawPath(path)
        p.setPen(QPen(L.OUTLINE, L.mm(0.28)))
        p.drawPath(path)
        if numbered:
            p.setFont(self.fonts.small_bold)
            for region in visuals.regions[:MAX_REGION_ROWS]:
                x, y, _, _ = region.bbox
                label = QRectF(target.left() + x * sx, target.top() + y * sy - L.mm(3.6), L.mm(5), L.mm(3.4))
                if label.top() < target.top():
                    label.moveTop(target.top())
                p.fillRect(label, QColor(0, 0, 0))
                p.setPen(L.OUTLINE)
                p.drawText(label, int(Qt.AlignmentFlag.AlignCenter), str(region.index))
        p.restore()

    def _colour_scale(self, rect: QRectF, threshold: float) -> float:
        p, f = self.painter, self.fonts
        bar = QRectF(rect.left(), rect.top(), rect.width() * 0.7, L.mm(3.5))
        ramp = regions_mod.colorize(np.linspace(0.0, 1.0, 33, dtype=np.float32)[None, :], COLORMAP)[0]
        grad = QLinearGradient(bar.topLeft(), bar.topRight())
        for i, (r, g, b) in enumerate(ramp):
            grad.setColorAt(i / (len(ramp) - 1), QColor(int(r), int(g), int(b)))
        p.fillRect(bar, grad)
        L.frame(p, bar, L.MUTED)
        p.setFont(f.small)
        p.setPen(L.INK)
        for v in (0.0, 0.25, 0.5, 0.75, 1.0):
            x = bar.left() + v * bar.width()
            p.drawLine(QPointF(x, bar.bottom()), QPointF(x, bar.bottom() + L.mm(1)))
            p.drawText(QRectF(x - L.mm(6), bar.bottom() + L.mm(1), L.mm(12), L.mm(4)), int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop), f"{v:.2f}")
        tx = bar.left() + threshold * bar.width()
        p.save()
        p.setPen(QPen(QColor(0, 160, 200), L.mm(0.5)))
        p.drawLine(QPointF(tx, bar.top() - L.mm(1)), QPointF(tx, bar.bottom() + L.mm(1)))
        p.restore()
        L.draw_text(
            p,
            QRectF(bar.right() + L.mm(4), rect.top() - L.mm(0.5), rect.width() * 0.3 - L.mm(4), L.mm(10)),
            f"probability 0 → 1\nthreshold {fmt_threshold(threshold)} (blue mark)",
            f.small,
        )
        return rect.top() + L.mm(9)

    def _notes_box(self) -> QRectF:
        area = L.content_rect()
        top = self._notes_top() + L.mm(13)
        return QRectF(area.left() + L.mm(2), top, area.width() - L.mm(4), area.bottom() - top)

    def _notes_box_size(self) -> tuple[float, float]:
        box = self._notes_box()
        return box.width(), box.height()

    @staticmethod
    def _notes_top() -> float:
        return L.content_rect().top() + L.mm(186)

    def _details_page(self, index: int, item: EvidenceItem, visuals, integrity: str) -> None:
        self._start_page()
        p, f = self.painter, self.fonts
        area = L.content_rect()
        y = self._heading(area.top(), self._item_title(index, item, " — details"), f.h2)
        y += L.mm(1)
        ok = integrity.startswith("matches")
        y = self._kv_table(
            [("SHA-256", item.sha256), ("MD5", item.md5)], y, area.left(), area.width(), L.mm(28), mono_keys=("SHA-256", "MD5")
        )
        L.draw_text(p, QRectF(area.left(), y, L.mm(26), L.mm(6)), "Integrity", f.body_bold, L.MUTED)
        y += L.draw_text(p, QRectF(area.left() + L.mm(28), y, area.width() - L.mm(28), L.mm(10)), integrity, f.body_bold, L.OK if ok else L.ALERT)
        y += L.mm(3)
        top = y
        half = (area.width() - L.mm(6)) / 2
        # Left column: file and metadata. Right column: the model that produced the result.
        L.draw_text(p, QRectF(area.left(), y, half, L.mm(6)), "File and metadata", f.h2)
        file_rows = [
            ("File name", item.name),
            ("Size", f"{item.size:,} bytes" if item.size is not None else "unknown"),
            ("Format", item.format or "unknown"),
            *key_metadata(item),
            ("Imported", " · ".join(filter(None, (item.imported_at, item.imported_by))) or "not recorded"),
        ]
        left_end = self._kv_table(file_rows, y + L.mm(6), area.left(), half, L.mm(24), font=f.small)
        x2 = area.left() + half + L.mm(6)
        L.draw_text(p, QRectF(x2, y, half, L.mm(6)), "Model", f.h2)
        right_end = self._kv_table(self._model_rows(item), y + L.mm(6), x2, half, L.mm(24), font=f.small)
        y = max(left_end, right_end, top + L.mm(60)) + L.mm(2)
        L.hline(p, y, area.left(), area.right())
        y += L.mm(2)
        L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(6)), "Result", f.h2)
        y += L.mm(6)
        if item.analysed and visuals is not None:
            line = (
                f"Image score {fmt_score(item.score)} · threshold {fmt_threshold(item.threshold)}{_source(item)} · "
                f"{len(visuals.regions)} region(s) above the threshold"
            )
            if visuals.map_resized:
                line += " · note: the stored map was resized to the image for display"
            y += L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(6)), line, f.body)
            y += L.mm(1)
            y = self._region_table(visuals, y, self._notes_top() - L.mm(4))
        else:
            msg = self._no_result_message(item, "the result could not be shown (see the image page)")
            y += L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(30)), msg, f.body_bold, L.ALERT if item.failed else L.INK)
        # The notes block starts at a fixed height so the plan knows how much text fits.
        notes_top = self._notes_top()
        L.hline(p, notes_top - L.mm(2), area.left(), area.right())
        verdict_color = VERDICT_COLORS.get(item.verdict, L.MUTED)
        L.draw_text(p, QRectF(area.left(), notes_top + L.mm(1), area.width() * 0.3, L.mm(6)), "Analyst's verdict", f.h2)
        L.draw_text(p, QRectF(area.left() + area.width() * 0.3, notes_top, area.width() * 0.7, L.mm(8)), item.verdict.upper(), f.h1, verdict_color)
        reviewer = f" (reviewed by {item.reviewed_by}, {item.reviewed_at})" if item.reviewed_by else ""
        L.draw_text(p, QRectF(area.left(), notes_top + L.mm(8), area.width(), L.mm(5)), "Notes" + reviewer, f.small_bold, L.MUTED)
        L.draw_text(p, self._notes_box(), self.plan.notes_fit[item.id], f.body)

    def _model_rows(self, item: EvidenceItem) -> list[tuple[str, str]]:
        a = item.analysis
        if a is None:
            return [("Model", "no analysis has been run on this item")]
        m = a.model
        rows = [("Name", m.name + (f" ({DEMO_LABEL})" if m.demo else ""))]
        if m.card_found:
            rows += [
                ("Backbone", m.backbone or "—"),
                ("Layer", m.layer or "—"),
                ("Decoder", m.decoder or "—"),
                ("Training data", m.training_set or ("synthetic edits (demo)" if m.demo else "not recorded")),
            ]
        else:
            rows.append(("Model card", "not installed on this machine: only the name and hash stored with the result are known"))
        rows += [
            ("Model SHA-256", m.sha256),
            ("Analysis", "failed" if a.status == "failed" else "completed"),
            ("Run", " · ".join(filter(None, (a.finished or a.started, a.device, f"{a.seconds:.1f} s" if a.seconds is not None else None))) or "not recorded"),
            ("Software", a.software_version or "not recorded"),
        ]
        return rows

    def _region_table(self, visuals: imaging.Visuals, y: float, bottom: float) -> float:
        p, f = self.painter, self.fonts
        area = L.content_rect()
        if not visuals.regions:
            return y + L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(6)), "No pixel is above the threshold: no region.", f.body)
        cols = [("Region", 14), ("Area %", 18), ("Area (px)", 24), ("Bounding box x, y, width × height (px)", 66), ("Mean score", 20), ("Max score", 20)]
        scale = area.width() / L.mm(sum(c[1] for c in cols))
        xs = [area.left()]
        for _, w in cols:
            xs.append(xs[-1] + L.mm(w) * scale)
        self._table_header(cols, xs, y, L.mm(5))
        y += L.mm(5)
        row_h = L.mm(4.6)
        # As many rows as fit above the notes block (the metadata columns above vary in height).
        fit = max(1, int((bottom - y - L.mm(7)) / row_h))
        shown = visuals.regions[: min(MAX_REGION_ROWS, fit)]
        for region in shown:
            x, yy, w, h = region.bbox
            cells = [
                str(region.index),
                f"{region.area_pct:.3f}",
                f"{region.area_px:,}",
                f"{x}, {yy}, {w} × {h}",
                f"{region.mean_score:.3f}",
                f"{region.max_score:.3f}",
            ]
            for col, text in enumerate(cells):
                L.draw_text(p, QRectF(xs[col] + L.mm(1), y + L.mm(0.6), xs[col + 1] - xs[col] - L.mm(2), row_h), text, f.small)
            y += row_h
        L.hline(p, y, area.left(), area.right())
        rest = visuals.regions[len(shown):]
        if rest:
            y += L.mm(1)
            y += L.draw_text(
                p,
                QRectF(area.left(), y, area.width(), L.mm(5)),
                f"… and {len(rest)} smaller region(s) covering {sum(r.area_pct for r in rest):.3f} % of the image "
                "(all regions are in the image exports and the case's JSON export).",
                f.small,
                L.MUTED,
            )
        return y

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


def _source(item: EvidenceItem) -> str:
    return {"default": " (default)", "report": " (for this report)"}.get(item.threshold_source, "")


def _distinct_models(items: list[EvidenceItem]) -> list[ModelInfo]:
    seen: dict[str, ModelInfo] = {}
    for item in items:
        if item.analysis is not None and item.analysis.status == "done":
            seen.setdefault(item.analysis.model.sha256, item.analysis.model)
    return list(seen.values())


def _fmt_time(d: ReportData) -> str:
    t = d.generated_at
    offset = t.strftime("%z")
    return f"{t.strftime('%Y-%m-%d %H:%M:%S')} {t.tzname() or ''} (UTC{offset[:3]}:{offset[3:]})".replace("  ", " ")
