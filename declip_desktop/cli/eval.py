"""`declip eval`: the paper's localization metrics on a folder of maps or a model's output.

    declip eval --maps MAPS_DIR --masks MASKS_DIR           # maps made by any method
    declip eval --model NAME_OR_PATH --data DATA_DIR        # runs the model first

Per-image values go to a CSV; the summary (means over images) is printed, as JSON with
`--json`. Exit code 1 when some image could not be scored (missing/unreadable mask or
map, model failure), 2 when nothing could be done.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from declip_desktop.cli import jsonout
from declip_desktop.cli import FATAL, OK, SOME_FAILED
from declip_desktop.common.text import terminal_safe


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score localization maps or a model against ground-truth masks (IoU, F1, AP)",
        description="Per-image IoU at 0.5 (percent), F1 at 0.5 and best F1 with the ground truth's "
        "border band ignored (TruFor protocol), and average precision, as the DeCLIP paper reports them.",
    )
    src = p.add_argument_group("what to score (one of)")
    src.add_argument("--maps", type=Path, metavar="DIR", help="folder of maps (.npy float or 8/16-bit PNG), matched to masks by file stem")
    src.add_argument("--model", metavar="M", help="installed model name or weights file to run on --data")
    p.add_argument("--masks", type=Path, metavar="DIR", help="ground-truth masks for --maps")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="data folder for --model: Dolos layout (fake/<generator>/images|masks/<split>) or images/ + masks/")
    p.add_argument("--generator", help="Dolos generator folder (e.g. ldm), when there are several")
    p.add_argument("--split", help="Dolos split (default: test, or the only one)")
    p.add_argument("--mask-polarity", choices=("white", "black"),
                   help="which mask colour is manipulated (default: black for Dolos, white otherwise)")
    p.add_argument("--csv", type=Path, metavar="FILE",
                   help="per-image results (default: declip-eval-<UTC time>.csv in the current folder)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (for --model)")
    p.add_argument("--batch-size", type=int, default=4, help="images per forward pass (for --model)")
    p.add_argument("--save-maps", type=Path, metavar="DIR", help="also write the model's maps as 16-bit PNG (for --model)")
    p.add_argument("--force", action="store_true", help="let --csv and --save-maps replace existing files "
                   "(input images, masks and maps are never written over)")
    p.set_defaults(func=_run)


def _err(message: str) -> int:
    print(f"error: {terminal_safe(message)}", file=sys.stderr)
    return FATAL


def _inputs(args: argparse.Namespace):  # noqa: ANN202 - a common.outputs.Protected
    """Every file under the input folders: the CSV and the maps may never replace one of them."""
    from declip_desktop.common.outputs import Protected

    guard = Protected()
    for folder in (args.maps, args.masks, args.data):
        if folder is not None and Path(folder).is_dir():
            for p in Path(folder).rglob("*"):
                if p.is_file():
                    guard.add(p)
    return guard


def _run(args: argparse.Namespace) -> int:
    if bool(args.maps) == bool(args.model):
        return _err("give either --maps DIR --masks DIR, or --model M --data DIR. See `declip eval --help`")
    if args.maps and not args.masks:
        return _err("--maps needs --masks DIR (the ground-truth masks, same file names)")
    if args.model and not args.data:
        return _err("--model needs --data DIR (Dolos layout or images/ + masks/)")

    from tqdm import tqdm

    from declip_desktop.common.outputs import check_destination, check_output_folder

    protect = _inputs(args)
    csv_path = args.csv or Path.cwd() / f"declip-eval-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.csv"
    # Refuse a bad destination now, not after minutes of scoring.
    if args.csv:
        check_output_folder(Path(args.csv).expanduser().absolute().parent)
    check_destination(csv_path, force=args.force, protect=protect, what="CSV file")
    if args.save_maps:
        check_output_folder(args.save_maps, create=False)

    from declip_desktop.training.datasets import DatasetError, find_samples
    from declip_desktop.training.evaluation import evaluate_maps, evaluate_model, json_safe, write_csv

    bar = tqdm(total=0, unit="img", desc="Scoring", file=sys.stderr, disable=not sys.stderr.isatty())

    def progress(done: int, total: int, name: str) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    info: dict = {}
    try:
        if args.maps:
            result = evaluate_maps(args.maps, args.masks, args.mask_polarity or "white", progress=progress)
            info = {"maps": str(args.maps), "masks": str(args.masks), "mask_polarity": args.mask_polarity or "white"}
        else:
            samples = find_samples(args.data, generator=args.generator, split=args.split, polarity=args.mask_polarity)
            localizer = _localizer(args)
            if localizer is None:
                return FATAL
            bar.set_description(f"{samples.description}")
            result = evaluate_model(localizer, samples, progress=progress, save_maps=args.save_maps,
                                    force=args.force, protect=protect)
            info = {"data": str(args.data), "set": samples.description, "mask_polarity": samples.polarity,
                    "model": localizer.card.name, "model_sha256": localizer.model_sha256, "device": localizer.device}
    except DatasetError as exc:
        return _err(f"{exc}. Check the folder and the --generator/--split/--mask-polarity options")
    finally:
        bar.close()

    write_csv(result.rows, csv_path, force=args.force, protect=protect)
    from declip_desktop.common.version import SOFTWARE_VERSION

    summary = {**result.summary, "errors": len(result.errors), "csv": str(csv_path), **info,
               "software_version": SOFTWARE_VERSION}
    for e in result.errors:
        print(f"error: {terminal_safe(e['name'])}: {terminal_safe(e['error'])}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {terminal_safe(note)}", file=sys.stderr)
    if args.json:
        print(jsonout.dumps(json_safe(summary), indent=2))
    else:
        _print_human(summary)
    if summary["n"] == 0:
        return _err("no image could be scored (see the errors above)")
    return SOME_FAILED if result.errors else OK


def _localizer(args: argparse.Namespace):  # noqa: ANN202 - Localizer | None
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.loading import load_localizer

    try:
        return load_localizer(args.model, device=args.device, batch_size=args.batch_size)
    except ModelError as exc:
        _err(f"{exc}. List installed models with `declip models list`")
        return None
    except ValueError as exc:  # bad device / batch size / precision
        _err(str(exc))
        return None


def _fmt(v, digits: int) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _print_human(s: dict) -> None:
    src = s.get("set") or s.get("maps")
    print(terminal_safe(f"Scored {s['n']} image(s) from {src}" + (f" with {s['model']}" if s.get("model") else "")))
    for name, label, digits in (("iou", "IoU (%)", 2), ("f1_best", "F1 best", 4), ("f1_fixed", "F1 @0.5", 4), ("ap", "AP", 4)):
        und = s["undefined"][name]
        extra = f"   ({und} image(s) undefined, excluded; all-images mean {_fmt(s['authors_mean'][name], digits)})" if und else ""
        print(f"  {label:<9} {_fmt(s[name], digits)}{extra}")
    if s["errors"]:
        print(f"  {s['errors']} image(s) could not be scored (listed above)")
    print(f"Per-image results: {terminal_safe(s['csv'])}")
