"""1:1 is one image pixel per device pixel at any display scaling (issue 20 item 3).

The check runs in a child process with QT_SCALE_FACTOR=2 (a devicePixelRatio of 2 on the
offscreen platform: Qt's scale factor must be set before the application starts). A
one-pixel checkerboard at 1:1 must come back from the screen grab as exactly 600×400 device
pixels of unblended black and white; with the logical-pixel zoom of before, each image pixel
covered 2×2 device pixels (a 1200×800 image).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys
import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication
from declip_desktop.gui.image_view import ImageView, build_pyramid

app = QApplication([])
w, h = 600, 400
board = ((np.indices((h, w)).sum(axis=0) % 2) * 255).astype(np.uint8)
rgb = np.ascontiguousarray(np.repeat(board[:, :, None], 3, axis=2))
image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(QImage.Format.Format_RGB32)
view = ImageView()
view.resize(500, 350)  # logical pixels: 1000×700 device pixels, room for the whole image at 1:1
view.show()
app.processEvents()
view.set_image(build_pyramid(image))
view.actual_size()
zooms = []
view.zoomChanged.connect(zooms.append)
app.processEvents()
grab = view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
ptr = grab.constBits()
arr = np.frombuffer(ptr, np.uint8).reshape(grab.height(), grab.bytesPerLine() // 4, 4)[:, :grab.width(), :3]
white = (arr == 255).all(axis=2)
black = (arr == 0).all(axis=2)
ys, xs = np.nonzero(white)
box = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
x0, y0 = box[0], box[1]
# The grab's pixel (x0+i, y0+j) must be image pixel (i, j), exactly.
crop = white[y0:y0 + h, x0:x0 + w] | black[y0:y0 + h, x0:x0 + w]
# Image pixel (0, 0) is black, (1, 0) and (0, 1) white: the first white column and row are the origin.
match = bool((white[y0:y0 + h, x0:x0 + w] == (board == 255)).all())
transform = view.transform().m11()
view.zoom_by(2.0)
print(json.dumps({"dpr": view.device_ratio(), "grab": [grab.width(), grab.height()], "box": box,
                  "exact": bool(crop.all()), "match": match, "zoom": view.zoom(),
                  "transform": transform, "after_zoom_by_2": zooms[-1] if zooms else None}))
"""


def test_one_to_one_is_one_image_pixel_per_device_pixel_at_scale_two(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": "2"}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["dpr"] == 2.0
    assert result["grab"][0] >= 1000  # the grab is in device pixels
    x0, y0, x1, y1 = result["box"]
    assert (x1 - x0 + 1, y1 - y0 + 1) == (600, 400)  # a 600×400 image covers 600×400 device pixels
    assert result["exact"], "every device pixel of the image is pure black or white: no smoothing, no blending"
    assert result["match"], "device pixel (i, j) of the image area is image pixel (i, j)"
    assert result["transform"] == 0.5  # logical transform ½ = one device pixel per image pixel
    assert result["after_zoom_by_2"] == 2.0  # percentages count device pixels
