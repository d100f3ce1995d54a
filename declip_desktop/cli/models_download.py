"""`declip models download | available | verify | remove`: getting the authors' weights.

Hooked into `declip models` (cli/models.py) through `register(models_subparsers)`.
The network is touched only by `download`; everything else is local. Heavy imports
(tqdm, the model store and through it torch) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from declip_desktop.cli import jsonout, models_prepare
from declip_desktop.modelstore.registry import CHECKPOINTS, MIRROR_ENV, RECOMMENDED


def register(models_subparsers: argparse._SubParsersAction) -> None:
    p = models_subparsers.add_parser(
        "download",
        help="download the authors' DeCLIP checkpoints and install them",
        description=(
            "Download DeCLIP checkpoints released by the authors, verify them and install "
            "them as models (safetensors + model card). Fusion (vit+rn50-*) models also fetch "
            "OpenAI's ViT-L-14.pt and RN50.pt, kept in $DECLIP_HOME/downloads for reuse. An "
            "interrupted download resumes where it stopped when run again. "
            f"Names: {', '.join(CHECKPOINTS)} (start with {RECOMMENDED}). "
            f"Mirror: --mirror or ${MIRROR_ENV} (layout in docs/MODELS.md)."
        ),
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="registry name(s), see `declip models available`")
    p.add_argument("--url", help="fetch the checkpoint itself from this URL (one NAME only)")
    p.add_argument(
        "--mirror",
        metavar="BASE_URL",
        help=f"base URL of a mirror holding every file at its registry path (default: ${MIRROR_ENV})",
    )
    p.add_argument("--force", action="store_true", help="download and reinstall even if installed")
    models_prepare.add_install_arguments(p)
    p.set_defaults(func=cmd_download)

    p = models_subparsers.add_parser(
        "available",
        help="list the downloadable checkpoints and which are installed",
        description="List the checkpoints `declip models download` knows, with what is installed.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_available)

    p = models_subparsers.add_parser(
        "verify",
        help="re-hash installed models against their model cards",
        description="Re-hash every installed model file and compare it with its model card. "
        "Exit code 1 when any file does not match.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_verify)

    p = models_subparsers.add_parser(
        "remove",
        help="delete an installed model",
        description="Delete an installed model's weights and card (bundled models cannot be removed).",
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="installed model name(s), as `declip models list` shows them")
    p.set_defaults(func=cmd_remove)


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


# ------------------------------------------------------------------------- download


class _Bars:
    """Turns download Progress reports into tqdm bars on stderr, one per file and stage."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self._bar: Any = None
        self._key: tuple[str, str] | None = None

    def __call__(self, p) -> None:
        key = (p.stage, p.label)
        if key != self._key:
            self.close()
            self._key = key
            if p.stage == "import":
                print(f"Installing {p.label} (converting to safetensors)…", file=sys.stderr)
                if not p.detail:
                    return
            desc = {"download": "Downloading", "verify": "Checking"}.get(p.stage, p.stage)
            self._bar = self._tqdm(
                # initial: bytes kept from an interrupted run, so the rate and ETA count
                # only what this run transfers.
                total=p.total, initial=p.done, desc=f"{desc} {p.label}", unit="B", unit_scale=True,
                unit_divisor=1000, file=sys.stderr, dynamic_ncols=True, leave=True,
            )
        if p.stage == "import":
            if p.detail:
                print(f"  … {p.detail}", file=sys.stderr, flush=True)
            return
        if self._bar is not None:
            if p.total and self._bar.total != p.total:
                self._bar.total = p.total
            self._bar.update(max(0, p.done - self._bar.n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._key = None, None


def cmd_download(args: argparse.Namespace) -> int:
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint
    from declip_desktop.modelstore.download import download_model
    from declip_desktop.modelstore.download_errors import DownloadError
    from declip_desktop.modelstore.registry import UnknownModelError, get_checkpoint

    if args.url and len(args.names) != 1:
        _error("--url names one file, so it takes exactly one NAME. Run one command per model.")
        return 2
    try:
        entries = [get_checkpoint(n) for n in args.names]
        models_prepare.check_modes(args.prepare_modes)
    except UnknownModelError as exc:
        _error(str(exc))
        return 2
    except ValueError as exc:
        _error(f"--prepare-modes: {exc}")
        return 2

    from declip_desktop.cli.models import default_notice
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.store import ModelStore

    store = ModelStore()
    failed = 0
    for entry in entries:
        bars = _Bars()
        try:
            before = store.default_name()
        except ModelError:
            before = "?"  # unreadable record: reported by the notice below
        try:
            result = download_model(entry.name, importer=import_checkpoint, url=args.url, base_url=args.mirror, force=args.force, progress=bars)
        except DownloadError as exc:
            bars.close()
            _error(str(exc))
            failed += 1
            continue
        except KeyboardInterrupt:
            bars.close()
            print(
                f"Interrupted. The partial download of {entry.name} is kept; run the same "
                "command again to resume it.",
                file=sys.stderr,
            )
            return 130
        finally:
            bars.close()
        if result.already_installed:
            print(f"{entry.name}: already installed (use --force to download it again).")
            if not args.no_prepare:  # prepared when installed; only checked then (an older install: made now)
                models_prepare.prepare_after_install(entry.name, args, store)
            continue
        card = result.card
        print(
            f"{entry.name}: installed — {card.label or entry.name}; downloaded file SHA-256 {result.source_sha256} "
            f"(recorded in the model card; the authors publish no checksum); "
            f"model SHA-256 {card.sha256}."
        )
        try:
            became = before is None and store.default_name() == card.name
        except ModelError:
            became = False
        print(default_notice(store, card.name, became), file=sys.stderr)
        models_prepare.prepare_after_install(card.name, args, store)
    return 1 if failed else 0


# ------------------------------------------------------------------------ available


def cmd_available(args: argparse.Namespace) -> int:
    from declip_desktop.modelstore.download import downloads_dir, installed_cards, source_url
    from declip_desktop.modelstore.download_errors import format_size
    from declip_desktop.modelstore.registry import BACKBONES

    cards = installed_cards()
    rows = []
    for entry in CHECKPOINTS.values():
        card = cards.get(entry.name)
        rows.append(
            {
                "name": entry.name,
                "backbone": entry.backbone,
                "layer": entry.layer,
                "decoder": entry.decoder,
                "training_set": entry.training_set,
                "approx_size": entry.approx_size,
                "url": source_url(entry),
                "needs": list(entry.backbones),
                "installed": card is not None,
                "sha256": card.get("sha256") if card else None,
                "source_sha256": card.get("source_sha256") if card else None,
            }
        )
    backbones = [
        {
            "name": b.name,
            "file": b.filename,
            "sha256": b.sha256,
            "approx_size": b.approx_size,
            "url": source_url(b),
            "cached": (downloads_dir() / b.filename).exists(),
        }
        for b in BACKBONES.values()
    ]
    if args.json:
        print(jsonout.dumps({"checkpoints": rows, "backbones": backbones}, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'NAME':<{width}}  {'BACKBONE':<14} {'TRAINED ON':<22} {'SIZE':>8}  INSTALLED")
    for r in rows:
        mark = "yes" if r["installed"] else "-"
        star = "  (recommended)" if r["name"] == RECOMMENDED else ""
        print(
            f"{r['name']:<{width}}  {r['backbone']:<14} {r['training_set']:<22} "
            f"{'~' + format_size(r['approx_size']):>8}  {mark}{star}"
        )
    print("\nFusion models (vit+rn50-*) also need OpenAI's CLIP files, fetched once and kept:")
    for b in backbones:
        print(f"  {b['file']:<12} {'~' + format_size(b['approx_size']):>8}  {'cached' if b['cached'] else 'not downloaded'}")
    print("\nInstall with: declip models download NAME   (docs/MODELS.md)")
    return 0


# --------------------------------------------------------------------------- verify


def _verify_all(store) -> list[tuple[str, bool, str]]:
    """ModelStore.verify() when the store has it, else a re-hash of each listed card."""
    if hasattr(store, "verify"):
        return [tuple(r) for r in store.verify()]  # type: ignore[misc]
    from declip_desktop.common.hashing import sha256_file

    results = []
    for card in store.list():
        model = store.get(card.name)
        try:
            actual = sha256_file(model.weights_path)
        except OSError as exc:
            results.append((card.name, False, f"cannot read {model.weights_path}: {exc.strerror or exc}"))
            continue
        ok = actual == card.sha256
        results.append((card.name, ok, "ok" if ok else f"SHA-256 {actual} differs from the card's {card.sha256}"))
    return results


def cmd_verify(args: argparse.Namespace) -> int:
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.store import ModelStore

    try:
        results = _verify_all(ModelStore())
    except ModelError as exc:
        _error(str(exc))
        return 2
    if args.json:
        print(jsonout.dumps([{"name": n, "ok": ok, "detail": d} for n, ok, d in results], indent=2))
    else:
        if not results:
            print("No models installed.")
        for name, ok, detail in results:
            print(f"{'OK      ' if ok else 'MISMATCH'}  {name}" + ("" if ok else f": {detail}"))
    bad = [n for n, ok, _ in results if not ok]
    if bad:
        _error(
            f"{len(bad)} model file(s) do not match their cards: {', '.join(bad)}. Do not use them; "
            "remove them (`declip models remove NAME`) and install them again."
        )
        return 1
    return 0


# --------------------------------------------------------------------------- remove


def cmd_remove(args: argparse.Namespace) -> int:
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.store import ModelStore

    store = ModelStore()
    failed = 0
    for name in args.names:
        try:
            store.remove(name)
        except (ModelError, KeyError) as exc:
            _error(str(exc) if str(exc) else f"no installed model named '{name}'. See `declip models list`.")
            failed += 1
            continue
        print(f"{name}: removed.")
    return 1 if failed else 0
