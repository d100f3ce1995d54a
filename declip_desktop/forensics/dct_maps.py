"""JPEG views from 8×8 DCT statistics: the block grid and a double-compression map.

Grid: JPEG leaves faint edges every 8 pixels. Where the grid is found at another
offset than in the rest of the image, that region came from another JPEG (or was
moved); a whole-image grid away from (0, 0) means the picture was cropped after it
was compressed.

Double compression (after Lin et al., "Fast, automatic and fine-grained tampered JPEG
image detection via DCT coefficient analysis", Pattern Recognition 2009): a JPEG saved
twice has periodic gaps in the histograms of its DCT coefficients. Blocks whose
coefficients fall where the double-compressed histogram is dense fit the "compressed
twice" history; blocks that do not (e.g. pasted from a picture compressed only once)
get a high value.
"""

from __future__ import annotations

import numpy as np

from declip_desktop.forensics.recompress import luminance

GRID_TILE = 64
#: Zig-zag positions 1…N_COEFFS (natural-order indices) used for the double-compression map.
_ZIGZAG = [1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5]
N_COEFFS = 10
_MAX_PERIOD = 20
_RANGE = 100


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return m


_D = _dct_matrix()
#: Row (u·8 + v) maps a flattened 8×8 block to its DCT coefficient (u, v): one matrix product.
_BASIS = np.kron(_D, _D).astype(np.float32)


def block_dct(y: np.ndarray, offset: tuple[int, int] = (0, 0), coefficients: list[int] | None = None) -> np.ndarray:
    """DCT-II (orthonormal, as JPEG) of the 8×8 blocks of luma `y` (uint8 H×W) starting at
    `offset` (dx, dy), level-shifted by 128. Returns float32 (H/8)×(W/8)×K: all 64 coefficients
    in natural order, or only those listed in `coefficients` (natural-order indices)."""
    dx, dy = offset
    h, w = (y.shape[0] - dy) // 8 * 8, (y.shape[1] - dx) // 8 * 8
    blocks = y[dy:dy + h, dx:dx + w].astype(np.float32) - 128.0
    flat = blocks.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
    basis = _BASIS if coefficients is None else _BASIS[coefficients]
    return (flat @ basis.T).reshape(h // 8, w // 8, -1)


def grid_alignment(rgb: np.ndarray, tile: int = GRID_TILE) -> tuple[np.ndarray, dict]:
    """Local JPEG grid offset vs the image's own.

    Per tile, the energy of horizontal/vertical pixel steps per column/row phase (mod 8)
    gives the local grid offset and its strength (peak over median). Map (float32 H×W):
    0 where the tile agrees with the global grid or shows none, up to 1 where a clear grid
    sits at another offset. extras: grid_offset (x, y) of the whole image, grid_strength."""
    y = luminance(rgb).astype(np.float32)
    h, w = y.shape
    dxs = np.abs(np.diff(y, axis=1))  # step between column j and j+1, stored at j
    dys = np.abs(np.diff(y, axis=0))
    th, tw = max(1, (h - 1) // tile), max(1, (w - 1) // tile)
    ch, cw = th * tile, tw * tile
    if ch > h - 1 or cw > w - 1 or tile % 8:
        zero = np.zeros((h, w), np.float32)
        return zero, {"grid_offset": None, "grid_strength": 0.0, "note": "image too small for a grid analysis"}
    ex = dxs[:ch, :cw].reshape(th, tile, tw, tile // 8, 8).sum(axis=(1, 3))  # th×tw×8 column phases
    ey = dys[:ch, :cw].reshape(th, tile // 8, 8, tw, tile).sum(axis=(1, 4)).transpose(0, 2, 1)
    gx, gy = ex.sum(axis=(0, 1)), ey.sum(axis=(0, 1))

    def strength(e: np.ndarray) -> np.ndarray:
        return (e.max(axis=-1) - np.median(e, axis=-1)) / (np.median(e, axis=-1) + 1e-6)

    # A block edge lies between column 8k−1 and 8k: the step at phase 7 (stored at j = 8k−1).
    off_x, off_y = (int(np.argmax(gx)) + 1) % 8, (int(np.argmax(gy)) + 1) % 8
    g_strength = float(min(strength(gx[None]), strength(gy[None]))[0])
    local_x, local_y = (np.argmax(ex, axis=2) + 1) % 8, (np.argmax(ey, axis=2) + 1) % 8
    s = np.minimum(strength(ex), strength(ey))
    differs = (local_x != off_x) | (local_y != off_y)
    tile_map = np.where(differs, np.clip(s / 0.5, 0.0, 1.0), 0.0).astype(np.float32)
    out = np.zeros((h, w), np.float32)
    out[:ch, :cw] = np.kron(tile_map, np.ones((tile, tile), np.float32))
    return out, {"grid_offset": [off_x, off_y], "grid_strength": round(g_strength, 3),
                 "cropped_after_compression": bool(g_strength > 0.3 and (off_x, off_y) != (0, 0))}


def _period(hist: np.ndarray) -> int:
    """Dominant period (bins) of a coefficient histogram; 1 = none (single compression)."""
    if hist.sum() < 200:
        return 1
    spectrum = np.abs(np.fft.rfft(hist - hist.mean()))
    n = hist.size
    best, best_val = 1, 0.0
    for p in range(2, _MAX_PERIOD + 1):
        k = n / p
        lo, hi = int(np.floor(k)), int(np.ceil(k))
        val = max(spectrum[lo] if lo < spectrum.size else 0, spectrum[hi] if hi < spectrum.size else 0)
        if val > best_val:
            best, best_val = p, val
    noise = np.median(spectrum[1:]) + 1e-9
    return best if best_val > 6 * noise else 1


def double_compression(rgb: np.ndarray, luma_table: list[int] | None) -> tuple[np.ndarray, dict]:
    """Per-8×8-block likelihood that a block does NOT share the image's double-JPEG history.

    `luma_table`: the file's luminance quantization table (64 values, natural order), from
    the metadata; without it (not a JPEG) the map is all zeros and extras say why.
    Returns (map float32 H×W in [0, 1], extras {periods: per coefficient, informative: how many
    coefficients show double-compression periodicity})."""
    y = luminance(rgb)
    h, w = y.shape
    if not luma_table or len(luma_table) < 64:
        return np.zeros((h, w), np.float32), {"periods": [], "informative": 0,
                                             "note": "not a JPEG: no quantization table"}
    used = _ZIGZAG[:N_COEFFS]
    coef = block_dct(y, coefficients=used)
    bh, bw = coef.shape[:2]
    q = np.asarray(luma_table[:64], np.float32)
    llr = np.zeros((bh, bw), np.float64)
    periods = []
    for pos, idx in enumerate(used):
        k = np.rint(coef[..., pos] / q[idx]).astype(np.int64)
        kc = np.clip(k, -_RANGE, _RANGE) + _RANGE
        hist = np.bincount(kc.ravel(), minlength=2 * _RANGE + 1).astype(np.float64)
        # The zero bin is inflated by flat areas in any image: leave it out of the period search.
        search = hist.copy()
        search[_RANGE] = (search[_RANGE - 1] + search[_RANGE + 1]) / 2
        p = _period(search)
        periods.append(p)
        if p == 1:
            continue
        group = (np.arange(hist.size) - _RANGE) // p
        sums = np.bincount(group - group.min(), weights=hist)
        p_unaltered = hist / np.maximum(sums[group - group.min()], 1.0)
        p_t = 1.0 / p
        pu = p_unaltered[kc]
        nonzero = k != 0  # zero coefficients carry no evidence either way
        llr += np.where(nonzero, np.log(p_t + 1e-3) - np.log(pu + 1e-3), 0.0)
    informative = sum(1 for p in periods if p > 1)
    block_map = (1.0 / (1.0 + np.exp(-llr))).astype(np.float32) if informative else np.zeros((bh, bw), np.float32)
    if informative:
        block_map[np.isclose(llr, 0.0)] = 0.0  # blocks without evidence are not flagged
    out = np.zeros((h, w), np.float32)
    out[:bh * 8, :bw * 8] = np.kron(block_map, np.ones((8, 8), np.float32))
    return out, {"periods": periods, "informative": informative}
