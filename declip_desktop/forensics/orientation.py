"""EXIF orientation as array operations, to run JPEG-grid views on the pixels as stored.

The case shows images upright (EXIF orientation applied, like the DeCLIP maps), but JPEG
blocks are aligned to the stored pixels: after a 90° or 180° turn of an image whose size
is not a multiple of 8, the grid seems shifted and a crop would be "seen" that never
happened. Views that depend on the grid are computed in file orientation and turned back.
"""

from __future__ import annotations

import numpy as np


def to_display(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels → upright, as PIL's ImageOps.exif_transpose does (orientation 1…8)."""
    o = int(orientation or 1)
    if o == 2:
        out = arr[:, ::-1]
    elif o == 3:
        out = arr[::-1, ::-1]
    elif o == 4:
        out = arr[::-1]
    elif o == 5:
        out = arr.swapaxes(0, 1)
    elif o == 6:
        out = np.rot90(arr, -1)
    elif o == 7:
        out = arr.swapaxes(0, 1)[::-1, ::-1]
    elif o == 8:
        out = np.rot90(arr, 1)
    else:
        out = arr
    return np.ascontiguousarray(out)


def to_file(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Upright → stored pixels (the inverse of `to_display`)."""
    o = int(orientation or 1)
    return to_display(arr, {6: 8, 8: 6}.get(o, o))
