"""`declip` / `python -m declip_desktop`: the headless command line.

Each subcommand lives in its own module here with a `register(subparsers)` function
that adds its parser and sets `func` (called with the parsed args, returns an exit
code). Modules import heavy libraries (torch, Qt) inside their handlers, never at
module level, so `declip case status` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from declip_desktop.common.version import SOFTWARE_VERSION

#: Exit codes shared by every subcommand: success, some items failed (the others were done),
#: nothing could be done (usage error, no model, unreadable case).
OK, SOME_FAILED, FATAL = 0, 1, 2

#: Subcommand modules, in the order `declip --help` lists them.
SUBCOMMAND_MODULES: list[str] = ["case", "eval", "train", "synth", "models", "analyze", "key", "cluster"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="declip",
        description="DeCLIP Desktop: localize generative edits in photos, manage forensic cases.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {SOFTWARE_VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"declip_desktop.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
