"""Analysis → Run on cluster…: pick a Ray cluster, see its nodes, CPUs and GPUs, analyse the queue there.

The dialog only shows things and relays clicks: `cluster.job.ClusterJob` (no Qt) connects and
runs, on a thread of this dialog (a run lasts as long as the queue, so not the shared pool).
Results are stored by this process, as for a local run; the evidence list is reloaded at the end.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

ADDRESS_TIP = ("local: a private Ray on this computer (127.0.0.1 only)\nauto: RAY_ADDRESS, else the Ray running "
               "here\nray://HOST:PORT: a remote cluster (Ray Client)\nHOST:PORT: a cluster this computer is part of")
NODE_COLUMNS = ("Host", "Address", "CPUs", "GPUs", "GPU type", "Memory (GiB)", "State")


class _Relay(QObject):
    """Created on the UI thread; the job thread's emits are queued to it."""

    connected = Signal(object)  # ClusterInfo
    progress = Signal(object)  # ClusterProgress
    finished = Signal(object)  # ClusterRunSummary
    failed = Signal(str)


def _make_job(window: Any):  # noqa: ANN202 - a cluster.job.ClusterJob (replaced in tests)
    from declip_desktop.cluster.job import ClusterJob

    case = window.case
    return ClusterJob(case.path, None)  # the case's pinned model (else the default), as a local run


class ClusterDialog(QDialog):
    def __init__(self, window: Any, job: Any = None):
        super().__init__(window)
        self.window = window
        self.job = job if job is not None else _make_job(window)
        self.thread: threading.Thread | None = None
        self.info: Any = None
        self.summary: Any = None
        self._close_when_done = False
        self.relay = _Relay()
        self.relay.connected.connect(self._connected)
        self.relay.progress.connect(self._progress)
        self.relay.finished.connect(self._finished)
        self.relay.failed.connect(self._failed)
        self.setWindowTitle("Run on cluster")
        self.resize(760, 560)
        self._build()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.address = QComboBox(editable=True)
        self.address.addItems(["local", "auto"])
        self.address.setToolTip(ADDRESS_TIP)
        self.address.lineEdit().setPlaceholderText("local, auto, ray://HOST:PORT or HOST:PORT")
        self.connect_button = QPushButton("&Connect")
        self.connect_button.clicked.connect(self.start_connect)
        row.addWidget(QLabel("Cluster:"))
        row.addWidget(self.address, 1)
        row.addWidget(self.connect_button)
        layout.addLayout(row)
        self.status = QLabel("Not connected. Ray has no authentication unless the cluster enables it: use "
                             "clusters on a private network only (docs/CLUSTER.md).")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.nodes = QTableWidget(0, len(NODE_COLUMNS))
        self.nodes.setHorizontalHeaderLabels(NODE_COLUMNS)
        self.nodes.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.nodes.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout.addWidget(self.nodes, 1)

        form = QFormLayout()
        self.actors = QSpinBox(minimum=0, maximum=10_000, specialValueText="auto (one per GPU or per core group)")
        self.cpus_per_actor = QSpinBox(minimum=1, maximum=512, value=1)
        self.model_from = QComboBox()
        self.model_from.addItem("ship the model from this computer (once)", "ship")
        self.model_from.addItem("use the model installed on each node (same SHA-256)", "installed")
        self.evidence_from = QComboBox()
        self.evidence_from.addItem("send the files from this computer", "driver")
        self.evidence_from.addItem("nodes read them from a shared folder", "shared")
        self.shared_root = QLineEdit(placeholderText="the case folder as the nodes see it (default: same path)")
        form.addRow("Model actors:", self.actors)
        form.addRow("CPU cores per actor:", self.cpus_per_actor)
        form.addRow("Model:", self.model_from)
        form.addRow("Evidence:", self.evidence_from)
        form.addRow("Shared folder:", self.shared_root)
        layout.addLayout(form)

        self.bar = QProgressBar()
        self.bar.setVisible(False)
        layout.addWidget(self.bar)
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(2000)
        self.log.setPlaceholderText("Per-node results, failures and refused workers appear here.")
        layout.addWidget(self.log, 1)
        buttons = QDialogButtonBox()
        self.run_button = buttons.addButton("&Run", QDialogButtonBox.ButtonRole.AcceptRole)
        self.stop_button = buttons.addButton("&Stop", QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.run_button.clicked.connect(self.start_run)
        self.stop_button.clicked.connect(self.stop)
        self.close_button.clicked.connect(self.close)
        layout.addWidget(buttons)
        self._set_busy(False)

    def _set_busy(self, busy: bool) -> None:
        self.connect_button.setEnabled(not busy)
        self.address.setEnabled(not busy)
        self.run_button.setEnabled(not busy and self.info is not None)
        self.stop_button.setEnabled(busy and self.bar.isVisible())

    # ------------------------------------------------------------------ actions
    def _spawn(self, target) -> None:  # noqa: ANN001
        def guarded() -> None:
            try:
                target()
            except Exception as exc:  # noqa: BLE001 - shown to the analyst, who can fix the address or options
                self.relay.failed.emit(str(exc) or type(exc).__name__)

        self.thread = threading.Thread(target=guarded, name="declip-cluster", daemon=True)
        self.thread.start()

    def start_connect(self) -> None:
        address = self.address.currentText().strip() or "auto"
        self.status.setText(f"Connecting to {address}…" + (" (starting a local Ray takes a few seconds)"
                                                          if address == "local" else ""))
        self.info = None
        self._set_busy(True)
        self._spawn(lambda: self.relay.connected.emit(self.job.connect(address)))

    def options(self) -> Any:
        from declip_desktop.cluster.driver import ClusterOptions

        return ClusterOptions(actors=self.actors.value() or None, cpus_per_actor=self.cpus_per_actor.value(),
                              model_from=self.model_from.currentData(), evidence_from=self.evidence_from.currentData(),
                              shared_root=self.shared_root.text().strip() or None,
                              fast=self._fast_mode())

    def _fast_mode(self) -> bool:
        """The window's Analysis → Fast mode, so a cluster run computes what a local one would."""
        action = getattr(self.window, "fast_action", None)
        return bool(action.isChecked()) if action is not None else False

    def start_run(self) -> None:
        options = self.options()
        self.bar.setVisible(True)
        self.bar.setRange(0, 0)  # busy until the workers have loaded the model
        self.log.appendPlainText("Starting the model actors…")
        self._set_busy(True)
        self._spawn(lambda: self.relay.finished.emit(self.job.run(options, on_progress=self.relay.progress.emit)))

    def stop(self) -> None:
        self.job.stop()
        self.log.appendPlainText("Stopping after the batches in flight…")
        self.stop_button.setEnabled(False)

    # ------------------------------------------------------------------ results (UI thread)
    def _connected(self, info: Any) -> None:
        self.info = info
        alive = info.alive_nodes
        self.status.setText(f"Ray {info.ray_version} at {info.address}: {len(alive)} node(s), {info.cpus:g} CPUs, "
                            f"{info.gpus:g} GPUs.")
        self.nodes.setRowCount(len(info.nodes))
        for r, n in enumerate(info.nodes):
            cells = (n.hostname, n.address, f"{n.cpus:g}", f"{n.gpus:g}", ", ".join(n.gpu_types) or "—",
                     f"{n.memory_gib:g}", "alive" if n.alive else "dead")
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in (2, 3, 5):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.nodes.setItem(r, c, item)
        self._set_busy(False)

    def _progress(self, event: Any) -> None:
        if event.status == "started":
            self.bar.setRange(0, max(1, event.total))
            self.log.appendPlainText(f"Workers ready; {event.total} item(s) to analyse.")
        elif event.status in ("done", "failed"):
            self.bar.setValue(event.done)
        if event.status == "failed":
            self.log.appendPlainText(f"failed: evidence {event.evidence_id}: {event.error}")
        elif event.status == "worker_lost":
            self.log.appendPlainText(f"{event.error}; its items go to the other workers")

    def _finished(self, summary: Any) -> None:
        self.summary = summary
        self.bar.setVisible(False)
        self.log.appendPlainText(f"Analysed {summary.done}, failed {summary.failed}, still queued {summary.remaining} "
                                 f"in {summary.seconds:.1f} s.")
        for line in summary.report_lines():
            self.log.appendPlainText("  " + line)
        self._set_busy(False)
        if hasattr(self.window, "reload_evidence"):
            self.window.reload_evidence()
        notes = getattr(self.window, "notifications", None)
        if notes is not None:
            notes.info(f"Cluster analysis: {summary.done} done, {summary.failed} failed, {summary.remaining} queued.",
                       "\n".join(summary.report_lines()))
        self._maybe_close()

    def _failed(self, message: str) -> None:
        self.bar.setVisible(False)
        self.status.setText(f"Error: {message}")
        self.log.appendPlainText(f"error: {message}")
        self._set_busy(False)
        self._maybe_close()

    # ------------------------------------------------------------------ closing
    def _maybe_close(self) -> None:
        if self._close_when_done:
            self.close()

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt's name
        if self.thread is not None and self.thread.is_alive():
            self._close_when_done = True  # closes once the run has handed back what it had sent
            self.job.stop()
            self.hide()
            event.ignore()
            return
        self.job.close()
        super().closeEvent(event)


def install_cluster_action(window: Any) -> QAction:
    """Analysis → Run on cluster…, enabled while a case is open."""
    action = QAction("Run on &cluster…", window)
    action.setEnabled(window.case is not None)

    def open_dialog() -> None:
        if window.case is None:
            return
        dialog = getattr(window, "_cluster_dialog", None)
        if dialog is None:
            dialog = ClusterDialog(window)
            window._cluster_dialog = dialog
        dialog.show()
        dialog.raise_()

    def case_closed() -> None:
        action.setEnabled(False)
        dialog = getattr(window, "_cluster_dialog", None)
        if dialog is not None:  # stops a run (its items go back to the queue) and disconnects
            window._cluster_dialog = None
            dialog.close()

    action.triggered.connect(open_dialog)
    window.caseOpened.connect(lambda _case: action.setEnabled(True))
    window.caseClosed.connect(case_closed)
    window.add_action("Analysis", action)
    return action
