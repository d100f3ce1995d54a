"""Start screen: create a case, open a case folder, or pick a recent one."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.common.facts import CASE_DB_NAME


class StartPage(QWidget):
    createRequested = Signal(str, str, str, str)  # folder, number, title, analyst
    openRequested = Signal(str)  # folder

    def __init__(self, settings, parent=None):
        super().__init__(parent)
        self.settings = settings
        outer = QVBoxLayout(self)
        outer.setContentsMargins(32, 24, 32, 24)
        title = QLabel("DeCLIP Desktop")
        title.setStyleSheet("font-size: 22pt; font-weight: 600")
        outer.addWidget(title)
        sub = QLabel(
            "Localize generative edits in photos. Create or open a case, then drop images or folders on the window."
        )
        sub.setWordWrap(True)
        sub.setStyleSheet("color: #6b7280")
        outer.addWidget(sub)
        row = QHBoxLayout()
        row.setSpacing(24)
        # --- new case
        new_box = QGroupBox("New case")
        form = QFormLayout(new_box)
        folder_row = QHBoxLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("An empty or new folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_new)
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        form.addRow("Folder", folder_row)
        self.number_edit = QLineEdit()
        self.number_edit.setPlaceholderText("e.g. 2025-0142")
        form.addRow("Case number", self.number_edit)
        self.title_edit = QLineEdit()
        self.title_edit.setPlaceholderText("Short description of the case")
        form.addRow("Title", self.title_edit)
        self.analyst_edit = QLineEdit(settings.analyst)
        self.analyst_edit.setPlaceholderText("Your name")
        form.addRow("Analyst", self.analyst_edit)
        self.create_button = QPushButton("Create case")
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self._create)
        form.addRow("", self.create_button)
        self.form_error = QLabel("")
        self.form_error.setStyleSheet("color: #b91c1c")
        self.form_error.setWordWrap(True)
        form.addRow("", self.form_error)
        left = QVBoxLayout()
        left.addWidget(new_box)
        left.addStretch(1)
        row.addLayout(left, 1)
        # --- open / recent
        open_box = QGroupBox("Open a case")
        ol = QVBoxLayout(open_box)
        open_button = QPushButton("Open case folder…")
        open_button.clicked.connect(self._browse_open)
        ol.addWidget(open_button)
        ol.addWidget(QLabel("Recent cases (double-click to open)"))
        self.recent_list = QListWidget()
        self.recent_list.itemActivated.connect(lambda item: self.openRequested.emit(item.data(Qt.ItemDataRole.UserRole)))
        ol.addWidget(self.recent_list, 1)
        row.addWidget(open_box, 1)
        outer.addLayout(row, 1)
        self.refresh_recent()

    def refresh_recent(self) -> None:
        self.recent_list.clear()
        for path in self.settings.recent_cases():
            exists = (Path(path) / CASE_DB_NAME).exists()
            item = QListWidgetItem(f"{Path(path).name}   —   {path}" + ("" if exists else "   (missing)"))
            item.setData(Qt.ItemDataRole.UserRole, path)
            if not exists:
                item.setForeground(Qt.GlobalColor.gray)
            self.recent_list.addItem(item)

    def show_error(self, message: str) -> None:
        self.form_error.setText(message)

    def _browse_new(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the new case")
        if folder:
            self.folder_edit.setText(folder)

    def _browse_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open case folder")
        if folder:
            self.openRequested.emit(folder)

    def _create(self) -> None:
        fields = {
            "folder": self.folder_edit.text().strip(),
            "case number": self.number_edit.text().strip(),
            "title": self.title_edit.text().strip(),
            "analyst": self.analyst_edit.text().strip(),
        }
        missing = [k for k, v in fields.items() if not v]
        if missing:
            self.form_error.setText(f"Please fill in: {', '.join(missing)}.")
            return
        self.form_error.setText("")
        self.settings.analyst = fields["analyst"]
        self.createRequested.emit(fields["folder"], fields["case number"], fields["title"], fields["analyst"])
