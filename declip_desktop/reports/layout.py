"""Page geometry and drawing helpers shared by every report page.

Coordinates are device pixels of a 300-dpi QPdfWriter; `Page.mm()` converts from
millimetres so the layout reads like a paper design. Fonts are sized in points, which Qt
maps through the writer's resolution.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QTextDocument

from declip_desktop.reports.fonts import make_font

RESOLUTION = 300  # dpi of the PDF coordinate system (not of the embedded images)
PAGE_W_MM, PAGE_H_MM = 210.0, 297.0  # A4 portrait
MARGIN_MM = 18.0
BANNER_TOP_MM, BANNER_H_MM = 4.0, 4.6  # the DEMO / DRAFT band above the header (inside printers' margins)
HEADER_TOP_MM = 9.0
CONTENT_TOP_MM = 21.0
CONTENT_BOTTOM_MM = 281.0
FOOTER_TOP_MM = 285.0

INK = QColor(30, 30, 30)
MUTED = QColor(100, 100, 100)
RULE = QColor(180, 180, 180)
SHADE = QColor(240, 240, 240)
ALERT = QColor(170, 20, 20)
ALERT_BG = QColor(253, 236, 236)
OK = QColor(20, 110, 40)
OUTLINE = QColor(0, 255, 255)  # cyan: visible on the inferno palette and on a black/white mask

TEXT_FLAGS = Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
#: For hashes and other long unbroken strings: break anywhere rather than run off the page.
HASH_FLAGS = Qt.TextFlag.TextWrapAnywhere | Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop


def mm(value: float) -> float:
    return value * RESOLUTION / 25.4


def content_rect() -> QRectF:
    return QRectF(mm(MARGIN_MM), mm(CONTENT_TOP_MM), mm(PAGE_W_MM - 2 * MARGIN_MM), mm(CONTENT_BOTTOM_MM - CONTENT_TOP_MM))


class Fonts:
    """The handful of text styles a report uses."""

    def __init__(self) -> None:
        self.title = make_font(20, bold=True)
        self.h1 = make_font(14, bold=True)
        self.h2 = make_font(10.5, bold=True)
        self.body = make_font(9)
        self.body_bold = make_font(9, bold=True)
        self.small = make_font(7.5)
        self.small_bold = make_font(7.5, bold=True)
        self.mono = make_font(8, mono=True)
        self.mono_small = make_font(7, mono=True)
        self.big = make_font(26, bold=True)


def text_height(painter: QPainter, font: QFont, width: float, text: str, flags=TEXT_FLAGS) -> float:
    metrics = QFontMetricsF(font, painter.device())
    return metrics.boundingRect(QRectF(0, 0, width, 1e7), int(flags), text).height()


def draw_text(painter: QPainter, rect: QRectF, text: str, font: QFont, color: QColor = INK, flags=TEXT_FLAGS) -> float:
    """Wrapped text clipped to `rect`; returns the height it needed (may exceed rect)."""
    painter.save()
    painter.setFont(font)
    painter.setPen(color)
    painter.setClipRect(rect)
    bounds = painter.drawText(rect, int(flags), text)
    painter.restore()
    return bounds.height()


def elide(painter: QPainter, font: QFont, text: str, width: float) -> str:
    return QFontMetricsF(font, painter.device()).elidedText(text, Qt.TextElideMode.ElideMiddle, width)


def hline(painter: QPainter, y: float, x0: float, x1: float, color: QColor = RULE, width_mm: float = 0.25) -> None:
    painter.save()
    painter.setPen(QPen(color, mm(width_mm)))
    painter.drawLine(QPointF(x0, y), QPointF(x1, y))
    painter.restore()


def frame(painter: QPainter, rect: QRectF, color: QColor = RULE, fill: QColor | None = None, width_mm: float = 0.25) -> None:
    painter.save()
    painter.setPen(QPen(color, mm(width_mm)))
    if fill is not None:
        painter.setBrush(fill)
    else:
        painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawRect(rect)
    painter.restore()


def new_document(painter_device, width: float, default_font: QFont, html: str, page_height: float | None = None) -> QTextDocument:
    """A QTextDocument laid out for the PDF device (so point sizes match the page)."""
    doc = QTextDocument()
    doc.documentLayout().setPaintDevice(painter_device)
    doc.setDefaultFont(default_font)
    doc.setDocumentMargin(0)
    doc.setDefaultStyleSheet(
        "table { border-collapse: collapse; } "
        "th { background-color: #e8e8e8; text-align: left; } "
        "td, th { padding: 3px; } "
        ".mono { font-family: 'DejaVu Sans Mono'; } "
        ".alert { color: #aa1414; font-weight: bold; } "
        ".muted { color: #646464; } "
    )
    doc.setHtml(html)
    doc.setTextWidth(width)
    if page_height is not None:
        doc.setPageSize(QSizeF(width, page_height))
    return doc


def draw_document_page(painter: QPainter, doc: QTextDocument, page_index: int, rect: QRectF) -> None:
    """Paint page `page_index` of a paginated document into `rect`."""
    page_h = doc.pageSize().height()
    painter.save()
    painter.translate(rect.left(), rect.top() - page_index * page_h)
    clip = QRectF(0, page_index * page_h, rect.width(), page_h)
    painter.setClipRect(clip)
    doc.drawContents(painter, clip)
    painter.restore()


def block_split(doc: QTextDocument, heading: str, next_heading: str | None = None) -> bool:
    """Whether the part from `heading` to `next_heading` (None: to the end) runs over a page break."""
    start = heading_page(doc, heading)
    if start is None:
        return False
    end = doc.pageCount() - 1 if next_heading is None else _block_end_page(doc, heading, next_heading)
    return end != start


def _block_end_page(doc: QTextDocument, heading: str, next_heading: str) -> int:
    """Page of the last line before `next_heading` (after `heading`)."""
    block, seen, last = doc.begin(), False, None
    layout = doc.documentLayout()
    page_h = doc.pageSize().height()
    while block.isValid():
        text = block.text()
        if text.startswith(heading):
            seen = True
        elif seen and text.startswith(next_heading):
            break
        if seen and text.strip():
            last = layout.blockBoundingRect(block)
        block = block.next()
    return int((last.bottom() - 1) // page_h) if last is not None else doc.pageCount() - 1


def heading_page(doc: QTextDocument, heading: str) -> int | None:
    """0-based page of a paginated document on which the block starting with `heading` begins."""
    block = doc.begin()
    page_h = doc.pageSize().height()
    while block.isValid():
        if block.text().startswith(heading):
            top = doc.documentLayout().blockBoundingRect(block).top()
            return int(top // page_h)
        block = block.next()
    return None
