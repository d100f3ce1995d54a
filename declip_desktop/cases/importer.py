"""Finding, copying and checking files for import. The database side lives in case.py.

One read of each source file: small files are read whole into memory and hashed
there (so a duplicate is recognised before anything is written), larger ones are
streamed and hashed while copying. The copy is fsync'ed, re-read and re-hashed, and
fully decoded to prove it is a whole image; only then is it "staged" (renamed to its
final name plus a token inside `.tmp/`) to wait for its database row.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declip_desktop.cases.files import PARTIAL_SUFFIX, make_read_only, staged_name, write_durable
from declip_desktop.cases.metadata import extract_metadata
from declip_desktop.cases.records import Rejection
from declip_desktop.common.hashing import CHUNK, sha256_file
from declip_desktop.common.images import IMAGE_SUFFIXES, ImageError, probe_image

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


def stage(
    candidate: Candidate,
    tmp_dir: Path,
    max_pixels: int,
    known_sha256: Callable[[str], int | None],
) -> Staged | Duplicate | Rejection:
    """Copy one file into `.tmp/`, check it, and stage it. Never raises for a bad file."""
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
                write_durable(partial, data)
                del data
            else:
                copied = _stream_copy(src, partial, sha, md5)
                digest = sha.hexdigest()
        after = os.stat(path)
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
            info = probe_image(partial, max_pixels=max_pixels)
        except ImageError as exc:
            return Rejection(str(path), exc.reason)
        try:
            metadata = extract_metadata(partial)
        except Exception as exc:  # noqa: BLE001 - the pixels decoded; odd metadata is noted, not fatal
            metadata = {"metadata_error": f"metadata could not be read: {exc}"}
        final_name = f"{digest}{_suffix(path, info.format)}"
        staged_path = tmp_dir / staged_name(final_name, token)
        make_read_only(partial)
        os.replace(partial, staged_path)
        return Staged(path, digest, md5.hexdigest(), st.st_size, info.format, info.width, info.height, info.mode,
                      metadata, final_name, staged_path)
    except OSError as exc:
        return Rejection(str(path), f"the file could not be copied into the case ({exc.strerror or exc})")
    finally:
        if partial.exists():
            partial.unlink(missing_ok=True)


def _stream_copy(src: Any, partial: Path, sha: Any, md5: Any) -> int:
    copied = 0
    buf = bytearray(CHUNK * 8)
    view = memoryview(buf)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
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
                out = out[os.write(fd, out):]
            copied += n
        os.fsync(fd)
    finally:
        os.close(fd)
    return copied
