"""Decoding untrusted image files into 8-bit RGB, the one way every layer does it.

Evidence comes from anywhere, so decoding must refuse rather than guess:
- truncated files are an error (PIL's LOAD_TRUNCATED_IMAGES stays off);
- the pixel count is checked from the header *before* decoding (decompression bombs);
- EXIF orientation is applied, because analysts and the model must see the photo
  the way a viewer shows it;
- grayscale, palette, alpha, 16-bit and CMYK inputs become 8-bit RGB.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF/AVIF support, from the well-kept pillow-heif package
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - optional at run time
    HEIF_SUPPORTED = False

#: Default ceiling on width × height (the pixel budget): 200 megapixels is beyond any camera
#: an analyst meets, and keeps one decoded 8-bit RGB image under about 600 MB of RAM.
DEFAULT_MAX_PIXELS = 200_000_000

#: The memory budget of one decode, in bytes of decoder output per pixel: at most one
#: decoded frame (≤ 4 bytes a pixel, RGBA) beside the PIL image being built (4 bytes a pixel
#: internally, also for RGB). PIL's WebP plugin needs three frame-sized copies (libwebp's
#: buffer, a bytes copy and the image), 3 GB for a 38-byte file declaring 16383×12000, so WebP
#: is decoded by OpenCV's libwebp binding straight into one array instead
#: (docs/PERFORMANCE.md, "Decode budget"; benchmarks/decode_budget.py).
DECODE_BYTES_PER_PIXEL = 8

# We enforce our own limit (raising ImageError), so PIL's warning-then-error logic is
# replaced by an explicit check; PIL's own hard limit stays as a second guard.
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_PIXELS

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif"}
    | ({".heic", ".heif", ".avif"} if HEIF_SUPPORTED else set())
)

ImageSource = Union[str, Path, Image.Image, np.ndarray, bytes]


class ImageError(ValueError):
    """An image could not be used. `reason` is a plain sentence for an analyst."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    """What the header says, without decoding pixels."""

    format: str
    width: int
    height: int
    mode: str


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return f"<{type(source).__name__}>"


def probe_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read the header and fully decode once to prove the file is a whole, sane image.

    Raises ImageError with a plain reason for anything an analyst should be told.
    """
    img = _open_file(path, max_pixels)
    try:
        info = ImageInfo(format=img.format or "unknown", width=img.width, height=img.height, mode=img.mode)
        if _is_still_webp(img):
            arr = decode_webp_array(np.fromfile(str(path), np.uint8), str(path))
            if (arr.shape[1], arr.shape[0]) != img.size:
                raise ImageError(str(path), "the WebP header and its data disagree about the size")
            del arr
        else:
            _decode(img, str(path))
        return info
    finally:
        img.close()


def load_rgb(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode `source` to an H×W×3 uint8 RGB array, orientation applied."""
    return np.asarray(load_rgb_image(source, max_pixels), dtype=np.uint8)


def load_rgb_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode `source` to an 8-bit RGB PIL image, orientation applied."""
    name = _describe(source)
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name, max_pixels)
    if isinstance(source, Image.Image):
        _check_pixels(source.width, source.height, name, max_pixels)
        _decode(source, name)
        return to_rgb(ImageOps.exif_transpose(source) or source, name)
    if isinstance(source, bytes):
        img = _open_stream(io.BytesIO(source), name, max_pixels)
    else:
        img = _open_file(source, max_pixels)
    try:
        if _is_still_webp(img):
            return _webp_to_rgb(img, source, name)
        _decode(img, name)
        oriented = ImageOps.exif_transpose(img) or img
        return to_rgb(oriented, name)
    finally:
        img.close()


def load_preview(source: str | Path, max_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """An 8-bit RGB preview whose longer side is at most `max_side`, orientation applied.

    Only a preview is needed, so JPEG is decoded at reduced scale by libjpeg (`draft`, up to
    1/8 per side: 1/64 of the pixels and memory); other formats are decoded once and reduced."""
    name = str(source)
    img = _open_file(source, max_pixels)
    try:
        if img.format in ("JPEG", "MPO"):
            img.draft("RGB", (max_side, max_side))  # never smaller than asked: libjpeg scales by 1/2^k
            _decode(img, name)
            rgb = to_rgb(ImageOps.exif_transpose(img) or img, name)
        else:
            img.close()
            rgb = load_rgb_image(source, max_pixels)
    finally:
        img.close()
    rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return rgb


def _is_still_webp(img: Image.Image) -> bool:
    return img.format == "WEBP" and int(getattr(img, "n_frames", 1) or 1) == 1


def decode_webp_array(data: bytes | np.ndarray, name: str) -> np.ndarray:
    """Decode a still WebP with libwebp (through OpenCV) into one H×W×3 RGB or H×W×4 RGBA array.

    One frame-sized buffer, where PIL's plugin holds three (see DECODE_BYTES_PER_PIXEL).
    Raises ImageError if libwebp rejects the data (truncated, corrupt)."""
    import cv2

    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(name, "image data is truncated or corrupt (the WebP decoder rejected it)")
    code = cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
    cv2.cvtColor(arr, code, dst=arr)  # in place: no second frame
    return arr


def _webp_to_rgb(img: Image.Image, source: ImageSource, name: str) -> Image.Image:
    if isinstance(source, bytes):
        data: Any = source
    else:
        try:
            data = np.fromfile(str(source), np.uint8)
        except OSError as exc:
            raise ImageError(name, f"cannot be read: {exc.strerror or exc}") from None
    arr = decode_webp_array(data, name)
    del data
    if (arr.shape[1], arr.shape[0]) != img.size:
        raise ImageError(name, f"the WebP header says {img.width}×{img.height} but its data is "
                         f"{arr.shape[1]}×{arr.shape[0]}; the file is inconsistent")
    # Transparent WebP goes through to_rgb's compositing on white, exactly like PNG.
    out = to_rgb(Image.fromarray(arr, "RGBA"), name) if arr.shape[2] == 4 else Image.fromarray(arr, "RGB")
    del arr
    orientation = img.getexif().get(0x0112, 1)
    if orientation not in (None, 1):
        out.info["exif"] = img.info.get("exif", b"")
        out = ImageOps.exif_transpose(out) or out
    return out


def to_rgb(img: Image.Image, name: str = "<image>") -> Image.Image:
    """Convert any PIL mode to 8-bit RGB with explicit, documented rules."""
    mode = img.mode
    if mode == "RGB":
        return img.copy() if img.readonly else img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img)
        # 16-bit data uses the full 0..65535 range; 32-bit integer "I" images from PNG
        # are 16-bit data widened by PIL. Scale by the declared depth, never by content.
        arr = np.clip(arr.astype(np.float64) / 257.0, 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.size and float(np.nanmax(arr)) <= 1.0 else 1.0
        arr = np.clip(np.nan_to_num(arr) * scale, 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        # Transparent pixels carry whatever colour the editor left; composite on white,
        # the way viewers show them, so the model sees what a person sees.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "CMYK":
        return img.convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(name, f"unsupported pixel format {mode!r} ({exc})") from exc


def _array_to_rgb(arr: np.ndarray, name: str, max_pixels: int) -> Image.Image:
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(name, f"array of shape {arr.shape} is not an H×W, H×W×3 or H×W×4 image")
    _check_pixels(arr.shape[1], arr.shape[0], name, max_pixels)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = (arr.astype(np.float64) / 257.0).round().astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        out = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    else:
        raise ImageError(name, f"array dtype {arr.dtype} is not uint8, uint16 or float in [0, 1]")
    return Image.fromarray(np.ascontiguousarray(out), "RGB")


def _check_pixels(width: int, height: int, name: str, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageError(name, f"image has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageError(
            name,
            f"image is {width}×{height} = {width * height / 1e6:.0f} megapixels, over the "
            f"{max_pixels / 1e6:.0f}-megapixel limit (possible decompression bomb); "
            "raise the limit only if you trust the file",
        )


def _open_file(path: str | Path, max_pixels: int) -> Image.Image:
    name = str(path)
    p = Path(path)
    if p.is_symlink() and not p.exists():
        raise ImageError(name, "broken symbolic link (its target does not exist)")
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise ImageError(name, "file not found") from None
    except PermissionError:
        raise ImageError(name, "permission denied: the file cannot be read") from None
    if p.is_dir():
        raise ImageError(name, "is a folder, not an image file")
    if size == 0:
        raise ImageError(name, "file is empty (0 bytes)")
    try:
        fh = open(p, "rb")
    except PermissionError:
        raise ImageError(name, "permission denied: the file cannot be read") from None
    except OSError as exc:
        raise ImageError(name, f"cannot be read: {exc.strerror or exc}") from None
    try:
        return _open_stream(fh, name, max_pixels)
    except BaseException:
        fh.close()
        raise


def _open_stream(fh: Any, name: str, max_pixels: int) -> Image.Image:
    try:
        img = Image.open(fh)
    except UnidentifiedImageError:
        raise ImageError(name, "not an image, or an image format this tool cannot read") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(name, f"over the pixel limit (possible decompression bomb): {exc}") from None
    except OSError as exc:
        raise ImageError(name, f"cannot be read as an image: {exc}") from None
    except (ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, TypeError) as exc:
        # What PIL's format parsers raise on hostile headers, e.g. ValueError("Decompressed Data
        # Too Large") for a PNG whose zTXt/iTXt/iCCP chunk inflates past PIL's text limit.
        raise ImageError(name, f"the file's header is malformed or hostile ({type(exc).__name__}: {exc})") from None
    try:
        _check_pixels(img.width, img.height, name, max_pixels)
    except ImageError:
        img.close()
        raise
    return img


def _decode(img: Image.Image, name: str) -> None:
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        raise ImageError(name, f"over the pixel limit (possible decompression bomb): {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc)
        if "truncated" in text.lower() or isinstance(exc, EOFError):
            raise ImageError(name, f"image data is truncated or corrupt ({text})") from None
        raise ImageError(name, f"image data is corrupt and cannot be decoded ({text})") from None
