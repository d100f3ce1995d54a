"""Joining or starting a Ray cluster, and describing its nodes. No Qt, no torch, no SQL.

Addresses (`parse_address`):
- `local`: start a private Ray on this machine, bound to 127.0.0.1 only, with a fresh random
  token (Ray's token authentication) and its temp folder in a short new directory under /tmp
  (Ray's Unix sockets must fit in 107 bytes); everything is stopped and removed on `close()`.
- `auto`: the cluster named by `RAY_ADDRESS`, else the one Ray finds running on this machine.
- `ray://HOST:PORT`: a remote cluster through Ray Client (`pip install declip-desktop[cluster]`).
- `HOST:PORT`: the GCS address of a cluster this machine is a node of (`ray start --address`).

Ray is an optional dependency: importing this module never imports it; `ClusterSession.open`
raises `RayMissing` with the install command when it is not there.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

#: Environment variables `local` sets while its Ray runs (restored on close).
#: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes Ray use the loopback address as the node's IP, so
#: every server it starts listens on 127.0.0.1 only (on Linux it would listen on all interfaces).
_LOCAL_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
_HOST_PORT = re.compile(r"^(?:\[[0-9A-Fa-f:]+\]|[A-Za-z0-9._-]+):\d{1,5}$")


class ClusterError(Exception):
    """A cluster that cannot be reached or used; the message says what happened and what to do."""


class RayMissing(ClusterError):
    """Ray is not installed in this Python environment."""


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str  # the node's IP as Ray knows it
    hostname: str
    alive: bool
    cpus: float
    gpus: float
    memory_gib: float
    gpu_types: tuple[str, ...] = ()  # Ray's accelerator_type resources, e.g. ("H100",)


@dataclass(frozen=True)
class ClusterInfo:
    address: str  # what the user asked for (local, auto, ray://…)
    ray_version: str
    nodes: tuple[NodeInfo, ...] = field(default_factory=tuple)

    @property
    def alive_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.alive]

    @property
    def cpus(self) -> float:
        return sum(n.cpus for n in self.alive_nodes)

    @property
    def gpus(self) -> float:
        return sum(n.gpus for n in self.alive_nodes)

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "ray_version": self.ray_version, "cpus": self.cpus, "gpus": self.gpus,
                "nodes": [n.__dict__ | {"gpu_types": list(n.gpu_types)} for n in self.nodes]}


def parse_address(text: str | None) -> str:
    """Normalise a `--cluster` value; ClusterError for something that is no Ray address."""
    value = (text or "").strip()
    if not value:
        value = "auto"
    if value.lower() in ("local", "auto"):
        return value.lower()
    if value.startswith("ray://"):
        if not _HOST_PORT.match(value[len("ray://"):]):
            raise ClusterError(f"{value!r} is not a Ray Client address. Write ray://HOST:PORT (port 10001 by default)")
        return value
    if _HOST_PORT.match(value):
        return value
    raise ClusterError(f"{value!r} is not a cluster address. Use 'local' (a Ray on this machine), 'auto' "
                       "(RAY_ADDRESS or the Ray running here), ray://HOST:PORT or HOST:PORT")


def import_ray():  # noqa: ANN201 - the ray module
    try:
        import ray
    except ImportError as exc:
        raise RayMissing(f"Ray is not installed ({exc}). Install the cluster extra: "
                         "pip install 'declip-desktop[cluster]'") from None
    return ray


class ClusterSession:
    """A connection to a Ray cluster for the length of one `with` block (or open/close).

    Only one session per process can be open: Ray allows one connection per driver."""

    def __init__(self, address: str | None = "local", *, num_cpus: int | None = None, num_gpus: int | None = None,
                 object_store_bytes: int | None = None):
        self.address = parse_address(address)
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.object_store_bytes = object_store_bytes
        self.temp_dir: str | None = None
        self._saved_env: dict[str, str | None] = {}
        self._ray: Any = None

    @property
    def is_local(self) -> bool:
        return self.address == "local"

    @property
    def ray(self):  # noqa: ANN201
        if self._ray is None:
            raise ClusterError("the cluster session is not open")
        return self._ray

    def __enter__(self) -> ClusterSession:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> ClusterSession:
        if self._ray is not None:
            return self
        if self.is_local:
            self._set_local_env()
        try:
            ray = import_ray()
        except RayMissing:
            self._restore_env()
            raise
        if ray.is_initialized():
            self._restore_env()
            raise ClusterError("this program is already connected to a Ray cluster; finish that run first")
        kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if self.is_local:
                # The constant is read when ray is first imported; set it too in case it was imported earlier.
                ray._private.ray_constants.ENABLE_RAY_CLUSTER = False
                self.temp_dir = tempfile.mkdtemp(prefix="declip-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
                ray.init(num_cpus=self.num_cpus, num_gpus=self.num_gpus, include_dashboard=False,
                         object_store_memory=self.object_store_bytes, _temp_dir=self.temp_dir, **kwargs)
            else:
                address = (os.environ.get("RAY_ADDRESS") or "auto") if self.address == "auto" else self.address
                ray.init(address=address, **kwargs)
        except ClusterError:
            self._cleanup_after_failure()
            raise
        except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError…
            self._cleanup_after_failure()
            raise ClusterError(self._connect_hint(exc)) from exc
        self._ray = ray
        return self

    def _connect_hint(self, exc: Exception) -> str:
        what = "start a local Ray" if self.is_local else f"connect to the Ray cluster at {self.address}"
        text = f"could not {what}: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        if self.address.startswith("ray://") and "grpc" in str(exc).lower():
            return text + ". Ray Client needs grpcio: pip install 'declip-desktop[cluster]'"
        if "auth" in str(exc).lower() or "token" in str(exc).lower():
            return text + (". The cluster uses token authentication: set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) "
                           "to its token, see docs/CLUSTER.md")
        if self.is_local:
            return text + ". Check free memory and /tmp space"
        return text + ". Check the address, that the cluster is running and that this machine may reach it"

    def info(self) -> ClusterInfo:
        """The cluster's nodes with their CPUs, GPUs and memory (dead nodes included, marked)."""
        ray = self.ray
        nodes = []
        for raw in ray.nodes():
            res = raw.get("Resources", {}) or {}
            nodes.append(NodeInfo(
                node_id=str(raw.get("NodeID", "")), address=str(raw.get("NodeManagerAddress", "")),
                hostname=str(raw.get("NodeManagerHostname", "")), alive=bool(raw.get("Alive", False)),
                cpus=float(res.get("CPU", 0.0)), gpus=float(res.get("GPU", 0.0)),
                memory_gib=round(float(res.get("memory", 0.0)) / 2**30, 2),
                gpu_types=tuple(sorted(k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")))))
        return ClusterInfo(address=self.address, ray_version=str(ray.__version__), nodes=tuple(nodes))

    def close(self) -> None:
        ray, self._ray = self._ray, None
        if ray is not None:
            ray.shutdown()
        self._restore_env()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)  # Ray's logs and sockets of this run only
            self.temp_dir = None

    # ------------------------------------------------------------------ internals

    def _set_local_env(self) -> None:
        wanted = dict(_LOCAL_ENV)
        if "RAY_AUTH_MODE" not in os.environ:
            # Token authentication with a token that lives only in this process's environment (the
            # Ray processes it starts inherit it); nothing is written to ~/.ray.
            wanted.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
        for key, value in wanted.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def _cleanup_after_failure(self) -> None:
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
        finally:
            self._restore_env()
            if self.temp_dir is not None:
                shutil.rmtree(self.temp_dir, ignore_errors=True)
                self.temp_dir = None


def describe(address: str | None) -> ClusterInfo:
    """Connect, list the nodes, disconnect (for `declip cluster info` and the app's dialog)."""
    with ClusterSession(address) as session:
        return session.info()
