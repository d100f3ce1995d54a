"""Classical views of case evidence, cached in the case folder (derived data, never evidence).

`CASE/forensics/<id>/views/<view>-<key>.png` + `.json`: maps as 16-bit grey PNG (to 1/65535),
RGB views as 8-bit PNG; the JSON sidecar (written last) holds the parameters, the extras, the
PNG's SHA-256 and the evidence hash. The key is the evidence hash, the view, its parameters and
VIEW_VERSION, so a changed view or parameter never reads a stale entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from declip_desktop.cases import Case
from declip_desktop.common.hashing import sha256_bytes
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.examination.records import (
    Examination,
    ExaminationChanged,
    ExaminationError,
    folder_of,
    load_examination,
)
from declip_desktop.forensics.views import VIEW_VERSION, VIEWS, ViewResult, compute_view


def _view_key(evidence_sha: str, name: str, params: dict[str, Any]) -> str:
    blob = json.dumps({"sha": evidence_sha, "view": name, "params": params, "version": VIEW_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def view_context(examination: Examination | None) -> dict[str, Any]:
    """Parameters the JPEG views take from the file's own metadata (quantization table, quality)."""
    q = ((examination.metadata.get("jpeg") or {}).get("quantization") if examination else None) or {}
    ctx: dict[str, Any] = {}
    if q:
        ctx["luma_table"] = q["tables"].get("0")
        ctx["last_quality"] = q["quality"]
    return ctx


def _orientation(path: Path) -> int:
    """EXIF orientation 1…8 of the stored file (1 when absent or unreadable: as `load_rgb` shows it)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            value = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - unreadable EXIF: load_rgb does not rotate either
        return 1
    return value if 1 <= value <= 8 else 1


def _view_params(case: Case, evidence_id: int, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The JPEG views also take the file's own quantization table / quality from its examination."""
    if name not in ("double_jpeg", "jpeg_ghost"):
        return dict(params)
    try:
        exam = load_examination(case, evidence_id)
    except ExaminationChanged:
        exam = None
    ctx = view_context(exam)
    ctx.pop("last_quality" if name == "double_jpeg" else "luma_table", None)
    return {**ctx, **params}


def _cache_paths(case: Case, ev, name: str, params: dict[str, Any]) -> tuple[Path, Path]:  # noqa: ANN001
    stem = folder_of(case, ev.id) / "views" / f"{name}-{_view_key(ev.sha256, name, params)}"
    return stem.with_suffix(".png"), stem.with_suffix(".json")


def _encode_view(view: ViewResult) -> bytes:
    import cv2

    if view.kind == "rgb":
        img = np.ascontiguousarray(view.data[..., ::-1])
    else:  # 16-bit levels: the [0, 1] map to 1/65535, as probability maps are stored
        img = (np.clip(view.data, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise ExaminationError(f"the {view.name} view could not be encoded for the cache")
    return buf.tobytes()


def _decode_view(data: bytes, kind: str) -> np.ndarray:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError("not a PNG")
    if kind == "rgb":
        if img.ndim != 3:
            raise ValueError("an RGB view cache entry is not a colour image")
        return np.ascontiguousarray(img[..., ::-1])
    if img.dtype != np.uint16 or img.ndim != 2:
        raise ValueError("a map view cache entry is not 16-bit grey")
    return img.astype(np.float32) / 65535.0


def _read_cache(case: Case, ev, name: str, params: dict[str, Any]) -> ViewResult | None:  # noqa: ANN001
    png, meta = _cache_paths(case, ev, name, params)
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        data = png.read_bytes()
        if info.get("evidence_sha256") != ev.sha256 or info.get("png_sha256") != sha256_bytes(data):
            return None
        spec = VIEWS[name]
        return ViewResult(name, spec.title, spec.kind, _decode_view(data, spec.kind), spec.explanation,
                          info["parameters"], info["seconds"], info["extras"], cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: recomputed by the caller


def store_view(case: Case, evidence_id: int, view: ViewResult, params: dict[str, Any]) -> None:
    """Write a computed view into the case's view cache (PNG + JSON sidecar, the sidecar last).

    `params` are the parameters the caller asked `cached_view` for (they form the key)."""
    ev = case.get_evidence(evidence_id)
    params = _view_params(case, evidence_id, view.name, params)
    png, meta = _cache_paths(case, ev, view.name, params)
    png.parent.mkdir(parents=True, exist_ok=True)
    data = _encode_view(view)
    info = {"evidence_sha256": ev.sha256, "png_sha256": sha256_bytes(data), "parameters": view.parameters,
            "seconds": view.seconds, "extras": view.extras, "view_version": VIEW_VERSION,
            "software_version": SOFTWARE_VERSION}
    for path, blob in ((png, data), (meta, json.dumps(info, default=str).encode("utf-8"))):
        tmp = path.parent / f".{path.name}-{uuid.uuid4().hex}.partial"
        try:
            tmp.write_bytes(blob)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def cached_view(case: Case, evidence_id: int, name: str, rgb_loader: Callable[[Path], np.ndarray] | None = None,
                write_cache: bool = True, **params: Any) -> ViewResult:
    """View `name` of an evidence item, from the case's view cache or computed (and cached).

    The cache key is the evidence hash, the view, its parameters and VIEW_VERSION; a damaged
    entry (its PNG no longer matches the hash in its sidecar) is recomputed. Maps are cached as
    16-bit PNG (to 1/65535), RGB views as 8-bit PNG. `write_cache=False` leaves the writing to a
    later `store_view` (the GUI shows the view first). `rgb_loader(path) -> H×W×3 uint8` defaults
    to common.images.load_rgb."""
    if name not in VIEWS:
        raise ValueError(f"unknown view {name!r}; known views: {', '.join(VIEWS)}")
    ev = case.get_evidence(evidence_id)
    asked = dict(params)
    params = _view_params(case, evidence_id, name, params)
    hit = _read_cache(case, ev, name, params)
    if hit is not None:
        return hit
    if rgb_loader is None:
        from declip_desktop.common.images import load_rgb as rgb_loader  # noqa: N813
    path = case.evidence_file(ev)
    view = compute_view(name, rgb_loader(path), orientation=_orientation(path), **params)
    if write_cache:
        store_view(case, evidence_id, view, asked)
    return view
