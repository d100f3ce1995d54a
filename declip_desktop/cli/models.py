"""`declip models …`: import and list DeCLIP models.

Other subcommands (`download`, `verify`, `remove`) register themselves on the same
`models` sub-parser: add a `register_<name>(models_sub)` function below and append it
to `ACTION_REGISTRARS`. Heavy imports (torch) happen inside handlers only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from declip_desktop.cli import jsonout, models_prepare


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models",
        help="install and list models",
        description="Install DeCLIP models (the authors' checkpoints) and list what is installed.",
    )
    models_sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))
    for registrar in ACTION_REGISTRARS:
        registrar(models_sub)
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def fail(message: str) -> int:
    """Print `error: …` to stderr; return the fatal exit code."""
    from declip_desktop.common.text import terminal_safe

    print(f"error: {terminal_safe(message)}", file=sys.stderr)
    return 2


# ---------------------------------------------------------------------- import


def register_import(models_sub) -> None:
    p = models_sub.add_parser(
        "import",
        help="install an authors' DeCLIP checkpoint (.pth)",
        description=(
            "Convert one of the authors' DeCLIP checkpoints into an installed model "
            "(safetensors + model card in $DECLIP_HOME/models). The file is read safely "
            "(weights only; nothing in it is executed) and checked tensor by tensor."
        ),
    )
    p.add_argument("file", help="checkpoint file, e.g. ViT_layer20_conv-20_ldm.pth")
    p.add_argument("--name", help="model name (default: from the file name, e.g. vit-ldm)")
    p.add_argument(
        "--clip-weights",
        action="append",
        default=[],
        metavar="FILE",
        help="OpenAI CLIP ViT-L-14.pt / RN50.pt (needed by the ViT+RN50 fusion checkpoints; give it twice)",
    )
    p.add_argument("--json", action="store_true", help="print the model card as JSON")
    models_prepare.add_install_arguments(p)
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint
    from declip_desktop.modelstore.store import ModelStore

    def progress(_done: int, _total: int, message: str) -> None:
        print(f"… {message}", file=sys.stderr, flush=True)

    try:
        models_prepare.check_modes(args.prepare_modes)
    except ValueError as exc:
        return fail(f"--prepare-modes: {exc}")
    store = ModelStore()
    try:
        before = store.default_name()
        card = import_checkpoint(args.file, name=args.name, clip_weights=args.clip_weights, store=store,
                                 progress=progress)
        became_default = before is None and store.default_name() == card.name
    except ModelError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"{exc}. Check the path, permissions and free disk space")
    if args.json:
        print(jsonout.dumps(card.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"installed {card.name}: {card.label}")
        print(f"  sha256 {card.sha256}")
    print(default_notice(store, card.name, became_default), file=sys.stderr)
    # The model is installed whatever happens here; a failed preparation only says so.
    models_prepare.prepare_after_install(card.name, args, store)
    return 0


def default_notice(store, name: str, became_default: bool) -> str:
    """After an install: which model is the default now, so no change goes unnoticed."""
    if became_default:
        return f"{name} is now the default model (there was none). Change it with `declip models default NAME`."
    try:
        current = store.default().name
    except Exception as exc:  # noqa: BLE001 - only a hint; the install itself succeeded
        return f"note: no usable default model ({exc})"
    if current == name:
        return f"{name} is the default model."
    return f"the default model is still {current}; to use {name} by default: `declip models default {name}`"


# ---------------------------------------------------------------------- list


def register_list(models_sub) -> None:
    p = models_sub.add_parser("list", help="list installed models", description="List installed and bundled models.")
    p.add_argument("--json", action="store_true", help="machine-readable output (one JSON array of model cards)")
    p.set_defaults(func=cmd_list)


def cmd_list(args) -> int:
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.store import ModelStore

    store = ModelStore()
    models = store.installed()
    try:
        default = store.default().name if models else None
    except ModelError:
        default = None
    if args.json:
        rows = []
        for m in models:
            row = m.card.to_dict()
            row.update({"weights_path": str(m.weights_path), "bundled": m.read_only, "default": m.name == default})
            states = models_prepare.listing_states(m)
            row.update({"prepared": {mode: s["prepared"] for mode, s in states.items()}, "preparation": states})
            rows.append(row)
        print(jsonout.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not models:
        print("No models installed. Run `declip models download vit-ldm` or `declip models import FILE`.")
        return 0
    width = max(len(m.name) for m in models)
    for m in models:
        flags = " (default)" if m.name == default else ""
        flags += " [bundled]" if m.read_only else ""
        label = m.card.label or f"{m.card.backbone} {m.card.layer or ''} {m.card.decoder}".strip()
        print(f"{m.name:<{width}}  {label}{flags}  [{models_prepare.listing_words(models_prepare.listing_states(m))}]")
    return 0


def register_download_actions(models_sub) -> None:
    """`download`, `available`, `verify`, `remove`: see cli/models_download.py."""
    from declip_desktop.cli import models_download

    models_download.register(models_sub)


# ---------------------------------------------------------------------- default


def register_default(models_sub) -> None:
    p = models_sub.add_parser(
        "default",
        help="show or set the model used when none is named",
        description=(
            "Show (no NAME) or set the default model: the one cases, `declip analyze` and the app use "
            "when no model is named. Installing or downloading a model never changes it."
        ),
    )
    p.add_argument("name", nargs="?", help="installed model to make the default")
    p.add_argument("--json", action="store_true", help="print the default model's card snapshot as JSON")
    p.set_defaults(func=cmd_default)


def cmd_default(args) -> int:
    from declip_desktop.common.model_card import ModelError, card_snapshot
    from declip_desktop.modelstore.store import ModelStore, is_demo_model

    store = ModelStore()
    try:
        model = store.set_default(args.name) if args.name else store.default()
        recorded = store.default_name() is not None
    except ModelError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"cannot record the default model in {store.default_file}: {exc.strerror or exc}. "
                    "Check permissions and free disk space")
    if args.json:
        print(jsonout.dumps({**card_snapshot(model.card), "recorded": recorded}, indent=2, ensure_ascii=False))
        return 0
    verb = "is now" if args.name else "is"
    how = "" if recorded else " (none recorded: the newest casework model; set one with `declip models default NAME`)"
    print(f"{model.name} {verb} the default model{how}: {model.card.label or model.card.backbone}")
    print(f"  sha256 {model.sha256}")
    if is_demo_model(model):
        print("  warning: this is a demo model — not for casework", file=sys.stderr)
    return 0


#: Each adds one action under `declip models`; G's download/verify/remove go here too.
ACTION_REGISTRARS: list[Callable] = [register_import, register_list, register_default, register_download_actions,
                                     models_prepare.register]
