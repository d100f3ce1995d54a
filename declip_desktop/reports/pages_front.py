"""The report's first pages: the cover (with the table of contents) and the summary table.

In the compact layout the contents follow the cover's fields directly and the summary starts under
them, continuing on further pages only when the items do not all fit."""

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

SUMMARY_ROW_MM = 8.6
COMPACT_SUMMARY_ROW_MM = 6.0  # one line of small text: the compact layout starts the summary on the cover
MIN_SUMMARY_ROW_MM = 4.8  # still one line of small text with room above and below
SUMMARY_LEGEND_MM = 12.0


class FrontPages:
    """Cover and summary pages (a mixin of `reports.pdf.ReportRenderer`)."""

    def _cover(self) -> None:
        self._start_page()
        p, f, d = self.painter, self.fonts, self.data
        area = L.content_rect()
        y = self._cover_fields()
        if self.plan.cover_summary_rows:
            # Compact layout: contents and the start of the summary under the fields, one page saved.
            y = self._contents(self._demo_box(y + L.mm(4)) + L.mm(2))
            self._summary_table(0, self.plan.cover_summary_rows, self._heading(y + L.mm(4), "Summary of results", f.h2))
            return
        box_y = max(y + L.mm(8), area.bottom() - L.mm(48))
        self._demo_box(box_y - L.mm(16))
        self._contents(box_y)

    def _cover_fields(self, draw: bool = True) -> float:
        """Title, case and request fields and the description; returns where they end.
        `draw=False` only measures (the compact plan needs to know how much room is left)."""
        p, f, d = self.painter, self.fonts, self.data
        area = L.content_rect()

        def put(rect: QRectF, text: str, font, color=L.INK) -> float:
            if draw:
                return L.draw_text(p, rect, text, font, color)
            return L.text_height(p, font, rect.width(), text)

        compact = self.layout == "compact"  # less air: the summary follows on this page
        y = area.top() + L.mm(4 if compact else 12)
        y += put(QRectF(area.left(), y, area.width(), L.mm(12)), "Forensic image analysis report", f.title, L.MUTED)
        y += L.mm(6)
        y += put(QRectF(area.left(), y, area.width(), L.mm(16)), f"Case {d.case_number}", f.big)
        y += L.mm(2)
        y += put(QRectF(area.left(), y, area.width(), L.mm(26)), d.case_title, f.h1)
        y += L.mm(5 if compact else 8)
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
        y = self._kv_table(rows, y, area.left(), area.width(), L.mm(42), draw=draw)
        if d.description:
            y += L.mm(4)
            y += put(QRectF(area.left(), y, area.width(), L.mm(8)), "Description", f.h2)
            y += L.mm(1)
            y += min(put(QRectF(area.left(), y, area.width(), L.mm(40)), d.description, f.body), L.mm(40))
        return y

    def _demo_box(self, y: float, draw: bool = True) -> float:
        """The demo-model warning box at `y` when a demo result is included; returns where it ends."""
        p, f = self.painter, self.fonts
        area = L.content_rect()
        demo = [m for m in distinct_models(self.data.evidence) if m.demo]
        if not demo:
            return y
        box = QRectF(area.left(), y, area.width(), L.mm(13))
        if draw:
            L.frame(p, box, L.ALERT, L.ALERT_BG, 0.5)
            L.draw_text(
                p,
                box.adjusted(L.mm(3), L.mm(2), -L.mm(3), -L.mm(2)),
                f"DEMO MODEL — NOT FOR CASEWORK. At least one result in this report comes from "
                f"{', '.join(m.name for m in demo)}, which was trained on synthetic edits only.",
                f.body_bold,
                L.ALERT,
            )
        return box.bottom() + L.mm(3)

    def _contents(self, y: float) -> float:
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
        return y

    @staticmethod
    def contents_height(sections: int) -> float:
        return L.mm(6) + sections * L.mm(4.8)

    def _summary(self) -> None:
        """The summary pages (after the cover; in the compact layout the cover holds the first rows)."""
        d = self.data
        first = self.plan.cover_summary_rows
        for page in range(self.plan.summary_pages):
            self._start_page()
            area = L.content_rect()
            y = self._heading(area.top(), "Summary" + (" (continued)" if first else ""))
            end = min(len(d.evidence), first + SUMMARY_ROWS_PER_PAGE)
            self._summary_table(first, end, y + L.mm(2))
            first = end

    def summary_row_height(self) -> float:
        plan = getattr(self, "plan", None)
        if plan is not None and plan.summary_row_h:
            return plan.summary_row_h
        return L.mm(COMPACT_SUMMARY_ROW_MM if self.layout == "compact" else SUMMARY_ROW_MM)

    def _summary_table(self, first: int, end: int, y: float) -> None:
        """Rows `first`…`end - 1` of the summary from `y`; the legend under the last row of all."""
        d = self.data
        area = L.content_rect()
        cols = [("#", 8), ("Evidence", 46), ("SHA-256", 36), ("Score", 14), ("Thr.", 11), ("Verdict", 22), ("Result", 25), ("Page", 12)]
        scale = area.width() / L.mm(sum(c[1] for c in cols))
        xs = [area.left()]
        for _, w in cols:
            xs.append(xs[-1] + L.mm(w) * scale)
        row_h = self.summary_row_height()
        self._table_header(cols, xs, y, L.mm(6))
        y += L.mm(6)
        for index in range(first, end):
            item = d.evidence[index]
            if (index - first) % 2:
                self.painter.fillRect(QRectF(area.left(), y, area.width(), row_h), L.SHADE)
            verdict_color = VERDICT_COLORS.get(item.verdict, L.MUTED)
            cells = [
                (str(index + 1), self.fonts.small, L.INK),
                (("★ " if item.bookmarked else "") + item.name, self.fonts.small, L.INK),
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
        if end == len(d.evidence):
            y += L.mm(3)
            L.draw_text(
                self.painter,
                QRectF(area.left(), y, area.width(), L.mm(SUMMARY_LEGEND_MM)),
                "Score: the model's image-level score in [0, 1]. Thr.: the threshold applied to the heat map for "
                "the mask and regions (* = the default; the analyst did not set one for that item). Verdict: the analyst's review, not the model's output. The full SHA-256 "
                "and MD5 of each file are on its " + ("page." if self.layout == "compact" else "details page."),
                self.fonts.small,
                L.MUTED,
            )
