"""Finding, copying and checking files for import. The database side lives in evidence_import.py.

One read of each source file: small files are read whole into memory and hashed
there (so a duplicate is recognised before anything is written), larger ones are
streamed and hashed while copying. The copy is fsync'ed, re-read and re-hashed, and
fully decoded to prove it is a whole image; only then is it "staged" (renamed to its
final name plus a token inside `.tmp/`) to wait for its database row.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from declip_desktop.cases.files import PARTIAL_SUFFIX, make_read_only, staged_name, write_durable
from declip_desktop.cases.metadata import extract_metadata
from declip_desktop.cases.records import Rejection
from declip_desktop.common.hashing import CHUNK, sha256_file
from declip_desktop.common.images import IMAGE_SUFFIXES, ImageError, ImageInfo, probe_image
from declip_desktop.common.outputs import DiskFullError, is_disk_full
from PIL import Image

#: Files at most this large are read whole into memory (one read, duplicate check before writing).
IN_MEMORY_LIMIT = 64 * 1024 * 1024

#: Names skipped silently when walking folders: operating-system clutter, never evidence.
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", ".ds_store", "icon\r"})

_FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif",
                  "HEIF": ".heic", "AVIF": ".avif", "MPO": ".jpg"}


@dataclass
class Candidate:
    path: Path  # as the analyst named it (absolute, symlinks not resolved)


@dataclass
class Staged:
    path: Path
    sha256: str
    md5: str
    size: int
    format: str
    width: int
    height: int
    mode: str
    metadata: dict[str, Any]
    final_name: str  # name inside evidence/
    staged_path: Path  # inside .tmp/


@dataclass
class Duplicate:
    path: Path
    sha256: str
    evidence_id: int


def discover(
    paths: Iterable[str | os.PathLike[str]], exclude: Path | None = None
) -> tuple[list[Candidate], list[Rejection], list[str]]:
    """Expand files and folders (recursively) into candidates; reject what cannot be a file.

    Symbolic links to files are followed; links to folders are not (loops, and a case
    should hold what the analyst pointed at). Anything inside `exclude` (the case
    folder itself) is never imported. Returns (candidates, rejections, ignored)."""
    candidates: list[Candidate] = []
    rejections: list[Rejection] = []
    ignored: list[str] = []
    seen: set[str] = set()

    excluded = Path(os.path.realpath(exclude)) if exclude is not None else None

    def inside_case(p: Path) -> bool:
        if excluded is None:
            return False
        real = Path(os.path.realpath(p))
        return real == excluded or excluded in real.parents

    def add_file(p: Path) -> None:
        key = str(p)
        if key in seen:
            return
        seen.add(key)
        if inside_case(p):
            rejections.append(Rejection(key, "is part of the case folder itself; import originals from elsewhere"))
        elif p.is_symlink() and not p.exists():
            rejections.append(Rejection(key, "broken symbolic link (its target does not exist)"))
        elif p.is_symlink() and p.is_dir():
            rejections.append(Rejection(key, "symbolic link to a folder: not followed; import the folder itself"))
        else:
            candidates.append(Candidate(p))

    for raw in paths:
        p = Path(os.path.abspath(os.fspath(raw)))
        if p.is_symlink() and not p.exists():
            rejections.append(Rejection(str(p), "broken symbolic link (its target does not exist)"))
        elif not p.exists():
            rejections.append(Rejection(str(p), "file or folder not found"))
        elif p.is_dir() and not p.is_symlink():
            for root, dirs, files in os.walk(p, followlinks=False, onerror=None):
                root_path = Path(root)
                keep_dirs = []
                for d in sorted(dirs):
                    full = root_path / d
                    if d.startswith(".") or inside_case(full):
                        ignored.append(str(full))
                    elif full.is_symlink():
                        add_file(full)
                    else:
                        keep_dirs.append(d)
                dirs[:] = keep_dirs
                for name in sorted(files):
                    if name.startswith(".") or name.lower() in SYSTEM_FILES:
                        ignored.append(str(root_path / name))
                    else:
                        add_file(root_path / name)
        else:
            add_file(p)
    return candidates, rejections, ignored


def _suffix(path: Path, fmt: str) -> str:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return suffix
    return _FORMAT_SUFFIX.get(fmt.upper(), "")


def _read_error(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied: the file cannot be read"
    return f"the file cannot be read ({exc.strerror or exc})"


class _WriteFailed(Exception):
    """Writing the copy into the case failed (the case's disk, not the source file)."""

    def __init__(self, exc: OSError):
        super().__init__(str(exc))
        self.exc = exc


def _written(write: Callable[[], Any], tmp_dir: Path, needed: int) -> Any:
    """Run one write into the case; a full disk stops the import, any other error names the case's side."""
    try:
        return write()
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(tmp_dir, needed) from exc
        raise _WriteFailed(exc) from exc


def _file_times(st: os.stat_result) -> dict[str, str]:
    def iso(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")

    times = {"modified": iso(st.st_mtime), "changed": iso(st.st_ctime)}
    birth = getattr(st, "st_birthtime", None)  # macOS, Windows, some BSDs
    if birth:
        times["created"] = iso(birth)
    return times


def stage(
    candidate: Candidate,
    tmp_dir: Path,
    max_pixels: int,
    known_sha256: Callable[[str], int | None],
) -> Staged | Duplicate | Rejection:
    """Copy one file into `.tmp/`, check it, and stage it. Never raises for a bad file: any
    failure to read or decode it is a Rejection with its reason.

    Raises DiskFullError when the case's disk is full (no file is to blame; the import must
    stop), with nothing of this file left in `.tmp/`."""
    path = candidate.path
    token = uuid.uuid4().hex
    partial = tmp_dir / f"{token}{PARTIAL_SUFFIX}"
    try:
        st = os.stat(path)
    except OSError as exc:
        return Rejection(str(path), _read_error(exc))
    if not stat.S_ISREG(st.st_mode):
        return Rejection(str(path), "not a regular file (a device, pipe or socket)")
    if st.st_size == 0:
        return Rejection(str(path), "file is empty (0 bytes)")
    sha, md5 = hashlib.sha256(), hashlib.md5()
    try:
        with open(path, "rb") as src:
            if st.st_size <= IN_MEMORY_LIMIT:
                data = src.read(st.st_size + 1)
                sha.update(data)
                md5.update(data)
                copied = len(data)
                digest = sha.hexdigest()
                existing = known_sha256(digest)
                if existing is not None:
                    return Duplicate(path, digest, existing)
                _written(lambda: write_durable(partial, data), tmp_dir, st.st_size)
            else:
                data = None
                copied = _stream_copy(src, partial, sha, md5, tmp_dir, st.st_size)
                digest = sha.hexdigest()
        after = os.stat(path)
    except DiskFullError:
        partial.unlink(missing_ok=True)
        raise
    except _WriteFailed as failed:
        partial.unlink(missing_ok=True)
        return Rejection(str(path), f"the file could not be copied into the case ({failed.exc.strerror or failed.exc})")
    except OSError as exc:
        partial.unlink(missing_ok=True)
        return Rejection(str(path), _read_error(exc))
    try:
        if copied != st.st_size or after.st_size != st.st_size or after.st_mtime_ns != st.st_mtime_ns:
            return Rejection(str(path), "the file changed while it was being copied; import it again once it is complete")
        # Re-read the copy: proves the bytes in the case are the bytes we hashed.
        if sha256_file(partial) != digest:
            return Rejection(str(path), "the copy in the case did not match the original (disk or file-system error)")
        try:
            # The copy's bytes equal `data` (same SHA-256), so checking `data` checks the copy.
            info = validate_image(partial, max_pixels=max_pixels, data=data)
        except ImageError as exc:
            return Rejection(str(path), exc.reason)
        except MemoryError:
            return Rejection(str(path), "decoding it needs more memory than this computer can give; not imported")
        except Exception as exc:  # noqa: BLE001 - a hostile file may make any decoder raise anything: reject it
            return Rejection(str(path), f"cannot be decoded as an image ({type(exc).__name__}: {exc})")
        try:
            metadata = extract_metadata(io.BytesIO(data) if data is not None else partial)
        except Exception as exc:  # noqa: BLE001 - the pixels decoded; odd metadata is noted, not fatal
            metadata = {"metadata_error": f"metadata could not be read: {exc}"}
        # Chain of custody: the file's own times as the source file system reported them at import
        # (hashed into the import's audit entry with the rest of the metadata).
        metadata["file_times"] = _file_times(st)
        width, height = info.width, info.height
        if metadata.get("exif", {}).get("orientation") in (5, 6, 7, 8):
            # Rotated by its EXIF tag: record the size a viewer (and the model) sees.
            metadata["size_in_file"] = [width, height]
            width, height = height, width
        final_name = f"{digest}{_suffix(path, info.format)}"
        staged_path = tmp_dir / staged_name(final_name, token)
        make_read_only(partial)
        os.replace(partial, staged_path)
        return Staged(path, digest, md5.hexdigest(), st.st_size, info.format, width, height, info.mode,
                      metadata, final_name, staged_path)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(tmp_dir, st.st_size) from exc
        return Rejection(str(path), f"the file could not be copied into the case ({exc.strerror or exc})")
    finally:
        if partial.exists():
            partial.unlink(missing_ok=True)


def _stream_copy(src: Any, partial: Path, sha: Any, md5: Any, tmp_dir: Path, size: int) -> int:
    """Copy while hashing; read errors propagate as OSError, write errors as _WriteFailed/DiskFullError."""
    copied = 0
    buf = bytearray(CHUNK * 8)
    view = memoryview(buf)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = _written(lambda: os.open(partial, flags, 0o644), tmp_dir, size)
    try:
        while True:
            n = src.readinto(buf)
            if not n:
                break
            chunk = view[:n]
            sha.update(chunk)
            md5.update(chunk)
            out = chunk
            while out:
                out = out[_written(lambda: os.write(fd, out), tmp_dir, size - copied):]  # noqa: B023 - called at once
            copied += n
        _written(lambda: os.fsync(fd), tmp_dir, size)
    finally:
        os.close(fd)
    return copied


def validate_image(path: Path, max_pixels: int, data: bytes | None = None) -> ImageInfo:
    """`probe_image` (header + full decode), with two shortcuts measured to matter.

    Both still read and check every byte of the pixel data, so a truncated or corrupt
    file is rejected as by a full decode (docs/PERFORMANCE.md has the figures):
    - JPEG is decoded at 1/8 scale (libjpeg's DCT scaling) to grayscale: the entropy
      decoder still reads every coefficient of every component and scan; most of the
      inverse DCT, the chroma upsampling and the colour conversion are skipped.
    - Non-interlaced PNG: every chunk's CRC is checked (PIL skips the CRC of pixel
      chunks), the compressed stream is inflated to its end (zlib checks its Adler-32),
      its length must be exactly what the header implies, and every row's filter byte
      must be valid; the un-filtering arithmetic is skipped.
    Everything else, and anything odd, goes through `probe_image`. `data`: the file's
    bytes when the caller already holds them (saves a read)."""
    try:
        img = Image.open(io.BytesIO(data) if data is not None else path)
    except (OSError, ValueError, Image.DecompressionBombError):
        return probe_image(path, max_pixels=max_pixels)  # reports the problem in its words
    try:
        if not (0 < img.width * img.height <= max_pixels) or getattr(img, "n_frames", 1) != 1:
            return probe_image(path, max_pixels=max_pixels)
        info = ImageInfo(format=img.format or "unknown", width=img.width, height=img.height, mode=img.mode)
        if img.format == "JPEG":
            # Grayscale output for colour JPEGs: libjpeg still entropy-decodes the chroma
            # components (so their damage is found) but skips upsampling and conversion.
            img.draft("L" if img.mode == "RGB" else img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            try:
                img.load()
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                text = str(exc)
                if "truncated" in text.lower() or isinstance(exc, EOFError):
                    raise ImageError(str(path), f"image data is truncated or corrupt ({text})") from None
                raise ImageError(str(path), f"image data is corrupt and cannot be decoded ({text})") from None
            return info
        if img.format == "PNG" and _check_png(path, data):
            return info
        return probe_image(path, max_pixels=max_pixels)
    finally:
        img.close()


try:  # ISA-L inflates the same streams with the same checks, 1.4-2× faster than zlib
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - optional accelerator
    _inflate = zlib  # type: ignore[no-redef]
_INFLATE_ERRORS = (zlib.error, _inflate.error)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_INFLATE_STEP = 4 * 1024 * 1024  # bounded output per call: a zip-bomb stream cannot blow up memory


def _png_error(path: Path, what: str) -> ImageError:
    return ImageError(str(path), f"image data is truncated or corrupt ({what})")


def _check_png(path: Path, data: bytes | None = None) -> bool:
    """Check a PNG's structure and pixel stream; False if it needs the full decoder instead."""
    if data is None:
        data = Path(path).read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        return False
    view = memoryview(data)
    pos = len(_PNG_SIGNATURE)
    inflater = None
    stride = expected = produced = 0
    ended = False
    while not ended:
        if pos + 12 > len(data):
            raise _png_error(path, "the file ends before the PNG end marker")
        length = int.from_bytes(view[pos:pos + 4], "big")
        kind = bytes(view[pos + 4:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise _png_error(path, f"PNG {kind.decode('latin-1')} chunk cut short")
        body = view[pos + 8:pos + 8 + length]
        if zlib.crc32(body, zlib.crc32(kind)) != int.from_bytes(view[end - 4:end], "big"):
            raise _png_error(path, f"checksum of a PNG {kind.decode('latin-1')} chunk does not match")
        if kind == b"IHDR":
            width, height = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big")
            depth, ctype, interlace = body[8], body[9], body[12]
            if interlace or ctype not in _PNG_CHANNELS or depth not in (1, 2, 4, 8, 16):
                return False
            stride = 1 + (width * _PNG_CHANNELS[ctype] * depth + 7) // 8
            expected = stride * height
            inflater = _inflate.decompressobj()
        elif kind == b"IDAT":
            if inflater is None:
                return False
            chunk = body
            while chunk:
                try:
                    out = inflater.decompress(chunk, _INFLATE_STEP)
                except _INFLATE_ERRORS as exc:
                    raise _png_error(path, f"compressed pixel data is damaged: {exc}") from None
                if out:
                    rows = np.frombuffer(out, np.uint8)[(-produced) % stride::stride]
                    if rows.size and int(rows.max()) > 4:
                        raise _png_error(path, "a pixel row has an invalid filter type")
                    produced += len(out)
                    if produced > expected:
                        raise _png_error(path, "more pixel data than the header declares")
                chunk = inflater.unconsumed_tail
        elif kind == b"IEND":
            ended = True
        pos = end
    if inflater is None:
        return False
    try:
        tail = inflater.flush()
    except _INFLATE_ERRORS as exc:
        raise _png_error(path, f"compressed pixel data is damaged: {exc}") from None
    produced += len(tail)
    if not inflater.eof or produced != expected:
        raise _png_error(path, f"pixel data is incomplete ({produced} of {expected} bytes)")
    return True
