"""Where a command may write, and how: the one guard every file-writing option goes through.

Evidence is never modified and a case folder's internals belong to the case store, so a
destination the user names (`--out`, `--maps-dir`, `--csv`, …) is checked before anything
is produced:

- never inside a case folder, except its `exports/` folder (a case is recognised by the
  `case.sqlite` in it, whatever path — or symbolic link — leads there);
- never over a file the caller protects (the input images of `analyze`, a case's originals);
- never through a symbolic link at the destination, never over a folder, pipe or device;
- never over an existing file unless the user said `--force`.

Files are then produced under a fresh temporary name in the destination's folder (created
with O_CREAT | O_EXCL | O_NOFOLLOW), fsync'ed, and moved into place: with a hard link,
which fails if the name was taken meanwhile, or with an atomic rename when replacing is
allowed. A rename replaces the directory entry, so even a hard link to a protected file at
the destination leaves that file's bytes untouched. A full disk is reported as such
(`DiskFullError`) and leaves nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from declip_desktop.common.facts import CASE_DB_NAME  # how a case folder is recognised

#: The one folder of a case that commands may write into (exports made by the user).
CASE_WRITABLE_FOLDER = "exports"

_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_MB = 1024 * 1024


class OutputRefused(ValueError):
    """A destination this program will not write to; the message says why and what to do."""


def _mb(n: int) -> str:
    mb = max(n, 0) / _MB
    return f"{mb:.1f} MB" if mb >= 0.1 or mb == 0 else f"{mb:.3f} MB"


class DiskFullError(OSError):
    """No space left where a file was being written. `path`, `free` and `needed` in bytes.

    The message is "disk full at PATH: X MB free, about Y MB needed. …"; callers may raise
    `needed` to what the whole job still needs (an import: the files not yet copied)."""

    def __init__(self, path: str | os.PathLike[str], needed: int | None = None, *, free: int | None = None,
                 note: str = ""):
        self.path = str(path)
        self.needed = needed
        self.free = free_bytes(path) if free is None else free
        self.note = note
        super().__init__(errno.ENOSPC, self.message)

    @property
    def message(self) -> str:
        free_text = "unknown" if self.free is None else _mb(self.free)
        needed_text = "an unknown amount" if self.needed is None else _mb(self.needed)
        text = (f"disk full at {self.path}: {free_text} free, about {needed_text} needed. "
                "Free some space or choose another location; nothing half-written was kept")
        return text + (f". {self.note}" if self.note else "")

    def __str__(self) -> str:
        return self.message

    def note_import(self, done: int, total: int) -> None:
        """Say how far an import got (the message is what the user and the audit log read)."""
        self.note = (f"The import stopped: {done} of {total} file(s) were handled before the disk filled; "
                     "import the rest again once there is space")


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Free bytes on the file system holding `path` (or its nearest existing folder)."""
    p = Path(os.path.abspath(os.fspath(path)))
    for candidate in (p, *p.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


@contextlib.contextmanager
def disk_full_as_error(path: str | os.PathLike[str], needed: int | None = None) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT raised inside the block into a DiskFullError naming `path`."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(path, needed) from exc
        raise


def case_root_of(path: str | os.PathLike[str]) -> Path | None:
    """The case folder `path` lies in (symbolic links resolved), or None."""
    real = Path(os.path.realpath(os.fspath(path)))
    for folder in (real, *real.parents):
        if (folder / CASE_DB_NAME).is_file():
            return folder
    return None


def _refuse_case_internals(real: Path, shown: Path, folder: bool = False) -> None:
    root = case_root_of(real)
    if root is None:
        return
    rel = real.relative_to(root)
    if len(rel.parts) >= (1 if folder else 2) and rel.parts[0] == CASE_WRITABLE_FOLDER:
        return
    where = "the case folder itself" if not rel.parts else f"{rel} inside the case folder"
    raise OutputRefused(
        f"{shown} is {where} {root}; a case's database, evidence, results and reports are written only by "
        f"the case store. Write somewhere outside the case, or into its {CASE_WRITABLE_FOLDER}/ folder"
    )


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class Protected:
    """Files that must never be written over (inputs, originals): matched by real path and by inode."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]] = ()):
        self.real: set[str] = set()
        self.inodes: set[tuple[int, int]] = set()
        for p in paths:
            self.add(p)

    def add(self, path: str | os.PathLike[str]) -> None:
        self.real.add(os.path.normcase(os.path.realpath(os.fspath(path))))
        with contextlib.suppress(OSError):
            st = os.stat(path)
            self.inodes.add((st.st_dev, st.st_ino))

    def holds(self, real: Path, st: os.stat_result | None) -> bool:
        if os.path.normcase(str(real)) in self.real:
            return True
        return st is not None and (st.st_dev, st.st_ino) in self.inodes


def check_destination(
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    protect: Protected | Iterable[str | os.PathLike[str]] = (),
    what: str = "file",
    can_force: bool = True,
) -> Path:
    """Check that a file may be written at `path`; return it (parent folder resolved).

    Raises OutputRefused with a sentence for the user. `force` allows replacing an existing
    regular file that is neither protected nor part of a case; nothing else."""
    shown = Path(os.path.expanduser(os.fspath(path)))
    p = Path(os.path.abspath(shown))
    if not p.name or p.name in (".", ".."):
        raise OutputRefused(f"{shown} is not a file name. Give the {what} a name, e.g. {shown / 'out'}")
    try:
        lst = os.lstat(p)
    except FileNotFoundError:
        lst = None
    except OSError as exc:
        raise OutputRefused(f"cannot check {shown}: {exc.strerror or exc}. Choose another location") from None
    if lst is not None and stat.S_ISLNK(lst.st_mode):
        raise OutputRefused(f"{shown} is a symbolic link; it is never followed when writing. "
                            "Remove the link or choose another name")
    if lst is not None and stat.S_ISDIR(lst.st_mode):
        raise OutputRefused(f"{shown} is a folder. Give a file name for the {what}, e.g. {shown / 'out'}")
    if lst is not None and not stat.S_ISREG(lst.st_mode):
        raise OutputRefused(f"{shown} is not a regular file (a pipe, socket or device). Choose another name")
    parent = Path(os.path.realpath(p.parent))
    if not parent.is_dir():
        raise OutputRefused(f"the folder {p.parent} does not exist. Create it or choose another place for the {what}")
    real = parent / p.name
    _refuse_case_internals(real, shown)
    guard = protect if isinstance(protect, Protected) else Protected(protect)
    if guard.holds(real, lst):
        raise OutputRefused(f"{shown} is an input image or evidence original; it is never written over. "
                            "Choose another name or folder")
    if lst is not None and not force:
        hint = "Add --force to replace it, or choose another name" if can_force else "Choose a new file name"
        raise OutputRefused(f"{shown} already exists; it was not replaced. {hint}")
    return real


def check_output_folder(path: str | os.PathLike[str], *, create: bool = True) -> Path:
    """Check (and create) a folder that files will be written into; return its real path."""
    shown = Path(os.path.expanduser(os.fspath(path)))
    p = Path(os.path.abspath(shown))
    if os.path.lexists(p) and not p.is_dir():
        raise OutputRefused(f"{shown} exists and is not a folder. Give a folder to write into")
    existing = p
    while not existing.exists():  # check the part that exists before creating anything under it
        existing = existing.parent
    _refuse_case_internals(Path(os.path.realpath(existing)) / p.relative_to(existing), shown, folder=True)
    if create:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFullError(p, 0) from exc
            raise OutputRefused(f"cannot create the folder {shown}: {exc.strerror or exc}. "
                                "Choose a writable folder") from None
    real = Path(os.path.realpath(p))
    _refuse_case_internals(real, shown, folder=True)  # again: a link made meanwhile must not lead into a case
    return real


def fsync_dir(folder: Path, *, best_effort: bool = True) -> None:
    """Make renames and creations inside `folder` durable (POSIX; Windows cannot, and needs not).

    `best_effort`: a file system that cannot sync a directory is ignored (the files themselves
    are synced). The case store passes False: there a failure is an error, never silent."""
    if sys.platform == "win32":  # pragma: no cover
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not best_effort:
            raise


def _new_temp(target: Path) -> Path:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o644)
    os.close(fd)
    return tmp


def _commit(tmp: Path, target: Path, force: bool, shown: str) -> None:
    if force:
        os.replace(tmp, target)  # replaces the name (even a link placed there meanwhile), never its target
        return
    try:
        os.link(tmp, target)  # fails if the name was taken since the check (tmp is our regular file)
    except FileExistsError:
        raise OutputRefused(f"{shown} appeared while it was being written. Add --force to replace it, "
                            "or choose another name") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        # No hard links here (FAT, some shares): exclusive create, then copy.
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY, 0o644)
        except FileExistsError:
            raise OutputRefused(f"{shown} appeared while it was being written. Add --force to replace it") from None
        try:
            with os.fdopen(fd, "wb") as dst, open(tmp, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str],
    *,
    force: bool = False,
    protect: Protected | Iterable[str | os.PathLike[str]] = (),
    needed: int | None = None,
    what: str = "file",
    can_force: bool = True,
) -> Iterator[Path]:
    """Check `path`, yield a fresh temporary path beside it to write, then move it into place.

    The body writes the whole file to the yielded path (by any means: open, cv2, numpy, Qt).
    On any error nothing is left behind; a full disk raises DiskFullError. `needed` is the
    expected size, quoted in the disk-full message."""
    shown = str(Path(os.path.expanduser(os.fspath(path))))
    target = check_destination(path, force=force, protect=protect, what=what, can_force=can_force)
    tmp: Path | None = None
    try:
        with disk_full_as_error(target.parent, needed):
            tmp = _new_temp(target)
            yield tmp
            fd = os.open(tmp, os.O_RDONLY | _NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            # Re-check just before the move: the name may have become a link or a protected file.
            check_destination(path, force=force, protect=protect, what=what, can_force=can_force)
            _commit(tmp, target, force, shown)
            tmp = None
            fsync_dir(target.parent)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_output(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    force: bool = False,
    protect: Protected | Iterable[str | os.PathLike[str]] = (),
    what: str = "file",
    can_force: bool = True,
) -> Path:
    """Write `data` to `path` through `atomic_output`; return the final path. `can_force=False`:
    the command has no --force (the refusal then does not suggest it)."""
    with atomic_output(path, force=force, protect=protect, needed=len(data), what=what,
                       can_force=can_force) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | _NOFOLLOW | _BINARY)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return resolved_destination(path)


def resolved_destination(path: str | os.PathLike[str]) -> Path:
    """Where a file written at `path` ends up: its folder's symbolic links resolved, not the name's."""
    p = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    return Path(os.path.realpath(p.parent)) / p.name


__all__ = [
    "DiskFullError", "OutputRefused", "Protected", "atomic_output", "case_root_of",
    "check_destination", "check_output_folder", "disk_full_as_error", "free_bytes", "is_disk_full",
    "resolved_destination", "write_output",
]
