"""Non-blocking notifications: a bar above the status line and a message log.

Errors never open a modal box that stops the analyst; they show a one-line summary
with a "Details" button (the full text, e.g. a traceback) and stay listed in
View → Messages. Every notification is also written to the application log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger("declip_desktop.gui")

LEVEL_COLOURS = {"info": "#2d5f8b", "warning": "#8a6100", "error": "#9b1c1c"}


@dataclass
class Notice:
    level: str  # info | warning | error
    message: str
    detail: str = ""
    time: datetime = field(default_factory=datetime.now)


class NotificationCenter(QObject):
    posted = Signal(object)  # Notice

    def __init__(self, parent=None):
        super().__init__(parent)
        self.notices: list[Notice] = []

    def post(self, level: str, message: str, detail: str = "") -> Notice:
        notice = Notice(level, message, detail)
        self.notices.append(notice)
        log_level = {"info": logging.INFO, "warning": logging.WARNING}.get(level, logging.ERROR)
        log.log(log_level, "%s%s", message, f"\n{detail}" if detail else "")
        self.posted.emit(notice)
        return notice

    def info(self, message: str, detail: str = "") -> Notice:
        return self.post("info", message, detail)

    def warning(self, message: str, detail: str = "") -> Notice:
        return self.post("warning", message, detail)

    def error(self, message: str, detail: str = "") -> Notice:
        return self.post("error", message, detail)


class DetailDialog(QDialog):
    """Modeless window with the full text of a notification (selectable, copyable)."""

    def __init__(self, notice: Notice, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"{notice.level.capitalize()} — details")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        label = QLabel(notice.message)
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(label)
        text = QPlainTextEdit(notice.detail or "(no further detail)")
        text.setReadOnly(True)
        layout.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(640, 360)


class NotificationBar(QWidget):
    """Latest notice in one line; info hides itself, warnings and errors stay until closed.

    With a parent it floats over the bottom of the parent (a toast, outside any layout, clear of
    the tool bars and filters at the top), so a message never pushes the window's content around
    while the analyst is working."""

    def __init__(self, center: NotificationCenter, parent=None):
        super().__init__(parent)
        if parent is not None:
            parent.installEventFilter(self)
        self.setObjectName("notificationBar")
        self._notice: Notice | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self.details_button = QPushButton("Details…")
        self.details_button.clicked.connect(self.show_details)
        layout.addWidget(self.details_button)
        close = self.close_button = QPushButton("✕")
        close.setFlat(True)
        close.setToolTip("Dismiss")
        close.setFixedWidth(28)
        close.clicked.connect(self.hide)
        layout.addWidget(close)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        center.posted.connect(self.show_notice)
        self.hide()

    def show_notice(self, notice: Notice) -> None:
        self._notice = notice
        colour = LEVEL_COLOURS.get(notice.level, LEVEL_COLOURS["error"])
        self.setStyleSheet(f"#notificationBar {{ background: {colour}; }} QLabel {{ color: white; }}")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.label.setText(notice.message)
        self.details_button.setVisible(bool(notice.detail))
        self.show()
        self._place()
        if notice.level == "info":
            self._timer.start(8000)
        else:
            self._timer.stop()

    def _place(self) -> None:
        parent = self.parentWidget()
        if parent is None:
            return
        width = min(parent.width() - 24, 960)
        margins = self.layout().contentsMargins()
        buttons = sum(w.sizeHint().width() + self.layout().spacing()
                      for w in (self.details_button, self.close_button) if not w.isHidden())
        text_width = max(100, width - buttons - margins.left() - margins.right())
        height = max(self.label.heightForWidth(text_width), self.details_button.sizeHint().height())
        height += margins.top() + margins.bottom()
        self.setGeometry((parent.width() - width) // 2, parent.height() - height - 12, width, height)
        self.raise_()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize and self.isVisible():
            self._place()
        return False

    def show_details(self) -> None:
        if self._notice is not None:
            DetailDialog(self._notice, self.window()).show()

    @property
    def current(self) -> Notice | None:
        return self._notice if self.isVisible() else None


class MessageLog(QListWidget):
    """Every notice of this session; double-click opens its details."""

    def __init__(self, center: NotificationCenter, parent=None):
        super().__init__(parent)
        center.posted.connect(self.add_notice)
        self.itemDoubleClicked.connect(self._open)

    def add_notice(self, notice: Notice) -> None:
        item = QListWidgetItem(f"{notice.time:%H:%M:%S}  {notice.level.upper():7}  {notice.message}")
        item.setData(Qt.ItemDataRole.UserRole, notice)
        item.setToolTip(notice.detail or notice.message)
        self.addItem(item)
        self.scrollToBottom()

    def _open(self, item: QListWidgetItem) -> None:
        DetailDialog(item.data(Qt.ItemDataRole.UserRole), self.window()).show()
