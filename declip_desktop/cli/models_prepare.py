"""`declip models prepare NAME…` and the preparation step of `models import` / `models download`.

Preparing converts an installed model once for the back end this machine runs it with
(`engine.backends.prepare`: OpenVINO's exact-mode file, and fast mode's where it has one), so no
first analysis waits for a conversion. Heavy imports (torch, OpenVINO) happen inside handlers.
"""

from __future__ import annotations

import argparse
import sys

from declip_desktop.cli import jsonout

MODES_HELP = "comma-separated modes to prepare: exact, fast (default: exact,fast)"


def add_install_arguments(parser: argparse.ArgumentParser) -> None:
    """`--no-prepare` and `--prepare-modes` for the commands that install a model."""
    parser.add_argument("--no-prepare", action="store_true",
                        help="do not convert the model for this machine now (the first analysis in each mode "
                             "then does it; `declip models prepare NAME` later)")
    parser.add_argument("--prepare-modes", default="exact,fast", metavar="MODES", help=MODES_HELP)


def check_modes(text: str) -> tuple[str, ...]:
    """The modes of `--prepare-modes`/`--modes`, or ValueError (checked before anything is installed)."""
    from declip_desktop.engine.backends.prepare import parse_modes

    return parse_modes(text)


def prepare_after_install(name: str, args: argparse.Namespace, store=None) -> bool:
    """Run the preparation of a just-installed model unless `--no-prepare`; messages on stderr.
    True when every mode is usable without a conversion at its first use (or nothing was asked)."""
    if getattr(args, "no_prepare", False):
        print(f"{name}: not prepared (--no-prepare); the first analysis in each mode converts it, "
              f"or run `declip models prepare {name}`.", file=sys.stderr)
        return True
    report = _run(name, check_modes(args.prepare_modes), store)
    return report is not None and report.ok


def _progress(name: str):
    def progress(_done: int, _total: int, message: str) -> None:
        from declip_desktop.common.text import terminal_safe

        print(f"… {name}: {terminal_safe(message)}", file=sys.stderr, flush=True)

    return progress


def _run(name: str, modes: tuple[str, ...], store, *, quiet: bool = False):
    """The PreparationReport, printed on stderr; None when it could not run (error printed)."""
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.engine.backends.selection import BackendUnavailable
    from declip_desktop.modelstore.preparation import prepare_installed

    try:
        report = prepare_installed(name, modes, store=store, progress=None if quiet else _progress(name))
    except KeyboardInterrupt:
        print(f"Interrupted while preparing {name}: nothing half-written is kept; {name} stays installed and "
              f"is converted at its first use, or run `declip models prepare {name}`.", file=sys.stderr)
        raise
    except (ModelError, BackendUnavailable, ValueError) as exc:
        print(f"error: {name} could not be prepared: {exc}", file=sys.stderr)
        return None
    except (OSError, MemoryError, RuntimeError) as exc:  # a conversion that ran out of memory or disk
        print(f"error: {name} could not be prepared ({type(exc).__name__}: {exc}); it stays installed and "
              f"is converted at its first use, or run `declip models prepare {name}` again.", file=sys.stderr)
        return None
    if not quiet:
        for line in report.message.splitlines():
            print(f"{name}: {line}", file=sys.stderr)
    return report


# ---------------------------------------------------------------------- prepare


def register(models_sub) -> None:
    p = models_sub.add_parser(
        "prepare",
        help="convert installed models for this machine now (not at their first analysis)",
        description=(
            "Prepare installed models for the CPU back end this machine runs them with: OpenVINO's "
            "converted model for exact mode, and for fast mode (the bf16 file on AMX CPUs, the ViT's fp32 file elsewhere). "
            "Import and download do this already; use it for models installed earlier. A model "
            "prepared before is only checked. Nothing is recorded in any case. Exit code 1 when "
            "some mode could not be prepared (the model stays usable; that mode converts at first use)."
        ),
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="installed model name(s), as `declip models list` shows them")
    p.add_argument("--modes", default="exact,fast", help=MODES_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object per model with each mode's outcome")
    p.set_defaults(func=cmd_prepare)


def cmd_prepare(args) -> int:
    from declip_desktop.cli.models import fail

    try:
        modes = check_modes(args.modes)
    except ValueError as exc:
        return fail(f"--modes: {exc}")
    reports, failed = [], 0
    for name in args.names:
        report = _run(name, modes, None, quiet=args.json)
        if report is None:
            failed += 1
            reports.append({"name": name, "ok": False, "modes": []})
            continue
        failed += 0 if report.ok else 1
        reports.append(report.to_dict())
    if args.json:
        print(jsonout.dumps(reports, indent=2, ensure_ascii=False))
    return 1 if failed else 0


# ---------------------------------------------------------------------- listing


def listing_states(model) -> dict[str, dict]:
    """Per mode, whether `model` is prepared (`modelstore.preparation.preparation_states`)."""
    from declip_desktop.modelstore.preparation import preparation_states

    return preparation_states(model)


def listing_words(states: dict[str, dict]) -> str:
    """"exact prepared, fast: nothing to prepare" for the plain listing."""
    words = {True: "prepared", False: "not prepared", None: "nothing to prepare"}
    return ", ".join(f"{mode} {words[s['prepared']]}" for mode, s in states.items())
