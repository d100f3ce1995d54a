"""Quick previews of large PNG and TIFF evidence (issue 20 item 2): a TIFF's embedded pyramid level or
every k-th strip (common.reduced_decode), the preview cached in the case for PNG & co.
(cases.previews), and the inspector showing either before the full decode replaces it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)

from declip_desktop.cases import Case, previews
from declip_desktop.common.images import load_rgb
from declip_desktop.common.reduced_decode import orient, reduced_tiff


def picture(w: int, h: int) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.float32)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    arr = np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), np.full((h, w), 90, np.float32)], axis=2)
    return arr.astype(np.uint8)


def strip_tiff(arr: np.ndarray, orientation: int | None = None, rows: int = 4) -> bytes:
    """Deflate strips of a few rows each, as most tools write them (PIL: 64 KB strips)."""
    out = io.BytesIO()
    extra = [(274, "H", 1, orientation, True)] if orientation else []
    tifffile.imwrite(out, arr, rowsperstrip=rows, compression="zlib", photometric="rgb", extratags=extra)
    return out.getvalue()


# ------------------------------------------------------------------------------ common.reduced_decode
def test_strips_give_every_kth_row_and_column_of_the_real_pixels():
    arr = picture(960, 640)
    data = strip_tiff(arr)
    out = reduced_tiff(data, 120)
    step = 8  # 960 / 120, two strips of 4 rows
    assert out is not None
    np.testing.assert_array_equal(out, arr[::step, ::step][: out.shape[0]])  # exactly the stored pixels
    assert out.shape[0] == -(-640 // step)


def test_a_pyramid_level_is_used_when_the_file_has_one(tmp_path):
    arr = picture(1024, 768)
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(arr, subifds=2, tile=(256, 256), compression="zlib")
        for level in (arr[::2, ::2], arr[::4, ::4]):
            marked = level.copy()
            marked[:8, :8] = (255, 0, 255)  # tells the levels from the full image
            tif.write(marked, subfiletype=1, tile=(256, 256), compression="zlib")
    out = reduced_tiff(path, 200)  # the smallest level with a long side ≥ 200: 1/4 (256 px)
    assert out.shape == (192, 256, 3) and tuple(out[0, 0]) == (255, 0, 255)
    out = reduced_tiff(path.read_bytes(), 400)  # bytes as well as a path; 1/2 (512 px)
    assert out.shape == (384, 512, 3)
    assert reduced_tiff(path, 2000) is None  # no level that large: nothing cheaper than the full decode


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_the_orientation_tag_is_applied_as_the_full_decode_applies_it(orientation):
    arr = picture(640, 480)
    data = strip_tiff(arr, orientation)
    full = load_rgb(data)  # what the inspector shows after the preview
    out = reduced_tiff(data, 80)
    assert out is not None and out.shape[0] / out.shape[1] == pytest.approx(full.shape[0] / full.shape[1], rel=0.05)
    small = np.asarray(Image.fromarray(full).resize((out.shape[1], out.shape[0]), Image.Resampling.BOX))
    assert np.abs(small.astype(int) - out.astype(int)).mean() < 12  # the same picture, the same way up


def test_orient_matches_pil():
    arr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    from PIL import ImageOps

    for value in range(1, 9):
        img = Image.fromarray(arr)
        exif = img.getexif()
        exif[0x0112] = value
        img.info["exif"] = exif.tobytes()
        want = np.asarray(ImageOps.exif_transpose(img))
        np.testing.assert_array_equal(orient(arr, value), want, err_msg=f"orientation {value}")


def test_no_cheap_reduction_or_bad_input_gives_none_never_an_error(tmp_path):
    arr = picture(512, 512)
    tiled = tmp_path / "tiled.tif"
    tifffile.imwrite(tiled, arr, tile=(128, 128), compression="zlib")
    assert reduced_tiff(tiled, 64) is None  # every tile is full resolution
    data = strip_tiff(picture(960, 640))
    assert reduced_tiff(data[: len(data) // 2], 120) is None  # truncated: the full decode reports it
    assert reduced_tiff(b"II*\x00 garbage", 64) is None
    assert reduced_tiff(tmp_path / "missing.tif", 64) is None


# ------------------------------------------------------------------------------ cases.previews
@pytest.fixture
def png_case(tmp_path, monkeypatch):
    monkeypatch.setattr(previews, "PREVIEW_MIN_PIXELS", 100_000)  # small images stand in for 54 MP ones
    arr = picture(1600, 1000)
    arr[400:416, 800:816] = (255, 0, 255)
    Image.fromarray(arr).save(tmp_path / "big.png")
    case = Case.create(tmp_path / "case", "P-1", "Previews", "Ana")
    case.import_paths([tmp_path / "big.png"])
    yield case
    case.close()


def test_the_thumbnail_job_also_caches_a_preview_from_the_same_decode(png_case, monkeypatch):
    ev = png_case.get_evidence(1)
    assert previews.wants_preview(ev) and previews.cached_preview(png_case, ev) is None
    decodes = []
    real = previews.load_rgb_image
    monkeypatch.setattr(previews, "load_rgb_image", lambda *a, **k: decodes.append(a) or real(*a, **k))
    thumb = previews.thumbnail_and_preview(png_case, 1)
    cached = previews.cached_preview(png_case, ev)
    assert len(decodes) == 1 and thumb is not None and cached is not None
    with Image.open(cached) as img:
        assert img.size == (1024, 640)
    with Image.open(thumb) as img:
        assert max(img.size) == 256
    assert png_case.verify().ok  # derived data: verify neither lists nor minds it
    before = png_case.evidence_file(ev).read_bytes()
    assert previews.thumbnail_and_preview(png_case, 1) == thumb and len(decodes) == 1  # once
    assert png_case.evidence_file(ev).read_bytes() == before  # the evidence is only read


def test_a_preview_of_something_else_or_into_a_read_only_case_is_never_written(png_case, tmp_path):
    ev = png_case.get_evidence(1)
    assert previews.write_preview(png_case, ev, picture(800, 500)) is None  # not the evidence's size
    assert previews.write_preview(png_case, ev, picture(800, 500), decoded_size=(1600, 999)) is None
    assert previews.cached_preview(png_case, ev) is None
    with Case.open(png_case.path, read_only=True) as ro:
        assert previews.write_preview(ro, ev, picture(1600, 1000)) is None
    assert previews.write_preview(png_case, ev, picture(800, 500), decoded_size=(1600, 1000)) is not None


# ------------------------------------------------------------------------------ the inspector
def _inspector(qtbot, tmp_path, case):
    from declip_desktop.gui.inspector import Inspector
    from declip_desktop.gui.settings import Settings

    inspector = Inspector(Settings(tmp_path / "s.ini"))
    qtbot.addWidget(inspector)
    inspector.resize(1000, 700)
    inspector.show()
    inspector.set_case(case)
    shown = []
    original = inspector._show_preview

    def spy(preview, width, height):
        original(preview, width, height)
        shown.append((preview.width(), preview.height(), inspector.view.full_image() is None))

    inspector._show_preview = spy
    return inspector, shown


def _show(qtbot, inspector, evidence_id):
    inspector.show_evidence(evidence_id)
    qtbot.waitUntil(lambda: inspector.view.full_image() is not None and not inspector.view.showing_preview(),
                    timeout=60_000)


def test_a_png_shows_its_cached_preview_first_and_the_first_view_makes_it(qtbot, tmp_path, png_case):
    from declip_desktop.gui.background import wait_for_background

    png_case.import_paths([_other_png(tmp_path)])
    inspector, shown = _inspector(qtbot, tmp_path, png_case)
    _show(qtbot, inspector, 1)  # never viewed, no thumbnail made: no preview, and one is cached now
    assert shown == [] and previews.cached_preview(png_case, png_case.get_evidence(1)) is not None
    _show(qtbot, inspector, 2)
    _show(qtbot, inspector, 1)
    assert shown[-1] == (1024, 640, True)  # the cached preview, before the real pixels
    full = inspector.view.full_image()
    assert (full.width(), full.height()) == (1600, 1000) and full.pixelColor(808, 408).red() > 230
    wait_for_background()


def _other_png(tmp_path):
    path = tmp_path / "other.png"
    Image.fromarray(picture(700, 200)).save(path)
    return path


def test_a_strip_tiff_shows_a_reduced_decode_first(qtbot, tmp_path, monkeypatch):
    from declip_desktop.gui.background import wait_for_background

    monkeypatch.setattr(previews, "PREVIEW_MIN_PIXELS", 100_000)
    arr = picture(2400, 1600)
    (tmp_path / "big.tif").write_bytes(strip_tiff(arr, rows=1))  # one-row strips: every other one is read
    with Case.create(tmp_path / "case", "T-1", "TIFF", "Ana") as case:
        case.import_paths([tmp_path / "big.tif"])
    case = Case.open(tmp_path / "case")
    inspector, shown = _inspector(qtbot, tmp_path, case)
    _show(qtbot, inspector, 1)
    assert len(shown) == 1 and shown[0][2] and 1024 <= max(shown[0][:2]) <= 2048
    wait_for_background()
    case.close()


def test_importing_in_the_window_caches_the_preview_of_a_large_png(qtbot, tmp_path, monkeypatch):
    from declip_desktop.gui.background import wait_for_background
    from declip_desktop.gui.main_window import MainWindow
    from declip_desktop.gui.settings import Settings

    monkeypatch.setattr(previews, "PREVIEW_MIN_PIXELS", 100_000)
    Image.fromarray(picture(1600, 1000)).save(tmp_path / "big.png")
    Image.fromarray(picture(300, 200)).save(tmp_path / "small.png")
    Case.create(tmp_path / "case", "W-1", "Window", "Ana").close()
    win = MainWindow(Settings(tmp_path / "s.ini"))
    qtbot.addWidget(win)
    assert win.open_case(tmp_path / "case")
    win.import_paths([str(tmp_path / "big.png"), str(tmp_path / "small.png")])
    qtbot.waitUntil(lambda: len(win.case.evidence_list()) == 2, timeout=30_000)
    big, small = sorted(win.case.evidence_list(), key=lambda e: -e.width)
    qtbot.waitUntil(lambda: previews.cached_preview(win.case, big) is not None, timeout=30_000)
    assert previews.cached_preview(win.case, small) is None  # small: decoded in full at once, no cache
    win.close()
    wait_for_background()
