"""Analyst annotations in the case store, the command line and the report (issue 18 item 6).

Attacks: shapes outside the image, NaN, too few or collinear lasso points; the annotations table
edited, emptied or added to by hand behind the audit trail (verify must name each); an entry of
the trail removed; the report must print what the case holds.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess

import numpy as np
import pypdf
import pytest

from declip_desktop.cases import Case
from declip_desktop.cases.annotations import (
    AnnotationError,
    add_annotation,
    annotations,
    delete_annotation,
    map_statistics,
    relabel_annotation,
    restore_annotation,
)
from declip_desktop.cli import FATAL, OK, main
from declip_desktop.common.shapes import Shape, map_stats
from tests.annotation_util import HEIGHT, WIDTH, analysed_case, ramp_map


@pytest.fixture
def case_dir(tmp_path):
    return analysed_case(tmp_path)


def problems(case_dir):
    with Case.open(case_dir, read_only=True) as case:
        return [p.detail for p in case.verify().problems]


@pytest.mark.parametrize(("kind", "geometry", "why"), [
    ("box", {"box": [100, 0, 21, 10]}, "reaches outside the 120×90 image"),
    ("box", {"box": [-1, 0, 10, 10]}, "reaches outside"),
    ("box", {"box": [0, 0, 0, 10]}, "is empty"),
    ("box", {"box": [0, 0, float("nan"), 10]}, "finite numbers"),
    ("box", {"box": [0.5, 0, 10, 10]}, "whole image pixels"),
    ("box", {"box": [0, 0, 10]}, "four numbers"),
    ("lasso", {"points": [[0, 0], [10, 10]]}, "at least 3 distinct points"),
    ("lasso", {"points": [[0, 0], [10, 10], [0, 0]]}, "at least 3 distinct points"),
    ("lasso", {"points": [[0, 0], [10, 10], [20, 20]]}, "encloses no area"),
    ("lasso", {"points": [[0, 0], [121, 10], [20, 20]]}, "outside the 120×90 image"),
    ("lasso", {"points": [[0, 0], [float("inf"), 10], [20, 20]]}, "finite numbers"),
    ("ellipse", {"box": [0, 0, 5, 5]}, "unknown annotation kind"),
])
def test_bad_shapes_are_refused_with_what_to_fix_and_nothing_is_stored(case_dir, kind, geometry, why):
    with Case.open(case_dir) as case:
        before = len(case.audit_entries())
        with pytest.raises(AnnotationError, match=re.escape(why)):
            add_annotation(case, 1, kind, geometry, "label")
        assert annotations(case, include_deleted=True) == [] and len(case.audit_entries()) == before


def test_label_and_evidence_are_checked(case_dir):
    with Case.open(case_dir) as case:
        with pytest.raises(AnnotationError, match="needs a label"):
            add_annotation(case, 1, "box", {"box": [0, 0, 5, 5]}, "   ")
        with pytest.raises(AnnotationError, match="control characters"):
            add_annotation(case, 1, "box", {"box": [0, 0, 5, 5]}, "a\x1bb")
        with pytest.raises(AnnotationError, match="no evidence with id 9"):
            add_annotation(case, 9, "box", {"box": [0, 0, 5, 5]}, "x")


def test_the_map_statistics_inside_a_box_and_a_lasso_are_the_pixels_inside():
    ramp = ramp_map()
    box = map_stats(Shape("box", box=(10, 20, 30, 20)), ramp, WIDTH, HEIGHT)
    assert (box.pixels, box.mean, box.max) == (600, pytest.approx(ramp[20:40, 10:40].mean()), ramp[0, 39])
    # A triangle with pixel edges on integers: a pixel is inside when its centre is.
    tri = Shape("lasso", points=((0.0, 0.0), (8.0, 0.0), (0.0, 8.0)))
    _x0, _y0, mask = tri.pixel_mask(WIDTH, HEIGHT)
    centres = np.add.outer(np.arange(8) + 0.5, np.arange(8) + 0.5)  # x + y of each centre
    assert mask.shape == (8, 8) and (mask == (centres < 8)).all() and tri.area_px() == 32.0
    # A map stored at half the image's size is read at the shape scaled to it.
    half = map_stats(Shape("box", box=(10, 20, 30, 20)), ramp[::2, ::2], WIDTH, HEIGHT)
    assert half.pixels == 150 and half.max == pytest.approx(ramp[0, ::2][19])


def test_every_change_is_an_audit_entry_and_a_hand_edit_of_the_table_is_caught(case_dir):
    with Case.open(case_dir, analyst="Ana") as case:
        box = add_annotation(case, 1, "box", {"box": [10, 20, 30, 20]}, "cloned sky", "left of the mast")
        lasso = add_annotation(case, 1, "lasso", [[20, 10], [80, 10.333], [50, 70]], "inpainted")
        relabel_annotation(case, box.id, label="cloned cloud")
        delete_annotation(case, lasso.id)
        restore_annotation(case, lasso.id)
        delete_annotation(case, lasso.id)
        with pytest.raises(AnnotationError, match="was deleted by Ana"):
            delete_annotation(case, lasso.id)
        assert [a.label for a in annotations(case, 1)] == ["cloned cloud"]
        assert annotations(case, 1, include_deleted=True)[1].geometry == {
            "points": [[20.0, 10.0], [80.0, 10.33], [50.0, 70.0]]}
        actions = [e.action for e in case.audit_entries([1]) if e.action.startswith("annotation.")]
        assert actions == ["annotation.added", "annotation.added", "annotation.relabelled", "annotation.deleted",
                           "annotation.restored", "annotation.deleted"]
    assert problems(case_dir) == []

    db = case_dir / "case.sqlite"
    with sqlite3.connect(db) as conn:  # three hand edits behind the trail's back
        conn.execute("UPDATE annotations SET label = 'nothing here', geometry = '{\"box\":[0,0,1,1]}' WHERE id = ?",
                     (box.id,))
        conn.execute("UPDATE annotations SET deleted_at = NULL, deleted_by = NULL WHERE id = ?", (lasso.id,))
        conn.execute("INSERT INTO annotations (evidence_id, kind, geometry, label, note, author, created_at) "
                     "VALUES (1, 'box', '{\"box\":[1,1,2,2]}', 'planted', '', 'Mallory', '2026-12-01T00:00:00+00:00')")
    found = problems(case_dir)
    joined = "\n".join(found)
    assert "photo_1.png (evidence 1, annotation 1 'cloned cloud'): label 'nothing here' in the database, " \
           "'cloned cloud' in the audit entry" in joined
    assert "annotation 1 'cloned cloud'): geometry" in joined
    assert "annotation 2 'inpainted'): deleted at empty in the database" in joined
    assert "annotation 3 'planted'): in the database but never drawn according to the audit trail" in joined
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM annotations")
    assert sum("missing from the database" in p for p in problems(case_dir)) == 2


def test_an_entry_removed_from_the_trail_is_caught(case_dir):
    with Case.open(case_dir) as case:
        a = add_annotation(case, 1, "box", {"box": [0, 0, 4, 4]}, "x")
        relabel_annotation(case, a.id, label="y")
        relabel_annotation(case, a.id, label="z")
    with sqlite3.connect(case_dir / "case.sqlite") as conn:  # the middle relabel's entry is rewritten away
        conn.execute("UPDATE audit SET details = replace(details, '\"old\":{\"label\":\"y\"}', '\"old\":{\"label\":\"q\"}') "
                     "WHERE action = 'annotation.relabelled' AND details LIKE '%\"new\":{\"label\":\"z\"}%'")
    found = "\n".join(problems(case_dir))
    assert "edited after it was written" in found  # the chain breaks
    assert "changed its label from 'q', but the trail before it set 'y'" in found  # and the replay says what


def test_cli_round_trip_add_list_relabel_delete_with_json(case_dir, capsys):
    d = str(case_dir)
    assert main(["case", "annotate", d, "1", "--box", "10,20,30,20", "--label", "cloned sky", "--json"]) == OK
    added = json.loads(capsys.readouterr().out)
    assert added["geometry"] == {"box": [10, 20, 30, 20]} and added["label"] == "cloned sky"
    ramp = ramp_map()
    assert added["map"]["mean"] == pytest.approx(ramp[20:40, 10:40].mean(), abs=1e-4)  # 16-bit stored map
    assert main(["case", "annotate", d, "1", "--polygon", "20,10,80,10,50,70", "--label", "inpainted",
                 "--note", "edge"]) == OK
    assert "Added annotation 2" in capsys.readouterr().out
    assert main(["case", "annotate", d, "1", "--relabel", "1", "--label", "cloned cloud"]) == OK
    assert main(["case", "annotate", d, "1", "--delete", "2"]) == OK
    capsys.readouterr()
    assert main(["case", "annotate", d, "1", "--json"]) == OK
    listed = json.loads(capsys.readouterr().out)
    assert [(a["id"], a["label"]) for a in listed] == [(1, "cloned cloud")]
    assert main(["case", "annotate", d, "1", "--deleted"]) == OK
    out = capsys.readouterr().out
    assert "#2 lasso of 3 points" in out and "[deleted by Ana" in out and "note: edge" in out
    # Clear errors, exit 2, nothing changed.
    for argv, why in ((["--box", "0,0,500,5", "--label", "x"], "reaches outside"),
                      (["--box", "0,0,5,5"], "needs --label"),
                      (["--polygon", "1,2,3", "--label", "x"], "odd count"),
                      (["--box", "0,0,5,5", "--delete", "1", "--label", "x"], "give one of"),
                      (["--delete", "7"], "no annotation with id 7")):
        assert main(["case", "annotate", d, "1", *argv]) == FATAL
        assert why in capsys.readouterr().err
    assert problems(case_dir) == []


def test_the_cli_refuses_an_item_whose_file_changed_at_the_same_size(case_dir, capsys):
    with Case.open(case_dir, read_only=True) as case:
        path = case.evidence_file(case.get_evidence(1))
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF  # same size: only the hash can tell
    path.write_bytes(bytes(data))
    assert main(["case", "annotate", str(case_dir), "1", "--box", "0,0,5,5", "--label", "x"]) == FATAL
    assert "no longer has the SHA-256 recorded at import" in capsys.readouterr().err
    assert stored_count(case_dir) == 0


def stored_count(case_dir):
    with Case.open(case_dir, read_only=True) as case:
        return len(annotations(case, include_deleted=True))


def test_listing_reads_only_and_survives_a_damaged_map(case_dir, capsys):
    with Case.open(case_dir) as case:
        add_annotation(case, 1, "box", {"box": [0, 0, 4, 4]}, "x")
        map_path = case.map_file(case.latest_analysis(1))
    map_path.write_bytes(b"not a png")
    before = (case_dir / "case.sqlite").stat().st_mtime_ns
    assert main(["case", "annotate", str(case_dir), "1"]) == OK
    captured = capsys.readouterr()
    assert "#1 box 0, 0  4×4" in captured.out and "statistics are left out" in captured.err
    assert (case_dir / "case.sqlite").stat().st_mtime_ns == before


def test_the_report_draws_and_lists_the_annotations_in_both_layouts(case_dir, tmp_path, qapp):
    from declip_desktop.reports import build_report

    with Case.open(case_dir, analyst="Ana") as case:
        add_annotation(case, 1, "box", {"box": [10, 20, 30, 20]}, "cloned sky")
        add_annotation(case, 1, "lasso", [[60, 10], [110, 10], [85, 80]], "inpainted roof")
        expected = map_statistics(case, case.get_evidence(1), annotations(case, 1))
        full = build_report(case, tmp_path / "full.pdf")
        compact = build_report(case, tmp_path / "compact.pdf", layout="compact")
    text = " ".join(re.sub(r"\s+", " ", p.extract_text() or "") for p in pypdf.PdfReader(str(full.path)).pages)
    assert "Analyst's annotations" in text
    assert "cloned sky" in text and "inpainted roof" in text
    assert "10, 20, 30 × 20" in text and "600 (5.56 %)" in text
    assert f"mean {expected[0].mean:.3f}, max {expected[0].max:.3f}" in text
    assert f"mean {expected[1].mean:.3f}, max {expected[1].max:.3f}" in text
    assert "annotation.added" in text  # and the audit appendix has the entries
    ctext = " ".join(re.sub(r"\s+", " ", p.extract_text() or "") for p in pypdf.PdfReader(str(compact.path)).pages)
    assert "A1 cloned sky (Ana): 10, 20 30×20" in ctext and "A2 inpainted roof" in ctext
    # Drawn on the image page: the annotation colour is on the rendered page.
    page = next(i for i, p in enumerate(pypdf.PdfReader(str(full.path)).pages)
                if "Heat overlay" in re.sub(r"\s+", " ", p.extract_text() or ""))
    import pypdfium2  # a pip-installed renderer: a fresh machine has no poppler-utils (pdftoppm)

    document = pypdfium2.PdfDocument(str(full.path))
    try:
        rendered = document[page].render(scale=60 / 72).to_pil()
    finally:
        document.close()
    rgb = np.asarray(rendered.convert("RGB")).astype(int)
    green = (np.abs(rgb - [0, 200, 100]) < 30).all(axis=2)  # reports.annotation_pages.ANNOTATION_COLOR
    assert green.sum() > 400  # outlines and tags (without them, the noise photo has ~50 such pixels)


def test_a_full_disk_stores_no_half_annotation_and_the_trail_still_matches(tmp_path):
    from tests.test_disk_full import _fill, _mount

    disk = tmp_path / "disk"
    if not _mount(disk, "4m"):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        case_dir = analysed_case(disk)
        from declip_desktop.common.outputs import DiskFullError

        stored = 0
        with Case.open(case_dir) as case, pytest.raises(DiskFullError):
            _fill(disk, leave=8192)  # opened first: opening wants room for the log to grow
            for i in range(2000):  # each entry holds a 4000-character note: the disk fills
                add_annotation(case, 1, "box", {"box": [i % 100, 0, 5, 5]}, f"n{i}", "x" * 4000)
                stored += 1
        for filler in disk.glob("filler-*"):
            filler.unlink()
        with Case.open(case_dir) as case:
            assert len(annotations(case, 1)) == stored
            assert case.check_records() == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True, timeout=20)
