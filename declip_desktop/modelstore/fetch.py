"""`fetch(url, dest, …)`: one URL streamed to disk, resumable, hash-checked.

The file grows as `<dest>.part` (with a small `.part.json` beside it); an interrupted transfer
resumes with an HTTP Range request (validated by `http_checks`: a server that answers 200
instead is restarted from zero). Free disk space is checked before writing, the bytes are
hashed while written, a SHA-256 mismatch is refused (the bad file is deleted) and the file is
renamed into place only when complete. A `CancelToken` stops it between chunks; the partial
file is kept for a later resume. The only network access of the application.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declip_desktop.common.hashing import CHUNK
from declip_desktop.common.progress import CancelToken
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.modelstore.download_errors import (
    DownloadCancelled,
    DownloadError,
    check_space,
    connection_error,
    failure_reason,
    format_size,
    free_space,
    http_error,
    too_large,
)
from declip_desktop.modelstore.http_checks import (
    RedirectGuard,
    Restart,
    check_scheme,
    content_range_total,
    parse_content_range,
)
from declip_desktop.modelstore.partial_files import exclusive, read_meta, remove_files, write_meta

#: Bytes read per network call. Small enough that cancel and progress stay responsive.
READ_SIZE = 256 * 1024


#: How often progress callbacks fire at most (seconds).
PROGRESS_INTERVAL = 0.1


USER_AGENT = f"DeCLIP-Desktop/{SOFTWARE_VERSION} (+model download)"


@dataclass(frozen=True)
class Progress:
    """One progress report. `stage` is "download", "verify" (hashing a cached or partial
    file), "import" (converting to safetensors; no byte counts) or "prepare" (the app converting
    the installed model for this computer, `detail` saying what)."""

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


def fetch(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
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
    check_scheme(url)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(dest):
        return fetch_locked(url, dest, sha256=sha256, progress=progress, cancel=cancel,
                             retries=retries, retry_delay=retry_delay, timeout=timeout, max_bytes=max_bytes)


def fetch_locked(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    retries: int,
    retry_delay: float,
    timeout: float = 30.0,
    max_bytes: int | None = None,
) -> FetchResult:
    """`fetch` for a caller that already holds `exclusive(dest)`."""
    check_scheme(url)
    part = dest.with_name(dest.name + ".part")
    meta_path = dest.with_name(dest.name + ".part.json")
    label = dest.name
    expected = sha256.lower() if sha256 else None
    if dest.exists():
        dest.unlink()  # the caller asked for a fresh copy; never mix old and new bytes
    meta = read_meta(meta_path)
    if part.exists() and meta.get("url") != url:
        # A part from another URL (another mirror, another file) is not ours to extend.
        remove_files(part, meta_path)
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
                    f"The download of {url} was cut off after {format_size(cut.have)}"
                    f"{' of ' + format_size(cut.total) if cut.total else ''} ({cut.reason}). "
                    "The partial file is kept: run the same download again to resume it.",
                    "incomplete",
                ) from None
            if cancel is not None:
                cancel.wait(retry_delay * attempts)  # a cancel cuts the pause short
            else:
                time.sleep(retry_delay * attempts)
            meta = read_meta(meta_path)
            continue
        except Restart:
            # Server ignored or refused our Range request: start over, cleanly.
            remove_files(part)
            meta = read_meta(meta_path)
            continue
        except DownloadError as exc:
            if exc.kind in ("too-large", "redirect"):
                remove_files(part, meta_path)  # nothing of it is worth resuming
                raise
            if exc.kind in ("connection", "http") and part.exists() and part.stat().st_size:
                # e.g. the network went away between two resumes: say what is kept.
                raise DownloadError(
                    f"{exc} The {format_size(part.stat().st_size)} downloaded so far are kept; "
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
        remove_files(part, meta_path)
        raise DownloadError(
            f"The file downloaded from {url} has SHA-256 {digest}, but {expected} was expected: "
            "it is damaged or is not the published file. It has been deleted and nothing was "
            "installed. Run the download again; if the mismatch repeats, the server (or mirror) "
            "holds a different file — download from the original host or fix the mirror.",
            "checksum",
        )
    os.replace(part, dest)
    remove_files(meta_path)
    return FetchResult(path=dest, sha256=digest, size=size, resumed=resumed_any, attempts=attempts,
                       final_url=outcome.final_url)


class _CutOff(Exception):
    def __init__(self, reason: str, have: int, total: int | None, hasher: Any = None):
        super().__init__(reason)
        self.reason, self.have, self.total, self.hasher = reason, have, total, hasher


@dataclass
class _Outcome:
    resumed: bool
    hasher: Any  # covers the whole file (a fresh one when the server ignored Range)
    final_url: str | None = None


def _transfer(
    url: str,
    part: Path,
    meta_path: Path,
    meta: dict[str, Any],
    offset: int,
    hasher: Any,
    label: str,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
    timeout: float,
    max_bytes: int | None = None,
) -> _Outcome:
    """One HTTP request appending to `part`. Raises _CutOff, Restart or DownloadError."""
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
        opener = urllib.request.build_opener(RedirectGuard(url))
        response = opener.open(request, timeout=timeout)  # noqa: S310 (http/https only: check_scheme, RedirectGuard)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            total = content_range_total(exc.headers.get("Content-Range"))
            exc.close()
            if total is not None and total == offset:
                return _Outcome(resumed=True, hasher=hasher)  # the part was already complete
            raise Restart() from None
        raise http_error(url, exc.code, exc.reason) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise connection_error(url, exc) from None

    with response:
        status = response.status
        final_url = response.geturl()
        if offset and status == 206:
            start, _end, total = parse_content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise Restart()
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
            raise http_error(url, status, response.reason)

        meta = {
            "url": url,
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
        }
        # A weak ETag cannot be used with If-Range (RFC 9110 §13.1.5).
        if meta["etag"] and meta["etag"].startswith("W/"):
            meta["etag"] = None
        if max_bytes is not None and total is not None and total > max_bytes:
            raise too_large(url, total, max_bytes, announced=True)
        check_space(part, (total - offset) if total is not None else None)
        write_meta(meta_path, meta)

        done = offset
        started = time.monotonic()
        last_report = 0.0
        try:
            with open(part, mode) as out:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelled(
                            f"Download of {label} cancelled; {format_size(done)} kept in {part.name} "
                            "— it resumes from there next time."
                        )
                    try:
                        chunk = response.read(READ_SIZE)
                    except (http.client.IncompleteRead, OSError, http.client.HTTPException) as exc:
                        out.flush()
                        raise _CutOff(failure_reason(exc), done, total, hasher) from None
                    if not chunk:
                        break
                    if max_bytes is not None and done + len(chunk) > max_bytes:
                        raise too_large(url, done + len(chunk), max_bytes, announced=False)
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
                    f"The disk holding {part.parent} is full ({format_size(free_space(part.parent))} free) "
                    f"after {format_size(done)} of {label}. Free some space and run the download "
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


def _check_cancel(cancel: CancelToken | None, part: Path) -> None:
    if cancel is not None and cancel.is_set():
        kept = f"; the partial file {part.name} is kept for a later resume" if part.exists() else ""
        raise DownloadCancelled(f"Download cancelled{kept}.")


