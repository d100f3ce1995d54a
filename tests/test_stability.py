"""Stability under re-compression (issue 19 item 4): the maths, the check in a case, and its attacks
(hand edits caught by verify, a killed check, the evidence never written)."""

from __future__ import annotations

import builtins
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from declip_desktop.analysis.stability import StabilityError, check_many, check_stability, describe_region
from declip_desktop.cases import Case
from declip_desktop.cases.stability_store import checks, latest_check
from declip_desktop.common.images import load_rgb
from declip_desktop.common.regions import find_regions
from declip_desktop.common.stability import VARIANTS, make_variant, map_to_original, region_stability
from tests.cases_util import Pred, noise_image


# ------------------------------------------------------------------ maths
def boxes(shape, *rects, value=0.9):
    m = np.zeros(shape, np.float32)
    for y0, y1, x0, x1 in rects:
        m[y0:y1, x0:x1] = value
    return m


def test_an_unchanged_region_is_stable_in_every_variant_and_ious_are_exact():
    original = boxes((40, 50), (5, 15, 5, 15), (20, 30, 30, 45))  # 100 px and 150 px
    same = {v.name: original.copy() for v in VARIANTS}
    regions = region_stability(original, same, 0.5)
    assert [(r.bbox, r.area_px) for r in regions] == [(r.bbox, r.area_px) for r in find_regions(original, 0.5)]
    assert all(r.stable_in == 4 and r.stability_pct == 100.0 and r.mean_iou == 1.0 for r in regions)
    # Shifted by 5 px: IoU 50/150; grown: 100/200; gone: 0; split in two touching parts: their union counts.
    variants = {"shift": boxes((40, 50), (5, 15, 10, 20), (20, 30, 30, 45)),
                "grow": boxes((40, 50), (5, 25, 5, 15), (20, 30, 30, 45)),
                "gone": boxes((40, 50), (20, 30, 30, 45)),
                "split": boxes((40, 50), (5, 15, 5, 9), (5, 15, 11, 15), (20, 30, 30, 45))}
    small = region_stability(original, variants, 0.5)[1]
    assert small.area_px == 100
    assert small.iou == pytest.approx({"shift": 50 / 150, "grow": 0.5, "gone": 0.0, "split": 80 / 100})
    assert small.persisted == ("grow", "split") and small.stable_in == 2
    assert region_stability(original, variants, 0.5, min_iou=0.9)[1].persisted == ()
    import declip_desktop.common.stability as stability_mod

    dense = region_stability(original, variants, 0.5)
    stability_mod._DENSE_PAIRS, saved = 0, stability_mod._DENSE_PAIRS  # the sorted table, as for noisy maps
    try:
        assert region_stability(original, variants, 0.5) == dense
    finally:
        stability_mod._DENSE_PAIRS = saved
    assert "2/4 variants" in describe_region(small, {"shift": "moved"}) and "lost: moved" in describe_region(
        small, {"shift": "moved"})
    assert region_stability(np.zeros((3, 3)), {"a": np.zeros((3, 3))}, 0.5) == []
    with pytest.raises(ValueError, match="map_to_original"):
        region_stability(original, {"a": original[:20]}, 0.5)


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (37, 23)])
def test_variants_are_real_files_of_the_stated_kind_at_edge_sizes(size):
    rgb = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    for v in VARIANTS:
        data, suffix = make_variant(rgb, v)
        img = Image.open(io.BytesIO(data))
        assert (img.format, suffix) == (("JPEG", ".jpg") if v.kind == "jpeg" else ("BMP", ".bmp"))
        if v.kind == "blur":  # lossless: exactly the blurred pixels reach the model
            import cv2

            want = cv2.GaussianBlur(rgb, (0, 0), sigmaX=1.0, borderType=cv2.BORDER_REFLECT)
            np.testing.assert_array_equal(np.asarray(img.convert("RGB")), want)
        want = (max(1, round(size[0] * 0.75)), max(1, round(size[1] * 0.75))) if v.kind == "scale" else size
        assert img.size == want
    back = map_to_original(np.ones((2, 3), np.float32) * 0.7, (4, 6))
    assert back.shape == (4, 6) and np.allclose(back, 0.7)


# ------------------------------------------------------------------ the check in a case
class BoxLocalizer:
    """A constructed localizer whose map ignores compression: a box at fixed relative coordinates."""

    def __init__(self, sha="b" * 64, hang_after_write: Path | None = None, interrupt=False, content=False):
        self.card = SimpleNamespace(name="box", sha256=sha)
        self.model_sha256, self.model_name = sha, "box"
        self.batch_size, self.device = 4, "cpu"
        self.hang_after_write = hang_after_write
        self.interrupt = interrupt
        self.content = content  # map from the pixels instead (changes under re-compression)
        self.seen: list[str] = []

    @property
    def card_snapshot(self):
        return {"name": "box", "sha256": self.model_sha256, "kind": "declip", "demo": False}

    @property
    def parameters(self):
        return {"fast": False}

    def predict(self, images):
        images = list(images)
        self.seen += [str(p) for p in images]
        if self.hang_after_write is not None:
            partial = self.hang_after_write.with_suffix(".partial")
            partial.write_text("\n".join(str(p) for p in images))
            partial.replace(self.hang_after_write)  # whole or absent: the test polls for it
            time.sleep(120)
        if self.interrupt:
            raise KeyboardInterrupt
        out = []
        for p in images:
            rgb = load_rgb(p)  # EXIF orientation applied, as the engine decodes
            h, w = rgb.shape[:2]
            if self.content:
                m = (rgb[:, :, 0].astype(np.float32) / 255.0 > 0.6).astype(np.float32) * 0.9
            else:
                m = np.zeros((h, w), np.float32)
                m[h // 4: h // 2, w // 4: w // 2] = 0.9
                m[(3 * h) // 4:, (3 * w) // 4:] = 0.8
            out.append(Pred(source=p, prob_map=m, score=float(m.max()), model_name="box",
                            model_sha256=self.model_sha256, seconds=0.0, device="cpu", error=None))
        return out


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="19-4", title="Stability", analyst="Ana")
    noise_image(tmp_path / "src" / "a.png", (64, 48), seed=1)
    noise_image(tmp_path / "src" / "b.jpg", (40, 32), seed=2, quality=95)
    rotated = Image.fromarray(np.random.default_rng(3).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": decoded 30 wide, 50 high
    rotated.save(tmp_path / "src" / "c.jpg", quality=95, exif=exif)
    c.import_paths([tmp_path / "src"])
    loc = BoxLocalizer()
    for ev in c.evidence_list():
        pred = loc.predict([c.evidence_file(ev)])[0]
        c.store_result(ev.id, model_name="box", model_sha256=loc.model_sha256,
                       parameters={"model_card": loc.card_snapshot}, score=pred.score, prob_map=pred.prob_map,
                       device="cpu", seconds=0.0, started="2026-12-02T00:00:00+00:00",
                       finished="2026-12-02T00:00:01+00:00")
    yield c
    c.close()


def scratch(case):
    return sorted(p.name for p in (case.path / ".tmp").iterdir() if p.name.startswith("stability-"))


def test_a_region_unchanged_by_the_variants_is_100_percent_stable_and_the_check_is_stored(case, monkeypatch):
    ev = case.get_evidence(1)
    path = case.evidence_file(ev)
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)
    writes = []
    real_open, real_io_open = builtins.open, io.open

    def watch(real):
        def opener(file, mode="r", *a, **k):
            if Path(str(file)) == path and any(c in mode for c in "wax+"):
                writes.append(mode)
            return real(file, mode, *a, **k)
        return opener

    monkeypatch.setattr(builtins, "open", watch(real_open))
    monkeypatch.setattr(io, "open", watch(real_io_open))
    loc = BoxLocalizer()
    check = check_stability(case, loc, 1, analyst="Bo")
    monkeypatch.undo()
    assert writes == [] and (path.read_bytes(), os.stat(path).st_mtime_ns) == before
    assert len(loc.seen) == 4 and all(".tmp" in p and "stability-" in p for p in loc.seen)
    assert scratch(case) == []  # the copies are gone
    assert len(check.regions) == 2
    for r in check.regions:
        assert r.stable_in == 4 and r.stability_pct == 100.0 and min(r.iou.values()) > 0.9
    assert check.threshold == 0.5 and check.analysis_id == case.latest_analysis(1).id
    assert [v["name"] for v in check.variants] == [v.name for v in VARIANTS]
    assert all(len(v["sha256"]) == 64 and v["score"] == pytest.approx(0.9) for v in check.variants)
    assert check.parameters["model_card"]["sha256"] == "b" * 64 and check.created_by == "Bo"
    assert latest_check(case, 1) == check and checks(case, 2) == []
    entry = [e for e in case.audit_entries() if e.action == "stability.stored"]
    assert len(entry) == 1 and entry[0].evidence_id == 1 and entry[0].object == f"stability:{check.id}"
    assert case.verify().ok


def test_an_item_with_exif_orientation_is_checked_as_it_was_analysed(case):
    ev = next(e for e in case.evidence_list() if e.original_name == "c.jpg")
    assert case.load_map(case.latest_analysis(ev.id)).shape == (50, 30)
    check = check_stability(case, BoxLocalizer(), ev.id)
    assert [r.stable_in for r in check.regions] == [4, 4]


def test_a_map_that_reads_the_pixels_loses_stability_under_recompression(case):
    loc = BoxLocalizer(content=True)
    ev = case.get_evidence(1)
    red = load_rgb(case.evidence_file(ev))[:, :, 0].astype(np.float32) / 255.0
    pred = loc.predict([case.evidence_file(ev)])[0]
    case.store_result(1, model_name="box", model_sha256=loc.model_sha256, parameters={"model_card": loc.card_snapshot},
                      score=pred.score, prob_map=pred.prob_map, device="cpu", seconds=0.0,
                      started="2026-12-02T00:00:00+00:00", finished="2026-12-02T00:00:01+00:00")
    check = check_stability(case, loc, 1, threshold=0.5)
    assert len(check.regions) == len(find_regions((red > 0.6) * 0.9, 0.5))
    assert check.regions[0].stable_in < 4  # noise pixels do not survive JPEG 75 or the blur


def test_hand_edits_of_a_stored_check_are_caught_by_verify(case):
    check = check_stability(case, BoxLocalizer(), 1)
    db = case.path / "case.sqlite"

    def verify_after(sql, *params):
        with sqlite3.connect(db) as conn:
            conn.execute(sql, params)
        return [p for p in case.verify().problems if p.object.startswith("stability:")]

    regions = json.dumps([{**r.as_dict(), "persisted": list(r.iou)} for r in check.regions])
    problems = verify_after("UPDATE stability_checks SET regions = ? WHERE id = ?", regions, check.id)
    assert [p.kind for p in problems] == ["record_changed"] and "stability check regions" in problems[0].detail
    verify_after("UPDATE stability_checks SET regions = ? WHERE id = ?",
                 json.dumps([r.as_dict() for r in check.regions], sort_keys=True), check.id)
    problems = verify_after("UPDATE stability_checks SET threshold = 0.2 WHERE id = ?", check.id)
    assert [p.kind for p in problems] == ["record_changed"] and "threshold" in problems[0].detail
    problems = verify_after("DELETE FROM stability_checks WHERE id = ?", check.id)
    assert [p.kind for p in problems] == ["record_missing"]
    problems = verify_after(
        "INSERT INTO stability_checks (id, evidence_id, analysis_id, model_sha256, threshold, variants, regions, "
        "software_version) VALUES (7, 2, 2, 'x', 0.5, '[]', '[]', 'forged')")
    assert sorted(p.kind for p in problems) == ["record_missing", "record_unexplained"]


def test_an_interrupted_check_stores_nothing_and_leaves_no_copies(case):
    with pytest.raises(KeyboardInterrupt):
        check_stability(case, BoxLocalizer(interrupt=True), 1)
    assert scratch(case) == [] and checks(case) == []
    assert not [e for e in case.audit_entries() if e.action.startswith("stability")]


def test_a_full_disk_while_writing_the_copies_is_a_clear_error_and_leaves_nothing(case, monkeypatch):
    real = Path.write_bytes

    def full(self, data):
        if "stability-" in str(self):
            real(self, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(StabilityError, match="No space left on device.*free some space"):
        check_stability(case, BoxLocalizer(), 1)
    monkeypatch.undo()
    assert scratch(case) == [] and checks(case) == []


def test_refusals_say_why_and_store_nothing(case):
    with pytest.raises(StabilityError, match="no stored result of the model"):
        check_stability(case, BoxLocalizer(sha="c" * 64), 1)
    path = case.evidence_file(case.get_evidence(2))
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes() + b"x")
    summary = check_many(case, BoxLocalizer(), [1, 2])
    assert [c.evidence_id for c in summary.checks] == [1]
    assert summary.failures[0][0] == 2 and "changed since import" in summary.failures[0][1]
    assert len(checks(case)) == 1 and scratch(case) == []


CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[3])
    from pathlib import Path
    from declip_desktop.analysis.stability import check_stability
    from declip_desktop.cases import Case
    from tests.test_stability import BoxLocalizer
    with Case.open(sys.argv[1]) as case:
        check_stability(case, BoxLocalizer(hang_after_write=Path(sys.argv[2])), 1)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_a_killed_check_leaves_no_partial_rows_and_its_copies_go_at_the_next_open(case, tmp_path):
    marker = tmp_path / "predicting"
    root = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(case.path), str(marker), root],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.stderr.read() if proc.poll() is not None else "child did not start predicting"
    assert len(marker.read_text().split()) == 4 and len(scratch(case)) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    with Case.open(case.path, read_only=True) as ro:
        assert checks(ro) == [] and not [e for e in ro.audit_entries() if e.action.startswith("stability")]
        assert ro.verify().ok
    with Case.open(case.path) as again:  # a read-write open finishes the job
        assert scratch(again) == [] and again.last_recovery["discarded"] == 1
        assert check_stability(again, BoxLocalizer(), 1).regions[0].stable_in == 4
