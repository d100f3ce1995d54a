"""Each evidence item's details page: identity, integrity, model, regions, review and notes."""

from __future__ import annotations

from PySide6.QtCore import QRectF

from declip_desktop.reports import imaging
from declip_desktop.reports import layout as L
from declip_desktop.reports.formatting import VERDICT_COLORS, custody_rows, marks_rows, threshold_note, fmt_score, fmt_threshold, key_metadata
from declip_desktop.reports.model import EvidenceItem
from declip_desktop.reports.pages_base import MAX_REGION_ROWS
from declip_desktop.reports.texts import DEMO_LABEL


class DetailPages:
    """Details pages (a mixin of `reports.pdf.ReportRenderer`)."""

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
        L.draw_text(p, QRectF(area.left(), y, half, L.mm(6)), "Chain of custody and file", f.h2)
        file_rows = [*custody_rows(item), *marks_rows(item), ("Format", item.format or "unknown"), *key_metadata(item),
                     *item.forensics]  # metadata, alerts, C2PA (reports.forensics_rows)
        left_end = self._kv_table(file_rows, y + L.mm(6), area.left(), half, L.mm(24), font=f.small)
        x2 = area.left() + half + L.mm(6)
        L.draw_text(p, QRectF(x2, y, half, L.mm(6)), "Model", f.h2)
        model_rows = self._model_rows(item) + (item.robustness.rows if item.robustness else [])  # agreement, stability
        right_end = self._kv_table(model_rows, y + L.mm(6), x2, half, L.mm(24), font=f.small)
        y = max(left_end, right_end, top + L.mm(60)) + L.mm(2)
        L.hline(p, y, area.left(), area.right())
        y += L.mm(2)
        L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(6)), "Result", f.h2)
        y += L.mm(6)
        if item.analysed and visuals is not None:
            line = (
                f"Image score {fmt_score(item.score)} · threshold {fmt_threshold(item.threshold)}{threshold_note(item)} · "
                f"{len(visuals.regions)} region(s) above the threshold"
            )
            if visuals.map_resized:
                line += " · note: the stored map was resized to the image for display"
            y += L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(6)), line, f.body)
            y += L.mm(1)
            y = self._region_table(visuals, y, self._notes_top() - L.mm(4) - self._annotation_rows_height(item),
                                   item.robustness)
        else:
            msg = self._no_result_message(item, "the result could not be shown (see the image page)")
            y += L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(30)), msg, f.body_bold, L.ALERT if item.failed else L.INK)
        # the analyst's boxes and lassos (reports.annotation_pages), kept above the notes block
        y = self._annotation_table(item, y, self._notes_top() - L.mm(3))
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
        rows = [("Name", m.name + (f" ({m.label or DEMO_LABEL})" if m.demo else ""))]  # the label states the false-alarm rate
        if m.card_found:
            rows += [
                ("Backbone", m.backbone or "—"),
                ("Layer", m.layer or "—"),
                ("Decoder", m.decoder or "—"),
                ("Training data", m.training_set or ("synthetic edits (demo)" if m.demo else "not recorded")),
            ]
        else:
            rows.append(("Model card", "not recorded with this result (made before results kept their model card): only the name and hash are known"))
        rows += [
            ("Model SHA-256", m.sha256),
            ("Analysis", "failed" if a.status == "failed" else "completed"),
            ("Run", " · ".join(filter(None, (a.finished or a.started, a.device, f"{a.seconds:.1f} s" if a.seconds is not None else None))) or "not recorded"),
            ("Software", a.software_version or "not recorded"),
            *item.tiling,  # squash + tiled maps, tiling parameters, stable regions (reports.tiling_rows)
        ]
        return rows

    def _region_table(self, visuals: imaging.Visuals, y: float, bottom: float,
                      robustness=None) -> float:  # noqa: ANN001
        """`robustness` (reports.robustness_rows.Robustness): adds who flags each region and its stability."""
        p, f = self.painter, self.fonts
        area = L.content_rect()
        if not visuals.regions:
            return y + L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(6)), "No pixel is above the threshold: no region.", f.body)
        cols = [("Region", 14), ("Area %", 18), ("Area (px)", 24), ("Bounding box x, y, width × height (px)", 66), ("Mean score", 20), ("Max score", 20)]
        extra = robustness if robustness is not None and robustness.has_columns else None
        if extra is not None:  # which models flag it, how it survives re-saving
            cols = [("No.", 10), ("Area %", 14), ("Area (px)", 18), ("Box x, y, w × h (px)", 36), ("Mean", 12),
                    ("Max", 12), ("Flagged by", 46), ("Stable in", 34)]
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
            if extra is not None:
                cells += list(extra.cells(region))
            for col, text in enumerate(cells):
                width = xs[col + 1] - xs[col] - L.mm(2)
                # A region only one checkpoint flags is set in the alert colour (issue 19).
                color = L.ALERT if col == 6 and text.startswith("only ") else L.INK
                L.draw_text(p, QRectF(xs[col] + L.mm(1), y + L.mm(0.6), width, row_h),
                            L.elide(p, f.small, text, width) if col >= 6 else text, f.small, color)
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
