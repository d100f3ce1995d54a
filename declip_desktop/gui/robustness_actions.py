"""Analysis → "Analyse with several models…" and "Check stability under re-compression" (issue 19).

`install_robustness_actions(window)` adds both to the Analysis menu. Several models: the analyst
ticks installed models; the runs go to the window's analysis worker one model after the other
(the same queue, progress and cancel as any analysis), in `analysis.multi_model`'s order:
secondary models first, marked as such, the primary (the case's model if ticked, else the
first ticked) last. Stability: the selected items (else the shown one) are checked with the
case's model on the thread pool through `analysis.stability`; the inspector shows the result.
"""

from __future__ import annotations

import logging
import traceback

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QVBoxLayout

from declip_desktop.gui.background import run_background
from declip_desktop.gui.case_access import own_case
from declip_desktop.gui.models_dialog import describe_model, list_models
from declip_desktop.gui.worker import RunRequest

log = logging.getLogger("declip_desktop.gui")


class ModelsChoice(QDialog):
    """Tick two or more installed models."""

    def __init__(self, cards: list, checked: set[str], parent=None):  # noqa: ANN001
        super().__init__(parent)
        self.setWindowTitle("Analyse with several models")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Each ticked model analyses the evidence; every result is kept with its model card.\n"
                                "The case's model (else the first ticked) stays the result shown; the agreement\n"
                                "view and the Flagged by column compare them."))
        self.list = QListWidget()
        for card in cards:
            item = QListWidgetItem(describe_model(card))
            item.setData(Qt.ItemDataRole.UserRole, card.name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if card.name in checked else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        layout.addWidget(self.list)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.list.itemChanged.connect(lambda _i: self._update())
        self._update()

    def names(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def _update(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(len(self.names()) >= 2)


class RobustnessActions:
    def __init__(self, window):  # noqa: ANN001 - a MainWindow
        self.window = window
        self.several = QAction("Analyse with several &models…", window)
        self.several.setToolTip("Analyse the selected (else all) evidence with two or more models, for agreement")
        self.several.triggered.connect(lambda: self.choose_models())
        self.stability = QAction("Check &stability under re-compression", window)
        self.stability.setToolTip("Re-analyse copies re-saved as JPEG 90/75, down-scaled 0.75 and blurred; "
                                  "store in how many each region persists")
        self.stability.triggered.connect(lambda: self.check_stability())
        window.add_action("Analysis", self.several)
        window.add_action("Analysis", self.stability)

    def _ids(self) -> list[int]:
        w = self.window
        ids = w.selected_evidence_ids()
        if not ids and w.inspector.evidence is not None:
            ids = [w.inspector.evidence.id]
        return ids

    def choose_models(self) -> ModelsChoice | None:
        w = self.window
        if w.case is None or w.controller is None:
            w.notifications.warning("Open a case first.")
            return None
        try:
            cards = list_models()
        except Exception as exc:
            w.notifications.error(f"The installed models could not be listed: {exc}", traceback.format_exc())
            return None
        if len(cards) < 2:
            w.notifications.error("Agreement needs at least two installed models. Import or download another "
                                  "(Models → Import checkpoint… / Download…).")
            return None
        dialog = ModelsChoice(cards, {w._case_model()} - {None}, w)  # noqa: SLF001 - the window's own model
        dialog.accepted.connect(lambda: self.start(dialog.names(), self._ids() or None))
        dialog.setModal(True)
        dialog.show()
        self._dialog = dialog
        return dialog

    def start(self, names: list[str], evidence_ids: list[int] | None) -> bool:
        """Queue one run per model on the window's worker (secondaries first, the primary last)."""
        from declip_desktop.analysis import AnalysisError
        from declip_desktop.analysis.multi_model import PRIMARY, MultiModelRun

        w = self.window
        services = w.services
        try:
            plan = MultiModelRun(w.case, names, localizer_factory=services.localizer_factory,
                                 model_resolver=services.model_resolver).plan()
        except AnalysisError as exc:
            w.notifications.error(f"The models could not be used: {exc}")
            return False
        primary = plan[-1][0]
        ids = tuple(evidence_ids) if evidence_ids else None
        for choice, role in plan:
            w.controller.start(RunRequest(model=choice.name, device=w.settings.device, fast=w.fast_action.isChecked(),
                                          evidence_ids=ids, pin=role == PRIMARY,
                                          agreement_primary=None if role == PRIMARY else primary.sha256))
        w.notifications.info(f"Analysing with {len(plan)} models; {primary.name} stays the result shown.")
        w._update_actions()  # noqa: SLF001
        return True

    def check_stability(self) -> bool:
        from declip_desktop.analysis import AnalysisSession
        from declip_desktop.analysis.stability import check_many

        w = self.window
        if w.case is None:
            w.notifications.warning("Open a case first.")
            return False
        ids = self._ids()
        if not ids:
            w.notifications.info("Select the evidence to check.")
            return False
        case, services, settings = w.case, w.services, w.settings
        analyst = settings.analyst or None
        fast = w.fast_action.isChecked()
        # The item on screen is checked at the threshold the analyst is looking at; others at their own.
        shown = {w.inspector.evidence.id: w.inspector.threshold} if w.inspector.evidence is not None else {}

        def work():
            with own_case(case, read_only=False, analyst=analyst) as private:
                session = AnalysisSession(private, device=settings.device, fast=fast, batch_size=4, analyst=analyst,
                                          localizer_factory=services.localizer_factory,
                                          model_resolver=services.model_resolver, fall_back_when_unavailable=True)
                return check_many(private, session.localizer(), ids, thresholds=shown, analyst=analyst)

        def done(summary) -> None:  # noqa: ANN001
            stable = sum(1 for c in summary.checks for r in c.regions if r.stable_in == r.variants)
            regions = sum(len(c.regions) for c in summary.checks)
            msg = (f"Stability checked for {len(summary.checks)} item(s): {stable} of {regions} region(s) persist in "
                   "every copy.")
            w.notifications.post("warning" if summary.failures else "info", msg,
                                 "\n".join(f"evidence {i}: {e}" for i, e in summary.failures))
            if summary.failures and not summary.checks:
                w.notifications.warning(f"Not checked: {summary.failures[0][1]}")
            w.inspector.robustness.reload()  # the shown item keeps its threshold and view

        def failed(exc: Exception, detail: str) -> None:
            w.notifications.error(f"The stability check could not run: {exc}", detail)

        w.notifications.info(f"Checking the stability of {len(ids)} item(s) (4 re-analyses each)…")
        run_background(work, done, failed)
        return True


def install_robustness_actions(window) -> RobustnessActions:  # noqa: ANN001
    return RobustnessActions(window)


__all__ = ["ModelsChoice", "RobustnessActions", "install_robustness_actions"]
