"""Large images: a reduced preview first, then the real pixels in place (issue 20 item 7)."""

from __future__ import annotations

import numpy as np
from PIL import Image

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)

from declip_desktop.cases import Case
from declip_desktop.gui.background import wait_for_background
from declip_desktop.gui.inspector import Inspector
from declip_desktop.gui.inspector_parts import PREVIEW_MAX_SIDE, decode_preview
from declip_desktop.gui.settings import Settings


def big_jpeg(path, w=4000, h=2600):
    # A smooth picture encodes fast; one odd pixel block lets the test tell real pixels from the preview.
    x = np.linspace(0, 255, w, dtype=np.float32)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    arr = np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), np.full((h, w), 90, np.float32)], axis=2)
    arr = arr.astype(np.uint8)
    arr[1000:1016, 2000:2016] = (255, 0, 255)
    Image.fromarray(arr).save(path, quality=90)
    return path


def test_a_large_image_shows_a_preview_then_the_full_resolution_in_place(qtbot, tmp_path):
    src = big_jpeg(tmp_path / "big.jpg")
    with Case.create(tmp_path / "case", "B-1", "Big", "Ana") as case:
        case.import_paths([src])
    case = Case.open(tmp_path / "case")
    inspector = Inspector(Settings(tmp_path / "s.ini"))
    qtbot.addWidget(inspector)
    inspector.resize(1000, 700)
    inspector.show()
    inspector.set_case(case)
    previews = []
    original = inspector._show_preview

    def spy(preview, width, height):
        original(preview, width, height)
        previews.append((preview.width(), preview.height(), inspector.view.image_size(),
                         inspector.view.full_image() is None, inspector.loading_bar.isVisible()))

    inspector._show_preview = spy
    inspector.show_evidence(1)
    qtbot.waitUntil(lambda: inspector.view.full_image() is not None, timeout=60_000)
    assert len(previews) == 1
    pw, ph, size, no_real_pixels, busy = previews[0]
    assert max(pw, ph) <= 2 * PREVIEW_MAX_SIDE and size == (4000, 2600)  # stretched over the full size
    assert no_real_pixels and busy  # readout and loupe wait for the real pixels; the analyst sees progress
    full = inspector.view.full_image()
    assert (full.width(), full.height()) == (4000, 2600)
    colour = full.pixelColor(2008, 1008)
    assert colour.red() > 230 and colour.green() < 30  # the real pixels, not a scaled-down copy
    assert not inspector.loading_bar.isVisible() and not inspector.view.showing_preview()
    wait_for_background()
    case.close()


def test_small_or_non_jpeg_images_get_no_preview_step_and_garbage_never_raises(tmp_path):
    small = tmp_path / "small.jpg"
    Image.new("RGB", (640, 480), (10, 20, 30)).save(small)
    assert decode_preview(small.read_bytes()) is None
    big_png = tmp_path / "big.png"
    Image.new("RGB", (4000, 2600), (10, 20, 30)).save(big_png)
    assert decode_preview(big_png.read_bytes()) is None  # no fast reduced decode for PNG
    assert decode_preview(b"\xff\xd8\xff not really a jpeg") is None
