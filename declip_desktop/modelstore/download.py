"""Download, verify and install the DeCLIP checkpoints listed in `engine.registry`.

This is the application's only network access, and it happens only when a user asks
for a download (`declip models download`, Models → Download… in the app). Nothing here
touches the network at import time, and torch is imported only by the install step
(`engine.models.import_checkpoint`), inside the function that needs it.

The pieces, from the bottom up:

- `fetch(url, dest, …)` streams one URL to `<dest>.part`, reports progress, resumes an
  interrupted transfer with an HTTP Range request (validated: 206 + a Content-Range that
  starts where our file ends; a server that answers 200 instead is restarted from zero),
  checks free disk space before writing, hashes while writing, refuses a SHA-256
  mismatch (the bad file is deleted) and renames the file into place only when complete.
  A `threading.Event` cancels between chunks; the partial file is kept for a later resume.
- `ensure_backbone(entry, …)` keeps OpenAI's CLIP files in `$DECLIP_HOME/downloads/` for
  reuse, re-hashing a cached copy before trusting it.
- `download_model(name, …)` downloads a checkpoint (and, for a fusion model, the two
  backbones) and installs it through `engine.models.import_checkpoint`, the same path
  as `declip models import`.

Every failure is a `DownloadError` whose message says what happened and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from declip_desktop.common.hashing import CHUNK
from declip_desktop.common.paths import declip_home, models_dir
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.engine.registry import (
    MIRROR_ENV,
    BackboneEntry,
    CheckpointEntry,
    backbones_for,
    get_checkpoint,
    join_url,
)

#: Bytes read per network call. Small enough that cancel and progress stay responsive.
READ_SIZE = 256 * 1024
#: Disk space we want left over after a download, beyond the file itself.
SPACE_MARGIN = 64 * 1024 * 1024
#: How often progress callbacks fire at most (seconds).
PROGRESS_INTERVAL = 0.1
USER_AGENT = f"DeCLIP-Desktop/{SOFTWARE_VERSION} (+model download)"


def downloads_dir() -> Path:
    """Where downloads land: partial files, and OpenAI's backbones kept for reuse."""
    return declip_home() / "downloads"


# --------------------------------------------------------------------------- errors


class DownloadError(Exception):
    """A download or install that failed. `kind` lets callers react without parsing text:
    "connection", "http", "disk", "checksum", "incomplete", "checkpoint", "cancelled",
    "unknown-model", "busy"."""

    def __init__(self, message: str, kind: str, *, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status


class DownloadCancelled(DownloadError):
    def __init__(self, message: str):
        super().__init__(message, "cancelled")


# ------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class Progress:
    """One progress report. `stage` is "download", "verify" (hashing a cached or partial
    file) or "import" (converting to safetensors; no byte counts)."""

    stage: str
    label: str  # the file name being worked on
    done: int = 0  # bytes on disk so far (including a resumed part)
    total: int | None = None  # bytes, when the server said
    speed: float = 0.0  # bytes per second over this transfer
    eta: float | None = None  # seconds left, when total and speed are known
    detail: str = ""  # the importer's own progress message during "import"

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


@dataclass
class FetchResult:
    path: Path
    sha256: str
    size: int
    resumed: bool  # some bytes came from an earlier, interrupted transfer
    attempts: int  # HTTP requests made
    final_url: str | None = None  # where the last request ended after redirects


# ---------------------------------------------------------------------------- fetch


def fetch(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    retries: int = 3,
    retry_delay: float = 1.0,
    timeout: float = 30.0,
    max_bytes: int | None = None,
) -> FetchResult:
    """Download `url` to `dest`, resuming `<dest>.part` when one is left from before.

    Redirects are followed only to https (and to http only when `url` itself is http: a lab
    mirror); `max_bytes` stops a body that grows past it (announced or actually sent), and
    the partial file is then deleted.

    `retries`: how many times a transfer cut off mid-body is resumed within this call
    (each retry asks only for the missing bytes). Connection failures before any byte
    arrives are not retried: they are reported at once so the user can fix them.
    On success `dest` holds the complete, verified file. On failure `dest` does not
    exist; `<dest>.part` is kept when it can be resumed (cancel, cut-off, disk full)
    and deleted when it is wrong (checksum mismatch).
    """
    _check_scheme(url)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        return _fetch_locked(url, dest, sha256=sha256, progress=progress, cancel=cancel,
                             retries=retries, retry_delay=retry_delay, timeout=timeout, max_bytes=max_bytes)


@contextlib.contextmanager
def _exclusive(dest: Path):
    """One download per file at a time, across threads and processes (the app and a
    `declip models download` in a terminal must not append to the same `.part`).
    An OS file lock, so a crashed process never leaves a stale lock behind."""
    lock_path = dest.with_name(dest.name + ".lock")
    fh = open(lock_path, "a+b")
    try:
        try:
            _lock(fh)
        except OSError:
            raise DownloadError(
                f"Another download of {dest.name} is already running (in the app or another "
                "`declip models download`). Wait for it to finish, or cancel it first.",
                "busy",
            ) from None
        yield
    finally:
        fh.close()  # releases the lock
        # The lock file stays: deleting it while another process waits on it would let
        # two processes hold locks on two different files of the same name.


def _lock(fh) -> None:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _check_scheme(url: str) -> None:
    """urllib would also open file:, ftp: and data: URLs; downloads are HTTP(S) only
    (a file already on disk is installed with `declip models import FILE`)."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise DownloadError(
            f"'{url}' is not an http:// or https:// URL. Give the address of a web server; "
            "for a file already on this machine use `declip models import FILE`.",
            "connection",
        )


def _fetch_locked(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    retries: int,
    retry_delay: float,
    timeout: float = 30.0,
    max_bytes: int | None = None,
) -> FetchResult:
    """`fetch` for a caller that already holds `_exclusive(dest)`."""
    _check_scheme(url)
    part = dest.with_name(dest.name + ".part")
    meta_path = dest.with_name(dest.name + ".part.json")
    label = dest.name
    expected = sha256.lower() if sha256 else None
    if dest.exists():
        dest.unlink()  # the caller asked for a fresh copy; never mix old and new bytes
    meta = _read_meta(meta_path)
    if part.exists() and meta.get("url") != url:
        # A part from another URL (another mirror, another file) is not ours to extend.
        _remove(part, meta_path)
        meta = {}

    attempts = 0
    resumed_any = False
    carried: tuple[Any, int] | None = None  # (hash state, bytes it covers) after a cut-off
    while True:
        _check_cancel(cancel, part)
        offset = part.stat().st_size if part.exists() else 0
        if carried is not None and carried[1] == offset:
            hasher = carried[0]  # no need to re-read gigabytes we just hashed
        else:
            hasher = hashlib.sha256()
            if offset:
                _hash_existing(part, hasher, offset, label, progress, cancel)
        carried = None
        attempts += 1
        try:
            outcome = _transfer(
                url, part, meta_path, meta, offset, hasher, label, progress, cancel, timeout, max_bytes
            )
            hasher = outcome.hasher
        except _CutOff as cut:
            # Bytes stopped arriving mid-body: resume with Range, up to `retries` times;
            # then give up, keeping the part for the next run.
            carried = (cut.hasher, cut.have) if cut.hasher is not None else None
            if attempts > retries:
                raise DownloadError(
                    f"The download of {url} was cut off after {_fmt_size(cut.have)}"
                    f"{' of ' + _fmt_size(cut.total) if cut.total else ''} ({cut.reason}). "
                    "The partial file is kept: run the same download again to resume it.",
                    "incomplete",
                ) from None
            if cancel is not None:
                cancel.wait(retry_delay * attempts)  # a cancel cuts the pause short
            else:
                time.sleep(retry_delay * attempts)
            meta = _read_meta(meta_path)
            continue
        except _Restart:
            # Server ignored or refused our Range request: start over, cleanly.
            _remove(part)
            meta = _read_meta(meta_path)
            continue
        except DownloadError as exc:
            if exc.kind in ("too-large", "redirect"):
                _remove(part, meta_path)  # nothing of it is worth resuming
                raise
            if exc.kind in ("connection", "http") and part.exists() and part.stat().st_size:
                # e.g. the network went away between two resumes: say what is kept.
                raise DownloadError(
                    f"{exc} The {_fmt_size(part.stat().st_size)} downloaded so far are kept; "
                    "run the download again to resume.",
                    exc.kind,
                    status=exc.status,
                ) from None
            raise
        resumed_any = resumed_any or outcome.resumed
        break

    digest = hasher.hexdigest()
    size = part.stat().st_size
    if expected and digest != expected:
        _remove(part, meta_path)
        raise DownloadError(
            f"The file downloaded from {url} has SHA-256 {digest}, but {expected} was expected: "
            "it is damaged or is not the published file. It has been deleted and nothing was "
            "installed. Run the download again; if the mismatch repeats, the server (or mirror) "
            "holds a different file — download from the original host or fix the mirror.",
            "checksum",
        )
    os.replace(part, dest)
    _remove(meta_path)
    return FetchResult(path=dest, sha256=digest, size=size, resumed=resumed_any, attempts=attempts,
                       final_url=outcome.final_url)


class _CutOff(Exception):
    def __init__(self, reason: str, have: int, total: int | None, hasher: Any = None):
        super().__init__(reason)
        self.reason, self.have, self.total, self.hasher = reason, have, total, hasher


class _Restart(Exception):
    pass


@dataclass
class _Outcome:
    resumed: bool
    hasher: Any  # covers the whole file (a fresh one when the server ignored Range)
    final_url: str | None = None


def allowed_redirect_schemes(url: str) -> frozenset[str]:
    """https always; http only when the configured URL is http itself (a lab mirror).

    An https download must never be downgraded to plain http (a network attacker could then
    swap the file), and never leave HTTP altogether: urllib would follow ftp:// too."""
    return frozenset({"https", "http"}) if urlsplit(url).scheme.lower() == "http" else frozenset({"https"})


class _RedirectGuard(urllib.request.HTTPRedirectHandler):
    def __init__(self, url: str):
        super().__init__()
        self.origin = url
        self.allowed = allowed_redirect_schemes(url)

    def http_error_302(self, req, fp, code, msg, headers):
        # Checked before urllib's own test, which allows ftp:// and answers others with a vague HTTPError.
        location = headers.get("location") or headers.get("uri")
        if location:
            self._check(urljoin(req.full_url, location))
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self._check(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)

    def _check(self, newurl: str) -> None:
        scheme = urlsplit(newurl).scheme.lower()
        if scheme not in self.allowed:
            raise DownloadError(
                f"{self.origin} redirected to {newurl}, which is not an "
                + (" or ".join(sorted(f"{s}://" for s in self.allowed)))
                + " address; the redirect was not followed and nothing was installed. Use a mirror "
                "(--mirror / DECLIP_MODELS_URL) that serves the file directly.",
                "redirect",
            )


def _too_large(url: str, size: int, limit: int, announced: bool) -> DownloadError:
    what = f"announces {_fmt_size(size)}" if announced else f"sent more than {_fmt_size(limit)}"
    return DownloadError(
        f"The server {what} for {url}, more than this file can be ({_fmt_size(limit)} at most). "
        "The transfer was stopped and the partial file deleted; nothing was installed. Check the "
        "URL or mirror: it does not serve the expected checkpoint.",
        "too-large",
    )


def _transfer(
    url: str,
    part: Path,
    meta_path: Path,
    meta: dict[str, Any],
    offset: int,
    hasher: Any,
    label: str,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    timeout: float,
    max_bytes: int | None = None,
) -> _Outcome:
    """One HTTP request appending to `part`. Raises _CutOff, _Restart or DownloadError."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        # If-Range: when the file changed on the server since our part was written, the
        # server sends the whole new file (200) instead of splicing two versions.
        validator = meta.get("etag") or meta.get("last_modified")
        if validator:
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        opener = urllib.request.build_opener(_RedirectGuard(url))
        response = opener.open(request, timeout=timeout)  # noqa: S310 (http/https only: _check_scheme, _RedirectGuard)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            total = _content_range_total(exc.headers.get("Content-Range"))
            exc.close()
            if total is not None and total == offset:
                return _Outcome(resumed=True, hasher=hasher)  # the part was already complete
            raise _Restart() from None
        raise _http_error(url, exc.code, exc.reason) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise _connection_error(url, exc) from None

    with response:
        status = response.status
        final_url = response.geturl()
        if offset and status == 206:
            start, _end, total = _parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise _Restart()
            resumed = True
            mode = "ab"
        elif status == 200:
            if offset:
                # The server ignored Range: the body is the whole file. Start from zero
                # with a fresh hash rather than appending the file to its own beginning.
                offset = 0
                hasher = hashlib.sha256()
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            resumed = False
            mode = "wb"
        else:
            raise _http_error(url, status, response.reason)

        meta = {
            "url": url,
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
        }
        # A weak ETag cannot be used with If-Range (RFC 9110 §13.1.5).
        if meta["etag"] and meta["etag"].startswith("W/"):
            meta["etag"] = None
        if max_bytes is not None and total is not None and total > max_bytes:
            raise _too_large(url, total, max_bytes, announced=True)
        _check_space(part, (total - offset) if total is not None else None)
        _write_meta(meta_path, meta)

        done = offset
        started = time.monotonic()
        last_report = 0.0
        try:
            with open(part, mode) as out:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelled(
                            f"Download of {label} cancelled; {_fmt_size(done)} kept in {part.name} "
                            "— it resumes from there next time."
                        )
                    try:
                        chunk = response.read(READ_SIZE)
                    except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
                        out.flush()
                        raise _CutOff(_reason(exc), done, total, hasher) from None
                    if not chunk:
                        break
                    if max_bytes is not None and done + len(chunk) > max_bytes:
                        raise _too_large(url, done + len(chunk), max_bytes, announced=False)
                    out.write(chunk)
                    hasher.update(chunk)
                    done += len(chunk)
                    now = time.monotonic()
                    if progress is not None and now - last_report >= PROGRESS_INTERVAL:
                        last_report = now
                        progress(_progress("download", label, done, offset, total, started, now))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DownloadError(
                    f"The disk holding {part.parent} is full ({_fmt_size(_free(part.parent))} free) "
                    f"after {_fmt_size(done)} of {label}. Free some space and run the download "
                    "again: it resumes where it stopped.",
                    "disk",
                ) from None
            raise DownloadError(
                f"Could not write {part}: {exc.strerror or exc}. Check that the folder is writable.",
                "disk",
            ) from None
        if total is not None and done < total:
            raise _CutOff("the server closed the connection early", done, total, hasher)
        if total is not None and done > total:
            raise DownloadError(
                f"The server sent {done} bytes for {url} but announced {total}. The file is "
                "unreliable and was not installed; try again later or use another mirror.",
                "incomplete",
            )
        if progress is not None:
            progress(_progress("download", label, done, offset, total or done, started, time.monotonic()))
        return _Outcome(resumed=resumed, hasher=hasher, final_url=final_url)


def _progress(stage, label, done, offset, total, started, now) -> Progress:
    elapsed = max(now - started, 1e-6)
    speed = (done - offset) / elapsed
    eta = (total - done) / speed if total is not None and speed > 0 else None
    return Progress(stage=stage, label=label, done=done, total=total, speed=speed, eta=eta)


def _hash_existing(part, hasher, size, label, progress, cancel) -> None:
    """Feed the bytes already on disk into the hash, so the final digest covers all."""
    done = 0
    last = 0.0
    with open(part, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            _check_cancel(cancel, part)
            hasher.update(chunk)
            done += len(chunk)
            now = time.monotonic()
            if progress is not None and now - last >= PROGRESS_INTERVAL:
                last = now
                progress(Progress(stage="verify", label=label, done=done, total=size))


def _check_cancel(cancel: threading.Event | None, part: Path) -> None:
    if cancel is not None and cancel.is_set():
        kept = f"; the partial file {part.name} is kept for a later resume" if part.exists() else ""
        raise DownloadCancelled(f"Download cancelled{kept}.")


def _parse_content_range(value: str | None) -> tuple[int, int, int | None]:
    """`bytes START-END/TOTAL` (TOTAL may be `*`). Anything else means we cannot trust
    the 206 and must start over."""
    try:
        unit, rng = value.split(" ", 1)  # type: ignore[union-attr]
        span, total = rng.split("/", 1)
        start, end = span.split("-", 1)
        if unit.strip().lower() != "bytes":
            raise ValueError(unit)
        return int(start), int(end), (None if total.strip() == "*" else int(total))
    except (AttributeError, ValueError):
        raise _Restart() from None


def _content_range_total(value: str | None) -> int | None:
    """The TOTAL of a 416's `bytes */TOTAL`."""
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _check_space(part: Path, needed: int | None) -> None:
    if needed is None:
        return
    free = _free(part.parent)
    if free < needed + SPACE_MARGIN:
        raise DownloadError(
            f"Not enough disk space for {part.name.removesuffix('.part')}: it needs "
            f"{_fmt_size(needed)} more and {part.parent} has {_fmt_size(free)} free. Free some "
            f"space (or set DECLIP_HOME to a larger disk) and run the download again.",
            "disk",
        )


def _free(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def _http_error(url: str, status: int, reason: str | None) -> DownloadError:
    what = f"HTTP {status}{' ' + str(reason) if reason else ''}"
    if status == 404:
        todo = (
            "Check the model name; with --url or DECLIP_MODELS_URL check that the mirror "
            "holds the file at the path given in docs/MODELS.md."
        )
    elif status in (401, 403):
        todo = (
            "The server refuses access: the file may have moved or the mirror needs "
            "permissions. Download it by other means and use `declip models import FILE`."
        )
    elif status >= 500:
        todo = "The server has a problem: try again later, or use a mirror."
    else:
        todo = "Check the URL, or use a mirror (--url / DECLIP_MODELS_URL)."
    return DownloadError(f"The server answered {what} for {url}. {todo}", "http", status=status)


def _connection_error(url: str, exc: BaseException) -> DownloadError:
    host = urlsplit(url).netloc or url
    if isinstance(exc, ValueError):
        return DownloadError(f"'{url}' is not a usable URL ({exc}). Give an http:// or https:// URL.", "connection")
    return DownloadError(
        f"Could not connect to {host} ({_reason(exc)}). Check the network connection and "
        "proxy settings (HTTPS_PROXY), or point --url / DECLIP_MODELS_URL to a mirror this "
        "machine can reach.",
        "connection",
    )


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None)
    if isinstance(inner, BaseException):
        exc = inner
    elif isinstance(inner, str) and inner:
        return inner
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection closed before the end of the file"
    text = getattr(exc, "strerror", None) or str(exc)
    return text or type(exc).__name__


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_meta(path: Path, meta: dict[str, Any]) -> None:
    path.write_text(json.dumps(meta), "utf-8")


def _remove(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _fmt_size(n: int | None) -> str:
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def format_size(n: int | None) -> str:
    """Human size in decimal units (1.9 GB), as used in the registry and progress text."""
    return _fmt_size(n)


# ----------------------------------------------------------------- sources (mirror)


def mirror_base(base_url: str | None = None) -> str | None:
    """The mirror to use: the argument, else $DECLIP_MODELS_URL, else None (the origin)."""
    base = base_url if base_url is not None else os.environ.get(MIRROR_ENV, "")
    return base.strip() or None


def source_url(entry: CheckpointEntry | BackboneEntry, base_url: str | None = None) -> str:
    """Where `entry` is fetched from: the mirror's `<base>/<mirror_path>` or the origin."""
    base = mirror_base(base_url)
    return join_url(base, entry.mirror_path) if base else entry.url


# ----------------------------------------------------------------- OpenAI backbones


def ensure_backbone(
    entry: BackboneEntry,
    *,
    base_url: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    retries: int = 3,
    retry_delay: float = 1.0,
) -> Path:
    """`$DECLIP_HOME/downloads/<file>`, downloaded if missing, its SHA-256 checked either way.

    The files are kept after the install: every fusion model needs the same two, and
    re-downloading 1.2 GB for each would be wasteful. A cached copy that no longer
    matches its published hash is deleted and downloaded again.
    """
    dest = downloads_dir() / entry.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        if dest.exists():
            digest = _hash_file(dest, progress, cancel)
            if digest == entry.sha256:
                return dest
            dest.unlink()  # damaged or replaced on disk: fetch a clean copy
        _fetch_locked(source_url(entry, base_url), dest, sha256=entry.sha256, progress=progress,
                      cancel=cancel, retries=retries, retry_delay=retry_delay, max_bytes=entry.max_size)
    return dest


def _hash_file(path: Path, progress: ProgressCallback | None, cancel: threading.Event | None) -> str:
    size = path.stat().st_size
    hasher = hashlib.sha256()
    done = 0
    last = 0.0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("Cancelled while checking a cached download.")
            hasher.update(chunk)
            done += len(chunk)
            now = time.monotonic()
            if progress is not None and now - last >= PROGRESS_INTERVAL:
                last = now
                progress(Progress(stage="verify", label=path.name, done=done, total=size))
    return hasher.hexdigest()


# ------------------------------------------------------------------ install a model


@dataclass
class InstallResult:
    entry: CheckpointEntry
    card: Any  # engine.models.ModelCard of the installed model
    already_installed: bool = False
    source_url: str | None = None
    source_sha256: str | None = None
    resumed: bool = False
    backbone_files: list[Path] = field(default_factory=list)


def installed_cards(root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Installed models' cards as plain dicts (name → card), from the model store.

    Light (json, no torch): the download dialog calls this on the UI thread to mark
    what is installed. Bundled models are left out: they are never downloads.
    """
    from declip_desktop.engine.models import ModelStore  # torch-free module

    store = ModelStore(root=root if root is not None else models_dir(), bundled=None)
    return {m.name: m.card.to_dict() for m in store.installed()}


def download_model(
    name: str,
    *,
    url: str | None = None,
    base_url: str | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    store: Any = None,
    retries: int = 3,
    retry_delay: float = 1.0,
) -> InstallResult:
    """Download the registry checkpoint `name` and install it as `name`.

    `url`: fetch the checkpoint itself from this exact URL (a local server, a mirror).
    `base_url` (else $DECLIP_MODELS_URL): a mirror for every file, including OpenAI's.
    `force`: download and reinstall even if `name` is installed. Because the authors
    publish no checksums, a re-download must then match the SHA-256 recorded in the
    installed card when the model was first downloaded; a different file is refused.
    `store`: an `engine.models.ModelStore` (default: the user's model directory).
    """
    try:
        entry = get_checkpoint(name)
    except KeyError as exc:
        raise DownloadError(str(exc), "unknown-model") from None

    cards = installed_cards(getattr(store, "root", None))
    existing = cards.get(entry.name)
    if existing is not None and not force:
        from declip_desktop.engine.models import ModelCard

        return InstallResult(entry=entry, card=ModelCard.from_dict(existing), already_installed=True,
                             source_sha256=existing.get("source_sha256"))

    backbone_files = [
        ensure_backbone(b, base_url=base_url, progress=progress, cancel=cancel,
                        retries=retries, retry_delay=retry_delay)
        for b in backbones_for(entry)
    ]

    ckpt_url = url or source_url(entry, base_url)
    pinned = entry.sha256 or (existing or {}).get("source_sha256")
    dest = downloads_dir() / entry.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    note = dest.with_name(dest.name + ".source.json")
    # Held from download to install: a second process must neither append to our
    # `.part` nor delete the finished file while we import it.
    with _exclusive(dest):
        fetched = _reusable_download(dest, note, ckpt_url, pinned, progress, cancel)
        if fetched is None:
            try:
                fetched = _fetch_locked(ckpt_url, dest, sha256=pinned, progress=progress, cancel=cancel,
                                        retries=retries, retry_delay=retry_delay, max_bytes=entry.max_size)
            except DownloadError as exc:
                if exc.kind == "checksum" and not entry.sha256:
                    # The pin is the hash recorded when this model was first installed.
                    raise DownloadError(
                        f"The file downloaded from {ckpt_url} differs from the one {entry.name} was "
                        f"installed from (SHA-256 {pinned}, recorded in its model card). It has been "
                        "deleted and the installed model is untouched. If you trust the new file "
                        f"(e.g. the authors re-published it), run `declip models remove {entry.name}` "
                        "and download it again.",
                        "checksum",
                    ) from None
                raise
            _write_meta(note, {"url": ckpt_url, "sha256": fetched.sha256, "final_url": fetched.final_url})
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled(f"Cancelled before installing {entry.name}; the download is kept in {dest}.")

        if progress is not None:
            progress(Progress(stage="import", label=entry.name))

        def import_progress(message: str) -> None:
            if progress is not None:
                progress(Progress(stage="import", label=entry.name, detail=str(message)))

        card = _install(entry, fetched, backbone_files, ckpt_url, note, replace=existing is not None,
                        store=store, progress=import_progress)
        # The safetensors copy is what the app runs; the 2 GB pickle is no longer needed
        # (its SHA-256 stays in the card as source_sha256).
        _remove(dest, note)
    return InstallResult(entry=entry, card=card, source_url=ckpt_url, source_sha256=fetched.sha256,
                         resumed=fetched.resumed, backbone_files=backbone_files)


def _reusable_download(
    dest: Path,
    note: Path,
    url: str,
    pinned: str | None,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> FetchResult | None:
    """A complete download left by an install that failed afterwards (disk full while
    converting, a crash): reused when it came from the same URL and still has the hash
    it had when it was verified, so 2 GB are not fetched twice."""
    if not dest.exists():
        return None
    meta = _read_meta(note)
    recorded = meta.get("sha256")
    if meta.get("url") != url or not recorded or (pinned and recorded != pinned):
        return None
    if _hash_file(dest, progress, cancel) != recorded:
        return None
    return FetchResult(path=dest, sha256=recorded, size=dest.stat().st_size, resumed=False, attempts=0,
                       final_url=meta.get("final_url"))


def _install(
    entry: CheckpointEntry,
    fetched: FetchResult,
    clip_weights: Sequence[Path],
    url: str,
    note: Path,
    *,
    replace: bool,
    store: Any,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """Hand the verified file to the same importer as `declip models import`, then note
    in the card where the file came from (its hash is the card's `source_sha256`).

    The file must be the architecture the registry names (e.g. `vit-ldm` is ViT-L/14 layer20
    conv-20); anything else is refused before it is written. With `replace` (`--force`), the
    new model is built in a hidden staging folder beside the store and swapped in only once
    it is complete, so a failed download or import leaves the installed model as it was.
    """
    from declip_desktop.engine import models as model_store  # the importer imports torch

    store = store or model_store.ModelStore()
    expected = (entry.backbone, entry.layer, entry.decoder)
    target = model_store.ModelStore(root=store.root / STAGING_DIR, bundled=None) if replace else store
    try:
        if replace:
            shutil.rmtree(target.root, ignore_errors=True)  # leftovers of an earlier failed attempt
        card = model_store.import_checkpoint(
            fetched.path, name=entry.name, clip_weights=[Path(p) for p in clip_weights], store=target,
            progress=progress, expected_architecture=expected, adopt_default=not replace,
        )
        _record_download(target, card, url, fetched, entry)
        if replace:
            _swap_in(target, store, entry.name)
    except model_store.ModelError as exc:
        _remove(fetched.path, note)
        raise DownloadError(
            f"The file downloaded from {url} is not a usable DeCLIP checkpoint for {entry.name}: {str(exc).rstrip('.')}. "
            "It has been deleted and nothing was installed"
            + (f" (the installed {entry.name} is untouched)" if replace else "")
            + ". If you used --url or a mirror, check that it serves the right file.",
            "checkpoint",
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DownloadError(
                f"The disk filled up while installing {entry.name} into {store.root}. "
                f"The download is kept in {fetched.path}; free some space and run the "
                "same download again: the kept file is re-checked and installed without "
                "fetching it twice.",
                "disk",
            ) from None
        raise
    finally:
        if replace:
            shutil.rmtree(store.root / STAGING_DIR, ignore_errors=True)
    return card


#: Hidden folder inside the model store where `--force` builds the replacement model.
STAGING_DIR = ".staging"


def _swap_in(staging: Any, store: Any, name: str) -> None:
    """Move a complete staged model over the installed one. The old card goes first: during
    the two renames the model is invisible (a card is what makes a model listed), never a card
    paired with weights it does not describe."""
    new_weights, new_card = staging.paths_for(name)
    weights, card = store.paths_for(name)
    _remove(card)
    os.replace(new_weights, weights)
    os.replace(new_card, card)


def _record_download(store: Any, card: Any, url: str, fetched: FetchResult, entry: CheckpointEntry) -> None:
    """Add the download's provenance to the installed card (atomically rewritten)."""
    card.extra["download"] = {
        "url": url,
        # after redirects: the server that actually sent the bytes
        "final_url": fetched.final_url or url,
        "sha256": fetched.sha256,
        "registry_name": entry.name,
        "reference": (
            "published SHA-256" if entry.sha256 else
            "first verified download: the authors publish no checksum; later downloads must match it"
        ),
        "downloaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _weights, card_path = store.paths_for(card.name)
    tmp = card_path.with_name(card_path.name + ".tmp")
    tmp.write_text(card.to_json(), encoding="utf-8")
    os.replace(tmp, card_path)
