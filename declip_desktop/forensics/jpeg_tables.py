"""JPEG quantization tables: estimated quality and a match against known encoders.

Why it matters: the tables are chosen by the program that wrote the file. A camera's
tables differ from those of the IJG library (libjpeg / libjpeg-turbo, used by GIMP,
Pillow, OpenCV, ImageMagick, most web services); tables that equal IJG's at some
quality say "last written by software built on libjpeg", whatever the EXIF claims.

Tables are compared in natural (row-major) order, as Pillow returns them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# ITU-T T.81 Annex K example tables (luminance, chrominance), natural order.
ANNEX_K_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.int64)
ANNEX_K_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
    *([99] * 32),
], dtype=np.int64)


def ijg_table(base: np.ndarray, quality: int) -> np.ndarray:
    """The table libjpeg writes for `quality` (1…100), baseline (values clamped to 1…255)."""
    q = min(100, max(1, int(quality)))
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.clip((base * scale + 50) // 100, 1, 255)


_IJG = {q: (ijg_table(ANNEX_K_LUMA, q), ijg_table(ANNEX_K_CHROMA, q)) for q in range(1, 101)}


@dataclass(frozen=True)
class QuantizationReport:
    """What the quantization tables of one JPEG say.

    `quality`: estimated IJG-equivalent quality 1…100 of the luminance table (least-squares
    over the 100 IJG tables; meaningful for any encoder as "about as coarse as IJG q").
    `encoder`: "IJG libjpeg (standard tables)" when both tables equal IJG's at `quality`
    exactly, else None; `exact` tells which. `tables`: the raw tables (natural order)."""

    quality: int
    exact: bool
    encoder: str | None
    tables: dict[str, list[int]]
    mean_luma_step: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_quality(tables: dict[int, Any]) -> QuantizationReport | None:
    """Analyse Pillow's `image.quantization` ({table id: 64 values}); None without a luma table."""
    if not tables or 0 not in tables:
        return None
    luma = np.asarray(list(tables[0])[:64], dtype=np.int64)
    if luma.size != 64:
        return None
    chroma = np.asarray(list(tables[1])[:64], dtype=np.int64) if 1 in tables and len(tables[1]) >= 64 else None
    errors = {q: float(np.mean((np.log(luma.clip(1)) - np.log(t[0])) ** 2)) for q, t in _IJG.items()}
    best = min(errors, key=lambda q: (errors[q], -q))
    exact = bool(np.array_equal(luma, _IJG[best][0]) and (chroma is None or np.array_equal(chroma, _IJG[best][1])))
    return QuantizationReport(
        quality=int(best),
        exact=exact,
        encoder="IJG libjpeg (standard tables)" if exact else None,
        tables={str(k): [int(v) for v in list(t)[:64]] for k, t in sorted(tables.items())},
        mean_luma_step=round(float(luma.mean()), 2),
    )
