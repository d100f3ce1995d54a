"""Calibration in the desktop: mark references in the evidence list, calibrate, read each item.

- Evidence list context menu: Mark as reference-authentic / Unmark reference
  (`cases.calibration.set_reference`: one audit entry per item).
- Case → Calibrate on reference evidence…: rates asked in a small dialog, the work
  (`cases.calibration.calibrate`: hashing the references and their maps) on the thread pool.
- Inspector: a line under the threshold bar with the item's calibrated reading ("score 0.91 —
  above 92.9 % of this case's authentic references …") and "Use calibrated threshold", which sets
  the pixel threshold as a view change (saved with Save or a verdict, like any threshold).

`CalibrationState` holds what the line shows without Qt, so tests drive it directly.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from declip_desktop.cases import calibration as cases_calibration
from declip_desktop.common.calibration import DEFAULT_IMAGE_RATE, DEFAULT_PIXEL_RATE, format_percent
from declip_desktop.gui.background import run_background


@dataclass
class CalibrationState:
    """What the inspector's calibration line shows for the current item (Qt-free)."""

    text: str = ""
    tip: str = ""
    pixel_threshold: float | None = None
    warning: str | None = None

    def refresh(self, case: Any, evidence_id: int | None) -> None:
        self.text, self.tip, self.pixel_threshold, self.warning = "", "", None, None
        if case is None or evidence_id is None:
            return
        if cases_calibration.is_reference(case, evidence_id):
            self.text = "Reference-authentic: used to calibrate this case, not a questioned item."
        read = cases_calibration.reading(case, evidence_id)
        if read is None:
            why = cases_calibration.uncalibrated_reason(case, evidence_id)
            if why:  # calibrated for another model: say so rather than show nothing
                self.text = f"{self.text} Calibrated reading: {why}.".strip()
            return
        cal = read.calibration
        self.pixel_threshold = cal.pixel.threshold
        self.warning = cal.warning
        side = "above" if read.above_image_threshold else "not above"
        reading_text = (f"Calibrated: {read.text()}; {side} the threshold for {format_percent(100 * cal.image_rate)} "
                        f"of authentic images. Pixel threshold for {format_percent(100 * cal.pixel_rate)} of "
                        f"authentic pixels: {cal.pixel.threshold:.4f}.")
        self.text = f"{self.text} {reading_text}".strip() if self.text else reading_text
        self.tip = (f"Calibration {cal.id} on {cal.n} references ({cal.created_at}); image threshold "
                    f"{cal.image.threshold:.4f} (interval {cal.image.low:.4f}–{cal.image.high:.4f}), pixel threshold "
                    f"{cal.pixel.threshold:.4f} (interval {cal.pixel.low:.4f}–{cal.pixel.high:.4f}). Holds only for "
                    "images like the references." + (f"\nWarning: {cal.warning}" if cal.warning else ""))

    def apply(self, inspector_model: Any) -> bool:
        """Show the calibrated pixel threshold (a view change until saved); False if there is none."""
        if self.pixel_threshold is None:
            return False
        return inspector_model.set_threshold(self.pixel_threshold)


class CalibrationBar(QWidget):
    def __init__(self, inspector, parent=None) -> None:
        super().__init__(parent)
        self.inspector = inspector
        self.state = CalibrationState()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.use_button = QPushButton("Use calibrated threshold")
        self.use_button.setToolTip("Show the pixel threshold calibrated on this case's references; "
                                   "Save (Ctrl+S) keeps it as the item's threshold")
        self.use_button.clicked.connect(self.use_calibrated)
        row.addWidget(self.label, 1)
        row.addWidget(self.use_button)
        self.setVisible(False)

    def refresh(self) -> None:
        model = self.inspector.model
        eid = model.evidence.id if model.evidence is not None else None
        try:
            self.state.refresh(model.case, eid)
        except Exception as exc:  # a damaged calibration row: say so, keep the inspector usable
            self.state = CalibrationState(text=f"Calibration could not be read: {exc}")
        warn = f"  ⚠ {self.state.warning}" if self.state.warning else ""
        self.label.setText(self.state.text + warn)
        self.label.setToolTip(self.state.tip)
        self.use_button.setVisible(self.state.pixel_threshold is not None)
        self.setVisible(bool(self.state.text))

    def use_calibrated(self) -> None:
        if self.state.pixel_threshold is not None:
            self.inspector.set_threshold(self.state.pixel_threshold)  # the widget path: slider, spin, regions


class CalibrateDialog(QDialog):
    def __init__(self, n_references: int, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Calibrate on reference evidence")
        form = QFormLayout(self)
        form.addRow(QLabel(f"{n_references} item(s) are marked reference-authentic. A calibrated rate holds only "
                           "for images like them."))
        self.image_rate = self._spin(DEFAULT_IMAGE_RATE)
        self.pixel_rate = self._spin(DEFAULT_PIXEL_RATE)
        form.addRow("Share of authentic images allowed above the image threshold", self.image_rate)
        form.addRow("Share of authentic pixels allowed above the pixel threshold", self.pixel_rate)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @staticmethod
    def _spin(value: float) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setRange(0.001, 0.5)
        spin.setDecimals(3)
        spin.setSingleStep(0.01)
        spin.setValue(value)
        return spin


class CalibrationActions:
    def __init__(self, window) -> None:
        self.window = window
        inspector = window.inspector
        self.bar = CalibrationBar(inspector)
        layout = inspector.integrity_banner.parentWidget().layout()
        layout.insertWidget(layout.indexOf(inspector.integrity_banner), self.bar)
        inspector.model.on("evidence", self.bar.refresh)
        window.evidence_panel.referenceRequested.connect(self.mark)
        window.caseOpened.connect(lambda _case: self.refresh_list())
        self.action = QAction("Calibrate on reference evidence…", window)
        self.action.setToolTip("Thresholds for a chosen false-alarm rate, from the items marked reference-authentic")
        self.action.triggered.connect(self.calibrate)
        window.add_action("Case", self.action)

    def refresh_list(self) -> None:
        case = self.window.case
        try:
            ids = cases_calibration.reference_ids(case) if case is not None else []
        except Exception as exc:
            self.window.notifications.error(f"The reference marks could not be read: {exc}", traceback.format_exc())
            ids = []
        self.window.evidence_panel.model.set_references(ids)

    def mark(self, ids: list, reference: bool) -> None:
        case = self.window.case
        if case is None or not ids:
            return
        try:
            changed = cases_calibration.set_reference(case, ids, reference)
        except Exception as exc:
            self.window.notifications.error(f"The reference mark could not be changed: {exc}", traceback.format_exc())
            return
        self.refresh_list()
        self.bar.refresh()
        verb = "Marked" if reference else "Unmarked"
        self.window.notifications.info(f"{verb} {len(changed)} item(s) as reference-authentic. Calibrate again "
                                       "(Case → Calibrate on reference evidence…) to use the change.")

    def calibrate(self) -> None:
        case = self.window.case
        if case is None:
            return
        refs = cases_calibration.reference_ids(case)
        if not refs:
            self.window.notifications.warning("No item is marked reference-authentic. Right-click authentic images "
                                              "like the questioned ones and choose Mark as reference-authentic.")
            return
        dialog = CalibrateDialog(len(refs), self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        image_rate, pixel_rate = dialog.image_rate.value(), dialog.pixel_rate.value()
        self.action.setEnabled(False)

        def work():
            return cases_calibration.calibrate(case, image_rate=image_rate, pixel_rate=pixel_rate)

        def done(made) -> None:
            self.action.setEnabled(True)
            self.bar.refresh()
            message = (f"Calibrated model {made.model_name} on {made.n} references: pixel threshold "
                       f"{made.pixel.threshold:.4f}, image threshold {made.image.threshold:.4f}.")
            if made.warning:
                self.window.notifications.warning(message + " " + made.warning)
            else:
                self.window.notifications.info(message)

        def failed(exc: Exception, detail: str) -> None:
            self.action.setEnabled(True)
            self.window.notifications.error(f"Calibration failed: {exc}", detail)

        run_background(work, done, failed)


def install_calibration(window) -> CalibrationActions:
    return CalibrationActions(window)
