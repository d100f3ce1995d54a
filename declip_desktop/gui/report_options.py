"""The Export report dialog: which evidence (the selection or the whole case) and which layout
(full: an image page and a details page per item; compact: one page per item)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QInputDialog,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
)

from declip_desktop.cases import CaseError
from declip_desktop.cases.signing import key_is_encrypted, list_keys, load_key

LAYOUT_CHOICES = (
    ("full", "Full — an image page and a details page per item (all metadata, every region)"),
    ("compact", "Compact — one page per item: overlay, original, mask and the key figures"),
)


class ReportOptionsDialog(QDialog):
    def __init__(self, selected: list[int], total: int, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.setWindowTitle("Export report")
        self.selected = list(selected)
        layout = QVBoxLayout(self)
        scope_box = QGroupBox("Evidence")
        scope = QVBoxLayout(scope_box)
        self.whole = QRadioButton(f"Whole case ({total} items)")
        self.only_selected = QRadioButton(f"Selected items ({len(self.selected)})")
        self.only_selected.setEnabled(0 < len(self.selected) < total)
        (self.only_selected if self.only_selected.isEnabled() else self.whole).setChecked(True)
        scope.addWidget(self.whole)
        scope.addWidget(self.only_selected)
        layout_box = QGroupBox("Layout")
        lay = QVBoxLayout(layout_box)
        self.layout_group = QButtonGroup(self)
        self.layout_buttons: dict[str, QRadioButton] = {}
        for key, text in LAYOUT_CHOICES:
            button = QRadioButton(text)
            button.setObjectName(f"layout_{key}")
            self.layout_group.addButton(button)
            self.layout_buttons[key] = button
            lay.addWidget(button)
        self.layout_buttons["full"].setChecked(True)
        # Signing: with your only key (`declip key create`); the PDF then carries a PAdES signature.
        keys = list_keys()
        self.key_name = keys[0].name if len(keys) == 1 else None
        self.sign = QCheckBox(f"Sign the PDF with your key “{self.key_name}”" if self.key_name else
                              "Sign the PDF (needs exactly one key: `declip key create NAME`)")
        self.sign.setEnabled(self.key_name is not None)
        self.sign.setChecked(self.key_name is not None)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(scope_box)
        layout.addWidget(layout_box)
        layout.addWidget(self.sign)
        layout.addWidget(buttons)

    def evidence_ids(self) -> list[int] | None:
        """None: the whole case; else the selected IDs."""
        return list(self.selected) if self.only_selected.isChecked() else None

    def report_layout(self) -> str:
        """"full" or "compact" (not `layout()`, which is QWidget's)."""
        return next(k for k, b in self.layout_buttons.items() if b.isChecked())

    def signer(self):  # noqa: ANN201 - cases.signing.Signer | None
        """The loaded key when signing was chosen (asks for its passphrase); None: unsigned.
        Raises CaseError when the key cannot be opened (wrong passphrase), so nothing is made."""
        if not (self.sign.isChecked() and self.key_name):
            return None
        passphrase = None
        if key_is_encrypted(self.key_name):
            text, ok = QInputDialog.getText(self, "Sign the report", f"Passphrase of the key “{self.key_name}”:",
                                            QLineEdit.EchoMode.Password)
            if not ok:
                raise CaseError("signing cancelled; no report was made")
            passphrase = text.encode("utf-8")
        return load_key(self.key_name, passphrase)
