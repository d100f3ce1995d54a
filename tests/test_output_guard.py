"""No command can overwrite evidence or the case (issue 15, item 5).

Every writing option goes through `common.outputs`; each test performs one attack from the
issue with the real command line and checks that nothing was written and nothing changed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from tests.cases_util import noise_image
from declip_desktop.cases import Case
from declip_desktop.cases.case import DB_NAME, FOLDERS
from declip_desktop.cli import main
from declip_desktop.common import outputs
from declip_desktop.common.outputs import OutputRefused, atomic_output, check_destination, write_output


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` with its hash (links by their target name): the state to compare."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = "link:" + os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(root))] = _digest(p)
    return out


@pytest.fixture
def case_dir(tmp_path):
    src = tmp_path / "src"
    noise_image(src / "photo.jpg", seed=1, quality=90)
    noise_image(src / "other.png", seed=2)
    root = tmp_path / "case"
    with Case.create(root, number="G-1", title="guard", analyst="Ana") as case:
        case.import_paths([src])
        for ev in case.evidence_list():
            case.store_result(ev.id, model_name="m", model_sha256="a" * 64, parameters={}, score=0.5,
                              prob_map=np.full((ev.height, ev.width), 0.5, np.float32), device="cpu", seconds=1.0,
                              started="2026-01-01T00:00:00+00:00", finished="2026-01-01T00:00:01+00:00")
    return root


def test_the_writable_folder_is_one_the_case_store_makes():
    assert outputs.CASE_WRITABLE_FOLDER in FOLDERS


# ---------------------------------------------------------------- the guard itself
def test_guard_refuses_links_folders_existing_files_and_case_internals(tmp_path, case_dir):
    target = tmp_path / "victim.txt"
    target.write_text("keep me")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with pytest.raises(OutputRefused, match="symbolic link"):
        check_destination(link, force=True)
    with pytest.raises(OutputRefused, match="is a folder"):
        check_destination(tmp_path, force=True)
    with pytest.raises(OutputRefused, match="--force"):
        check_destination(target)
    assert check_destination(target, force=True) == target
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputRefused, match="pipe"):
        check_destination(tmp_path / "fifo", force=True)
    # A folder link that leads into the case is seen through (real paths are compared).
    (tmp_path / "innocent").symlink_to(case_dir / "evidence")
    with pytest.raises(OutputRefused, match="inside the case folder"):
        check_destination(tmp_path / "innocent" / "new.csv")
    for inside in (case_dir / DB_NAME, case_dir / "results" / "x.png", case_dir / ".tmp" / "x", case_dir / "x.pdf",
                   case_dir / "exports"):
        with pytest.raises(OutputRefused):
            check_destination(inside, force=True)
    assert check_destination(case_dir / "exports" / "ok.csv") == case_dir.resolve() / "exports" / "ok.csv"
    assert target.read_text() == "keep me"


def test_protected_files_are_matched_by_inode_too(tmp_path):
    original = tmp_path / "photo.jpg"
    original.write_bytes(b"evidence")
    twin = tmp_path / "twin.jpg"
    os.link(original, twin)
    with pytest.raises(OutputRefused, match="input image"):
        check_destination(twin, force=True, protect=[original])


def test_a_name_taken_while_writing_is_not_replaced_and_nothing_is_left(tmp_path):
    dest = tmp_path / "out.csv"
    with pytest.raises(OutputRefused, match="already exists|appeared while"):
        with atomic_output(dest) as tmp:
            tmp.write_bytes(b"ours")
            dest.write_bytes(b"someone else's")
    assert dest.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_link_swapped_in_is_refused_by_the_recheck(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    dest = tmp_path / "out.bin"
    with pytest.raises(OutputRefused, match="symbolic link"):
        with atomic_output(dest, force=True) as tmp:
            tmp.write_bytes(b"new")
            dest.symlink_to(victim)
    assert victim.read_bytes() == b"untouched" and dest.is_symlink()
    assert not list(tmp_path.glob(".*.part"))


def test_replacing_a_hard_link_never_changes_the_other_name(tmp_path):
    keep = tmp_path / "keep.bin"
    keep.write_bytes(b"original bytes")
    dest = tmp_path / "dest.bin"
    os.link(keep, dest)
    write_output(dest, b"replacement", force=True)
    assert keep.read_bytes() == b"original bytes" and dest.read_bytes() == b"replacement"


# ---------------------------------------------------------------- the commands (issue's attacks)
def test_report_over_the_case_database_is_refused(qapp, case_dir, capsys):
    before = _tree(case_dir)
    assert main(["case", "report", str(case_dir), "--out", str(case_dir / DB_NAME), "--force"]) == 2
    err = capsys.readouterr().err
    assert "inside the case folder" in err or "case folder itself" in err
    assert _tree(case_dir) == before  # no PDF over the database, no report kept, nothing logged


def test_report_over_an_original_through_a_link_or_an_existing_file(qapp, case_dir, tmp_path, capsys):
    original = tmp_path / "src" / "photo.jpg"
    digest = _digest(original)
    assert main(["case", "report", str(case_dir), "--out", str(original), "--force"]) == 2
    assert "evidence original" in capsys.readouterr().err and _digest(original) == digest
    link = tmp_path / "report.pdf"
    link.symlink_to(tmp_path / "src" / "other.png")
    assert main(["case", "report", str(case_dir), "--out", str(link), "--force"]) == 2
    assert "symbolic link" in capsys.readouterr().err and link.is_symlink()
    existing = tmp_path / "old.pdf"
    existing.write_bytes(b"an older report")
    assert main(["case", "report", str(case_dir), "--out", str(existing)]) == 2
    assert "--force" in capsys.readouterr().err and existing.read_bytes() == b"an older report"
    assert main(["case", "report", str(case_dir), "--out", str(existing), "--force"]) == 0
    assert existing.read_bytes().startswith(b"%PDF")


def test_export_refuses_case_internals_and_existing_files(case_dir, tmp_path, capsys):
    before = _tree(case_dir / "evidence")
    assert main(["case", "export", str(case_dir), "--out", str(case_dir / "evidence" / "x.csv")]) == 2
    assert "inside the case folder" in capsys.readouterr().err
    assert _tree(case_dir / "evidence") == before
    ok = case_dir / "exports" / "results.csv"
    assert main(["case", "export", str(case_dir), "--out", str(ok)]) == 0
    assert main(["case", "export", str(case_dir), "--out", str(ok)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["case", "export", str(case_dir), "--out", str(ok), "--force"]) == 0
    evidence = next((case_dir / "evidence").iterdir())
    link = tmp_path / "e.json"
    link.symlink_to(evidence)
    assert main(["case", "export", str(case_dir), "--out", str(link), "--force"]) == 2
    assert _tree(case_dir / "evidence") == before


def test_export_images_into_results_is_refused(qapp, case_dir, capsys):
    before = _tree(case_dir)
    assert main(["case", "export-images", str(case_dir), "--out", str(case_dir / "results")]) == 2
    assert "inside the case folder" in capsys.readouterr().err
    assert _tree(case_dir) == before


def test_export_images_refuses_existing_files_before_writing_any(qapp, case_dir, tmp_path, capsys):
    out = tmp_path / "png"
    assert main(["case", "export-images", str(case_dir), "--out", str(out)]) == 0
    first = _tree(out)
    assert len(first) == 4
    assert main(["case", "export-images", str(case_dir), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and _tree(out) == first
    assert main(["case", "export-images", str(case_dir), "--out", str(out), "--force"]) == 0


def test_analyze_maps_dir_over_the_photo_is_refused_even_with_force(tmp_path, capsys):
    photos = tmp_path / "P"
    photo = noise_image(photos / "x.png", seed=3)
    digest = _digest(photo)
    for extra in ([], ["--force"]):
        code = main(["analyze", str(photo), "--maps-dir", str(photos), "--map-format", "png16", *extra])
        assert code == 2
        assert "input image" in capsys.readouterr().err
        assert _digest(photo) == digest


def test_analyze_maps_dir_refuses_links_and_case_folders(tmp_path, case_dir, capsys):
    photo = noise_image(tmp_path / "in" / "x.jpg", seed=4)
    maps = tmp_path / "maps"
    maps.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (maps / "x.npy").symlink_to(victim)
    assert main(["analyze", str(photo), "--maps-dir", str(maps), "--force"]) == 2
    assert "symbolic link" in capsys.readouterr().err and victim.read_text() == "keep"
    assert main(["analyze", str(photo), "--maps-dir", str(case_dir / "results")]) == 2
    assert "inside the case folder" in capsys.readouterr().err


def test_eval_csv_over_a_mask_or_into_a_case_is_refused(tmp_path, case_dir, capsys):
    maps, masks = tmp_path / "maps", tmp_path / "masks"
    maps.mkdir()
    noise_image(masks / "a.png", seed=5)
    np.save(maps / "a.npy", np.zeros((40, 48), np.float32))
    digest = _digest(masks / "a.png")
    assert main(["eval", "--maps", str(maps), "--masks", str(masks), "--csv", str(masks / "a.png"), "--force"]) == 2
    assert "input image" in capsys.readouterr().err and _digest(masks / "a.png") == digest
    assert main(["eval", "--maps", str(maps), "--masks", str(masks), "--csv", str(case_dir / "r.csv")]) == 2
    assert "case folder" in capsys.readouterr().err
    assert not (case_dir / "r.csv").exists()
