"""How the evidence list shows and filters its rows (used by `gui.evidence_panel`): the name
column's delegate (the name elided in the middle, the bookmark star before it, the badges after
it, the analyst's tags on a second line) and the filter over status, verdict, score, name and tag.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtWidgets import QStyledItemDelegate

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ROLE = Qt.ItemDataRole.UserRole + 2
BOOKMARKED = "\x00bookmarked"  # the tag filter's "bookmarked items" choice (no tag can hold a NUL)


class NameDelegate(QStyledItemDelegate):
    """The name column: the file name elided in the middle ("inpaint_mo…_v2.png"), so two names
    with the same start stay distinguishable, and the badge after it always whole."""

    def initStyleOption(self, option, index) -> None:  # noqa: N802 (Qt override)
        super().initStyleOption(option, index)
        row = index.data(ROW_ROLE)
        if row is None:
            return
        # A second line holds the analyst's tags (Qt turns the model's "\n" into U+2028, a line separator).
        full, _, tags = option.text.replace("\u2028", "\n").partition("\n")
        name = row.name
        badge = full[len(name):].strip() if full.startswith(name) else ""
        badge = f" {badge}" if badge else ""
        marks = getattr(index.model().sourceModel(), "marks", {}) if hasattr(index.model(), "sourceModel") else {}
        mark = marks.get(row.evidence_id)
        star = "★ " if mark is not None and mark.bookmarked else ""
        icon = option.decorationSize.width() + 4 if not option.icon.isNull() else 0
        metrics = option.fontMetrics
        room = option.rect.width() - icon - metrics.horizontalAdvance(star + badge) - 10
        option.text = star + metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, max(room, 24)) + badge
        if tags:  # the whole width beside the thumbnail: no star or badge on this line
            room = option.rect.width() - icon - 10
            option.text += "\u2028" + metrics.elidedText(tags, Qt.TextElideMode.ElideRight, max(room, 24))
        option.textElideMode = Qt.TextElideMode.ElideNone


class EvidenceFilter(QSortFilterProxyModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.status = ""
        self.verdict = ""
        self.min_score = 0.0
        self.name = ""
        self.tag = ""  # "" all, BOOKMARKED, or a tag (case-insensitive)
        self.setSortRole(SORT_ROLE)

    def set_filters(self, status: str, verdict: str, min_score: float, name: str = "") -> None:
        self.status, self.verdict, self.min_score = status, verdict, min_score
        self.name = name.strip().casefold()
        self.invalidateFilter()

    def set_tag(self, tag: str) -> None:
        self.tag = tag
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802
        row = self.sourceModel().rows[source_row]
        if self.name and self.name not in row.name.casefold():
            return False
        if self.tag:
            mark = self.sourceModel().marks.get(row.evidence_id)
            if mark is None or not (mark.bookmarked if self.tag == BOOKMARKED else mark.has_tag(self.tag)):
                return False
        if self.status == "file problem":
            return bool(row.integrity)
        if self.status and row.status != self.status:
            return False
        ev = row.evidence
        if self.verdict and (ev is None or ev.verdict != self.verdict):
            return False
        if self.min_score > 0 and (ev is None or ev.score is None or ev.score < self.min_score):
            return False
        return True


__all__ = ["BOOKMARKED", "ROW_ROLE", "SORT_ROLE", "EvidenceFilter", "NameDelegate"]
