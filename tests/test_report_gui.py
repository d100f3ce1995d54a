"""File → Export report in the main window: the action exists, runs off the UI thread, saves."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import pypdf
import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)

from declip_desktop.cases.case_settings import set_case_threshold
from declip_desktop.cli import main as cli_main
from declip_desktop.desktop import engine_services
from declip_desktop.gui.background import wait_for_background
from declip_desktop.gui.main_window import MainWindow
from declip_desktop.gui.report_action import start_job
from declip_desktop.gui.settings import Settings


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
    assert out.is_file() and job.result.path.parent == tmp_path / "case" / "reports" and job.result.copy == out
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


def _figures(stats) -> list[tuple]:
    return [(f.evidence_id, f.threshold, f.threshold_source, f.score, f.regions) for f in stats.items]


def test_the_gui_and_the_cli_report_the_same_thresholds_regions_and_scores(qtbot, window, tmp_path, capsys):
    """One rule for every front end: the item's own threshold, else the case's default (audit-logged);
    the analyst's machine preferences never change a report."""
    import json

    assert window.create_case(str(tmp_path / "case"), "GUI-9", "Same report", "Ana")
    case = window.case
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    evidence = case.import_paths([tmp_path / f"{i}.png" for i in range(3)]).imported
    prob = np.zeros((48, 64), np.float32)
    prob[4:20, 4:30], prob[30:44, 40:60] = 0.65, 0.35  # two regions at 0.3, one at 0.5 or 0.6
    for ev in evidence:
        case.store_result(ev.id, model_name="m", model_sha256="1" * 64, parameters={}, score=0.5 + ev.id / 100,
                          prob_map=prob, device="cpu", seconds=0.1, started="s", finished="f")
    case.set_review(evidence[0].id, threshold=0.6)  # reviewed: its own threshold wins
    set_case_threshold(case, 0.3, analyst="Ana")  # the case's default for the other two
    window.settings.qsettings.setValue("view/threshold", 0.9)  # a stale per-machine value: ignored
    job = start_job(window, "report", tmp_path / "gui.pdf", None)
    qtbot.waitUntil(lambda: job.finished, timeout=60_000)
    assert job.error is None, job.error
    case_dir = str(tmp_path / "case")
    window.close_case()
    assert cli_main(["case", "report", case_dir, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    gui = _figures(job.result.stats)
    assert gui == [(evidence[0].id, 0.6, "reviewed", 0.5 + evidence[0].id / 100, [(16 * 26, (4, 4, 26, 16))]),
                   (evidence[1].id, 0.3, "case", 0.5 + evidence[1].id / 100,
                    [(16 * 26, (4, 4, 26, 16)), (14 * 20, (40, 30, 20, 14))]),
                   (evidence[2].id, 0.3, "case", 0.5 + evidence[2].id / 100,
                    [(16 * 26, (4, 4, 26, 16)), (14 * 20, (40, 30, 20, 14))])]
    assert [(i["evidence_id"], i["threshold"], i["threshold_source"], i["score"], i["regions"]) for i in cli["items"]] \
        == [(e, t, src, score, len(regions)) for e, t, src, score, regions in gui]

    def item_pages(path):  # the per-item pages carry thresholds, scores and region tables
        pages = pypdf.PdfReader(str(path)).pages
        return ["".join(p.extract_text().split()) for p in pages[2:2 + 2 * len(evidence)]]

    import re

    def strip(text):  # the footers' generation times differ; nothing else may
        # (and the CLI's appendix also lists the GUI's report, so its page count may differ)
        return re.sub(r"Page\d+of\d+", "", re.sub(r"generated[^()]*\(UTC[^)]*\)", "", text))

    gui_pages, cli_pages = item_pages(job.result.path), item_pages(cli["report"])
    assert "threshold0.30(casedefault)" in gui_pages[2] and "2region(s)" in gui_pages[2]
    assert [strip(t) for t in gui_pages] == [strip(t) for t in cli_pages]


def test_case_properties_dialog_writes_the_examiner_fields_once_and_refuses_bad_templates(qtbot, window, tmp_path):
    from declip_desktop.cases.examiner import get_examiner
    from declip_desktop.gui.case_properties import CasePropertiesDialog

    assert not window.case_properties_action.isEnabled()
    assert window.create_case(str(tmp_path / "case"), "GUI-P", "Properties", "Ana")
    assert window.case_properties_action.isEnabled()
    dialog = CasePropertiesDialog(window.case, window)
    qtbot.addWidget(dialog)
    dialog.edits["name"].setText("Ana Lima")
    dialog.edits["reference"].setText("REQ-9")
    dialog.declaration.setPlainText("I, {name}, of {lab}, declare…")
    before = len(window.case.audit_entries())
    assert not dialog.save() and "{lab}" in dialog.error.text()
    assert len(window.case.audit_entries()) == before  # a refused value writes nothing
    dialog.declaration.setPlainText("I, {name}, declare this for {reference}.")
    assert dialog.save()
    examiner = get_examiner(window.case)
    assert (examiner.name, examiner.reference, examiner.declaration_text()) == (
        "Ana Lima", "REQ-9", "I, Ana Lima, declare this for REQ-9.")
    assert len(window.case.audit_entries()) == before + 1 and window.case.verify().ok


def test_export_dialog_offers_the_compact_layout_and_signs_with_the_key(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QDialog, QFileDialog

    from declip_desktop.gui import report_action
    from declip_desktop.gui.report_options import ReportOptionsDialog

    assert window.create_case(str(tmp_path / "case"), "GUI-C", "Compact", "Ana")
    src = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(src)
    ev = window.case.import_paths([src]).imported[0]
    window.case.store_result(ev.id, model_name="m", model_sha256="1" * 64, parameters={}, score=0.42,
                             prob_map=np.full((40, 60), 0.2, np.float32), device="cpu", seconds=0.1,
                             started="s", finished="f")

    from declip_desktop.cases import signing
    from declip_desktop.cases.pdf_signing import check_pdf

    signing.create_key("ana")

    def choose_compact(self):
        assert not self.only_selected.isEnabled()  # nothing selected: the whole case
        assert self.sign.isEnabled() and self.sign.isChecked()  # the only key: signed by default
        self.layout_buttons["compact"].setChecked(True)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ReportOptionsDialog, "exec", choose_compact)
    out = tmp_path / "compact.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "PDF files (*.pdf)"))
    job = report_action.export_report(window)
    qtbot.waitUntil(lambda: job.finished, timeout=60_000)
    assert job.error is None and job.layout == "compact"
    pages = [p.extract_text() for p in pypdf.PdfReader(str(out)).pages]
    # compact: the summary on the cover, the item on page 2, then the method
    assert "Evidence 1 of 1" in " ".join(pages[1].split()) and "Method and limitations" in " ".join(pages[2].split())
    [sig] = check_pdf(out)
    assert sig.problem is None and sig.fingerprint == signing.load_key("ana").fingerprint
