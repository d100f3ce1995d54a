"""`declip` / `python -m declip_desktop`: the headless command line.

Each subcommand lives in its own module here with a `register(subparsers)` function
that adds its parser and sets `func` (called with the parsed args, returns an exit
code). Modules import heavy libraries (torch, Qt) inside their handlers, never at
module level, so `declip case status` starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from declip_desktop.common.version import SOFTWARE_VERSION

#: Exit codes shared by every subcommand: success, some items failed (the others were done),
#: nothing could be done (usage error, no model, unreadable case, disk full, refused destination).
OK, SOME_FAILED, FATAL = 0, 1, 2
#: The reader of our output went away (`declip … | head`): 128 + SIGPIPE, as a shell reports it.
PIPE_CLOSED = 141

#: Subcommand modules, in the order `declip --help` lists them.
SUBCOMMAND_MODULES: list[str] = ["case", "eval", "train", "synth", "models", "analyze", "key", "cluster",
                               "reproduce", "train_starter"]


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
    """Run one command; returns its exit code. `declip … | head` ends quietly (exit 141)."""
    try:
        return _main(argv)
    except BrokenPipeError:
        return _pipe_closed()


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        sys.stdout.flush()  # --help into a closed pipe: fail here, where it is handled
        raise
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    from declip_desktop.common.outputs import DiskFullError, OutputRefused, is_disk_full
    from declip_desktop.common.text import terminal_safe

    try:
        code = int(func(args) or 0)
        sys.stdout.flush()  # a reader that went away is noticed here, not at interpreter exit
        return code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except (OutputRefused, DiskFullError) as exc:
        # The one place every command's refused destination and full disk are reported.
        print(f"error: {terminal_safe(exc)}", file=sys.stderr)
        return FATAL
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) or not is_disk_full(exc):
            raise
        print(f"error: {terminal_safe(DiskFullError(exc.filename or os.getcwd()))}", file=sys.stderr)
        return FATAL


def _pipe_closed() -> int:
    """End quietly when the reader closed the pipe: no traceback, and no second
    BrokenPipeError when Python flushes stdout at exit (stdout now points at devnull)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        return PIPE_CLOSED  # stdout is already closed or no real file: nothing left to flush
    return PIPE_CLOSED
