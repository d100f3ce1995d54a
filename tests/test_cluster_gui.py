"""Analysis → Run on cluster…: the dialog lists the nodes, runs, reports per node, stops, closes.

The dialog talks to a `ClusterJob`; here a stand-in with the same methods, so no Ray starts
(the real job runs in tests/test_cluster.py)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from PySide6.QtWidgets import QWidget  # noqa: E402

from declip_desktop.cluster.connect import ClusterError, ClusterInfo, NodeInfo  # noqa: E402
from declip_desktop.cluster.stats import ClusterProgress, ClusterRunSummary, NodeStats  # noqa: E402
from declip_desktop.gui.cluster_dialog import ClusterDialog  # noqa: E402

NODES = (NodeInfo("a" * 56, "10.0.0.5", "gpu-box-1", True, 32.0, 4.0, 251.3, ("H100",)),
         NodeInfo("b" * 56, "10.0.0.6", "cpu-box", True, 64.0, 0.0, 503.0),
         NodeInfo("c" * 56, "10.0.0.7", "old-box", False, 8.0, 0.0, 31.0))


class FakeJob:
    case_path = "/nowhere"

    def __init__(self, fail_connect=False, hold: threading.Event | None = None):
        self.fail_connect = fail_connect
        self.hold = hold
        self.stopped = threading.Event()
        self.closed = False
        self.options = None

    def connect(self, address):
        if self.fail_connect:
            raise ClusterError(f"could not connect to the Ray cluster at {address}: ConnectionError")
        return ClusterInfo(address=address, ray_version="2.60.0", nodes=NODES)

    def run(self, options, on_progress=None, evidence_ids=None):
        self.options = options
        on_progress(ClusterProgress(0, 3, None, "started", None))
        on_progress(ClusterProgress(1, 3, 1, "done", 1.0, score=0.9, node="gpu-box-1"))
        on_progress(ClusterProgress(1, 3, None, "worker_lost", None, error="worker 0 on gpu-box-1: ActorDiedError"))
        if self.hold is not None:
            self.stopped.wait(10)
        on_progress(ClusterProgress(2, 3, 2, "failed", 0.5, error="the evidence file changed since import"))
        node = NodeStats("a" * 56, "10.0.0.5", "gpu-box-1", "NVIDIA H100", actors=4, items=1, failures=1,
                         actor_deaths=1, busy_seconds=0.5)
        return ClusterRunSummary(total=3, done=1, failed=1, remaining=1, seconds=2.0, nodes=[node],
                                 refused=["node old-box (10.0.0.7): /m/tiny.safetensors hashes to 12…, not 34…"],
                                 stopped=self.stopped.is_set())

    def stop(self):
        self.stopped.set()

    def close(self):
        self.closed = True


class StubWindow(QWidget):
    def __init__(self):
        super().__init__()
        self.reloaded = 0
        self.messages = []
        self.notifications = SimpleNamespace(info=lambda m, d="": self.messages.append((m, d)))
        self.fast_action = SimpleNamespace(isChecked=lambda: True)  # Analysis → Fast mode is on

    def reload_evidence(self):
        self.reloaded += 1


@pytest.fixture
def window(qtbot):
    win = StubWindow()
    qtbot.addWidget(win)
    return win


def test_connect_lists_nodes_then_run_reports_per_node(qtbot, window):
    dialog = ClusterDialog(window, job=FakeJob())
    qtbot.addWidget(dialog)
    assert not dialog.run_button.isEnabled()  # nothing to run on before connecting
    dialog.address.setCurrentText("ray://10.0.0.5:10001")
    dialog.start_connect()
    qtbot.waitUntil(lambda: dialog.nodes.rowCount() == 3, timeout=5000)
    assert "2 node(s), 96 CPUs, 4 GPUs" in dialog.status.text()  # the dead node does not count
    assert [dialog.nodes.item(0, c).text() for c in range(7)] == ["gpu-box-1", "10.0.0.5", "32", "4", "H100",
                                                                  "251.3", "alive"]
    assert dialog.nodes.item(2, 6).text() == "dead"
    assert dialog.run_button.isEnabled()
    dialog.actors.setValue(3)
    dialog.evidence_from.setCurrentIndex(1)
    dialog.shared_root.setText("/mnt/cases/2026-0021")
    dialog.start_run()
    qtbot.waitUntil(lambda: dialog.summary is not None, timeout=5000)
    opts = dialog.job.options
    assert (opts.actors, opts.evidence_from, opts.shared_root, opts.model_from) == (3, "shared", "/mnt/cases/2026-0021",
                                                                                  "ship")
    assert opts.fast  # follows the window's fast mode
    log = dialog.log.toPlainText()
    assert "node gpu-box-1 (10.0.0.5) NVIDIA H100: 1 stored, 1 failed, 1 workers lost" in log
    assert "refused: node old-box" in log and "failed: evidence 2" in log and "ActorDiedError" in log
    assert window.reloaded == 1 and "1 done, 1 failed, 1 queued" in window.messages[0][0]
    dialog.close()
    assert dialog.job.closed


def test_a_connection_error_is_shown_and_nothing_runs(qtbot, window):
    dialog = ClusterDialog(window, job=FakeJob(fail_connect=True))
    qtbot.addWidget(dialog)
    dialog.start_connect()
    qtbot.waitUntil(lambda: "Error:" in dialog.status.text(), timeout=5000)
    assert "ConnectionError" in dialog.status.text() and not dialog.run_button.isEnabled()
    assert dialog.connect_button.isEnabled()  # the analyst can fix the address and try again


def test_stop_and_closing_mid_run_hand_the_items_back(qtbot, window):
    job = FakeJob(hold=threading.Event())
    dialog = ClusterDialog(window, job=job)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start_connect()
    qtbot.waitUntil(lambda: dialog.run_button.isEnabled(), timeout=30000)
    dialog.start_run()
    qtbot.waitUntil(lambda: dialog.stop_button.isEnabled() and dialog.bar.maximum() == 3, timeout=30000)
    dialog.close()  # mid-run: asks the run to stop, hides, closes when the run has ended
    assert job.stopped.is_set() and not dialog.isVisible() and not job.closed
    qtbot.waitUntil(lambda: job.closed, timeout=30000)
    assert dialog.summary.stopped


def test_the_main_window_has_the_action(qtbot):
    from declip_desktop.gui.main_window import MainWindow
    from declip_desktop.gui.settings import Settings

    win = MainWindow(Settings(), device="cpu", fast=False)
    qtbot.addWidget(win)
    texts = [a.text() for a in win.menus["Analysis"].actions()]
    assert texts.count("Run on &cluster…") == 1
    assert not win.cluster_action.isEnabled()  # no case open
    win.close()
