"""Download failures as one error type whose message says what happened and what to do.

`DownloadError.kind` lets callers react without parsing text; the helpers here turn HTTP
statuses, connection failures, oversized answers and a full disk into such errors.
"""

from __future__ import annotations

import http.client
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

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


#: Disk space we want left over after a download, beyond the file itself.
SPACE_MARGIN = 64 * 1024 * 1024


def too_large(url: str, size: int, limit: int, announced: bool) -> DownloadError:
    what = f"announces {format_size(size)}" if announced else f"sent more than {format_size(limit)}"
    return DownloadError(
        f"The server {what} for {url}, more than this file can be ({format_size(limit)} at most). "
        "The transfer was stopped and the partial file deleted; nothing was installed. Check the "
        "URL or mirror: it does not serve the expected checkpoint.",
        "too-large",
    )


def check_space(part: Path, needed: int | None) -> None:
    if needed is None:
        return
    free = free_space(part.parent)
    if free < needed + SPACE_MARGIN:
        raise DownloadError(
            f"Not enough disk space for {part.name.removesuffix('.part')}: it needs "
            f"{format_size(needed)} more and {part.parent} has {format_size(free)} free. Free some "
            f"space (or set DECLIP_HOME to a larger disk) and run the download again.",
            "disk",
        )


def free_space(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def http_error(url: str, status: int, reason: str | None) -> DownloadError:
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


def connection_error(url: str, exc: BaseException) -> DownloadError:
    host = urlsplit(url).netloc or url
    if isinstance(exc, ValueError):
        return DownloadError(f"'{url}' is not a usable URL ({exc}). Give an http:// or https:// URL.", "connection")
    return DownloadError(
        f"Could not connect to {host} ({failure_reason(exc)}). Check the network connection and "
        "proxy settings (HTTPS_PROXY), or point --url / DECLIP_MODELS_URL to a mirror this "
        "machine can reach.",
        "connection",
    )


def failure_reason(exc: BaseException) -> str:
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


def format_size(n: int | None) -> str:
    """Human size in decimal units (1.9 GB), as used in the registry and progress text."""
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
