"""PDF reports and image exports on a real case with synthetic maps (no model needed).

One case and one report are built per module and shared: building a report is the slow
part (a second or two), the checks are cheap.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pypdf

from declip_desktop.cases import Case  # noqa: E402
from declip_desktop.common import regions  # noqa: E402
from declip_desktop.reports import build_report, export_images  # noqa: E402
from declip_desktop.reports.build import safe_file_stem  # noqa: E402
from declip_desktop.reports.errors import ReportError  # noqa: E402
from declip_desktop.reports.formatting import fmt_score  # noqa: E402

MODEL_SHA = "7" * 64
TITLE = "Ελληνικά Русский 中文案件"
ANALYST = "Анна Петрова 王伟"
NOTES = "Σημείωση: ретушь видна, 左上角被修改。"
NUMBER = "2026/ΚΑ-7 <draft>"


def _photo(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(x / 17.0 + seed), np.cos(y / 11.0), np.sin((x + y) / 23.0)], axis=2) * 90 + 128
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _map(h: int, w: int, boxes) -> np.ndarray:
    m = np.full((h, w), 0.05, np.float32)
    for (y0, y1, x0, x1, v) in boxes:
        m[y0:y1, x0:x1] = v
    return m


#: The card snapshot every stored result carries (common.model_card.card_snapshot); the model itself
#: is not installed where the report is made.
CARD = {
    "name": "vit-ldm-test", "kind": "declip", "backbone": "ViT-L/14", "layer": "layer20", "decoder": "conv-20",
    "training_set": "ldm", "sha256": MODEL_SHA, "demo": False, "label": "", "software_version": "0.1.0",
}


@pytest.fixture(scope="module", autouse=True)
def _qt_app(qapp):
    """Use pytest-qt's QApplication: were the reports code to create the process's first Qt
    application (a QGuiApplication, as in the CLI), widget tests run later in the same
    process could not create their windows."""
    return qapp


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("report_home")
    (home / "models").mkdir()
    return home


@pytest.fixture(autouse=True)
def _home_env(home, monkeypatch):
    monkeypatch.setenv("DECLIP_HOME", str(home))


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory, home):
    mp = pytest.MonkeyPatch()
    mp.setenv("DECLIP_HOME", str(home))
    root = tmp_path_factory.mktemp("report_case")
    src = root / "src"
    src.mkdir()
    Image.fromarray(_photo(320, 240, 1)).save(src / "street.jpg", quality=92)
    Image.fromarray(_photo(180, 260, 2)).save(src / "portrait.png")
    Image.fromarray(_photo(200, 150, 3)).save(src / "broken_run.jpg", quality=92)
    folder = root / "case"
    with Case.create(folder, number=NUMBER, title=TITLE, analyst=ANALYST, description="Описание 描述") as case:
        rep = case.import_paths([src / "street.jpg", src / "portrait.png", src / "broken_run.jpg"])
        assert not rep.rejected
        by_name = {e.original_name: e for e in case.evidence_list()}
        common = dict(model_name="vit-ldm-test", model_sha256=MODEL_SHA, parameters={"fast": False, "model_card": CARD}, device="cpu",
                      seconds=1.5, started="2026-11-28T10:00:00Z", finished="2026-11-28T10:00:02Z")
        case.store_result(by_name["street.jpg"].id, score=0.8731,
                          prob_map=_map(240, 320, [(40, 100, 60, 160, 0.95), (150, 200, 200, 300, 0.7)]), **common)
        case.store_result(by_name["portrait.png"].id, score=0.1204, prob_map=_map(260, 180, []), **common)
        case.store_failure(by_name["broken_run.jpg"].id, model_name="vit-ldm-test", model_sha256=MODEL_SHA,
                           parameters={}, error="out of device memory on cuda:0", started="2026-11-28T10:01:00Z",
                           finished="2026-11-28T10:01:01Z")
        case.set_review(by_name["street.jpg"].id, verdict="manipulated", notes=NOTES, threshold=0.6)
        case.set_review(by_name["portrait.png"].id, verdict="inconclusive", notes="nothing visible")
    mp.undo()
    return folder


@pytest.fixture(scope="module")
def report(case_dir, home, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("DECLIP_HOME", str(home))
    out = tmp_path_factory.mktemp("out") / "copy.pdf"
    with Case.open(case_dir) as case:
        kept = build_report(case, out_path=out).path
    mp.undo()
    return kept, out


def _text(path: Path) -> str:
    """All page text, whitespace runs as one space (Qt's PDF text comes out word by word)."""
    reader = pypdf.PdfReader(str(path))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() or "" for page in reader.pages))


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _check_page_plan(path: Path, n_items: int) -> None:
    """cover, summary, then exactly two pages per item, then the method section and the appendix."""
    pages = [re.sub(r"\s+", " ", p.extract_text() or "") for p in pypdf.PdfReader(str(path)).pages]
    assert "Forensic image analysis report" in pages[0] and "Summary" in pages[1]
    for k in range(n_items):
        assert f"Evidence {k + 1} of {n_items} " in pages[2 + 2 * k]
        assert f"Evidence {k + 1} of {n_items} " in pages[3 + 2 * k] and "details" in pages[3 + 2 * k]
    assert "Method and limitations" in pages[2 + 2 * n_items]
    declaration = next(i for i, p in enumerate(pages) if "Examiner's declaration Examiner" in p)
    appendix = next(i for i, p in enumerate(pages) if "Appendix A — Audit trail Entries" in p)
    assert 2 + 2 * n_items <= declaration < appendix
    assert all(f"of {len(pages)}" in p for p in pages)  # "Page i of N" everywhere


def _render(path: Path, dpi_scale: float = 0.5):
    from PySide6.QtPdf import QPdfDocument

    from declip_desktop.reports.fonts import ensure_gui_application

    ensure_gui_application()
    doc = QPdfDocument()
    assert doc.load(str(path)) == QPdfDocument.Error.None_
    images = []
    for i in range(doc.pageCount()):
        size = doc.pagePointSize(i) * dpi_scale
        images.append(doc.render(i, size.toSize()))
    doc.close()
    return images


def test_report_text_holds_case_number_hashes_scores_and_verdicts(report, case_dir):
    kept, _ = report
    text = _text(kept)
    flat = _squash(text)
    assert _squash(NUMBER.replace("<", "").replace(">", "")) in flat.replace("<", "").replace(">", "")
    with Case.open(case_dir) as case:
        evidence = case.evidence_list()
        for ev in evidence:
            assert ev.sha256 in flat, ev.original_name
            assert ev.md5 in flat
            assert ev.verdict in text
            if ev.score is not None:
                assert fmt_score(ev.score) in text
    assert "ANALYSIS FAILED" in text
    assert "out of device memory on cuda:0" in text
    # street.jpg was reviewed at 0.60; the others never got a threshold: the default, said so.
    assert "threshold 0.60 ·" in text and "threshold 0.50 (default)" in text
    # The model card reached the page, and the method section names the training data.
    assert "ViT-L/14" in text and "conv-20" in text and "Dolos LDM" in text
    assert "latent diffusion" in text
    assert "not proof of authenticity" in text
    assert "Appendix A" in text and "analysis.stored" in text


def test_pages_render_and_count_follows_the_evidence(report, case_dir, tmp_path):
    kept, _ = report
    pages = _render(kept)
    # cover + summary, 2 pages per item (3 items), method, declaration, appendix (one page for this small log)
    assert len(pages) == 2 + 2 * 3 + 2 + 1
    _check_page_plan(kept, 3)
    for i, img in enumerate(pages):
        arr = np.asarray(img.convertToFormat(img.Format.Format_Grayscale8).constBits()).reshape(img.height(), -1)
        assert (arr[:, : img.width()] < 128).sum() > 500, f"page {i + 1} is blank"
    # A subset of the evidence gives proportionally fewer pages.
    with Case.open(case_dir) as case:
        first = case.evidence_list()[0].id
        subset = build_report(case, evidence_ids=[first], threshold=0.3).path
    _check_page_plan(subset, 1)
    assert "0.30 for every item" in _text(subset)


def test_non_latin_title_analyst_and_notes_are_text_in_an_embedded_font(report):
    kept, _ = report
    reader = pypdf.PdfReader(str(kept))
    fonts = set()
    for page in reader.pages:
        for font in (page.get("/Resources", {}).get("/Font", {}) or {}).values():
            fonts.add(str(font.get_object().get("/BaseFont")))
    assert any("DroidSansFallback" in f for f in fonts), fonts
    flat = _squash(_text(kept))
    for s in (TITLE, ANALYST, NOTES):
        assert _squash(s) in flat, s
    # Every character of those strings has a glyph in the report's font chain (no tofu boxes).
    from PySide6.QtGui import QFont, QRawFont

    from declip_desktop.reports.fonts import CJK_FONT_FILE, report_families

    main_font = QRawFont.fromFont(QFont(report_families()["sans"][0]))
    cjk = QRawFont(str(CJK_FONT_FILE), 12)
    assert cjk.isValid() and not cjk.supportsCharacter(ord("Ж"))  # the check can fail
    for ch in set(TITLE + ANALYST + NOTES) - set(" "):
        assert main_font.supportsCharacter(ord(ch)) or cjk.supportsCharacter(ord(ch)), f"no glyph for {ch!r}"


def test_pdf_metadata(report):
    kept, _ = report
    meta = pypdf.PdfReader(str(kept)).metadata
    assert NUMBER in meta.title and TITLE in meta.title
    assert meta.author == ANALYST
    assert meta.subject and "DeCLIP" in meta.subject and NUMBER in meta.subject


def test_report_is_kept_registered_never_overwritten_and_verified(report, case_dir):
    kept, out = report
    assert kept.parent == case_dir / "reports"
    assert kept.name.startswith(safe_file_stem(NUMBER) + "-") and "/" not in kept.name
    assert not kept.stat().st_mode & stat.S_IWUSR
    assert out.read_bytes() == kept.read_bytes()
    with Case.open(case_dir) as case:
        again = build_report(case).path
        assert again != kept and kept.exists()
        registered = {Path(r["path"]).name: r["sha256"] for r in case.reports()}
        from declip_desktop.common.hashing import sha256_file

        assert registered[kept.name] == sha256_file(kept)
        assert registered[again.name] == sha256_file(again)
        result = case.verify()
        assert result.ok, result.problems
        assert result.reports_checked >= 2


def test_bad_requests_fail_clearly_and_leave_nothing(case_dir, tmp_path):
    with Case.open(case_dir) as case:
        before = sorted((case_dir / "reports").iterdir())
        with pytest.raises(ReportError, match="no evidence with ID 999"):
            build_report(case, evidence_ids=[999])
        with pytest.raises(ReportError, match="outside 0…1"):
            build_report(case, threshold=1.5)
        with pytest.raises(ReportError, match="does not exist"):
            build_report(case, out_path=tmp_path / "missing" / "r.pdf")
        assert sorted((case_dir / "reports").iterdir()) == before
        assert not list((case_dir / ".tmp").glob("report-*"))


def test_export_images_writes_overlay_and_mask_at_threshold(case_dir, tmp_path):
    with Case.open(case_dir) as case:
        items = {e.original_name: e for e in case.evidence_list()}
        result = export_images(case, out_dir=tmp_path / "png")
        street = items["street.jpg"]
        analysis = case.latest_analysis(street.id)
        prob = case.load_map(analysis)
    names = sorted(p.name for p in result.written)
    assert len(names) == 4  # overlay + mask for the two analysed items
    assert [i for i, _ in result.skipped] == [items["broken_run.jpg"].id]
    mask_file = next(p for p in result.written if "street" in p.name and "-mask-t0.60" in p.name)
    mask = np.asarray(Image.open(mask_file))
    assert mask.shape == (240, 320) and set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(mask > 0, regions.binary_mask(prob, 0.6).astype(bool))
    overlay = np.asarray(Image.open(next(p for p in result.written if "street" in p.name and "overlay" in p.name)))
    assert overlay.shape == (240, 320, 3)


def test_cli_report_and_export_images(case_dir, tmp_path, capsys):
    import subprocess
    import sys

    from declip_desktop.cli import main

    out = tmp_path / "cli.pdf"
    # A real process: the report must come out *and* the interpreter must exit cleanly
    # (PySide6 6.12.0 on Python 3.11 aborted at exit; see test_qt_binding_keeps_none_alive).
    proc = subprocess.run(
        [sys.executable, "-m", "declip_desktop", "case", "report", str(case_dir), "--out", str(out),
         "--evidence", "1", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Report kept in the case" in proc.stdout
    _check_page_plan(out, 2)
    assert main(["case", "report", str(case_dir), "--evidence", "42"]) == 2
    assert "error: no evidence with ID 42" in capsys.readouterr().err
    code = main(["case", "export-images", str(case_dir), "--out", str(tmp_path / "x"), "--json"])
    assert code == 1  # the failed item has nothing to export
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["written"]) == 4 and len(payload["skipped"]) == 1


def test_changed_evidence_file_is_reported_not_shown(tmp_path, home):
    folder = tmp_path / "c"
    src = tmp_path / "a.png"
    Image.fromarray(_photo(64, 48, 5)).save(src)
    with Case.create(folder, number="X-1", title="t", analyst="a") as case:
        ev = case.import_paths([src]).imported[0]
        case.store_result(ev.id, model_name="m", model_sha256="0" * 64, parameters={}, score=0.5,
                          prob_map=_map(48, 64, []), device="cpu", seconds=0.1, started="s", finished="f")
        stored = case.evidence_file(ev)
        stored.chmod(0o644)
        stored.write_bytes(stored.read_bytes() + b"tampered")
        kept = build_report(case).path
    text = _text(kept)
    assert "MISMATCH" in text and "no longer matches" in text
    assert "Model card" in text  # the model "m" has no installed card: the page says so


def test_image_budget_shrinks_the_original_first():
    from declip_desktop.reports import imaging

    rgb = np.random.default_rng(0).integers(0, 255, (1500, 2600, 3), dtype=np.uint8)
    prob = np.zeros((1500, 2600), np.float32)
    roomy = imaging.prepare_visuals(rgb, prob, 0.5, budget_bytes=64 << 20)
    assert max(roomy.overlay.shape[:2]) == 2000 and max(roomy.original.shape[:2]) == 2000
    tight = imaging.prepare_visuals(rgb, prob, 0.5, budget_bytes=3 << 20)
    assert max(tight.original.shape[:2]) < 2000
    assert max(tight.overlay.shape[:2]) >= max(tight.original.shape[:2])
    assert tight.estimated_bytes < roomy.estimated_bytes


def test_demo_model_is_flagged_from_the_results_own_card_snapshot(tmp_path, home):
    """The report reads the card stored with the result; the model need not be installed, and an
    installed card with the same hash that says otherwise changes nothing."""
    card = {"name": "starter", "kind": "starter", "backbone": "starter-fcn", "decoder": "fcn", "demo": True,
            "label": "demo model — not for casework", "sha256": "d" * 64, "training_set": "synthetic edits"}
    liar = {**card, "kind": "declip", "demo": False, "label": "", "backbone": "ViT-L/14"}
    (home / "models" / "starter.json").write_text(json.dumps(liar), encoding="utf-8")
    (home / "models" / "starter.safetensors").write_bytes(b"x")
    src = tmp_path / "a.png"
    Image.fromarray(_photo(64, 48, 6)).save(src)
    with Case.create(tmp_path / "c", number="D-1", title="demo", analyst="a") as case:
        ev = case.import_paths([src]).imported[0]
        case.store_result(ev.id, model_name="starter", model_sha256="d" * 64, parameters={"model_card": card},
                          score=0.3, prob_map=_map(48, 64, []), device="cpu", seconds=0.1, started="s", finished="f")
        text = _text(build_report(case).path)
    assert "DEMO MODEL — NOT FOR CASEWORK" in text
    assert "demo model — not for casework" in text
    assert "synthetic classical edits only" in text
    assert "ViT-L/14" not in text


def test_a_result_without_a_card_snapshot_says_only_what_it_recorded(tmp_path, home):
    card = {"name": "vit-ldm", "kind": "declip", "backbone": "ViT-L/14", "layer": "layer20", "decoder": "conv-20",
            "training_set": "ldm", "demo": False, "sha256": "e" * 64}
    (home / "models" / "vit-ldm.json").write_text(json.dumps(card), encoding="utf-8")  # installed at report time
    src = tmp_path / "a.png"
    Image.fromarray(_photo(64, 48, 7)).save(src)
    with Case.create(tmp_path / "c", number="D-2", title="old", analyst="a") as case:
        ev = case.import_paths([src]).imported[0]
        case.store_result(ev.id, model_name="vit-ldm", model_sha256="e" * 64, parameters={}, score=0.3,
                          prob_map=_map(48, 64, []), device="cpu", seconds=0.1, started="s", finished="f")
        from declip_desktop.reports.collect import collect_report_data

        model = collect_report_data(case).evidence[0].analysis.model
    assert (model.name, model.sha256, model.card_found, model.backbone, model.training_set) == (
        "vit-ldm", "e" * 64, False, None, None)


def test_model_info_names_known_training_sets_and_prints_odd_snapshot_values_as_text():
    from declip_desktop.reports.collect import model_info

    base = {"name": "m", "kind": "declip", "sha256": "f" * 64, "demo": False}
    assert model_info("m", "f" * 64, {"model_card": {**base, "training_set": "cocosd"}}).training_set == "COCO-SD"
    assert model_info("m", "f" * 64, {"model_card": {**base, "training_set": "my own set"}}).training_set == "my own set"
    # A hand-edited snapshot with a list where a name belongs: shown as text, not a crash or a Python object.
    odd = model_info("m", "f" * 64, {"model_card": {**base, "training_set": ["ldm", 3]}})
    assert odd.training_set == "['ldm', 3]"
    assert model_info("m", "f" * 64, {"model_card": base}).training_set is None


def test_qt_binding_keeps_none_alive():
    """PySide6 6.12.0 on Python 3.11 dropped a reference to None per void call and aborted
    the interpreter after ~100 000 painting calls; pyproject pins a release without the bug."""
    import subprocess
    import sys

    code = (
        "import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtGui import QPainterPath\n"
        "p = QPainterPath()\n"
        "before = sys.getrefcount(None)\n"
        "for i in range(200000): p.lineTo(i, i)\n"
        "print(sys.getrefcount(None) - before)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert abs(int(proc.stdout.strip())) < 1000
