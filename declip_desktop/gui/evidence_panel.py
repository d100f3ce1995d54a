"""The evidence list: thumbnails, status, score and verdict; sort, filter, multi-select.

Rejected files (not imported: unreadable, not an image, too large …) are listed as
rows too, greyed, with their reason: an analyst must see what was *not* imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.cases.records import STATUSES as CASE_STATUSES
from declip_desktop.cases.records import VERDICTS
from declip_desktop.gui.evidence_list_view import (  # noqa: F401 - re-exported: the list's public names
    BOOKMARKED,
    ROW_ROLE,
    SORT_ROLE,
    EvidenceFilter,
    NameDelegate,
)
from declip_desktop.gui.integrity import STATE_TEXT, state_label

# The case store's statuses and verdicts, plus "rejected" for files the import refused (listed too).
STATUSES = (*CASE_STATUSES, "rejected")
STATUS_COLOURS = {
    "queued": "#6b7280",
    "analysing": "#2563eb",
    "done": "#15803d",
    "failed": "#b91c1c",
    "skipped": "#92400e",
    "rejected": "#9ca3af",
}
INTEGRITY_COLOUR = "#dc2626"  # a file missing or changed: louder than a failed analysis
COLUMNS = ("Evidence", "Status", "Score", "Verdict")
THUMB = 48


@dataclass
class Row:
    """One line of the list: an evidence item or a rejected file."""

    evidence: object | None = None  # cases.Evidence
    rejection: object | None = None  # cases.Rejection
    integrity: str | None = None  # gui.integrity state ("missing", "changed", …) when the file is not intact

    @property
    def evidence_id(self) -> int | None:
        return self.evidence.id if self.evidence is not None else None

    @property
    def status(self) -> str:
        """The analysis status, unless the file is not intact: then that is what the row says
        ("file missing"), never "done" over a result for a file that is no longer there."""
        if self.integrity:
            return state_label(self.integrity)
        return self.evidence.status if self.evidence is not None else "rejected"

    @property
    def name(self) -> str:
        if self.evidence is not None:
            return self.evidence.original_name
        return Path(self.rejection.path).name or str(self.rejection.path)


class EvidenceModel(QAbstractTableModel):
    def __init__(self, thumbnail_loader=None, parent=None):
        super().__init__(parent)
        self.rows: list[Row] = []
        self._thumbnail_loader = thumbnail_loader  # evidence_id -> Path | None
        self._icons: dict[int, QIcon] = {}
        self._placeholder = _placeholder_icon()
        self.badges: dict[int, tuple[str, str]] = {}  # evidence id -> (badge text, tooltip); gui.forensics_panel
        self.integrity: dict[int, str] = {}
        self.references: set[int] = set()  # reference-authentic items (set_references)
        self.marks: dict[int, object] = {}  # evidence id -> cases.tags.Marks (tags, bookmark); gui.evidence_tags

    def set_content(self, evidence: list, rejections: list) -> None:
        self._icons.clear()
        self.beginResetModel()
        self.rows = [Row(evidence=ev, integrity=self.integrity.get(ev.id)) for ev in evidence] + \
                    [Row(rejection=r) for r in rejections]
        self.endResetModel()

    def set_integrity(self, states: dict[int, str]) -> None:
        """{evidence id: state} of the items whose file is not intact (all others are)."""
        self.integrity = dict(states)
        for i, row in enumerate(self.rows):
            if row.evidence is not None and row.integrity != self.integrity.get(row.evidence.id):
                row.integrity = self.integrity.get(row.evidence.id)
                self._icons.pop(row.evidence.id, None)
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))

    def update_evidence(self, ev) -> None:
        self._icons.pop(ev.id, None)
        for i, row in enumerate(self.rows):
            if row.evidence is not None and row.evidence.id == ev.id:
                row.evidence = ev
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
                return
        first_rejection = next((i for i, r in enumerate(self.rows) if r.evidence is None), len(self.rows))
        self.beginInsertRows(QModelIndex(), first_rejection, first_rejection)
        self.rows.insert(first_rejection, Row(evidence=ev, integrity=self.integrity.get(ev.id)))
        self.endInsertRows()

    def set_references(self, ids) -> None:
        """Items marked reference-authentic: "reference" under the name (gui.calibration_actions)."""
        self.references = set(ids)
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, 0))

    def set_badges(self, badges: dict[int, tuple[str, str]]) -> None:
        """Alert badges shown after an item's name (see gui.forensics_panel.refresh_badges)."""
        self.badges = dict(badges)
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, 0))

    def set_marks(self, marks: dict[int, object]) -> None:
        """The analyst's tags and bookmarks (gui.evidence_tags): shown with the name, filtered on."""
        self.marks = dict(marks)
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, 0))

    def row_of(self, evidence_id: int) -> int | None:
        for i, row in enumerate(self.rows):
            if row.evidence_id == evidence_id:
                return i
        return None

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def _icon(self, evidence_id: int) -> QIcon:
        # Cached per item; update_evidence() drops the entry so a new thumbnail shows.
        cached = self._icons.get(evidence_id)
        if cached is not None:
            return cached
        path = self._thumbnail_loader(evidence_id) if self._thumbnail_loader else None
        pixmap = QPixmap(str(path)) if path is not None and Path(path).exists() else QPixmap()
        icon = QIcon(pixmap) if not pixmap.isNull() else self._placeholder
        if not pixmap.isNull():
            self._icons[evidence_id] = icon
        return icon

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = index.column()
        ev = row.evidence
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                badge = self.badges.get(ev.id) if ev is not None else None
                mark = self.marks.get(ev.id) if ev is not None else None
                text = f"{row.name}   {badge[0]}" if badge else row.name
                # The second line under the name: the item's role, then the analyst's tags (on the first
                # line "reference" took the name's room in the narrow column: "p…g · reference").
                parts = ["reference"] if ev is not None and ev.id in self.references else []
                if mark is not None and mark.tags:
                    parts.append(", ".join(mark.tags))
                if parts:
                    text += "\n" + " · ".join(parts)
                return text
            if col == 1:
                return row.status
            if col == 2:
                return f"{ev.score:.3f}" if ev is not None and ev.score is not None else "—"
            if col == 3:
                return ev.verdict if ev is not None else ""
        if role == SORT_ROLE:
            if col == 0:
                return row.name.lower()
            if col == 1:
                return STATUSES.index(row.status) if row.status in STATUSES else 99
            if col == 2:
                return ev.score if ev is not None and ev.score is not None else -1.0
            if col == 3:
                return VERDICTS.index(ev.verdict) if ev is not None and ev.verdict in VERDICTS else 99
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            if ev is not None and row.integrity:
                return self._placeholder  # a cached thumbnail would show a file that is not there
            return self._icon(ev.id) if ev is not None else None
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 1 and row.integrity:
                return QBrush(QColor(INTEGRITY_COLOUR))
            if col == 1:
                return QBrush(QColor(STATUS_COLOURS.get(row.status, "#000000")))
            if ev is None:
                return QBrush(QColor(STATUS_COLOURS["rejected"]))
        if role == Qt.ItemDataRole.ToolTipRole:
            if ev is None:
                return f"Not imported: {row.rejection.reason}\n{row.rejection.path}"
            lines = [ev.original_name, f"{ev.width}×{ev.height} {ev.format}", f"status: {ev.status}"]
            if row.integrity:
                lines.append(f"{STATE_TEXT.get(row.integrity, row.integrity)}: review locked until it is resolved")
            if ev.error:
                lines.append(f"error: {ev.error}")
            if ev.score is not None:
                lines.append(f"image score: {ev.score:.3f}")
            if ev.id in self.badges and self.badges[ev.id][1]:
                lines.append(self.badges[ev.id][1])
            if ev.id in self.marks and self.marks[ev.id].describe():
                lines.append(self.marks[ev.id].describe())
            return "\n".join(lines)
        return None


class EvidencePanel(QWidget):
    """List plus filter bar. Emits the current evidence and context-menu requests."""

    currentEvidenceChanged = Signal(object)  # evidence id or None
    reanalyseRequested = Signal(list)  # evidence ids
    revealRequested = Signal(int)
    dequeueRequested = Signal(list)
    compareRequested = Signal(int, str)  # evidence id, "item" | "difference" (with the item shown)
    referenceRequested = Signal(list, bool)  # evidence ids, True: mark reference-authentic (gui.calibration_actions)
    contextMenuAboutToShow = Signal(object, list)  # QMenu, evidence ids: other parts add their actions

    def __init__(self, thumbnail_loader=None, parent=None):
        super().__init__(parent)
        self.model = EvidenceModel(thumbnail_loader, self)
        self.proxy = EvidenceFilter(self)
        self.proxy.setSourceModel(self.model)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.status_filter = QComboBox()
        self.status_filter.addItem("All statuses", "")
        for status in STATUSES:
            self.status_filter.addItem(status, status)
        self.status_filter.addItem("file missing or changed", "file problem")
        self.verdict_filter = QComboBox()
        self.verdict_filter.addItem("All verdicts", "")
        for verdict in VERDICTS:
            self.verdict_filter.addItem(verdict, verdict)
        self.score_filter = QDoubleSpinBox()
        self.score_filter.setRange(0.0, 1.0)
        self.score_filter.setSingleStep(0.05)
        self.score_filter.setDecimals(2)
        self.score_filter.setPrefix("score ≥ ")
        self.score_filter.setToolTip("Show only evidence with an image score at least this high")
        for widget in (self.status_filter, self.verdict_filter):
            widget.currentIndexChanged.connect(self._apply_filters)
        self.score_filter.valueChanged.connect(self._apply_filters)
        bar.addWidget(self.status_filter)
        bar.addWidget(self.verdict_filter)
        bar.addWidget(self.score_filter)
        self.name_filter = QLineEdit()
        self.name_filter.setPlaceholderText("Filter by name…")
        self.name_filter.setClearButtonEnabled(True)
        self.name_filter.setToolTip("Show only evidence whose file name contains this text (any case)")
        self.name_filter.textChanged.connect(self._apply_filters)
        self.name_bar = QHBoxLayout()  # gui.evidence_tags adds its tag filter beside the name filter
        self.name_bar.addWidget(self.name_filter, 1)
        layout.addLayout(self.name_bar)
        layout.addLayout(bar)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)
        # Names cut in the middle keep their distinguishing ends ("inpaint_mo…v2.png"); the tooltip has it all.
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setItemDelegateForColumn(0, NameDelegate(self.view))
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().currentRowChanged.connect(self._current_changed)
        layout.addWidget(self.view, 1)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.model.modelReset.connect(self._update_summary)
        self.model.dataChanged.connect(lambda *_: self._update_summary())
        self.model.rowsInserted.connect(lambda *_: self._update_summary())

    # ----- content ------------------------------------------------------------------------------
    def set_content(self, evidence: list, rejections: list) -> None:
        current = self.current_evidence_id()
        self.model.set_content(evidence, rejections)
        if current is not None:
            self.select_evidence(current)

    def update_evidence(self, ev) -> None:
        self.model.update_evidence(ev)

    def set_integrity(self, states: dict[int, str]) -> None:
        self.model.set_integrity(states)

    def _update_summary(self) -> None:
        counts: dict[str, int] = {}
        for row in self.model.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        parts = [f"{counts[s]} {s}" for s in STATUSES if counts.get(s)]
        parts += [f"{n} {s}" for s, n in sorted(counts.items()) if s not in STATUSES]  # "file missing" …
        self.summary.setText(", ".join(parts) if parts else "No evidence yet: drop images or folders on the window.")

    # ----- selection ----------------------------------------------------------------------------
    def current_evidence_id(self) -> int | None:
        index = self.view.currentIndex()
        if not index.isValid():
            return None
        row: Row = self.proxy.data(index, ROW_ROLE)
        return row.evidence_id if row is not None else None

    def selected_evidence_ids(self) -> list[int]:
        ids = []
        for index in self.view.selectionModel().selectedRows():
            row: Row = self.proxy.data(index, ROW_ROLE)
            if row is not None and row.evidence_id is not None:
                ids.append(row.evidence_id)
        return ids

    def select_evidence(self, evidence_id: int) -> bool:
        source_row = self.model.row_of(evidence_id)
        if source_row is None:
            return False
        index = self.proxy.mapFromSource(self.model.index(source_row, 0))
        if not index.isValid():
            return False
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index)
        return True

    def step(self, delta: int) -> None:
        """Move to the next (+1) or previous (−1) visible row."""
        count = self.proxy.rowCount()
        if count == 0:
            return
        current = self.view.currentIndex()
        row = current.row() + delta if current.isValid() else (0 if delta > 0 else count - 1)
        row = max(0, min(count - 1, row))
        self.view.setCurrentIndex(self.proxy.index(row, 0))

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row: Row = self.proxy.data(current, ROW_ROLE) if current.isValid() else None
        self.currentEvidenceChanged.emit(row.evidence_id if row is not None else None)

    def _apply_filters(self) -> None:
        self.proxy.set_filters(
            self.status_filter.currentData() or "", self.verdict_filter.currentData() or "", self.score_filter.value(),
            self.name_filter.text(),
        )

    # ----- context menu -------------------------------------------------------------------------
    def _context_menu(self, pos) -> None:
        ids = self.selected_evidence_ids()
        if not ids:
            return
        menu = QMenu(self)
        reanalyse = QAction(f"Re-analyse {len(ids)} item(s) with another model…", menu)
        reanalyse.triggered.connect(lambda: self.reanalyseRequested.emit(ids))
        menu.addAction(reanalyse)
        current = self.current_evidence_id()
        reveal = QAction("Reveal file in folder", menu)
        reveal.setEnabled(current is not None)
        reveal.triggered.connect(lambda: self.revealRequested.emit(current))
        menu.addAction(reveal)
        dequeue = QAction(f"Remove {len(ids)} item(s) from the queue", menu)
        dequeue.triggered.connect(lambda: self.dequeueRequested.emit(ids))
        menu.addAction(dequeue)
        marked = [i for i in ids if i in self.model.references]
        menu.addSeparator()
        for text, flag, chosen in (("Mark as reference-authentic (for calibration)", True, ids),
                                   ("Unmark reference", False, marked)):
            action = QAction(text if len(ids) == 1 else f"{text} — {len(chosen)} item(s)", menu)
            action.setEnabled(bool(chosen) and (not flag or len(marked) < len(ids)))
            action.triggered.connect(lambda _c=False, f=flag, c=chosen: self.referenceRequested.emit(c, f))
            menu.addAction(action)
        if len(ids) == 1:
            menu.addSeparator()
            for text, mode in (("Compare with the item shown (side by side)", "item"),
                               ("Difference with the item shown", "difference")):
                action = QAction(text, menu)
                action.triggered.connect(lambda _c=False, m=mode, eid=ids[0]: self.compareRequested.emit(eid, m))
                menu.addAction(action)
        self.contextMenuAboutToShow.emit(menu, ids)
        menu.popup(self.view.viewport().mapToGlobal(pos))


def _placeholder_icon() -> QIcon:
    pixmap = QPixmap(THUMB, THUMB)
    pixmap.fill(QColor(200, 200, 205))
    return QIcon(pixmap)
