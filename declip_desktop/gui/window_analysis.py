"""The window's analysis controls: the case's model, start / pause / cancel, progress, the case's
default threshold, model choice and downloads (a mixin of `gui.main_window.MainWindow`).

What runs, on which model, is decided by `analysis.AnalysisSession` on the worker thread
(`gui.worker`); this only asks for runs and shows their progress."""

from __future__ import annotations

import logging
import time
import traceback

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QInputDialog

from declip_desktop.analysis import waiting_evidence
from declip_desktop.cases.case_settings import pin_model, pinned_model, set_case_threshold
from declip_desktop.common.facts import DEMO_LABEL, card_is_demo
from declip_desktop.common.text import format_duration
from declip_desktop.gui.models_dialog import ModelsDialog, default_model_name, describe_model, find_card
from declip_desktop.gui.worker import RunRequest

log = logging.getLogger("declip_desktop.gui")


class AnalysisControls:
    """Menu actions and worker signals of the analysis."""

    def _case_model(self) -> str | None:
        """The model the case is pinned to (even if it is missing: the analysis says so), else
        the model a first analysis would pin (the store's default)."""
        if self.case is None:
            return None
        try:
            pin = pinned_model(self.case)
        except Exception:
            log.exception("reading the case's model setting failed")
            pin = None
        return pin.name if pin is not None else default_model_name()

    def _update_model_label(self, device: str | None = None) -> None:
        name = self._case_model()
        card = find_card(name)
        missing = name is not None and card is None  # the case's pinned model is not installed here
        text = f"Model: {name} — not installed (this case is pinned to it)" if missing else \
            f"Model: {describe_model(card)}"
        if device:
            text += f"  ·  {device}"
        self.model_label.setText(text)
        alert = missing or card_is_demo(card)
        self.model_label.setStyleSheet("color: #b91c1c; font-weight: 600" if alert else "")

    def _queued_ids(self) -> list[int]:
        """What is waiting: the same function the analysis runs (analysis.waiting_evidence)."""
        if self.case is None:
            return []
        try:
            pin = pinned_model(self.case)
            return [ev.id for ev in waiting_evidence(self.case, pin.sha256 if pin is not None else None)]
        except Exception:
            log.exception("reading the queue failed")
            return []

    def start_analysis(self, model: str | None = None, evidence_ids: list[int] | None = None, requeue: bool = False) -> bool:
        if self.case is None or self.controller is None:
            return False
        ids = evidence_ids if evidence_ids is not None else self._queued_ids()
        if not ids:
            self.notifications.info("Nothing is waiting for analysis.")
            return False
        if model is None and self._case_model() is None:
            self.notifications.error(
                "No model is installed. Use Models → Import checkpoint… or Models → Download…, then analyse again."
            )
            return False
        # model None: the session uses the case's pinned model (pinning the default on a first run);
        # a model named here is a one-off re-analysis that leaves the case's model alone.
        request = RunRequest(model=model, device=self.settings.device, fast=self.fast_action.isChecked(),
                             evidence_ids=tuple(ids), requeue=requeue, pin=model is None)
        tiled = self._tiled_request(request)  # tiled mode: the estimate first (gui.window_tiling)
        if tiled is not None:
            self._start_tiled_estimate(tiled)
            self._update_actions()
            return True
        self.controller.start(request)
        self._run_started_at = time.monotonic()
        paused = self.controller.worker.paused
        self.pause_button.setText("Resume" if paused else "Pause")
        self.activity_label.setText("Paused" if paused else "Loading model…")
        self._update_actions()
        return True

    def load_model(self) -> bool:
        if self.controller is None:
            return False
        if self._case_model() is None:
            return False
        self.controller.start(RunRequest(device=self.settings.device, fast=self.fast_action.isChecked(),
                                         evidence_ids=(), load_only=True))
        self._loading_model = True
        self.activity_label.setText("Loading model…")
        self._update_actions()
        return True

    def _on_run_started(self, total: int) -> None:
        self._run_total = total
        self._run_done = 0
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(0)
        self.activity_label.setText("Analysing…" if total else "")
        self.eta_label.setText("")

    def _on_progress(self, event) -> None:
        if self.case is None:
            return
        if getattr(event, "tiles", None) is not None:  # per batch of tiles: the status line only
            self._on_tile_progress(event)
            return
        self.progress_bar.setRange(0, max(1, event.total))
        self.progress_bar.setValue(event.done)
        if event.eta_seconds is not None and event.status not in ("finished", "stopped"):
            self.eta_label.setText(f"ETA {format_duration(event.eta_seconds)}")
        if event.evidence_id is not None:
            try:
                ev = self.case.get_evidence(event.evidence_id)
            except Exception:
                log.exception("reading evidence %s failed", event.evidence_id)
                return
            self.evidence_panel.update_evidence(ev)
            if event.status in ("done", "failed") and self.inspector.evidence is not None \
                    and self.inspector.evidence.id == event.evidence_id:
                self.inspector.refresh_current()
        if event.status == "failed":
            self.notifications.warning(f"Analysis failed for evidence {event.evidence_id}: {event.error}", event.error or "")

    def _on_model_ready(self, info) -> None:
        self._update_model_label(info.device)
        if info.demo:
            self.notifications.warning(
                f"{info.name}: {info.label or DEMO_LABEL}. Import or download a DeCLIP model for real cases."
            )

    def _on_run_finished(self, reason: str, summary) -> None:
        self.activity_label.setText("")
        self.eta_label.setText("")
        if reason == "loaded":
            self._loading_model = False
            self._update_actions()
            return
        if self.case is not None:
            self.reload_evidence()
            if reason == "done" and summary is not None and summary.total:
                msg = f"Analysis finished: {summary.done} done, {summary.failed} failed in {summary.seconds:.1f} s."
                self.notifications.post("warning" if summary.failed else "info", msg,
                                        "\n".join(f"evidence {i}: {e}" for i, e in summary.failures))
            elif reason == "cancelled":
                self.notifications.info("Analysis cancelled; the remaining evidence was taken out of the queue.")
        self._update_actions()
        self.analysisFinished.emit(reason)

    def toggle_pause(self) -> None:
        if self.controller is None or not self.controller.running:
            return
        if self.controller.worker.paused:
            self.controller.resume()
            self.pause_button.setText("Pause")
            self.activity_label.setText("Analysing…")
        else:
            self.controller.pause()
            self.pause_button.setText("Resume")
            self.activity_label.setText("Paused (after the current image)")

    def cancel_analysis(self) -> None:
        if self.controller is not None and self.controller.running:
            self.controller.cancel()
            self.activity_label.setText("Cancelling after the current image…")

    def reanalyse_with_model(self, evidence_ids: list[int]) -> None:
        from declip_desktop.gui.models_dialog import list_models

        cards = list_models()
        if not cards:
            self.notifications.error("No model is installed to re-analyse with.")
            return
        names = [describe_model(c) for c in cards]
        choice, ok = QInputDialog.getItem(self, "Re-analyse", "Model for the re-analysis:", names, 0, False)
        if ok and choice:
            model = cards[names.index(choice)].name
            self.start_analysis(model=model, evidence_ids=evidence_ids, requeue=True)

    def dequeue(self, evidence_ids: list[int]) -> None:
        if self.case is None:
            return
        try:
            self.case.dequeue(evidence_ids, analyst=self.settings.analyst or None)
        except Exception as exc:
            self.notifications.error(f"The queue could not be changed: {exc}", traceback.format_exc())
        self.reload_evidence()

    def _set_default_threshold(self) -> None:
        """The case's default threshold (audit-logged); items reviewed with their own keep it."""
        if self.case is None:
            return
        try:
            value = set_case_threshold(self.case, self.inspector.threshold, analyst=self.settings.analyst or None)
        except Exception as exc:
            self.notifications.error(f"The case's default threshold could not be saved: {exc}", traceback.format_exc())
            return
        self.inspector.case_threshold_changed()
        self.notifications.info(f"Default threshold of this case set to {value:.3f} (recorded in the audit log).")

    def _fast_toggled(self, on: bool) -> None:
        self.settings.fast = on

    def _set_device(self, device: str) -> None:
        self.settings.device = device
        self.notifications.info(f"Device set to {device}; it applies to the next analysis run.")

    def show_models(self, start_import: bool = False) -> ModelsDialog:
        dialog = ModelsDialog(self._case_model(), self, importer=self.services.checkpoint_importer,
                              preparer=self.services.model_preparer,
                              preparation_reader=self.services.preparation_reader)
        dialog.modelChosen.connect(self._model_chosen)
        dialog.errorOccurred.connect(lambda m, d: self.notifications.error(m, d))
        dialog.modelImported.connect(lambda name: self.notifications.info(f"Model {name} imported."))
        dialog.setModal(False)
        dialog.show()
        if start_import:
            QTimer.singleShot(0, dialog._choose_checkpoint)
        self._models_dialog = dialog
        return dialog

    def _model_chosen(self, name: str) -> None:
        if self.case is None:
            self.notifications.warning("Open a case to choose its model.")
            return
        card = find_card(name)
        try:
            pin_model(self.case, name, card.sha256 if card is not None else None, analyst=self.settings.analyst or None)
        except Exception as exc:
            self.notifications.error(f"The model choice could not be saved: {exc}", traceback.format_exc())
            return
        self._update_model_label()
        self.notifications.info(
            f"New analyses in this case use {name}. Existing results are kept; right-click evidence to re-analyse it."
        )

    def show_downloads(self) -> None:
        try:
            from declip_desktop.gui.download_dialog import open_download_dialog
        except Exception as exc:  # the download feature is optional at run time
            self.notifications.error(f"The download dialog is not available: {exc}", traceback.format_exc())
            return
        self._download_dialog = open_download_dialog(self, importer=self.services.checkpoint_importer,
                                                     preparer=self.services.model_preparer)
        self._download_dialog.modelInstalled.connect(lambda _name: self._update_model_label())
