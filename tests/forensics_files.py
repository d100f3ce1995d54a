"""Crafted image files for the forensics tests: textures, splices, clones and lying metadata."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
from PIL import Image, PngImagePlugin


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth colour field plus fine grain (uint8 H×W×3), like a photo's tone and sensor noise."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.random((max(1, h // 16), max(1, w // 16), 3)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_CUBIC)
    return (np.clip(base * 0.7 + 0.15 + rng.normal(0, 0.06, (h, w, 3)), 0, 1) * 255).astype(np.uint8)


def scene(h: int, w: int, seed: int) -> np.ndarray:
    """Many small shapes over a smooth field: keypoint-rich, like a cluttered photo."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.random((h // 32, w // 32, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img = (np.clip(img, 0, 1) * 160 + 40).astype(np.uint8)
    for _ in range(h * w // 500):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.circle(img, (x, y), int(rng.integers(3, 14)), c, -1, cv2.LINE_AA)
        elif kind == 1:
            cv2.rectangle(img, (x, y), (x + int(rng.integers(4, 20)), y + int(rng.integers(4, 20))), c, -1)
        else:
            cv2.line(img, (x, y), (x + int(rng.integers(-25, 25)), y + int(rng.integers(-25, 25))), c, 2, cv2.LINE_AA)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def jpeg_bytes(rgb: np.ndarray, quality: int, exif: bytes | None = None) -> bytes:
    buf = io.BytesIO()
    kwargs = {"exif": exif} if exif else {}
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, **kwargs)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# --- a minimal EXIF (TIFF) writer: Pillow cannot write an IFD1 thumbnail -----------------------

_ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED = 2, 3, 4, 5, 7


def _entry_bytes(typ: int, value) -> tuple[bytes, int]:
    if typ == _UNDEFINED:
        return bytes(value), len(value)
    if typ == _ASCII:
        data = value.encode() + b"\x00"
        return data, len(data)
    if typ == _SHORT:
        vals = value if isinstance(value, (list, tuple)) else [value]
        return b"".join(struct.pack("<H", v) for v in vals), len(vals)
    if typ == _LONG:
        vals = value if isinstance(value, (list, tuple)) else [value]
        return b"".join(struct.pack("<I", v) for v in vals), len(vals)
    vals = value  # list of (num, den)
    return b"".join(struct.pack("<II", n, d) for n, d in vals), len(vals)


def _ifd(entries: list[tuple[int, int, object]], start: int, next_ifd: int = 0) -> tuple[bytes, bytes]:
    """One IFD at offset `start` (from the TIFF header): (directory bytes, its data area)."""
    entries = sorted(entries, key=lambda e: e[0])
    dir_size = 2 + 12 * len(entries) + 4
    data_area = b""
    out = struct.pack("<H", len(entries))
    for tag, typ, value in entries:
        payload, count = _entry_bytes(typ, value)
        if len(payload) <= 4:
            out += struct.pack("<HHI", tag, typ, count) + payload.ljust(4, b"\x00")
        else:
            offset = start + dir_size + len(data_area)
            out += struct.pack("<HHII", tag, typ, count, offset)
            data_area += payload + (b"\x00" if len(payload) % 2 else b"")
    return out + struct.pack("<I", next_ifd), data_area


def build_exif(ifd0: list, exif_ifd: list | None = None, gps_ifd: list | None = None,
               thumbnail: bytes | None = None) -> bytes:
    """EXIF block ("Exif\\0\\0" + little-endian TIFF) with IFD0, Exif/GPS sub-IFDs and an IFD1 JPEG thumbnail.

    IFD entries: (tag, type, value) with type 2 ASCII, 3 SHORT, 4 LONG, 5 RATIONAL [(num, den)], 7 UNDEFINED bytes."""
    header = b"II*\x00" + struct.pack("<I", 8)
    # Lay out: IFD0, its data, Exif IFD, GPS IFD, IFD1, thumbnail. Pointers need final offsets,
    # so build twice: first with placeholder pointers to learn the sizes.
    def layout(ptrs: dict[str, int]) -> tuple[bytes, dict[str, int]]:
        pos = 8
        e0 = list(ifd0)
        if exif_ifd is not None:
            e0.append((0x8769, _LONG, ptrs.get("exif", 0)))
        if gps_ifd is not None:
            e0.append((0x8825, _LONG, ptrs.get("gps", 0)))
        d0, a0 = _ifd(e0, pos, ptrs.get("ifd1", 0) if thumbnail else 0)
        blob = d0 + a0
        pos += len(blob)
        found = {}
        for name, entries in (("exif", exif_ifd), ("gps", gps_ifd)):
            if entries is None:
                continue
            found[name] = pos
            d, a = _ifd(list(entries), pos)
            blob += d + a
            pos += len(d) + len(a)
        if thumbnail:
            found["ifd1"] = pos
            e1 = [(0x0103, _SHORT, 6), (0x0201, _LONG, ptrs.get("thumb", 0)), (0x0202, _LONG, len(thumbnail))]
            d1, a1 = _ifd(e1, pos)
            blob += d1 + a1
            pos += len(d1) + len(a1)
            found["thumb"] = pos
            blob += thumbnail
        return blob, found

    _, ptrs = layout({})
    blob, again = layout(ptrs)
    assert again == ptrs
    return b"Exif\x00\x00" + header + blob


def jpeg_with_exif(rgb: np.ndarray, quality: int, exif: bytes) -> bytes:
    """A JPEG whose APP1 is exactly `exif` (Pillow passes the block through unchanged)."""
    return jpeg_bytes(rgb, quality, exif=exif)


def png_with_text(rgb: np.ndarray, chunks: dict[str, str], compressed: tuple[str, ...] = ()) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        if key in compressed:
            info.add_text(key, value, zip=True)
        else:
            info.add_text(key, value)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


PHOTOSHOP_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
  xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
  xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
  xmp:CreatorTool="Adobe Photoshop 25.0 (Windows)" xmp:CreateDate="2024-03-01T10:00:00"
  xmp:ModifyDate="2024-03-05T09:12:00" photoshop:ColorMode="3">
 <xmpMM:History><rdf:Seq>
  <rdf:li stEvt:action="created" stEvt:when="2024-03-01T10:00:00" stEvt:softwareAgent="Adobe Photoshop 25.0 (Windows)"/>
  <rdf:li rdf:parseType="Resource"><stEvt:action>saved</stEvt:action><stEvt:when>2024-03-05T09:12:00</stEvt:when>
   <stEvt:softwareAgent>Adobe Photoshop 25.0 (Windows)</stEvt:softwareAgent><stEvt:changed>/</stEvt:changed></rdf:li>
 </rdf:Seq></xmpMM:History>
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


def insert_app1_xmp(jpeg: bytes, xmp: str | bytes) -> bytes:
    """`jpeg` with an XMP APP1 segment right after SOI."""
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + (xmp.encode() if isinstance(xmp, str) else xmp)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]
