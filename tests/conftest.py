"""Test isolation: every test gets its own DECLIP_HOME and never touches the network."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Keep torch on the CPU threads we have; tests are small and oversubscription only hurts.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# PyTorch runs the models unless a test asks for OpenVINO (the dev extra installs it): converting
# each test's model costs seconds; tests/test_backend_openvino.py covers that path, asking for it.
os.environ.setdefault("DECLIP_CPU_BACKEND", "torch")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("declip_home")
    monkeypatch.setenv("DECLIP_HOME", str(home))
    return home


_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
        raise RuntimeError(f"tests must not touch the network (tried to connect to {address!r})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
