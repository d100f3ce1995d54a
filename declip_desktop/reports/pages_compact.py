"""The compact layout's single page per evidence item: overlay, original and mask, and the key
figures (hashes, chain of custody, model, regions, verdict, notes) under them.

The full layout's two pages say more (all metadata, every region up to the row limit); this one
keeps what a reader needs to identify the file and weigh the result, so a 13-item case fits in
about 16 pages. Notes that do not fit continue in the appendix, as in the full layout.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF

from declip_desktop.reports import imaging
from declip_desktop.reports import layout as L
from declip_desktop.reports.calibration_section import compact_rows
from declip_desktop.reports.formatting import (
    VERDICT_COLORS,
    custody_rows,
    marks_rows,
    fmt_score,
    fmt_threshold,
    short_hash,
    threshold_note,
)
from declip_desktop.reports.model import EvidenceItem
from declip_desktop.reports.texts import DEMO_LABEL

OVERLAY_MM = 86.0
SMALL_IMAGES_MM = 46.0
COMPACT_REGIONS = 4
NOTES_TOP_MM = 226.0  # fixed, so the plan knows how much of the notes fits


class CompactPages:
    """Compact item pages (a mixin of `reports.pdf.ReportRenderer`)."""

    @staticmethod
    def _compact_notes_box() -> QRectF:
        area = L.content_rect()
        top = area.top() + L.mm(NOTES_TOP_MM) + L.mm(5)
        return QRectF(area.left(), top, area.width(), area.bottom() - top)

    def _compact_page(self, index: int, item: EvidenceItem, visuals, original, integrity: str, problem) -> None:
        self._start_page()
        p, f = self.painter, self.fonts
        area = L.content_rect()
        y = self._heading(area.top(), self._item_title(index, item), f.h2)
        line = (f"Score {fmt_score(item.score)}  ·  threshold {fmt_threshold(item.threshold)}{threshold_note(item)}"
                f"  ·  verdict: {item.verdict}")
        if visuals is not None:
            line += f"  ·  {len(visuals.regions)} region(s), {sum(r.area_pct for r in visuals.regions):.2f} % of the image"
        L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(5)), L.elide(p, f.small_bold, line, area.width()),
                    f.small_bold, VERDICT_COLORS.get(item.verdict, L.INK))
        y += L.mm(5.5)
        if visuals is not None:
            L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(4)),
                        "Heat overlay; regions above the threshold outlined and numbered", f.small)
            target = self._draw_image(imaging.qimage_rgb(visuals.overlay),
                                      QRectF(area.left(), y + L.mm(4), area.width(), L.mm(OVERLAY_MM)),
                                      visuals.overlay.shape)
            self._draw_outlines(target, visuals, numbered=True)
            self._draw_annotations(target, item)
            y = self._colour_scale(QRectF(area.left(), target.bottom() + L.mm(1.5), area.width(), L.mm(10)),
                                   item.threshold)
        else:
            box = QRectF(area.left(), y + L.mm(2), area.width(), L.mm(30))
            alert = item.failed or problem is not None
            L.frame(p, box, L.ALERT if alert else L.RULE, L.ALERT_BG if alert else L.SHADE, 0.5)
            L.draw_text(p, box.adjusted(L.mm(3), L.mm(3), -L.mm(3), -L.mm(3)),
                        self._no_result_message(item, problem), f.body_bold, L.ALERT if alert else L.INK)
            y = box.bottom() + L.mm(2)
        y = self._compact_small_images(item, visuals, original, y + L.mm(1))
        self._compact_figures(item, visuals, integrity, y + L.mm(2))
        self._compact_notes(item)

    def _compact_small_images(self, item: EvidenceItem, visuals, original, y: float) -> float:
        p, f = self.painter, self.fonts
        area = L.content_rect()
        half = (area.width() - L.mm(6)) / 2
        bottom = y
        for col, (caption, image, shape) in enumerate((
            (f"Original, {item.width} × {item.height} px", None if original is None else imaging.qimage_rgb(original),
             None if original is None else original.shape),
            (f"Mask at threshold {fmt_threshold(item.threshold)}",
             None if visuals is None else imaging.qimage_mask(visuals.mask), None if visuals is None else visuals.mask.shape),
        )):
            x = area.left() + col * (half + L.mm(6))
            L.draw_text(p, QRectF(x, y, half, L.mm(4)), caption, f.small)
            if image is None:
                L.draw_text(p, QRectF(x, y + L.mm(4), half, L.mm(8)), "not available", f.small, L.MUTED)
                bottom = max(bottom, y + L.mm(12))
                continue
            target = self._draw_image(image, QRectF(x, y + L.mm(4), half, L.mm(SMALL_IMAGES_MM)), shape)
            if col == 0:
                self._draw_annotations(target, item)
            if col == 1:
                self._draw_outlines(target, visuals, numbered=False)
            bottom = max(bottom, target.bottom())
        return bottom

    def _compact_figures(self, item: EvidenceItem, visuals, integrity: str, y: float) -> None:
        p, f = self.painter, self.fonts
        area = L.content_rect()
        L.hline(p, y - L.mm(1), area.left(), area.right())
        y = self._kv_table([("SHA-256", item.sha256), ("MD5", item.md5), ("Integrity", integrity)], y, area.left(),
                           area.width(), L.mm(22), font=f.small, mono_keys=("SHA-256", "MD5"))
        half = (area.width() - L.mm(6)) / 2
        left_rows = [r for r in custody_rows(item) if r[0] != "Original name"]
        self._kv_table(left_rows, y, area.left(), half, L.mm(22), font=f.small)
        right_rows = self._compact_model_rows(item, visuals)
        self._kv_table(right_rows, y, area.left() + half + L.mm(6), half, L.mm(20), font=f.small)

    def _compact_model_rows(self, item: EvidenceItem, visuals) -> list[tuple[str, str]]:
        a = item.analysis
        if a is None:
            return [("Model", "no analysis has been run on this item"), *self._compact_annotation_row(item),
                    *marks_rows(item)]
        m = a.model
        rows = [("Model", m.name + (f" ({m.label or DEMO_LABEL})" if m.demo else "")),
                ("Model SHA-256", short_hash(m.sha256) + " (full on the method page)"),
                ("Run", " · ".join(filter(None, (a.finished or a.started, a.device))) or "not recorded")]
        if visuals is not None and visuals.regions:
            shown = visuals.regions[:COMPACT_REGIONS]
            text = "; ".join(f"{r.index}: {r.area_pct:.2f} %, max {r.max_score:.2f}" for r in shown)
            if len(visuals.regions) > len(shown):
                text += f"; +{len(visuals.regions) - len(shown)} more (full layout)"
            rows.append(("Regions", text))
        rows += compact_rows(self.data.calibration, item)  # calibrated reading (reports.calibration_section)
        rows += self._compact_annotation_row(item)  # reports.annotation_pages
        rows += item.robustness.rows if item.robustness else []  # agreement, stability (reports.robustness_rows)
        if item.reviewed_by:
            rows.append(("Reviewed", f"{item.reviewed_by}, {item.reviewed_at}"))
        return rows + marks_rows(item)

    def _compact_notes(self, item: EvidenceItem) -> None:
        p, f = self.painter, self.fonts
        area = L.content_rect()
        top = area.top() + L.mm(NOTES_TOP_MM)
        L.hline(p, top, area.left(), area.right())
        verdict = f"Analyst's verdict: {item.verdict.upper()}"
        L.draw_text(p, QRectF(area.left(), top + L.mm(0.5), area.width(), L.mm(5)), verdict, f.body_bold,
                    VERDICT_COLORS.get(item.verdict, L.MUTED))
        L.draw_text(p, self._compact_notes_box(), self.plan.notes_fit[item.id], f.body)
