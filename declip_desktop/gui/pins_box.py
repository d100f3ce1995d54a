"""Pins box under the inspector's Views tab: pin the current classical view, the DeCLIP map, an alert
or the C2PA summary with a note for the report; list and remove pins. Every change is audit-logged."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from declip_desktop.forensics.views import VIEWS


class PinsBox(QGroupBox):
    failed = Signal(str, str)
    changed = Signal()

    def __init__(self, current_view, parent=None):
        """`current_view()` -> (view name, parameters) of the view shown now, or None."""
        super().__init__("Pin to the report", parent)
        self._current_view = current_view
        self.case = None
        self.evidence_id: int | None = None
        self.alerts: list[dict] = []
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.what = QComboBox()
        self.what.setToolTip("What to carry into this item's report pages")
        row.addWidget(self.what, 1)
        self.pin_button = QPushButton("Pin")
        self.pin_button.clicked.connect(self.pin_selected)
        row.addWidget(self.pin_button)
        layout.addLayout(row)
        self.note = QLineEdit()
        self.note.setPlaceholderText("Note shown with the pinned item in the report")
        layout.addWidget(self.note)
        self.list = QListWidget()
        self.list.setMaximumHeight(110)
        layout.addWidget(self.list)
        self.remove_button = QPushButton("Remove pin")
        self.remove_button.clicked.connect(self.remove_selected)
        layout.addWidget(self.remove_button)
        self._fill_choices()

    def show_evidence(self, case, evidence_id: int | None, alerts: list[dict] | None = None) -> None:
        self.case, self.evidence_id, self.alerts = case, evidence_id, list(alerts or [])
        self._fill_choices()
        self.refresh()

    def set_alerts(self, alerts: list[dict]) -> None:
        self.alerts = list(alerts)
        self._fill_choices()

    def _fill_choices(self) -> None:
        self.what.clear()
        # Item data "kind:ref" (a plain string: Qt compares it in findData).
        self.what.addItem("The classical view shown now", "view:")
        self.what.addItem("The DeCLIP map", "declip:")
        self.what.addItem("The Content Credentials summary", "c2pa:")
        for a in self.alerts:
            self.what.addItem(f"Alert: {a.get('title')}", f"alert:{a.get('code', '')}")
        enabled = self.case is not None and self.evidence_id is not None
        for w in (self.what, self.pin_button, self.note, self.remove_button):
            w.setEnabled(enabled)

    def refresh(self) -> None:
        self.list.clear()
        if self.case is None or self.evidence_id is None:
            return
        from declip_desktop.pins import pins

        for p in pins(self.case, self.evidence_id):
            label = VIEWS[p.ref].title if p.kind == "view" and p.ref in VIEWS else {
                "declip": "DeCLIP map", "c2pa": "Content Credentials"}.get(p.kind, f"Alert {p.ref}")
            item = QListWidgetItem(f"{label} — {p.note or '(no note)'}")
            item.setData(Qt.ItemDataRole.UserRole, p.pin_id)
            item.setToolTip(f"pinned by {p.pinned_by}, {p.pinned_at}")
            self.list.addItem(item)

    def pin_selected(self) -> None:
        if self.case is None or self.evidence_id is None:
            return
        from declip_desktop.pins import PinError, pin

        kind, _, ref = str(self.what.currentData() or "view:").partition(":")
        params: dict = {}
        if kind == "view":
            current = self._current_view()
            if current is None:
                self.failed.emit("Choose a classical view first (above), then pin it.", "")
                return
            ref, params = current
        try:
            pin(self.case, self.evidence_id, kind, ref, self.note.text().strip(), params)
        except PinError as exc:
            self.failed.emit(f"Could not pin: {exc}", "")
            return
        self.note.clear()
        self.refresh()
        self.changed.emit()

    def remove_selected(self) -> None:
        item = self.list.currentItem()
        if item is None or self.case is None:
            return
        from declip_desktop.pins import PinError, unpin

        try:
            unpin(self.case, self.evidence_id, item.data(Qt.ItemDataRole.UserRole))
        except PinError as exc:  # e.g. removed meanwhile from another window
            self.failed.emit(f"Could not remove the pin: {exc}", "")
        self.refresh()
        self.changed.emit()
