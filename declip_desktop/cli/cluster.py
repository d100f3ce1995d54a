"""`declip cluster info ADDRESS` and the `--cluster` options of `declip case analyze` (docs/CLUSTER.md).

Ray is optional: without it both say how to install it and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from declip_desktop.cli import FATAL, OK, SOME_FAILED, jsonout

ADDRESS_HELP = ("'local' (start a Ray on this machine, 127.0.0.1 only), 'auto' (RAY_ADDRESS, else the Ray "
                "running here), ray://HOST:PORT (Ray Client) or HOST:PORT (a cluster this machine belongs to)")


def _err(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return FATAL


def add_analyze_arguments(p: argparse.ArgumentParser) -> None:
    """The cluster options of `declip case analyze`."""
    g = p.add_argument_group("cluster (needs the cluster extra: pip install 'declip-desktop[cluster]')")
    g.add_argument("--cluster", metavar="ADDRESS", help="analyse on a Ray cluster: " + ADDRESS_HELP)
    g.add_argument("--actors", type=int, help="model actors (default: one per GPU, else one per --cpus-per-actor cores)")
    g.add_argument("--cpus-per-actor", type=int, default=1, help="CPU cores (torch threads) per actor (default: 1)")
    g.add_argument("--gpus-per-actor", type=float,
                   help="GPUs per actor, fractions allowed (default: 1 when the cluster has GPUs, else 0); "
                        "0.25 puts four actors on a GPU, for large photos whose decoding and map encoding need CPUs")
    g.add_argument("--model-from", choices=("ship", "installed"), default="ship",
                   help="ship: send the weights once through Ray's object store (default); installed: use the "
                        "model installed on each node with the same SHA-256 (a node without it is refused)")
    g.add_argument("--evidence-from", choices=("driver", "shared"), default="driver",
                   help="driver: send each file's bytes from this machine (default); shared: nodes read the "
                        "files from a folder they all mount (--shared-root) and re-hash them")
    g.add_argument("--shared-root", metavar="PATH", help="the case folder as the nodes see it (default: the same path)")
    g.add_argument("--cpus", type=int, help="with --cluster local: CPU cores the local Ray may use (default: all)")


def analyze_on_cluster(args: argparse.Namespace, case: Any, model: Any) -> int:
    """`declip case analyze DIR --cluster ADDRESS`; `case` is open, `model` a name/path or None (the
    case's pinned model, else the default)."""
    from declip_desktop.cases import CaseError
    from declip_desktop.cluster.connect import ClusterError, ClusterSession
    from declip_desktop.cluster.driver import ClusterOptions, run_on_cluster
    from declip_desktop.cluster.model_choice import choose_model

    try:
        installed, why = choose_model(case, model)
    except ClusterError as exc:
        return _err(str(exc))
    reason = {"requested": "chosen with --model", "case": "the case's model", "default": "the default model"}[why]
    print(f"Model: {installed.card.name} ({installed.sha256[:12]}…), {reason}", file=sys.stderr, flush=True)
    options = ClusterOptions(actors=args.actors, cpus_per_actor=args.cpus_per_actor,
                             gpus_per_actor=args.gpus_per_actor, device=args.device or "auto",
                             batch_size=args.batch_size, fast=args.fast, model_from=args.model_from,
                             evidence_from=args.evidence_from, shared_root=args.shared_root)
    try:
        options.check()
        session = ClusterSession(args.cluster, num_cpus=args.cpus)
        print(f"Connecting to {session.address}…", file=sys.stderr, flush=True)
        session.open()
    except ClusterError as exc:
        return _err(str(exc))
    try:
        info = session.info()
        print(f"Cluster: {len(info.alive_nodes)} node(s), {info.cpus:g} CPUs, {info.gpus:g} GPUs (Ray "
              f"{info.ray_version})", file=sys.stderr)

        def progress(event: Any) -> None:
            if event.status == "failed":
                print(f"failed: evidence {event.evidence_id}: {event.error}", file=sys.stderr, flush=True)
            elif event.status == "worker_lost":
                print(f"warning: {event.error}; its items go to the other workers", file=sys.stderr, flush=True)
            elif event.status == "done" and sys.stderr.isatty():
                print(f"\r{event.done}/{event.total}", end="", file=sys.stderr, flush=True)

        summary = run_on_cluster(case, installed, session, options, on_progress=progress, analyst=args.analyst)
    except (ClusterError, CaseError) as exc:
        return _err(str(exc))
    finally:
        session.close()
    print(f"Analysed {summary.done}, failed {summary.failed}, still queued {summary.remaining} "
          f"({summary.seconds:.1f} s, {summary.model_name} on cluster {summary.address}).")
    for line in summary.report_lines():
        print("  " + line)
    return SOME_FAILED if summary.failed else OK


def _info(args: argparse.Namespace) -> int:
    from declip_desktop.cluster.connect import ClusterError, describe

    try:
        info = describe(args.address)
    except ClusterError as exc:
        return _err(str(exc))
    if args.json:
        print(jsonout.dumps(info.as_dict(), indent=2))
        return OK
    print(f"Ray {info.ray_version} at {info.address}: {len(info.alive_nodes)} node(s) alive, "
          f"{info.cpus:g} CPUs, {info.gpus:g} GPUs")
    for n in info.nodes:
        gpus = f"{n.gpus:g} GPUs" + (f" ({', '.join(n.gpu_types)})" if n.gpu_types else "")
        print(f"  {'alive' if n.alive else 'DEAD '}  {n.hostname} ({n.address})  {n.cpus:g} CPUs, {gpus}, "
              f"{n.memory_gib:g} GiB  {n.node_id[:12]}")
    return OK


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cluster", help="Ray clusters for large cases (see docs/CLUSTER.md)",
                                   description="Inspect the Ray cluster `declip case analyze --cluster` would use.")
    sub = parser.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    p = sub.add_parser("info", help="list the cluster's nodes, CPUs and GPUs",
                       description="Connect to a Ray cluster and list its nodes, CPUs and GPUs.")
    p.add_argument("address", nargs="?", default="auto", metavar="ADDRESS", help=ADDRESS_HELP + " (default: auto)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_info)
