"""File → Export report in the main window: the action exists, runs off the UI thread, saves."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pytestqt  # noqa: F401,E402  (dev dependency: missing must fail, never skip)
import pypdf

from declip_desktop.gui.background import wait_for_background  # noqa: E402
from declip_desktop.desktop import engine_services  # noqa: E402  (the real engine, as the app wires it)
from declip_desktop.gui.main_window import MainWindow  # noqa: E402
from declip_desktop.gui.report_action import start_job  # noqa: E402
from declip_desktop.gui.settings import Settings  # noqa: E402


@pytest.fixture
def window(qtbot):
    win = MainWindow(Settings(), device="cpu", fast=False, services=engine_services())
    qtbot.addWidget(win)
    yield win
    win.close()
    wait_for_background()


def test_export_report_action_builds_the_pdf_in_the_background(qtbot, window, tmp_path):
    texts = [a.text() for a in window.menus["File"].actions()]
    assert sum("Export &report" in t for t in texts) == 1  # installed once
    assert not window.report_actions[0].isEnabled()  # no case open yet
    assert window.create_case(str(tmp_path / "case"), "GUI-7", "Report from the window", "Ana")
    assert window.report_actions[0].isEnabled()
    src = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(src)
    case = window.case
    ev = case.import_paths([src]).imported[0]
    prob = np.zeros((40, 60), np.float32)
    prob[5:20, 10:30] = 0.9
    case.store_result(ev.id, model_name="m", model_sha256="1" * 64, parameters={}, score=0.42, prob_map=prob,
                      device="cpu", seconds=0.1, started="s", finished="f")
    out = tmp_path / "from-gui.pdf"
    notices = []
    window.notifications.posted.connect(notices.append)
    job = start_job(window, "report", out, [ev.id])
    qtbot.waitUntil(lambda: job.finished, timeout=60_000)
    assert job.error is None, job.error
    assert out.is_file() and job.result.parent == tmp_path / "case" / "reports"
    text = "".join("".join(p.extract_text().split()) for p in pypdf.PdfReader(str(out)).pages)
    assert "GUI-7" in text and ev.sha256 in text and "0.420" in text
    assert any("Report saved" in n.message for n in notices)


def test_cancelled_report_keeps_nothing(qtbot, window, tmp_path):
    assert window.create_case(str(tmp_path / "case"), "GUI-8", "Cancel", "Ana")
    src = tmp_path / "b.png"
    Image.fromarray(np.zeros((30, 30, 3), np.uint8)).save(src)
    window.case.import_paths([src])
    job = start_job(window, "report", tmp_path / "never.pdf", None)
    job._stop.set()  # what the progress dialog's Cancel button does
    qtbot.waitUntil(lambda: job.finished, timeout=60_000)
    assert job.error and "cancelled" in job.error
    assert not (tmp_path / "never.pdf").exists()
    assert not list((tmp_path / "case" / "reports").glob("*.pdf"))
