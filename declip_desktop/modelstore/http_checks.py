"""What a download may trust from the server: URL schemes, redirects, Content-Range.

An https download never follows a redirect to plain http or to another protocol; a 206
answer counts as a resume only when its Content-Range starts where our partial file ends
(`Restart` otherwise: the transfer starts over from zero).
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from urllib.parse import urljoin, urlsplit

from declip_desktop.modelstore.download_errors import DownloadError


def check_scheme(url: str) -> None:
    """urllib would also open file:, ftp: and data: URLs; downloads are HTTP(S) only
    (a file already on disk is installed with `declip models import FILE`)."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise DownloadError(
            f"'{url}' is not an http:// or https:// URL. Give the address of a web server; "
            "for a file already on this machine use `declip models import FILE`.",
            "connection",
        )


class Restart(Exception):
    pass


def allowed_redirect_schemes(url: str) -> frozenset[str]:
    """https always; http only when the configured URL is http itself (a lab mirror).

    An https download must never be downgraded to plain http (a network attacker could then
    swap the file), and never leave HTTP altogether: urllib would follow ftp:// too."""
    return frozenset({"https", "http"}) if urlsplit(url).scheme.lower() == "http" else frozenset({"https"})


class RedirectGuard(urllib.request.HTTPRedirectHandler):
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


def parse_content_range(value: str | None) -> tuple[int, int, int | None]:
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
        raise Restart() from None


def content_range_total(value: str | None) -> int | None:
    """The TOTAL of a 416's `bytes */TOTAL`."""
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None
