"""The model actor that runs on a cluster node: loads the model once, analyses batches of evidence.

The class is plain Python; `driver` wraps it with `ray.remote` when a run starts, so importing
this module needs neither Ray nor torch. Each actor:

1. gets the model by its SHA-256: either the weights shipped once through Ray's object store
   (`model_from="ship"`; written to a per-node cache folder named by the hash), or a model
   installed on the node whose card names that hash (`model_from="installed"`). The file is
   hashed before use in both cases; a node whose file differs is *refused* (it reports why and
   analyses nothing), never silently used;
2. refuses to run when its DeCLIP Desktop version differs from the driver's (every stored result
   records the software version, and the driver writes its own);
3. for every item re-hashes the evidence bytes it got (shipped from the driver, or read from a
   folder all nodes share) against the import SHA-256, runs the Localizer, and returns the map
   as 16-bit PNG bytes with the score: the driver, the only writer of the case, stores it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path
from typing import Any

from declip_desktop.common.version import SOFTWARE_VERSION


class ModelRefused(Exception):
    """This node cannot provide the model with the requested SHA-256."""


def _sha256(data: Any) -> str:
    return hashlib.sha256(memoryview(data)).hexdigest()


def _write_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    with open(tmp, "wb") as fh:
        fh.write(memoryview(data))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _default_cache_dir() -> Path:
    from declip_desktop.common.paths import declip_home

    return declip_home() / "cache" / "cluster-models"


def materialize_model(spec: dict[str, Any], weights: Any) -> Any:
    """The `InstalledModel` this node will run, checked against `spec["model_sha256"]`.

    `weights`: the shipped weights (bytes-like) or None (`model_from="installed"`).
    Raises ModelRefused with a message that names the node's file and both hashes."""
    from declip_desktop.common.hashing import sha256_file
    from declip_desktop.common.model_card import ModelCard
    from declip_desktop.modelstore.store import InstalledModel, ModelStore

    wanted = str(spec["model_sha256"])
    card = ModelCard.from_dict(dict(spec["card"]))
    if card.sha256 != wanted:
        raise ModelRefused(f"the model card sent names SHA-256 {card.sha256}, not {wanted}")
    if spec.get("model_from", "ship") == "ship":
        if weights is None:
            raise ModelRefused("no weights were shipped with the model")
        got = _sha256(weights)
        if got != wanted:
            raise ModelRefused(f"the shipped weights hash to {got}, not the model's {wanted}")
        cache = Path(spec.get("cache_dir") or _default_cache_dir())
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / f"{wanted}.safetensors"
        # A cached copy is reused only if it still hashes right; anything else is replaced.
        if not target.is_file() or sha256_file(target) != wanted:
            _write_atomic(target, weights)
        card_path = cache / f"{wanted}.json"
        _write_atomic(card_path, card.to_json().encode("utf-8"))
        installed = InstalledModel(card, target, card_path, read_only=True)
    else:
        store = ModelStore(spec.get("models_dir") or None, bundled=None)
        candidates = [m for m in store.installed() if m.card.sha256 == wanted]
        cache = Path(spec.get("cache_dir") or _default_cache_dir()) / f"{wanted}.safetensors"
        if not candidates and cache.is_file():
            candidates = [InstalledModel(card, cache, cache.with_suffix(".json"), read_only=True)]
        if not candidates:
            names = ", ".join(f"{m.name} ({m.card.sha256[:12]}…)" for m in store.installed()) or "none"
            raise ModelRefused(f"no model with SHA-256 {wanted} is installed in {store.root} (installed: {names})")
        installed = candidates[0]
    actual = sha256_file(installed.weights_path)
    if actual != wanted:
        raise ModelRefused(f"{installed.weights_path} hashes to {actual}, not the model's {wanted}")
    return installed


class ModelWorker:
    """One model per actor (one per GPU or per group of CPU cores); see the module docstring."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.localizer: Any = None
        self.refused: str | None = None
        self.load_seconds = 0.0
        self.identity = self._identity()

    def _load(self, shipped: list[Any]) -> None:
        """Load the model once per actor process. `shipped`: [ObjectRef of the weights as a uint8
        array] with model_from="ship", else []. It comes with every call rather than to the
        constructor, so an actor Ray restarts after a crash loads the model again by itself."""
        if self.localizer is not None or self.refused is not None:
            return
        t0 = time.monotonic()
        spec = self.spec
        try:
            if spec.get("software_version") != SOFTWARE_VERSION:
                raise ModelRefused(f"this node runs DeCLIP Desktop {SOFTWARE_VERSION}, the driver "
                                   f"{spec.get('software_version')}; install the same version on every node")
            weights = None
            if shipped:
                import ray

                weights = ray.get(shipped[0])  # zero-copy view of the object store's copy on this node
            installed = materialize_model(spec, weights)
            from declip_desktop.modelstore.loading import load_localizer

            self.localizer = load_localizer(installed, device=spec.get("device", "auto"), fast=bool(spec.get("fast")),
                                       batch_size=int(spec.get("batch_size", 4)), threads=spec.get("threads"))
        except ModelRefused as exc:
            self.refused = str(exc)
        self.load_seconds = time.monotonic() - t0

    @staticmethod
    def _identity() -> dict[str, Any]:
        import ray

        ctx = ray.get_runtime_context()
        return {"node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                "hostname": socket.gethostname(), "pid": os.getpid(), "actor_id": ctx.get_actor_id(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "ray_version": ray.__version__}

    def ready(self, shipped: list[Any]) -> dict[str, Any]:
        """Load the model; who this worker is and whether it accepted the model (else it is refused)."""
        self._load(shipped)
        out = dict(self.identity, refused=self.refused, load_seconds=round(self.load_seconds, 3),
                   software_version=SOFTWARE_VERSION)
        if self.localizer is not None:
            out.update(device=self.localizer.device, model_sha256=self.localizer.model_sha256,
                       parameters=self.localizer.parameters, device_name=self._device_name())
        return out

    def _device_name(self) -> str:
        if not str(self.localizer.device).startswith("cuda"):
            return socket.gethostname() + " CPU"
        import torch

        return torch.cuda.get_device_name(0)

    def pid(self) -> int:
        return os.getpid()

    def analyse(self, items: list[dict[str, Any]], shipped: list[Any]) -> list[dict[str, Any]]:
        """`items`: {evidence_id, sha256, data (bytes) | path (str on this node)}; one result dict each:
        {evidence_id, map_png, score, width, height, seconds, device, error}."""
        self._load(shipped)
        if self.localizer is None:
            raise ModelRefused(self.refused or "this worker has no model")
        from declip_desktop.common.probmaps import encode_png16

        results: list[dict[str, Any]] = [{"evidence_id": it["evidence_id"], "error": None} for it in items]
        sources, where = [], []
        for i, item in enumerate(items):
            try:
                data = item["data"] if item.get("data") is not None else Path(item["path"]).read_bytes()
            except OSError as exc:
                results[i]["error"] = f"node {self.identity['hostname']} cannot read {item.get('path')}: {exc}"
                continue
            if _sha256(data) != item["sha256"]:
                results[i]["error"] = (f"the evidence bytes on node {self.identity['hostname']} do not match the "
                                       "import SHA-256; not analysed")
                continue
            sources.append(bytes(data))
            where.append(i)
        for i, pred in zip(where, self._predict(sources)):
            res = results[i]
            if pred.error is not None:
                res["error"] = str(pred.error)
                continue
            res.update(map_png=encode_png16(pred.prob_map), score=float(pred.score), width=int(pred.width),
                       height=int(pred.height), seconds=float(pred.seconds), device=str(pred.device))
        return results

    def _predict(self, sources: list[bytes]) -> list[Any]:
        if not sources:
            return []
        try:
            return self.localizer.predict(sources)
        except Exception as exc:
            if type(exc).__name__ != "OutOfDeviceMemory" or len(sources) == 1:
                raise
            return [p for s in sources for p in self.localizer.predict([s])]  # one at a time fits more often
