"""Analysing a case on a Ray cluster, with this process as the case's only writer (docs/CLUSTER.md).

Application layer, beside `analysis`: it uses `cases` and the model store and imports neither Qt nor, at
import time, Ray or torch (Ray is the optional `cluster` extra; torch runs on the workers).
"""

from declip_desktop.cluster.connect import ClusterError, ClusterInfo, ClusterSession, NodeInfo, RayMissing, parse_address
from declip_desktop.cluster.stats import ClusterProgress, ClusterRunSummary, NodeStats

__all__ = ["ClusterError", "ClusterInfo", "ClusterProgress", "ClusterRunSummary", "ClusterSession", "NodeInfo",
           "NodeStats", "RayMissing", "parse_address"]
