"""The report's first pages: the cover and the summary table."""

from __future__ import annotations


from PySide6.QtCore import QRectF, Qt

from declip_desktop.reports import layout as L
from declip_desktop.reports.formatting import (
    VERDICT_COLORS,
    distinct_models,
    format_generated_at,
    fmt_score,
    fmt_threshold,
    result_label,
    short_hash,
)
from declip_desktop.reports.pages_base import SUMMARY_ROWS_PER_PAGE


class FrontPages:
    """Cover and summary pages (a mixin of `reports.pdf.ReportRenderer`)."""

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
        refs = getattr(d.calibration, "reference_ids", None) or []
        if refs and d.whole_case:  # reports.calibration_section: references are not questioned items
            included += f"; {len(refs)} reference-authentic item(s) listed in the calibration section"
        failed = sum(1 for it in d.evidence if it.failed)
        pending = sum(1 for it in d.evidence if not it.analysed and not it.failed)
        rows = [
            ("Case number", d.case_number),
            ("Case title", d.case_title),
            ("Analyst", d.analyst),
        ]
        if d.generated_by and d.generated_by != d.analyst:
            rows.append(("Report made by", d.generated_by))
        e = d.examiner
        rows += [(label, value or "[not set]") for label, value in (
            ("Examiner", ", ".join(filter(None, (e.name, e.role)))), ("Organisation", e.organisation),
            ("Requested by", " · ".join(filter(None, (e.requester, e.reference and f"ref. {e.reference}")))),
            ("Question asked", e.question))]
        rows += [
            ("Report date and time", format_generated_at(d)),
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
        demo = [m for m in distinct_models(d.evidence) if m.demo]
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
        self._contents(box_y)

    def _contents(self, y: float) -> None:
        """The table of contents: the plan's sections (the same list becomes the PDF outline)."""
        p, f = self.painter, self.fonts
        area = L.content_rect()
        sections = [s for s in self.plan.sections if s.level == 0]
        L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(7)), "Contents", f.h2)
        y += L.mm(6)
        for section in sections:
            title = section.title
            if title == "Evidence items":
                last = next(s.page for s in sections if s.title == "Method and limitations") - 1
                title += f" ({len(self.data.evidence)}, pages {section.page}–{last})"
            L.draw_text(p, QRectF(area.left() + L.mm(2), y, area.width() - L.mm(20), L.mm(5)), title, f.body)
            L.draw_text(p, QRectF(area.right() - L.mm(18), y, L.mm(18), L.mm(5)), str(section.page), f.body,
                        flags=Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            y += L.mm(4.8)


    def _summary(self) -> None:
        d = self.data
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
                    (str(self.plan.item_starts[index]), self.fonts.small, L.INK),
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
