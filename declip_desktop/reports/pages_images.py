"""Each evidence item's image page: overlay, colour scale, original, mask, outlines; and the
background preparation of items ahead of the one being painted."""

from __future__ import annotations

import itertools
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QLinearGradient, QPainterPath, QPen, QPolygonF

from declip_desktop.common import regions as regions_mod
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.images import ImageError
from declip_desktop.reports import imaging
from declip_desktop.reports.annotation_pages import annotation_stats
from declip_desktop.reports import layout as L
from declip_desktop.reports.errors import ReportCancelled
from declip_desktop.reports.formatting import VERDICT_COLORS, threshold_note, fmt_score, fmt_threshold
from declip_desktop.reports.model import EvidenceItem
from declip_desktop.reports.pages_base import COLORMAP, MAX_REGION_ROWS
from declip_desktop.reports.pinned_pages import draw_pin_pages


@dataclass(frozen=True)
class ItemFigures:
    """What the report states about one item (returned with the report's statistics)."""

    evidence_id: int
    threshold: float
    threshold_source: str  # "reviewed" | "case" | "default" | "report"
    score: float | None
    regions: list | None  # [(area_px, (x, y, w, h))] at the threshold; None: no map drawn


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
    annotation_stats: dict = field(default_factory=dict)  # {annotation id: MapStats} (reports.annotation_pages)


class ImagePages:
    """Image pages (a mixin of `reports.pdf.ReportRenderer`)."""

    def _prepare(self, item: EvidenceItem) -> _Prepared:
        """Everything slow for one item (hash, decode, map, regions, JPEG budget). Runs in a worker
        thread one item ahead of the painting; touches no painter and no page."""
        t = time.perf_counter()
        integrity, rgb, image_problem = self._load_original(item)
        t = self._tick("hash+decode original", t)
        visuals = None
        map_problem = None
        stats: dict = {}
        if item.analysed and rgb is not None:
            try:
                prob = item.load_map()
                t = self._tick("load map", t)
                stats = annotation_stats(item, prob)
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
        return _Prepared(integrity, visuals, original_small, image_problem, map_problem, estimate, stats)

    def _evidence_pages(self, index: int, item: EvidenceItem, prep: _Prepared) -> None:
        t = time.perf_counter()
        self.estimated_image_bytes += prep.estimated_bytes
        if prep.visuals is not None:
            self.sides.append((max(prep.visuals.overlay.shape[:2]), max(prep.visuals.original.shape[:2])))
        regions = None if prep.visuals is None else [(r.area_px, tuple(r.bbox)) for r in prep.visuals.regions]
        self.items.append(ItemFigures(item.id, item.threshold, item.threshold_source, item.score, regions))
        self.annotation_stats = prep.annotation_stats
        if self.layout == "compact":
            self._compact_page(index, item, prep.visuals, prep.original, prep.integrity,
                               prep.map_problem or prep.image_problem)
        else:
            self._image_page(index, item, prep.visuals, prep.original, prep.image_problem, prep.map_problem)
            self._details_page(index, item, prep.visuals, prep.integrity)
        draw_pin_pages(self, index, item)  # pages of pinned views, if any (reports.pinned_pages)
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
        line = f"Score {fmt_score(item.score)}  ·  threshold {fmt_threshold(item.threshold)}{threshold_note(item)}  ·  verdict: {item.verdict}"
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
            self._draw_annotations(target, item)
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
            self._draw_annotations(self._draw_image(imaging.qimage_rgb(original), left, original.shape), item)
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
