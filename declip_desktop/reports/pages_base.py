"""Page furniture every report page shares (header, footer, headings, key/value tables) and
the layout budgets; mixed into `reports.pdf.ReportRenderer`."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor

from declip_desktop.reports import layout as L
from declip_desktop.reports.formatting import format_generated_at


#: Bytes of embedded raster images for a whole report; split evenly between items.
IMAGE_BUDGET_TOTAL = 50 * 1024 * 1024
#: No single item needs more than this (two 2000-px JPEGs of a busy photo at Qt's quality).
IMAGE_BUDGET_ITEM_MAX = 8 * 1024 * 1024
SUMMARY_ROWS_PER_PAGE = 25
MAX_REGION_ROWS = 12
#: Longer metadata values are cut (the full metadata is in the case's JSON export).
MAX_VALUE_CHARS = 160
COLORMAP = "inferno"


DEMO_BANNER = "DEMO MODEL — NOT FOR CASEWORK"
DRAFT_BANNER = "DRAFT"


def banner_text(d) -> str:  # noqa: ANN001 - ReportData
    """What the band above every page says: demo model and/or draft (unreviewed items), or ""."""
    parts = []
    if d.demo:
        parts.append(DEMO_BANNER)
    if d.unreviewed:
        parts.append(f"{DRAFT_BANNER} — {d.unreviewed} item(s) not reviewed by the analyst")
    return "   ·   ".join(parts)


class PageCanvas:
    """Drawing helpers over `self.painter`, `self.writer`, `self.fonts`, `self.data` (set by the renderer)."""

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
        self._banner(left, width)
        foot = L.mm(L.FOOTER_TOP_MM)
        L.hline(p, foot, left, right)
        p.setFont(f.small)
        p.drawText(
            QRectF(left, foot + L.mm(1), width * 0.75, L.mm(5)),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
            f"{d.software} · generated {format_generated_at(d)}",
        )
        p.drawText(
            QRectF(left + width * 0.75, foot + L.mm(1), width * 0.25, L.mm(5)),
            int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop),
            f"Page {self.page_no} of {self.total_pages}",
        )

    def _banner(self, left: float, width: float) -> None:
        """Above the header, on every page: a printed page on its own still says what it is."""
        text = banner_text(self.data)
        if not text:
            return
        p = self.painter
        band = QRectF(left, L.mm(L.BANNER_TOP_MM), width, L.mm(L.BANNER_H_MM))
        p.fillRect(band, L.ALERT)
        p.save()
        p.setFont(self.fonts.small_bold)
        p.setPen(QColor(255, 255, 255))
        p.drawText(band, int(Qt.AlignmentFlag.AlignCenter), L.elide(p, self.fonts.small_bold, text, width - L.mm(4)))
        p.restore()

    def _heading(self, y: float, text: str, font=None) -> float:
        p = self.painter
        area = L.content_rect()
        font = font or self.fonts.h1
        h = L.draw_text(p, QRectF(area.left(), y, area.width(), L.mm(12)), L.elide(p, font, text, area.width()), font)
        return y + h + L.mm(1.5)

    def _kv_table(self, rows, y: float, x: float, width: float, key_w: float, font=None, mono_keys=(),
                  draw: bool = True) -> float:
        """Label/value rows; values that look like hashes (no spaces, long) wrap anywhere.
        `draw=False` only measures (returns where the table would end)."""
        p, f = self.painter, self.fonts
        font = font or f.body
        kfont = f.body_bold if font is f.body else f.small_bold
        for key, value in rows:
            value = value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"
            vfont = f.mono if key in mono_keys else font
            # Hashes wrap anywhere; text (and paths, which carry zero-width spaces) at word boundaries.
            flags = L.HASH_FLAGS if (" " not in value and "\u200b" not in value and len(value) > 24) else L.TEXT_FLAGS
            h = max(L.text_height(p, kfont, key_w - L.mm(2), key), L.text_height(p, vfont, width - key_w, value, flags))
            if draw:
                L.draw_text(p, QRectF(x, y, key_w - L.mm(2), h + 2), key, kfont, L.MUTED)
                L.draw_text(p, QRectF(x + key_w, y, width - key_w, h + 2), value, vfont, flags=flags)
            y += h + L.mm(1.2)
        return y

    def _table_header(self, cols, xs, y, h) -> None:
        p = self.painter
        p.fillRect(QRectF(xs[0], y, xs[-1] - xs[0], h), QColor(225, 225, 225))
        for col, (title, _) in enumerate(cols):
            L.draw_text(p, QRectF(xs[col] + L.mm(1), y + L.mm(1), xs[col + 1] - xs[col] - L.mm(2), h), title, self.fonts.small_bold)
