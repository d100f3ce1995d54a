"""How a cluster run is laid out: actors, resources, where the model and the evidence come from."""

from __future__ import annotations

from dataclasses import dataclass

from declip_desktop.cluster.connect import ClusterError


@dataclass
class ClusterOptions:
    actors: int | None = None  # None: one per GPU, else one per `cpus_per_actor` cores of the cluster
    cpus_per_actor: int = 1
    gpus_per_actor: float | None = None  # None: 1 when the cluster has GPUs and device is not "cpu"
    device: str = "auto"
    batch_size: int = 4
    fast: bool = False
    start_with: int = 1  # actors that must have accepted the model before work is sent (all: a fair start)
    in_flight: int = 2  # batches queued per actor, so the next one is there when a batch finishes
    model_from: str = "ship"  # "ship" (object store) | "installed" (on each node, same SHA-256)
    evidence_from: str = "driver"  # "driver" (bytes shipped) | "shared" (read on the node from shared_root)
    shared_root: str | None = None  # the case folder as mounted on the nodes (default: the same path)
    models_dir: str | None = None  # where nodes look for installed models (default: their DECLIP_HOME)
    cache_dir: str | None = None  # where nodes keep shipped weights (default: DECLIP_HOME/cache)
    max_attempts: int = 3  # lost workers an item may see before it is recorded as failed
    max_restarts: int = 1  # Ray restarts a crashed actor this often (and re-runs its tasks)
    ready_timeout: float = 600.0  # seconds to wait for the actors to load the model

    def check(self) -> None:
        if self.model_from not in ("ship", "installed"):
            raise ClusterError(f"model source {self.model_from!r}: use 'ship' or 'installed'")
        if self.evidence_from not in ("driver", "shared"):
            raise ClusterError(f"evidence source {self.evidence_from!r}: use 'driver' or 'shared'")
        for name in ("cpus_per_actor", "batch_size", "in_flight", "max_attempts", "start_with"):
            if int(getattr(self, name)) < 1:
                raise ClusterError(f"{name.replace('_', ' ')} must be at least 1 (got {getattr(self, name)})")
        if self.gpus_per_actor is not None and not 0 <= self.gpus_per_actor <= 64:
            raise ClusterError(f"GPUs per actor must be between 0 and 64 (got {self.gpus_per_actor})")
        if self.actors is not None and self.actors < 1:
            raise ClusterError(f"the number of actors must be at least 1 (got {self.actors})")
