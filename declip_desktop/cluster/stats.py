"""What a cluster run reports: progress events, per-node figures, the run's summary."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ClusterProgress:
    done: int  # evidence finished in this run (stored results + failures)
    total: int
    evidence_id: int | None
    #: "started" (workers ready) | "done" | "failed" | "worker_lost" | "stopped" | "finished"
    status: str
    eta_seconds: float | None
    score: float | None = None
    error: str | None = None
    node: str | None = None  # host name of the node that made this result


@dataclass
class NodeStats:
    node_id: str
    address: str = ""
    hostname: str = ""
    device: str = ""  # e.g. "NVIDIA H100 80GB HBM3" or "<host> CPU"
    actors: int = 0  # actors that accepted the model here
    items: int = 0  # results stored from this node
    failures: int = 0  # items recorded as failed while on this node
    actor_deaths: int = 0
    busy_seconds: float = 0.0  # model forward time summed over its results
    refused: str | None = None  # why this node's worker was refused (model hash, version)

    @property
    def images_per_second(self) -> float | None:
        """Model throughput while busy (forward time only; what a node adds to the cluster)."""
        return self.items / self.busy_seconds if self.busy_seconds > 0 else None


@dataclass
class ClusterRunSummary:
    total: int = 0
    done: int = 0
    failed: int = 0
    stopped: bool = False
    message: str = ""
    seconds: float = 0.0
    model_name: str = ""
    model_sha256: str = ""
    address: str = ""
    failures: list[tuple[int, str]] = field(default_factory=list)
    remaining: int = 0
    nodes: list[NodeStats] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # workers refused, one line each
    actor_deaths: int = 0
    duplicates_skipped: int = 0  # results that arrived for evidence already stored with this model

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped

    @property
    def images_per_second(self) -> float | None:
        return self.done / self.seconds if self.seconds > 0 else None

    def report_lines(self) -> list[str]:
        """Per-node throughput, failures and refusals, one line each (CLI and app)."""
        lines = []
        for n in self.nodes:
            rate = f", {n.images_per_second:.2f} images/s while busy" if n.images_per_second else ""
            lines.append(f"node {n.hostname} ({n.address}) {n.device}: {n.items} stored, {n.failures} failed, "
                         f"{n.actor_deaths} workers lost{rate}")
        lines += [f"refused: {r}" for r in self.refused]
        if self.duplicates_skipped:
            lines.append(f"{self.duplicates_skipped} results arrived twice and were stored once")
        return lines

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["nodes"] = [asdict(n) | {"images_per_second": n.images_per_second} for n in self.nodes]
        data["failures"] = [{"evidence_id": i, "error": e} for i, e in self.failures]
        return data
