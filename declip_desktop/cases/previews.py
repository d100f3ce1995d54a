"""Screen-sized previews of large evidence kept in the case's cache, for formats with no fast
reduced decode (PNG, tiled TIFF, WebP, HEIC …): the inspector shows one within a few tens of
milliseconds while the full image decodes. No Qt.

A preview is derived data, like the list thumbnails, in `results/thumbnails/` (which
`case verify` skips): `preview-<evidence id>-<first 16 hex of its SHA-256>.jpg`, at most
`PREVIEW_SIDE` pixels on its long side, orientation applied. It is made from the same decode
that makes the thumbnail (`thumbnail_and_preview`: the window runs it for the large items of
each import, in the background, and the evidence list for the rows it shows) or from the
inspector's first full decode (`write_preview`), and never from anything but the evidence file. The evidence is only read.
What the preview shows is replaced within seconds by the full decode, whose bytes are checked
against the recorded SHA-256 first, so a stale or planted preview cannot pass for the evidence
(the inspector marks it "preview" and keeps the readout and loupe off until the real pixels).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from declip_desktop.common.images import ImageError, load_rgb_image

PREVIEW_SIDE = 1024
#: Smaller images decode in full fast enough: no cached preview.
PREVIEW_MIN_PIXELS = 8_000_000
#: JPEG evidence has its own reduced decode (libjpeg's DCT scaling): no cache needed.
FAST_FORMATS = frozenset({"JPEG", "MPO"})


def wants_preview(evidence: Any) -> bool:
    """Whether an item is large and of a format without a fast reduced decode."""
    pixels = (evidence.width or 0) * (evidence.height or 0)
    return pixels >= PREVIEW_MIN_PIXELS and (evidence.format or "").upper() not in FAST_FORMATS


def preview_path(case: Any, evidence: Any) -> Path:
    from declip_desktop.cases.evidence_store import THUMBNAIL_DIR

    return Path(case.path) / THUMBNAIL_DIR / f"preview-{evidence.id}-{evidence.sha256[:16]}.jpg"


def cached_preview(case: Any, evidence: Any) -> Path | None:
    """The cached preview's path if one was made for this item (and this content), else None."""
    path = preview_path(case, evidence)
    return path if wants_preview(evidence) and path.is_file() and not path.is_symlink() else None


def write_preview(case: Any, evidence: Any, rgb: np.ndarray | Image.Image,
                  decoded_size: tuple[int, int] | None = None) -> Path | None:
    """Reduce `rgb` (the decoded evidence, upright: H×W×3 uint8 or a PIL image, or a reduction of
    it, `decoded_size` then being the (width, height) of the full decode it came from) to a preview
    and store it; None when the item needs none or the write fails (a full disk: a cache is not
    worth failing for, and leaves nothing behind)."""
    if not wants_preview(evidence) or getattr(case, "read_only", False):
        return None
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.ascontiguousarray(rgb))
    if (decoded_size or image.size) != (evidence.width, evidence.height):
        return None  # not the evidence as a viewer shows it: never cache it under its name
    image = image.copy() if image is rgb else image
    image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    out = preview_path(case, evidence)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        image.convert("RGB").save(tmp, "JPEG", quality=88)
        os.replace(tmp, out)
    except OSError:
        tmp.unlink(missing_ok=True)
        return None
    return out


def thumbnail_and_preview(case: Any, evidence_id: int) -> Path | None:
    """The list thumbnail (`Case.thumbnail_file`), and for a large PNG/TIFF/… also its preview,
    from one decode. Returns the thumbnail's path (None if the image cannot be decoded)."""
    ev = case.get_evidence(evidence_id)
    if not wants_preview(ev) or cached_preview(case, ev) is not None:
        return case.thumbnail_file(evidence_id)
    try:
        image = load_rgb_image(case.evidence_file(ev))
    except (ImageError, OSError):
        return case.thumbnail_file(evidence_id)  # it says None for an undecodable file
    write_preview(case, ev, image)
    from declip_desktop.cases.evidence_store import THUMBNAIL_DIR, THUMBNAIL_SIZE

    thumb = Path(case.path) / THUMBNAIL_DIR / f"{ev.id}.jpg"
    if not thumb.exists():  # the same name and size `thumbnail_file` writes, without decoding again
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS, reducing_gap=2.0)
        tmp = thumb.with_name(f".{thumb.name}.{uuid.uuid4().hex}.tmp")
        try:
            image.save(tmp, "JPEG", quality=85)
            os.replace(tmp, thumb)
        except OSError:
            tmp.unlink(missing_ok=True)
    return case.thumbnail_file(evidence_id)


__all__ = ["PREVIEW_MIN_PIXELS", "PREVIEW_SIDE", "cached_preview", "preview_path", "thumbnail_and_preview",
           "wants_preview", "write_preview"]
