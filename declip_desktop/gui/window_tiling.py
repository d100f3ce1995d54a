"""Tiled (native-resolution) analysis from the window: the option, the estimate, then the run
(a mixin of `gui.main_window.MainWindow`).

With Analysis → Tiled analysis checked, starting an analysis first asks the worker for an
estimate (`analysis.tiling.estimate_session`: the model is loaded and one batch timed, the
forward passes counted for exactly the items that would run) and shows it; the analysis starts
only when the analyst accepts. Tile progress ("tile 120 of 433") is shown in the status line.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import QMessageBox

from declip_desktop.common.tiling_plan import TilingOptions


class TilingAnalysis:
    def _init_tiling_action(self) -> None:
        self.tiled_action = self._action(
            "Analysis", "&Tiled analysis (native resolution)", lambda _checked=False: None, checkable=True,
            tip="Also analyse each image at its own resolution: the model over overlapping tiles, blended into a "
                "second map stored beside the squash map. Many forward passes per image: an estimate of the time is "
                "shown before it starts.")
        #: Asked with the estimate's text; True starts the run (tests replace it).
        self.confirm_tiled = self._ask_tiled

    def _tiled_request(self, request):
        """The request with tiling when the option is on, else None (the caller runs as before)."""
        if not self.tiled_action.isChecked():
            return None
        return replace(request, tiling=TilingOptions(), estimate_only=True)

    def _start_tiled_estimate(self, request) -> None:
        self.controller.start(request)
        self.activity_label.setText("Timing the model for the tiled analysis' estimate…")

    def _on_tiling_estimate(self, estimate, request) -> None:
        self.activity_label.setText("")
        if self.case is None or self.controller is None:
            return
        text = estimate.describe() + "."
        self.notifications.info(text)
        if self.confirm_tiled(text):
            self.controller.start(replace(request, estimate_only=False))
            self.activity_label.setText("Analysing (tiled)…")
        self._update_actions()

    def _ask_tiled(self, text: str) -> bool:
        answer = QMessageBox.question(self, "Tiled analysis", f"{text}\n\nStart the tiled analysis?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes

    def _on_tile_progress(self, event) -> None:
        done, total = event.tiles
        self.activity_label.setText(f"Analysing evidence {event.evidence_id} (tiled): tile {done} of {total}")


__all__ = ["TilingAnalysis"]
