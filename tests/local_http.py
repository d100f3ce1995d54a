"""A file server on 127.0.0.1 for download tests: Range support plus the misbehaviours
the downloader must survive (a connection dropped mid-body, Range ignored, slow bodies).

Written for these tests (http.server's SimpleHTTPRequestHandler has no Range support).
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class Served:
    """What the server holds and how it behaves; tests change it between requests."""

    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False  # answer every GET with 200 and the whole file
    drops: dict[str, int] = field(default_factory=dict)  # path -> drop after N body bytes, once
    chunk: int = 64 * 1024  # body write size
    delay: float = 0.0  # seconds to sleep between body chunks (slow server)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    wrong_range_start: bool = False  # answer 206 with a Content-Range that starts at 0
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location of a 302
    endless: set[str] = field(default_factory=set)  # paths whose body never ends (no Content-Length)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return hashlib.sha256(data).hexdigest()


_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _handler(served: Served):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = unquote(self.path.split("?", 1)[0])  # like a real server: %2B → +
            rng = self.headers.get("Range")
            with served.lock:
                served.requests.append((path, rng))
                data = served.files.get(path)
                drop_at = served.drops.pop(path, None)
                location = served.redirects.get(path)
            if location is not None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path in served.endless:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    while True:
                        self.wfile.write(b"\0" * served.chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return
            if data is None:
                body = b"not found"
                self.send_response(404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
            start, end, status = 0, len(data) - 1, 200
            m = _RANGE.match(rng or "")
            if m and not served.ignore_range:
                if_range = self.headers.get("If-Range")
                if if_range is None or if_range == etag:
                    start = int(m.group(1))
                    if m.group(2):
                        end = min(int(m.group(2)), len(data) - 1)
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
            body = data[start : end + 1]
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "none" if served.ignore_range else "bytes")
            if status == 206:
                shown = 0 if served.wrong_range_start else start
                self.send_header("Content-Range", f"bytes {shown}-{end}/{len(data)}")
            self.end_headers()
            sent = 0
            try:
                while sent < len(body):
                    if drop_at is not None and sent >= drop_at:
                        # Cut the connection mid-body, as a flaky network would.
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    n = served.chunk if drop_at is None else min(served.chunk, drop_at - sent)
                    self.wfile.write(body[sent : sent + n])
                    sent += n
                    if served.delay:
                        time.sleep(served.delay)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away (cancel): fine

    return Handler


class LocalServer:
    """`with LocalServer() as srv: srv.url("/a.pth")`."""

    def __init__(self, served: Served | None = None):
        self.served = served or Served()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.served))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/") -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# Fixtures shared by the download tests (imported by name in each test module).
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """urllib honours proxy variables; a proxy would turn 127.0.0.1 into a remote host."""
    from declip_desktop.modelstore import registry

    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv(registry.MIRROR_ENV, raising=False)


@pytest.fixture
def server():
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def tiny_registry(monkeypatch):
    """Registry entries that expect the tiny test networks (tests/factories.py: ViT layer1 conv-4)
    instead of ViT-L/14 layer20 conv-20: the download refuses a file of another architecture."""
    import dataclasses

    from declip_desktop.modelstore import registry

    for name, entry in list(registry.CHECKPOINTS.items()):
        monkeypatch.setitem(registry.CHECKPOINTS, name, dataclasses.replace(entry, layer="layer1", decoder="conv-4"))
    return registry
