"""Tiled analyses in a case: both maps stored and audit-logged, stable regions, stop, verify, CLI."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from PIL import Image

from declip_desktop.analysis import AnalysisSession
from declip_desktop.analysis.tiling import (analysis_mode, estimate_session, estimate_tiled, latest_pair,
                                            stable_matches, tiled_partner)
from declip_desktop.cases import Case
from declip_desktop.cli import main
from declip_desktop.common.stable_regions import match_regions
from declip_desktop.common.tiling_plan import TilingOptions
from declip_desktop.modelstore.loading import load_localizer, resolve_model
from tests.factories import install_tiny_model


def _images(folder, sizes=((300, 290), (224, 224))):
    folder.mkdir(parents=True, exist_ok=True)
    for i, (w, h) in enumerate(sizes):
        rng = np.random.default_rng(i)
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        arr[h // 3: h // 2, w // 3: w // 2] = 40
        Image.fromarray(arr).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def tiled_case(tmp_path):
    install_tiny_model(name="tile-tiny")
    case = Case.create(tmp_path / "case", number="19", title="Tiles", analyst="Ana")
    case.import_paths([_images(tmp_path / "src")])
    session = AnalysisSession(case, model="tile-tiny", device="cpu", batch_size=2, localizer_factory=load_localizer,
                              model_resolver=resolve_model, tiling=TilingOptions(scales=(1.0, 0.5)))
    yield case, session
    case.close()


def test_both_maps_are_stored_with_their_mode_and_model_card(tiled_case):
    case, session = tiled_case
    summary = session.run()
    assert summary.done == 2 and summary.failed == 0
    for ev in case.evidence_list():
        analyses = case.analyses(ev.id)
        assert [analysis_mode(a) for a in analyses] == ["tiled", "squash"]
        tiled, squash = analyses
        assert case.latest_analysis(ev.id, successful=True).id == squash.id  # older readers see the squash
        assert tiled_partner(case, squash).id == tiled.id
        assert tiled.parameters["tile"] == 224 and tiled.parameters["overlap"] == 0.25
        assert tiled.parameters["scales"] == [1.0, 0.5]
        assert tiled.parameters["model_card"] == squash.parameters["model_card"]
        assert tiled.parameters["model_card"]["sha256"] == tiled.model_sha256
        assert case.load_map(tiled).shape == (ev.height, ev.width) == case.load_map(squash).shape
        pair = latest_pair(case, ev.id)
        assert pair.tiled.id == tiled.id and "forward passes" in pair.describe()
        for match in stable_matches(case, pair, 0.5):
            assert 0.0 <= match.iou <= 1.0
    one_tile = [a for a in case.analyses() if a.parameters.get("mode") == "tiled" and a.parameters["passes"] == 1]
    assert len(one_tile) == 1  # the 224×224 image: its coarser scale would repeat the same tile
    assert case.verify().ok


def test_a_hand_edited_tiled_analysis_is_caught_by_verify(tiled_case):
    case, session = tiled_case
    session.run()
    tiled = next(a for a in case.analyses() if analysis_mode(a) == "tiled")
    params = dict(tiled.parameters, tile=112)
    with sqlite3.connect(case.path / "case.sqlite") as conn:
        conn.execute("UPDATE analyses SET parameters = ? WHERE id = ?", (json.dumps(params), tiled.id))
    report = case.verify()
    assert not report.ok and any(p.object == f"analysis:{tiled.id}" for p in report.problems), report.problems


def test_a_deleted_tiled_row_is_caught_and_not_shown(tiled_case):
    case, session = tiled_case
    session.run()
    tiled = next(a for a in case.analyses() if analysis_mode(a) == "tiled")
    with sqlite3.connect(case.path / "case.sqlite") as conn:
        conn.execute("DELETE FROM analyses WHERE id = ?", (tiled.id,))
    assert latest_pair(case, tiled.evidence_id) is None
    report = case.verify()
    assert not report.ok and any(p.object == f"analysis:{tiled.id}" for p in report.problems), report.problems


def test_a_partner_id_pointing_elsewhere_is_ignored(tiled_case):
    case, session = tiled_case
    session.run()
    squash = case.latest_analysis(1, successful=True)
    other = case.latest_analysis(2, successful=True)  # a squash analysis of another item
    fake = type(squash)(**{**squash.__dict__, "parameters": {**squash.parameters, "tiled_analysis_id": other.id}})
    assert tiled_partner(case, fake) is None


def test_stop_inside_an_image_stores_nothing_and_requeues(tiled_case):
    case, session = tiled_case
    seen = []

    def progress(event):
        if event.status == "tiles":
            seen.append(event.tiles)
            session.stop()

    summary = session.run(on_progress=progress)
    assert summary.stopped and summary.done == 0
    assert seen and seen[0][1] > 1  # progress per batch of tiles
    assert case.analyses() == [] and {e.status for e in case.evidence_list()} == {"queued"}
    assert case.verify().ok


def test_a_crash_between_the_tiled_and_the_squash_map_leaves_the_item_unfinished(tiled_case, monkeypatch):
    """The tiled map is stored first; a process killed (here: a store that raises) before the squash
    map is written must not leave the item 'done' with only half its pair: it is requeued, and the
    next run analyses it again and completes the pair; verify stays clean throughout."""
    from declip_desktop.cases.errors import CaseError

    case, session = tiled_case
    real = Case.store_result
    calls = []

    def crash_on_squash(self, evidence_id, **kw):
        calls.append(kw["parameters"].get("mode"))
        if kw["parameters"].get("mode") == "squash":
            raise CaseError("simulated crash before the squash map was written")
        return real(self, evidence_id, **kw)

    monkeypatch.setattr(Case, "store_result", crash_on_squash)
    with pytest.raises(CaseError, match="simulated crash"):
        session.run()
    assert calls[:2] == ["tiled", "squash"]
    first = case.evidence_list()[0]
    assert [analysis_mode(a) for a in case.analyses(first.id)] == ["tiled"]
    assert case.get_evidence(first.id).status != "done"
    assert case.verify().ok, case.verify().problems
    monkeypatch.setattr(Case, "store_result", real)
    case.requeue_interrupted()  # what the next run or opening the case does
    assert {e.status for e in case.evidence_list()} == {"queued"}
    summary = AnalysisSession(case, model="tile-tiny", device="cpu", batch_size=2, localizer_factory=load_localizer,
                              model_resolver=resolve_model, tiling=TilingOptions(scales=(1.0, 0.5))).run()
    assert summary.done == 2
    pair = latest_pair(case, first.id)
    assert pair is not None and pair.squash.parameters["tiled_analysis_id"] == pair.tiled.id
    assert {e.status for e in case.evidence_list()} == {"done"} and case.verify().ok


def test_estimate_counts_tiles_and_the_squash(tiled_case):
    case, session = tiled_case
    est = estimate_session(session)
    # 300×290: 2×2 tiles at scale 1; its 0.5 scale is 150×145 → one 224 tile. 224×224: one tile.
    assert (est.images, est.tile_passes, est.passes) == (2, 5 + 1, 8)
    assert est.seconds == pytest.approx(est.passes * est.seconds_per_pass) and est.seconds_per_pass > 0
    text = estimate_tiled([(4000, 3000)], TilingOptions(), 224, 0.5, "cpu").describe()
    assert "433 forward passes" in text and "432 tiles of 224 px" in text and "3 min 36 s" in text


def test_stable_region_marking_on_constructed_maps():
    tiled = np.zeros((100, 100), np.float32)
    squash = np.zeros((100, 100), np.float32)
    tiled[10:30, 10:30] = 0.9  # found in both (IoU 400 / 576 ≈ 0.69)
    squash[8:32, 8:32] = 0.8
    tiled[60:64, 60:64] = 0.9  # only in the tiled map
    tiled[80:90, 5:15] = 0.9  # touched by a squash blob that is far larger (IoU 100 / 1600)
    squash[60:100, 0:40] = 0.7
    matches = match_regions(tiled, squash, 0.5)
    by_box = {m.region.bbox: m for m in matches}
    assert by_box[(10, 10, 20, 20)].stable and by_box[(10, 10, 20, 20)].iou == pytest.approx(400 / 576)
    assert not by_box[(60, 60, 4, 4)].stable and by_box[(60, 60, 4, 4)].iou == 0.0
    assert by_box[(60, 60, 4, 4)].squash_index is None
    assert not by_box[(5, 80, 10, 10)].stable and by_box[(5, 80, 10, 10)].iou == pytest.approx(100 / 1600)
    with pytest.raises(ValueError, match="same size"):
        match_regions(tiled, squash[:50], 0.5)


def test_cli_case_analyze_tiled_prints_the_estimate_first(tmp_path, capsys):
    install_tiny_model(name="cli-tile")
    case_dir = tmp_path / "c"
    assert main(["case", "create", str(case_dir), "--number", "1", "--title", "t", "--analyst", "a"]) == 0
    assert main(["case", "import", str(case_dir), str(_images(tmp_path / "src", sizes=((300, 290),)))]) == 0
    capsys.readouterr()
    assert main(["case", "analyze", str(case_dir), "--model", "cli-tile", "--device", "cpu", "--tiled",
                 "--tile-overlap", "0.5"]) == 0
    err = capsys.readouterr().err
    assert "Tiled analysis of 1 image: 5 forward passes (4 tiles of 224 px, overlap 50%" in err
    assert "tile 4 of 4" in err  # tile progress on stderr
    with Case.open(case_dir, read_only=True) as case:
        assert [analysis_mode(a) for a in case.analyses()] == ["tiled", "squash"]
    assert main(["case", "analyze", str(case_dir), "--tiled", "--scales", "0.5"]) == 2
    assert "must include 1" in capsys.readouterr().err
    assert main(["case", "analyze", str(case_dir), "--scales", "1,0.5"]) == 2  # without --tiled
    assert "only apply with --tiled" in capsys.readouterr().err


def test_cli_analyze_tiled_writes_both_maps(tmp_path, capsys):
    install_tiny_model(name="cli-tile2")
    src = _images(tmp_path / "src", sizes=((300, 290),))
    maps = tmp_path / "maps"
    assert main(["analyze", str(src), "--model", "cli-tile2", "--device", "cpu", "--tiled",
                 "--maps-dir", str(maps)]) == 0
    out = capsys.readouterr()
    rec = json.loads(out.out.strip())
    assert "forward passes" in out.err
    assert rec["tiled"]["passes"] == 4 and rec["tiled"]["tile"] == 224 and rec["tiled"]["scales"] == [1.0]
    assert np.load(rec["tiled"]["map"]).shape == (290, 300) and np.load(rec["map"]).shape == (290, 300)
    assert rec["tiled"]["map"].endswith("img0.tiled.npy")
