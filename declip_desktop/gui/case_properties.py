"""Case → Properties…: the examiner and request fields printed on reports, and the declaration.

The dialog edits `cases.examiner` fields; OK writes them in one audit-logged change (nothing is
written when nothing changed). `install_case_properties(window)` adds the menu entry through the
window's public hook, enabled only while a case is open.
"""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
)

from declip_desktop.cases import CaseError
from declip_desktop.cases.examiner import DEFAULT_DECLARATION, PLACEHOLDERS, get_examiner, set_examiner

LINE_FIELDS = (("name", "Examiner"), ("role", "Role"), ("organisation", "Organisation"),
               ("requester", "Requested by"), ("reference", "Request reference"))


class CasePropertiesDialog(QDialog):
    def __init__(self, case, parent=None) -> None:  # noqa: ANN001 - a cases.Case
        super().__init__(parent)
        self.case = case
        self.setWindowTitle(f"Case {case.info.number} — properties")
        self.resize(560, 520)
        current = get_examiner(case)
        form = QFormLayout()
        self.edits: dict[str, QLineEdit] = {}
        for key, label in LINE_FIELDS:
            edit = QLineEdit(getattr(current, key))
            edit.setObjectName(key)
            self.edits[key] = edit
            form.addRow(label, edit)
        self.question = QPlainTextEdit(current.question)
        self.question.setObjectName("question")
        self.question.setFixedHeight(60)
        form.addRow("Question asked", self.question)
        self.declaration = QPlainTextEdit(current.declaration)
        self.declaration.setObjectName("declaration")
        reset = QPushButton("Standard text")
        reset.clicked.connect(lambda: self.declaration.setPlainText(DEFAULT_DECLARATION))
        hint = QLabel("Placeholders filled in on the report: " + " ".join("{" + p + "}" for p in PLACEHOLDERS))
        hint.setWordWrap(True)
        self.error = QLabel()
        self.error.setStyleSheet("color: #aa1414")
        self.error.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Declaration (printed above the date and signature lines)"))
        layout.addWidget(self.declaration)
        layout.addWidget(hint)
        layout.addWidget(reset)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def values(self) -> dict[str, str]:
        out = {key: edit.text() for key, edit in self.edits.items()}
        out["question"] = self.question.toPlainText()
        out["declaration"] = self.declaration.toPlainText()
        return out

    def save(self) -> bool:
        """Write the fields; a refused value (bad placeholder, too long) is shown and nothing is written."""
        try:
            set_examiner(self.case, **self.values())
        except CaseError as exc:
            self.error.setText(str(exc))
            return False
        self.accept()
        return True


def install_case_properties(window) -> QAction:  # noqa: ANN001 - MainWindow
    action = QAction("Case &properties…", window)
    action.setStatusTip("Examiner, requester, reference, question and declaration printed on reports")
    action.triggered.connect(lambda _checked=False: CasePropertiesDialog(window.case, window).exec()
                             if window.case is not None else None)
    window.add_action("File", action)
    action.setEnabled(window.case is not None)
    window.caseOpened.connect(lambda _case: action.setEnabled(True))
    window.caseClosed.connect(lambda: action.setEnabled(False))
    return action
