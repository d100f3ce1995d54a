"""The analyst's annotations in the report: drawn on the item's images (full and compact layouts)
and listed with label, author, box, area and the map's mean / max inside them (a mixin of
`reports.pdf.ReportRenderer`, plus `collect_annotations` for `reports.collect`).

The statistics are computed where the item's map is loaded (`ImagePages._prepare`, a worker
thread) with `common.shapes.map_stats`, the function the inspector and `declip case annotate`
use, so the three state the same numbers.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainterPath, QPen, QPolygonF

from declip_desktop.common.shapes import map_stats
from declip_desktop.reports import layout as L
from declip_desktop.reports.model import AnnotationInfo, EvidenceItem

#: Annotation colour on the page (green: apart from the yellow region outlines and the heat map).
ANNOTATION_COLOR = QColor(0, 200, 100)
MAX_ANNOTATION_ROWS = 8  # on the details page; the rest are counted (all are in the audit appendix)
COMPACT_ANNOTATIONS = 3
#: A label longer than this is shortened on the compact page (a word without breaks would be clipped
#: at the column's edge); the full layout, the exports and the audit appendix give it whole.
COMPACT_LABEL_CHARS = 24


def collect_annotations(case, evidence) -> list[AnnotationInfo]:  # noqa: ANN001 - Case, Evidence
    from declip_desktop.cases.annotations import annotations

    return [AnnotationInfo(id=a.id, kind=a.kind, label=a.label, note=a.note, author=a.author,
                           created_at=a.created_at, shape=a.shape, edited_by=a.edited_by, edited_at=a.edited_at)
            for a in annotations(case, evidence.id)]


def annotation_stats(item: EvidenceItem, prob) -> dict:  # noqa: ANN001 - the item's map (H×W float32)
    """{annotation id: MapStats} for an item's annotations over its map (worker thread)."""
    out = {}
    for a in item.annotations:
        try:
            out[a.id] = map_stats(a.shape, prob, item.width, item.height)
        except (ValueError, TypeError):
            continue  # an unreadable shape: listed without figures
    return out


def _figures(stats) -> str:  # noqa: ANN001
    if stats is None:
        return "no map"
    if not stats.pixels:
        return "no pixel inside"
    return f"mean {stats.mean:.3f}, max {stats.max:.3f}"


class AnnotationPages:
    """Drawing and listing an item's annotations (`self.annotation_stats` is set per item)."""

    annotation_stats: dict = {}

    def _draw_annotations(self, target: QRectF, item: EvidenceItem) -> None:
        """Outline and tag every annotation on an image drawn in `target` (the whole image)."""
        if not item.annotations or not item.width or not item.height:
            return
        p = self.painter
        sx, sy = target.width() / item.width, target.height() / item.height
        p.save()
        p.setClipRect(target)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for a in item.annotations:
            path = QPainterPath()
            if a.shape.kind == "box":
                x, y, w, h = a.shape.box
                path.addRect(QRectF(target.left() + x * sx, target.top() + y * sy, w * sx, h * sy))
            else:
                path.addPolygon(QPolygonF([QPointF(target.left() + x * sx, target.top() + y * sy)
                                           for x, y in a.shape.points]))
                path.closeSubpath()
            p.setPen(QPen(QColor(0, 0, 0), L.mm(0.6)))
            p.drawPath(path)
            p.setPen(QPen(ANNOTATION_COLOR, L.mm(0.35)))
            p.drawPath(path)
            box = path.boundingRect()
            tag = f"A{a.id} {a.label}"
            p.setFont(self.fonts.small_bold)
            width = min(L.mm(60), QFontMetricsF(self.fonts.small_bold, p.device()).horizontalAdvance(tag) + L.mm(2))
            rect = QRectF(box.left(), box.top() - L.mm(3.6), width, L.mm(3.4))
            if rect.top() < target.top():
                rect.moveTop(box.top())
            p.fillRect(rect, QColor(0, 0, 0))
            p.setPen(ANNOTATION_COLOR)
            p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), L.elide(p, self.fonts.small_bold, tag, width))
        p.restore()

    def _annotation_rows_height(self, item: EvidenceItem) -> float:
        """Space the details page keeps for the annotation table (0 without annotations)."""
        if not item.annotations:
            return 0.0
        rows = min(len(item.annotations), MAX_ANNOTATION_ROWS) + (len(item.annotations) > MAX_ANNOTATION_ROWS)
        return L.mm(7) + L.mm(5) + rows * L.mm(4.6) + L.mm(2)

    def _annotation_table(self, item: EvidenceItem, y: float, bottom: float | None = None) -> float:
        """The details page's table of the analyst's annotations, ending above `bottom` (the notes
        block): the rows that do not fit are counted on the last line, never drawn over the verdict."""
        if not item.annotations:
            return y
        row_h = L.mm(4.6)
        shown = min(len(item.annotations), MAX_ANNOTATION_ROWS)
        if bottom is not None:  # header (1 + 6 + 5 mm), rows, the "… more" line, the rule
            room = int((bottom - y - L.mm(12) - L.mm(1)) // row_h)
            if room < len(item.annotations):
                room -= 1  # keep a line for the count of the rest
            shown = max(0, min(shown, room))
        p, f = self.painter, self.fonts
        area = L.content_rect()
        y += L.mm(1)
        L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(6)), "Analyst's annotations", f.h2)
        y += L.mm(6)
        cols = [("#", 10), ("Label", 44), ("Author", 22), ("Box x, y, w × h (px)", 38), ("Area (px, %)", 28),
                ("Map inside", 36)]
        scale = area.width() / L.mm(sum(c[1] for c in cols))
        xs = [area.left()]
        for _, w in cols:
            xs.append(xs[-1] + L.mm(w) * scale)
        self._table_header(cols, xs, y, L.mm(5))
        y += L.mm(5)
        pixels = max(1, (item.width or 1) * (item.height or 1))
        for a in item.annotations[:shown]:
            x, yy, w, h = a.shape.bbox()
            area_px = a.shape.area_px()
            kind = "" if a.kind == "box" else "lasso in "
            cells = [f"A{a.id}", a.label, a.author, f"{kind}{x}, {yy}, {w} × {h}",
                     f"{area_px:,.0f} ({100 * area_px / pixels:.2f} %)", _figures(self.annotation_stats.get(a.id))]
            for col, text in enumerate(cells):
                width = xs[col + 1] - xs[col] - L.mm(2)
                L.draw_text(p, QRectF(xs[col] + L.mm(1), y + L.mm(0.6), width, row_h),
                            L.elide(p, f.small, text, width), f.small)
            y += row_h
        rest = len(item.annotations) - shown
        if rest > 0:
            L.draw_text(p, QRectF(area.left(), y + L.mm(0.6), area.width(), row_h),
                        f"… and {rest} more annotation(s) (all are listed in the audit appendix)", f.small, L.MUTED)
            y += row_h
        L.hline(p, y, area.left(), area.right())
        return y

    def _compact_annotation_row(self, item: EvidenceItem) -> list[tuple[str, str]]:
        """The compact page's "Annotations" row: the first few, with their figures."""
        if not item.annotations:
            return []
        parts = []
        for a in item.annotations[:COMPACT_ANNOTATIONS]:
            x, y, w, h = a.shape.bbox()
            label = a.label if len(a.label) <= COMPACT_LABEL_CHARS else a.label[:COMPACT_LABEL_CHARS - 1] + "…"
            parts.append(f"A{a.id} {label} ({a.author}): {x}, {y} {w}×{h}, "
                         f"{_figures(self.annotation_stats.get(a.id))}")
        text = "; ".join(parts)
        if len(item.annotations) > COMPACT_ANNOTATIONS:  # the count first: a clipped row still states it
            text = f"{len(item.annotations)} (the first {COMPACT_ANNOTATIONS}; all in the full layout): {text}"
        return [("Annotations", text)]
