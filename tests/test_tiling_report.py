"""The report states which maps an item has, the tiling parameters and its stable regions."""

from __future__ import annotations

import re

import numpy as np
import pypdf
import pytest
from PIL import Image

from declip_desktop.cases import Case
from declip_desktop.reports import build_report
from declip_desktop.reports.collect import collect_report_data

CARD = {"name": "vit-ldm-test", "kind": "declip", "backbone": "ViT-L/14", "layer": "layer20", "decoder": "conv-20",
        "training_set": "ldm", "sha256": "7" * 64, "demo": False, "label": "", "software_version": "0.1.0"}


@pytest.fixture(autouse=True)
def _qt_app(qapp):
    return qapp


def _store_pair(case, evidence_id, squash_map, tiled_map):
    common = dict(model_name="vit-ldm-test", model_sha256="7" * 64, device="cpu", seconds=1.0,
                  started="2026-12-02T01:00:00Z", finished="2026-12-02T01:00:09Z")
    base = {"fast": False, "model_card": CARD}
    tiled = case.store_result(evidence_id, score=0.9, prob_map=tiled_map, parameters={
        **base, "mode": "tiled", "tile": 224, "overlap": 0.25, "scales": [1.0, 0.5], "passes": 12}, **common)
    case.store_result(evidence_id, score=0.4, prob_map=squash_map,
                      parameters={**base, "mode": "squash", "tiled_analysis_id": tiled.id}, **common)


def test_report_names_both_maps_the_tiling_and_stable_regions(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(src / "tiled.png")
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(src / "plain.png")
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(src / "only.png")
    with Case.create(tmp_path / "case", number="19", title="Tiles", analyst="Ana") as case:
        case.import_paths([src / "tiled.png", src / "plain.png"])
        by_name = {e.original_name: e.id for e in case.evidence_list()}
        squash = np.full((300, 400), 0.05, np.float32)
        tiled = squash.copy()
        squash[40:120, 40:140] = 0.8  # a coarse blob around the first tiled region: stable
        tiled[50:110, 50:130] = 0.95
        tiled[200:220, 300:330] = 0.9  # only the tiles see it
        _store_pair(case, by_name["tiled.png"], squash, tiled)
        case.store_result(by_name["plain.png"], model_name="vit-ldm-test", model_sha256="7" * 64, score=0.1,
                          prob_map=np.full((300, 400), 0.05, np.float32),
                          parameters={"fast": False, "model_card": CARD, "mode": "squash"}, device="cpu",
                          seconds=1.0, started="", finished="")
        data = collect_report_data(case)
        rows = {item.name: dict(item.tiling) for item in data.evidence}
        assert rows["plain.png"] == {}
        # A run that stopped between its two maps left only the tiled one: the report says so.
        case.import_paths([src / "only.png"])
        only = next(e.id for e in case.evidence_list() if e.original_name == "only.png")
        case.store_result(only, model_name="vit-ldm-test", model_sha256="7" * 64, score=0.5, prob_map=tiled,
                          parameters={"model_card": CARD, "mode": "tiled", "tile": 224, "overlap": 0.25,
                                      "scales": [1.0], "passes": 4}, device="cpu", seconds=1.0, started="",
                          finished="")
        only_rows = dict(collect_report_data(case, [only]).evidence[0].tiling)
        assert "squash map of this run was not stored" in only_rows["Map"]
        assert "2 region(s) above 0.50, 1 stable" in rows["tiled.png"]["Tiled map"]
        assert "overlap 25%, scales 1, 0.5, 12 forward passes" in rows["tiled.png"]["Tiling"]
        assert "tiled only" in rows["tiled.png"]["Tiled regions"] and "stable (IoU 0.60)" in rows["tiled.png"]["Tiled regions"]
        out = build_report(case, out_path=tmp_path / "report.pdf").path
    text = re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in pypdf.PdfReader(str(out)).pages))
    assert "Native-resolution (tiled) maps" in text
    assert "1 stable" in text and "forward passes" in text
