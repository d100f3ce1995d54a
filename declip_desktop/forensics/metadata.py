"""Everything an image file says about itself, as JSON-safe groups.

`read_metadata(path)` returns a dict with the groups an analyst reads in a metadata
tab — file, exif (all tags, MakerNote where exifread knows the maker), gps, xmp, iptc,
icc, png_text, thumbnail, jpeg — plus `errors`: every part that could not be read,
with the parser's reason. Hostile or broken metadata never raises: it becomes an
entry in `errors`, which `alerts` turns into an alert.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import Any

import exifread
from PIL import Image, ImageCms, IptcImagePlugin, JpegImagePlugin

from declip_desktop.forensics.gps import gps_from_exif
from declip_desktop.forensics.jpeg_tables import estimate_quality
from declip_desktop.forensics.thumbnail import compare_thumbnail
from declip_desktop.forensics.xmp import parse_xmp

# exifread logs "PNG file does not have exif data." as a warning, which Python prints on the
# analyst's terminal during every import; a missing block is already a recorded finding here.
logging.getLogger("exifread").setLevel(logging.ERROR)

MAX_VALUE_CHARS = 4000  # per EXIF/IPTC value; a longer one is cut, and says so
#: PNG text is kept whole up to this (ComfyUI workflows run to hundreds of KB; Pillow itself
#: refuses a decompressed chunk above 1 MiB).
MAX_TEXT_CHARS = 2_000_000
_MAX_TAGS = 5000

_IPTC_NAMES = {
    (1, 90): "CodedCharacterSet", (2, 5): "ObjectName", (2, 25): "Keywords", (2, 40): "SpecialInstructions",
    (2, 55): "DateCreated", (2, 60): "TimeCreated", (2, 62): "DigitalCreationDate",
    (2, 63): "DigitalCreationTime", (2, 65): "OriginatingProgram", (2, 70): "ProgramVersion",
    (2, 80): "By-line", (2, 85): "By-lineTitle", (2, 90): "City", (2, 95): "Province-State",
    (2, 101): "Country", (2, 103): "OriginalTransmissionReference", (2, 105): "Headline",
    (2, 110): "Credit", (2, 115): "Source", (2, 116): "CopyrightNotice", (2, 120): "Caption-Abstract",
    (2, 122): "Writer-Editor",
}


def _bounded(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    text = text.replace("\x00", "")
    if len(text) > limit:
        return text[:limit] + f"… [{len(text) - limit} more characters]"
    return text


def _decode(value: bytes) -> str:
    raw = value.rstrip(b"\x00")
    text = raw.decode("utf-8", "replace")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return _bounded(text) if printable >= 0.9 * max(1, len(text)) else f"<{len(value)} bytes of binary data>"


def _read_exif(data: bytes, meta: dict[str, Any], errors: list[dict[str, str]]) -> bytes | None:
    """All EXIF tags via exifread; returns the embedded JPEG thumbnail, if any."""
    try:
        tags = exifread.process_file(io.BytesIO(data), details=True, extract_thumbnail=True, strict=False)
    except Exception as exc:  # noqa: BLE001 - exifread raises many types on malformed blocks; each is a finding
        errors.append({"part": "exif", "message": f"EXIF could not be parsed ({type(exc).__name__}: {exc})"})
        return None
    thumb = tags.pop("JPEGThumbnail", None)
    tags.pop("TIFFThumbnail", None)
    exif: dict[str, str] = {}
    for key, tag in list(tags.items())[:_MAX_TAGS]:
        try:
            printable = str(tag.printable if hasattr(tag, "printable") else tag)
        except Exception as exc:  # noqa: BLE001 - a tag whose value cannot be formatted is reported, not fatal
            printable = f"<unreadable: {exc}>"
        exif[str(key)] = _bounded(printable)
    meta["exif"] = exif
    meta["gps"] = gps_from_exif(tags)
    return thumb if isinstance(thumb, (bytes, bytearray)) and thumb else None


def _count_text_chunks(data: bytes) -> int:
    """How many tEXt/zTXt/iTXt chunks the PNG declares (chunk headers only), to notice dropped ones."""
    pos, count = 8, 0
    while pos + 8 <= len(data) and count < 100_000:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            count += 1
        if kind == b"IEND":
            break
        pos += 12 + length
    return count


def _read_png_text(img: Image.Image, data: bytes, errors: list[dict[str, str]]) -> dict[str, str]:
    """tEXt/zTXt/iTXt chunks, including those after the image data (needs a full decode)."""
    # Pillow refuses a decompressed chunk above PngImagePlugin.MAX_TEXT_CHUNK (a zip-bomb guard,
    # 1 MiB by default); it is module-global, so it is left alone (views run on other threads).
    failed = False
    try:
        img.load()
        text = dict(getattr(img, "text", None) or {})
    except Exception as exc:  # noqa: BLE001 - a bomb or broken chunk is reported with its reason
        failed = True
        errors.append({"part": "png_text", "message": f"PNG text chunks could not all be read "
                                                      f"({type(exc).__name__}: {exc})"})
        text = {k: v for k, v in img.info.items() if isinstance(k, str) and isinstance(v, str)}
    declared = _count_text_chunks(data)
    if declared > len(text) and not failed:
        errors.append({"part": "png_text", "message": f"{declared - len(text)} of {declared} PNG text chunk(s) "
                                                      "could not be decoded (corrupt, oversized or duplicate keys)"})
    out = {}
    for key, value in list(text.items())[:500]:
        out[str(key)[:200]] = _bounded(str(value), MAX_TEXT_CHARS) if not isinstance(value, bytes) else _decode(value)
    return out


def _read_xmp(img: Image.Image, meta: dict[str, Any], errors: list[dict[str, str]]) -> None:
    packet = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if packet is None and img.format == "TIFF":
        packet = getattr(img, "tag_v2", {}).get(700)
    if packet is None:
        return
    try:
        meta["xmp"] = parse_xmp(packet)
    except ValueError as exc:
        errors.append({"part": "xmp", "message": str(exc)})


def _read_iptc(img: Image.Image, errors: list[dict[str, str]]) -> dict[str, str]:
    try:
        info = IptcImagePlugin.getiptcinfo(img) or {}
    except Exception as exc:  # noqa: BLE001 - malformed IPTC (APP13) is a finding
        errors.append({"part": "iptc", "message": f"IPTC could not be parsed ({type(exc).__name__}: {exc})"})
        return {}
    out: dict[str, str] = {}
    for key, value in list(info.items())[:500]:
        name = _IPTC_NAMES.get(key, f"{key[0]}:{key[1]}") if isinstance(key, tuple) else str(key)
        values = value if isinstance(value, list) else [value]
        out[name] = "; ".join(_decode(v) if isinstance(v, bytes) else str(v) for v in values)
    return out


def _read_icc(img: Image.Image, errors: list[dict[str, str]]) -> dict[str, Any] | None:
    icc = img.info.get("icc_profile")
    if not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return {"description": ImageCms.getProfileDescription(profile).strip(),
                "copyright": (ImageCms.getProfileCopyright(profile) or "").strip(), "size": len(icc)}
    except Exception as exc:  # noqa: BLE001 - a corrupt profile is a finding, not fatal
        errors.append({"part": "icc", "message": f"ICC profile could not be parsed ({exc})"})
        return {"description": None, "size": len(icc)}


def _read_jpeg(img: Image.Image, errors: list[dict[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {"progressive": bool(img.info.get("progressive") or img.info.get("progression"))}
    try:
        out["subsampling"] = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}.get(JpegImagePlugin.get_sampling(img), "other")
        report = estimate_quality(getattr(img, "quantization", None) or {})
        out["quantization"] = report.as_dict() if report else None
    except Exception as exc:  # noqa: BLE001
        errors.append({"part": "jpeg", "message": f"JPEG tables could not be read ({exc})"})
    comment = img.info.get("comment")
    if comment:
        out["comment"] = _decode(comment) if isinstance(comment, bytes) else _bounded(str(comment))
    app = [m for m, _ in getattr(img, "applist", [])]
    out["segments"] = sorted(set(app))
    adobe = img.info.get("adobe")
    if adobe is not None:
        out["adobe_app14"] = True
    return out


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Read all metadata of the image at `path` (JSON-safe; never raises for bad metadata).

    Raises OSError only when the file itself cannot be read."""
    data = Path(path).read_bytes()
    errors: list[dict[str, str]] = []
    meta: dict[str, Any] = {"file": {"size": len(data)}, "exif": {}, "gps": None, "errors": errors}
    thumb = _read_exif(data, meta, errors)
    try:
        img = Image.open(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - evidence was probed at import; report anyway
        errors.append({"part": "file", "message": f"the image could not be opened ({exc})"})
        return meta
    with img:
        meta["file"].update({"format": img.format, "width": img.width, "height": img.height, "mode": img.mode,
                             "frames": int(getattr(img, "n_frames", 1) or 1)})
        _read_xmp(img, meta, errors)
        iptc = _read_iptc(img, errors)
        if iptc:
            meta["iptc"] = iptc
        icc = _read_icc(img, errors)
        if icc:
            meta["icc"] = icc
        if img.format == "JPEG":
            meta["jpeg"] = _read_jpeg(img, errors)
        if thumb is not None:
            meta["thumbnail"] = compare_thumbnail(thumb, data)
        if img.format == "PNG":
            text = _read_png_text(img, data, errors)
            if text:
                meta["png_text"] = text
    return meta


_KEY_FIELDS = (
    ("Camera make", ("exif", "Image Make")), ("Camera model", ("exif", "Image Model")),
    ("Software", ("exif", "Image Software")), ("Captured", ("exif", "EXIF DateTimeOriginal")),
    ("Modified", ("exif", "Image DateTime")), ("Lens", ("exif", "EXIF LensModel")),
    ("Creator tool", ("xmp", "properties", "xmp:CreatorTool")),
    ("ICC profile", ("icc", "description")),
)


def key_fields(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """The few fields a report's details page lists: [(label, value)] (absent ones left out)."""
    rows: list[tuple[str, str]] = []
    for label, path in _KEY_FIELDS:
        node: Any = meta
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node:
            rows.append((label, str(node)[:200]))
    gps = meta.get("gps")
    if gps and gps.get("latitude") is not None:
        rows.append(("GPS", f"{gps['latitude']:.6f}, {gps['longitude']:.6f}"
                            + (f", {gps['altitude_m']:.1f} m" if gps.get("altitude_m") is not None else "")))
    q = (meta.get("jpeg") or {}).get("quantization")
    if q:
        rows.append(("JPEG quality", f"≈{q['quality']}" + (" (IJG standard tables)" if q["exact"] else "")))
    png = meta.get("png_text") or {}
    for key in ("parameters", "prompt", "workflow", "Software", "Comment"):
        if key in png:
            rows.append((f"PNG text '{key}'", re.sub(r"\s+", " ", png[key])[:200]))
    return rows
