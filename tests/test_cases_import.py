"""Import: copies byte-identical and read-only, metadata, duplicates, rejections with reasons."""

from __future__ import annotations

import hashlib
import os
import stat
import sys

import numpy as np
import pytest
from PIL import Image

from declip_desktop.cases import Case
from declip_desktop.common.images import HEIF_SUPPORTED
from tests.cases_util import corrupt_png, jpeg_bytes, noise_image, png_bomb_header


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="7", title="Import", analyst="Ana")
    yield c
    c.close()


def _sha(p) -> str:
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def test_common_formats_import_byte_identical_and_read_only(tmp_path, case):
    src = tmp_path / "src"
    files = [noise_image(src / "a.png"), noise_image(src / "b.jpg", seed=1, quality=90),
             noise_image(src / "c.tif", seed=2), noise_image(src / "d.webp", seed=3, lossless=True),
             noise_image(src / "e.bmp", seed=4)]
    if HEIF_SUPPORTED:
        import pillow_heif

        heic = src / "f.heic"
        pillow_heif.from_pillow(Image.new("RGB", (32, 24), "red")).save(heic, quality=90)
        files.append(heic)
    report = case.import_paths([src])
    assert not report.rejected and not report.duplicates
    by_name = {e.original_name: e for e in report.imported}
    assert set(by_name) == {f.name for f in files}
    for f in files:
        ev = by_name[f.name]
        stored = case.evidence_file(ev)
        assert stored.read_bytes() == f.read_bytes()
        assert ev.sha256 == _sha(f) and ev.md5 == hashlib.md5(f.read_bytes()).hexdigest()
        assert ev.size == f.stat().st_size and ev.original_path == str(f)
        assert not stored.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert ev.status == "queued" and ev.verdict == "not reviewed" and ev.imported_by == "Ana"
    assert (by_name["a.png"].format, by_name["a.png"].width, by_name["a.png"].height) == ("PNG", 48, 40)
    assert by_name["b.jpg"].format == "JPEG" and by_name["c.tif"].format == "TIFF"
    assert all(f.exists() for f in files)  # originals stay where they were
    imported = [e for e in case.audit_entries() if e.action == "evidence.imported"]
    assert {e.details["sha256"] for e in imported} == {_sha(f) for f in files}


def test_exif_and_embedded_text_become_metadata(tmp_path, case):
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[271], exif[272], exif[305], exif[306] = "Canon", "EOS R5", "GIMP 2.10", "2024:05:06 07:08:09"
    exif.get_ifd(0x8769)[36867] = "2024:05:01 12:00:00"
    exif.get_ifd(0x8825).update({1: "N", 2: (44.0, 25.0, 0.0), 3: "E", 4: (26.0, 6.0, 0.0)})
    img.save(tmp_path / "cam.jpg", exif=exif, quality=92)
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a photo of a harbour, Steps: 30, Sampler: DPM++")
    img.save(tmp_path / "gen.png", pnginfo=info)
    report = case.import_paths([tmp_path / "cam.jpg", tmp_path / "gen.png"])
    cam, gen = report.imported
    meta = case.get_evidence(cam.id).metadata  # round trip through the database
    assert meta["exif"]["camera_make"] == "Canon" and meta["exif"]["camera_model"] == "EOS R5"
    assert meta["exif"]["software"] == "GIMP 2.10" and meta["exif"]["captured"] == "2024:05:01 12:00:00"
    assert meta["gps_present"] is True
    assert meta["gps"] == {"latitude": pytest.approx(44.4166667), "longitude": pytest.approx(26.1)}
    assert gen.metadata["gps_present"] is False and gen.metadata["exif_present"] is False
    assert "Sampler" in gen.metadata["text"]["parameters"]


def test_duplicates_are_recognised_and_not_copied_twice(tmp_path, case):
    a = noise_image(tmp_path / "one" / "a.png")
    b = tmp_path / "two" / "copy-of-a.png"
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    first = case.import_paths([a])
    second = case.import_paths([tmp_path])  # a again (by path) and its copy under another name
    assert len(first.imported) == 1 and not second.imported
    assert sorted(p for p, _ in second.duplicates) == sorted([str(a), str(b)])
    assert {i for _, i in second.duplicates} == {first.imported[0].id}
    assert len(list((case.path / "evidence").iterdir())) == 1
    assert len(case.evidence_list()) == 1
    assert not list((case.path / ".tmp").glob("*.partial")) and not list((case.path / ".tmp").glob("*.staged"))
    assert [e.action for e in case.audit_entries()].count("evidence.duplicate") == 2
    assert len(case._store._conns) == 1  # the import's worker threads left no connection behind


def test_bad_files_are_rejected_with_plain_reasons(tmp_path, case):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "notes.txt").write_text("not a picture")
    (bad / "truncated.jpg").write_bytes(jpeg_bytes()[:-600])
    corrupt_png(bad / "corrupt.png")
    png_bomb_header(bad / "bomb.png")
    os.symlink(bad / "nowhere.jpg", bad / "dangling.jpg")
    os.mkfifo(bad / "pipe.png")
    good = noise_image(bad / "fine.png")
    report = case.import_paths([bad, tmp_path / "missing.png"])
    reasons = {os.path.basename(r.path): r.reason for r in report.rejected}
    assert [e.original_name for e in report.imported] == [good.name]
    assert "empty" in reasons["empty.jpg"]
    assert "not an image" in reasons["notes.txt"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "corrupt" in reasons["corrupt.png"] or "cannot" in reasons["corrupt.png"]
    assert "decompression bomb" in reasons["bomb.png"]
    assert "broken symbolic link" in reasons["dangling.jpg"]
    assert "not a regular file" in reasons["pipe.png"]
    assert "not found" in reasons["missing.png"]
    assert len(reasons) == 8
    assert {(r.path, r.reason) for r in case.rejections()} == {(r.path, r.reason) for r in report.rejected}
    # nothing of the bad files reached the evidence folder or was left in staging
    assert len(list((case.path / "evidence").iterdir())) == 1
    assert [p.name for p in (case.path / ".tmp").iterdir() if p.suffix != ".lock"] == []
    assert case.verify().ok


def test_pixel_limit_is_configurable(tmp_path, case):
    big = noise_image(tmp_path / "big.png", (100, 100))
    report = case.import_paths([big], max_pixels=5_000)
    assert not report.imported and "limit" in report.rejected[0].reason


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_rejected(tmp_path, case):
    p = noise_image(tmp_path / "secret.png")
    p.chmod(0)
    report = case.import_paths([p])
    assert "permission denied" in report.rejected[0].reason


def test_symlinks_to_files_are_followed_links_to_folders_are_not(tmp_path, case):
    real = noise_image(tmp_path / "real" / "a.png")
    linked = tmp_path / "scan"
    linked.mkdir()
    os.symlink(real, linked / "link.png")
    os.symlink(tmp_path / "real", linked / "folder-link")
    (linked / ".DS_Store").write_bytes(b"junk")
    report = case.import_paths([linked])
    assert [e.original_path for e in report.imported] == [str(linked / "link.png")]
    assert [os.path.basename(r.path) for r in report.rejected] == ["folder-link"]
    assert report.ignored == [str(linked / ".DS_Store")]


def test_thousand_files_with_ten_bad_ones(tmp_path, case):
    src = tmp_path / "batch"
    src.mkdir()
    for i in range(990):
        arr = np.full((8, 8, 3), i % 256, np.uint8)
        arr[0, 0] = (i // 256, 7, 9)  # every file distinct
        Image.fromarray(arr).save(src / f"img{i:04d}.png")
    for i in range(10):
        (src / f"bad{i}.jpg").write_bytes(b"" if i % 2 else b"garbage" * (i + 1))
    progress = []
    report = case.import_paths([src], progress=lambda done, total, path: progress.append((done, total)))
    assert len(report.imported) == 990
    assert sorted(os.path.basename(r.path) for r in report.rejected) == [f"bad{i}.jpg" for i in range(10)]
    assert progress[-1] == (1000, 1000) and len(progress) == 1000
    assert len(case.evidence_list()) == 990 and len(case.rejections()) == 10


def test_import_can_be_stopped_between_files(tmp_path, case):
    src = tmp_path / "many"
    for i in range(20):
        noise_image(src / f"{i:02d}.png", (16, 16), seed=i)
    seen = []
    report = case.import_paths([src], progress=lambda d, t, p: seen.append(d), should_stop=lambda: len(seen) >= 5)
    assert report.stopped and 5 <= len(report.imported) < 20
    rest = case.import_paths([src])
    assert len(rest.imported) + len(report.imported) == 20 and len(rest.duplicates) == len(report.imported)


def _variants(data: bytes, rng: np.random.Generator):
    """Truncations and byte flips at random places, as damaged files arrive."""
    for cut in rng.integers(20, len(data) - 1, 8):
        yield f"cut{cut}", data[:cut]
    for at in rng.integers(100, len(data) - 10, 8):
        flipped = bytearray(data)
        flipped[at:at + 4] = bytes(b ^ 0x5A for b in flipped[at:at + 4])
        yield f"flip{at}", bytes(flipped)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_fast_validation_rejects_whatever_a_full_decode_rejects(tmp_path, fmt):
    from declip_desktop.cases.importer import validate_image
    from declip_desktop.common.images import ImageError, probe_image

    rng = np.random.default_rng(5)
    src = noise_image(tmp_path / f"src.{fmt.lower()}", (120, 90), seed=3, fmt=fmt)
    assert validate_image(src, 10**8) == probe_image(src)
    for name, data in _variants(src.read_bytes(), rng):
        p = tmp_path / f"{name}.{fmt.lower()}"
        p.write_bytes(data)
        try:
            probe_image(p)
            full_ok = True
        except ImageError:
            full_ok = False
        verdicts = []
        for held in (None, data):  # reading the file itself, or bytes the importer already holds
            try:
                validate_image(p, 10**8, data=held)
                verdicts.append(True)
            except ImageError:
                verdicts.append(False)
        fast_ok = verdicts[0]
        assert verdicts[1] == fast_ok
        assert fast_ok <= full_ok, f"{name}: the full decode rejects it, the fast check did not"


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGBA", "LA", "I;16", "RGB"])
def test_fast_validation_accepts_every_png_pixel_layout(tmp_path, mode):
    from declip_desktop.cases.importer import validate_image
    from declip_desktop.common.images import probe_image

    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (33, 47, 3), dtype=np.uint8))
    img = img.convert(mode) if mode != "I;16" else Image.fromarray(
        np.random.default_rng(0).integers(0, 65535, (33, 47), dtype=np.uint16))
    p = tmp_path / "layout.png"
    img.save(p)
    assert validate_image(p, 10**8) == probe_image(p)


def test_size_is_what_a_viewer_shows_for_rotated_photos(tmp_path, case):
    exif = Image.Exif()
    exif[274] = 6  # rotate 90° on display
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    img.save(tmp_path / "rotated.jpg", exif=exif)
    [ev] = case.import_paths([tmp_path / "rotated.jpg"]).imported
    assert (ev.width, ev.height) == (30, 50)
    assert ev.metadata["size_in_file"] == [50, 30] and ev.metadata["exif"]["orientation"] == 6
    from declip_desktop.common.images import load_rgb

    assert load_rgb(case.evidence_file(ev)).shape[:2] == (ev.height, ev.width)
