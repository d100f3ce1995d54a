"""Metadata an analyst wants to see next to an image: camera, capture time, software,
GPS, embedded text. Read from the header only (no pixel decoding), as JSON-safe values.

Why embedded text matters: some generators and editors write their settings into PNG
text chunks or the EXIF Software tag; that is evidence in itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from PIL import ExifTags, Image

_MAX_TEXT = 2000  # characters kept per text value; metadata is context, not a payload store

# Tags of the main IFD (0th) worth naming individually.
_IFD0 = {
    271: "camera_make",
    272: "camera_model",
    305: "software",
    306: "modified",
    315: "artist",
    33432: "copyright",
    270: "description",
    274: "orientation",
}
# Tags of the Exif sub-IFD.
_EXIF = {
    36867: "captured",
    36868: "digitized",
    36880: "offset_time",
    36881: "offset_time_original",
    42036: "lens_model",
    42033: "body_serial",
    42016: "image_unique_id",
    33434: "exposure_time",
    33437: "f_number",
    34855: "iso",
    37386: "focal_length",
}


def _plain(value: Any) -> Any:
    """A JSON-safe, bounded version of an EXIF/info value."""
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00").decode("utf-8", "replace")
        return text[:_MAX_TEXT] if text.isprintable() else f"<{len(value)} bytes>"
    if isinstance(value, str):
        return value.rstrip("\x00")[:_MAX_TEXT]
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value[:64]]
    try:  # IFDRational and friends
        return float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return str(value)[:_MAX_TEXT]


def _gps_decimal(gps: dict[int, Any]) -> tuple[float, float] | None:
    try:
        def deg(values: Any, ref: Any) -> float:
            d, m, s = (float(v) for v in values)
            sign = -1.0 if str(ref).upper().startswith(("S", "W")) else 1.0
            return sign * (d + m / 60.0 + s / 3600.0)

        return round(deg(gps[2], gps[1]), 7), round(deg(gps[4], gps[3]), 7)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def extract_metadata(path: str | Path | IO[bytes]) -> dict[str, Any]:
    """Header metadata of an image that has already been probed as valid."""
    meta: dict[str, Any] = {}
    with Image.open(path) as img:
        meta["format_description"] = img.format_description or img.format or ""
        meta["mode"] = img.mode
        meta["frames"] = int(getattr(img, "n_frames", 1) or 1)
        info = img.info or {}
        if "dpi" in info:
            meta["dpi"] = _plain(info["dpi"])
        meta["icc_profile"] = bool(info.get("icc_profile"))
        meta["xmp"] = bool(info.get("xmp") or info.get("XML:com.adobe.xmp"))
        # PNG tEXt/iTXt/zTXt chunks before the pixel data land in `info` as strings.
        # (`img.text` would decode the whole image to find chunks after it: too slow here.)
        text = {k: v for k, v in info.items() if isinstance(k, str) and isinstance(v, str) and k != "xmp"}
        if text and (img.format or "") == "PNG":
            meta["text"] = {k[:200]: _plain(v) for k, v in list(text.items())[:50]}
        if img.format == "PNG" and "exif" not in info:
            # PIL's PNG getexif() decodes every pixel to look for an eXIf chunk after the
            # image data; such late EXIF is rare and not worth a second full decode.
            meta["exif"] = {}
            meta["exif_present"] = False
            meta["gps_present"] = False
            return meta
        try:
            exif = img.getexif()
        except Exception as exc:  # noqa: BLE001 - a malformed EXIF block must not block the import
            meta["exif_error"] = f"EXIF block could not be read: {exc}"
            return meta
        camera: dict[str, Any] = {}
        for tag, name in _IFD0.items():
            if tag in exif:
                camera[name] = _plain(exif[tag])
        try:
            sub = exif.get_ifd(ExifTags.IFD.Exif)
        except Exception:  # noqa: BLE001 - same reason as above
            sub = {}
        for tag, name in _EXIF.items():
            if tag in sub:
                camera[name] = _plain(sub[tag])
        meta["exif"] = camera
        meta["exif_present"] = len(exif) > 0
        try:
            gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        except Exception:  # noqa: BLE001
            gps = {}
        meta["gps_present"] = bool(gps)
        if gps:
            coords = _gps_decimal(gps)
            if coords:
                meta["gps"] = {"latitude": coords[0], "longitude": coords[1]}
    return meta
