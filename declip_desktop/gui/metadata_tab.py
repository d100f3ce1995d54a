"""Metadata tab of the inspector: a searchable tree of every field, the raw JSON, the EXIF
thumbnail beside a note on whether it matches, and the alerts with the C2PA summary."""

from __future__ import annotations

import base64
import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.gui.forensics_text import alerts_html, c2pa_html

_MAX_ITEMS = 20000  # tree rows; the raw view always has everything


def _fill(parent: QTreeWidgetItem | QTreeWidget, value: Any, budget: list[int]) -> None:
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        if budget[0] <= 0:
            return
        budget[0] -= 1
        if key == "png_base64":
            continue  # shown as a picture in the Thumbnail tab
        node = QTreeWidgetItem([str(key), ""])
        parsed = _json_text(child)
        if parsed is not None:  # e.g. ComfyUI's prompt/workflow chunks: shown as a tree too
            node.setText(1, f"(JSON, {len(child):,} characters)")
            _fill(node, parsed, budget)
        elif isinstance(child, (dict, list)) and child:
            _fill(node, child, budget)
        else:
            text = "" if child is None else str(child)
            node.setText(1, text.replace("\n", " ⏎ ")[:500])
            node.setToolTip(1, text[:4000])
        if isinstance(parent, QTreeWidget):
            parent.addTopLevelItem(node)
        else:
            parent.addChild(node)


def _json_text(value: Any) -> dict | list | None:
    """A JSON object/array held in a text value, else None."""
    if not isinstance(value, str) or len(value) < 2 or value.lstrip()[:1] not in "{[":
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, (dict, list)) and parsed else None


def _filter(item: QTreeWidgetItem, needle: str) -> bool:
    """Show `item` if it or a descendant matches; returns whether it is shown."""
    own = not needle or needle in item.text(0).lower() or needle in item.text(1).lower()
    child_match = False
    for i in range(item.childCount()):
        child_match |= _filter(item.child(i), "" if own and needle else needle)
    shown = own or child_match
    item.setHidden(not shown)
    if needle and child_match:
        item.setExpanded(True)
    return shown


class MetadataTab(QWidget):
    """Shows one examination record (dict from `examination`); `reexamine` is a callback."""

    def __init__(self, reexamine=None, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.inner = QTabWidget()
        alerts_page = QTextBrowser()
        alerts_page.setOpenLinks(False)
        self.alerts = alerts_page
        self.inner.addTab(alerts_page, "Alerts && C2PA")
        tree_page = QWidget()
        tl = QVBoxLayout(tree_page)
        tl.setContentsMargins(0, 0, 0, 0)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search fields and values (e.g. Software, GPS, parameters)")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._apply_filter)
        tl.addWidget(self.search)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Field", "Value"])
        self.tree.setColumnWidth(0, 190)
        self.tree.setUniformRowHeights(True)
        tl.addWidget(self.tree, 1)
        self.inner.addTab(tree_page, "Metadata")
        self.raw = QPlainTextEdit()
        self.raw.setReadOnly(True)
        self.raw.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.inner.addTab(self.raw, "Raw")
        thumb_page = QWidget()
        th = QVBoxLayout(thumb_page)
        self.thumb_note = QLabel("")
        self.thumb_note.setWordWrap(True)
        self.thumb = QLabel("")
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        th.addWidget(self.thumb_note)
        th.addWidget(self.thumb, 1)
        self.inner.addTab(thumb_page, "Thumbnail")
        layout.addWidget(self.inner, 1)
        self.reexamine_button = QPushButton("Examine again")
        self.reexamine_button.setToolTip("Read metadata and Content Credentials again (logged in the audit trail)")
        if reexamine is not None:
            self.reexamine_button.clicked.connect(reexamine)
        layout.addWidget(self.reexamine_button)
        self.record: dict[str, Any] | None = None

    def clear(self, message: str = "") -> None:
        self.record = None
        self.status.setText(message)
        self.alerts.clear()
        self.tree.clear()
        self.raw.clear()
        self.thumb.clear()
        self.thumb_note.setText("")

    def show_record(self, record: dict[str, Any], stored_as: str = "") -> None:
        self.record = record
        meta = record.get("metadata") or {}
        alerts = record.get("alerts") or []
        warnings = sum(a.get("severity") == "warning" for a in alerts)
        self.status.setText(f"{len(alerts)} alert(s), {warnings} warning(s); C2PA "
                            f"{(record.get('c2pa') or {}).get('state', 'none')}. "
                            + (f"Stored as {stored_as} (hash checked)." if stored_as else ""))
        self.alerts.setHtml(alerts_html(alerts) + c2pa_html(record.get("c2pa") or {}))
        self.tree.clear()
        budget = [_MAX_ITEMS]
        _fill(self.tree, meta, budget)
        if budget[0] <= 0:
            self.status.setText(self.status.text() + f" Tree cut at {_MAX_ITEMS} rows; the Raw tab has all.")
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            top.setExpanded(top.text(0) in ("gps", "thumbnail", "png_text", "errors"))
        self.raw.setPlainText(json.dumps(meta, indent=2, ensure_ascii=False, default=str))
        self._apply_filter(self.search.text())
        thumb = meta.get("thumbnail") or {}
        if thumb.get("png_base64"):
            image = QImage.fromData(base64.b64decode(thumb["png_base64"]), "PNG")
            self.thumb.setPixmap(QPixmap.fromImage(image).scaled(320, 320, Qt.AspectRatioMode.KeepAspectRatio))
        else:
            self.thumb.clear()
        if not thumb:
            self.thumb_note.setText("No EXIF thumbnail in this file.")
        elif thumb.get("mismatch"):
            self.thumb_note.setText(f"<b style='color:#b91c1c'>The embedded thumbnail differs from the image:</b> "
                                    f"{thumb.get('reason')}")
        elif thumb.get("mismatch") is False:
            self.thumb_note.setText("The embedded thumbnail matches the image (many editors regenerate it, so "
                                    "this proves little).")
        else:
            self.thumb_note.setText(str(thumb.get("reason") or "The thumbnail could not be compared."))

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            _filter(self.tree.topLevelItem(i), needle)
