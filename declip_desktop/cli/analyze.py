"""`declip analyze IMAGE_OR_DIR…`: run a model over images without a case, one JSON line each.

stdout gets one JSON object per image, in input order, as each finishes:
`path`, `score`, `model`, `model_sha256`, `seconds` (its share of its batch's forward time),
`device`, `width`, `height`, `map` (with --maps-dir), `demo` + `label` for demo models, and
`error` for an image that failed. With --tiled also `tiled`: the native-resolution map's `score`,
`passes`, `seconds`, `tile`, `overlap`, `scales` and `map` (`<stem>.tiled.npy/.png`). Progress goes to stderr: a bar on a terminal (more than a few
images), one line per image when stderr is a file or a pipe.
Exit code: 0 all analysed, 1 some images failed, 2 nothing could run (no model, bad options).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from declip_desktop.cli import jsonout

#: Above this many images a progress bar is shown on stderr.
PROGRESS_MIN_IMAGES = 3


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "analyze",
        help="localize edits in images (JSON line per image)",
        description=(
            "Run a DeCLIP model over images and folders (searched recursively) and print one JSON "
            "object per image: path, score, model, model_sha256, seconds, and error for images that failed."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders")
    p.add_argument("--model", help="installed model name, .safetensors path or authors' .pth (default: the default model)")
    p.add_argument("--maps-dir", type=Path, help="write each probability map here as <image stem>.npy/.png "
                   "(never over an input image, into a case folder or through a symbolic link)")
    p.add_argument("--force", action="store_true", help="let --maps-dir replace existing maps of the same name")
    p.add_argument("--map-format", choices=("npy", "png16"), default="npy",
                   help="npy: float32 H×W; png16: 16-bit PNG (value × 65535) (default: npy)")
    p.add_argument("--batch-size", type=int, default=4, help="images per forward pass (default: 4)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"), help="default: auto")
    p.add_argument("--fast", action="store_true",
                   help="approximate fast mode: bf16 (OpenVINO) or int8 on CPU, fp16 on GPU "
                        "(maps within 0.005 mean of exact mode)")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16"), help="GPU autocast precision (default: fp32; fp16 with --fast)")
    p.add_argument("--threads", type=int, help="CPU threads for the model (default: torch's choice)")
    from declip_desktop.cli.tiling_args import add_tiling_arguments

    add_tiling_arguments(p)
    p.set_defaults(func=run)
    return p


def _fail(message: str) -> int:
    from declip_desktop.common.text import terminal_safe

    print(f"error: {terminal_safe(message)}", file=sys.stderr)
    return 2


def collect_images(inputs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files given directly are all kept (a bad one gets its own error line); folders are
    searched recursively for image suffixes, in sorted order. Returns (images, missing)."""
    from declip_desktop.common.images import IMAGE_SUFFIXES

    images: list[Path] = []
    missing: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            images.append(path)

    for raw in inputs:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
                add(child)
        elif path.exists() or path.is_symlink():
            add(path)
        else:
            missing.append((raw, "file not found"))
    return images, missing


class MapNamer:
    """`<stem>.<ext>` in the maps folder; a stem seen before in this run gets `-2`, `-3`, …"""

    def __init__(self, directory: Path, suffix: str):
        self.directory = directory
        self.suffix = suffix
        self.used: set[str] = set()

    def path_for(self, source: str) -> Path:
        stem = Path(source).stem or "image"
        candidate, n = stem, 1
        while candidate.lower() in self.used:  # case-insensitive: macOS/Windows file systems
            n += 1
            candidate = f"{stem}-{n}"
        self.used.add(candidate.lower())
        return self.directory / f"{candidate}{self.suffix}"


def _tiled_record(pred, map_path: Path | None) -> dict:
    t = pred.tiled
    rec = {"score": round(float(t.score), 6), "passes": t.passes, "seconds": round(float(t.seconds), 4),
           **{k: t.parameters[k] for k in ("tile", "overlap", "scales")}}
    if map_path is not None:
        rec["map"] = str(map_path)
    return rec


def _image_sizes(images: list[Path]) -> list[tuple[int, int]]:
    """(width, height) from each header, for the estimate (unreadable files fail later, with a reason)."""
    from PIL import Image

    sizes = []
    for path in images:
        try:
            with Image.open(path) as im:
                sizes.append(im.size)
        except (OSError, ValueError, Image.DecompressionBombError):
            continue
    return sizes


def _record(pred, map_path: Path | None, tiled_path: Path | None = None) -> dict:
    rec: dict = {"path": pred.source, "model": pred.model_name, "model_sha256": pred.model_sha256}
    if pred.error is None:
        rec.update(score=round(float(pred.score), 6), seconds=round(float(pred.seconds), 4), device=pred.device,
                   width=pred.width, height=pred.height)
        if map_path is not None:
            rec["map"] = str(map_path)
        if pred.tiled is not None:
            rec["tiled"] = _tiled_record(pred, tiled_path)
    else:
        rec["error"] = pred.error
    if pred.demo:
        rec["demo"] = True
        rec["label"] = pred.label
    return rec


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        return _fail(f"--batch-size must be at least 1 (got {args.batch_size})")
    if args.threads is not None and args.threads < 1:
        return _fail(f"--threads must be at least 1 (got {args.threads})")
    from declip_desktop.cli.tiling_args import tiling_from_args
    from declip_desktop.common.tiling_plan import TilingError

    try:
        tiling = tiling_from_args(args)
    except TilingError as exc:
        return _fail(str(exc))
    images, missing = collect_images(args.inputs)
    if not images and not missing:
        return _fail("no images found in " + ", ".join(args.inputs) + ". Give image files or folders that contain images")
    map_paths: dict[str, Path] = {}
    tiled_paths: dict[str, Path] = {}
    protect = None
    if args.maps_dir is not None:
        from declip_desktop.common.outputs import Protected, check_destination, check_output_folder

        folder = check_output_folder(args.maps_dir)
        namer = MapNamer(folder, ".npy" if args.map_format == "npy" else ".png")
        protect = Protected(images)
        # Every map's name is fixed and checked before the model runs: a map may never replace
        # an input image (e.g. `analyze P/x.png --maps-dir P --map-format png16`), nor, without
        # --force, any existing file.
        for image in images:
            map_paths[str(image)] = check_destination(namer.path_for(str(image)), force=args.force,
                                                      protect=protect, what="map")
            if tiling is not None:
                tiled = map_paths[str(image)]
                namer.used.add(f"{tiled.stem}.tiled".lower())  # no later image's map may take this name
                tiled_paths[str(image)] = check_destination(tiled.with_name(f"{tiled.stem}.tiled{tiled.suffix}"),
                                                            force=args.force, protect=protect, what="tiled map")

    from declip_desktop.analysis import AnalysisError, fall_back_to_cpu
    from declip_desktop.common.errors import DeviceUnavailable, OutOfDeviceMemory
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.loading import load_localizer

    def make(device: str, fallback: bool = False):  # -> Localizer
        return load_localizer(args.model, device=device, fast=args.fast, batch_size=args.batch_size,
                              threads=args.threads, precision=None if fallback else args.precision,
                              on_status=lambda message: print(message, file=sys.stderr, flush=True), tiling=tiling)

    try:
        localizer = make(args.device)
    except (ModelError, DeviceUnavailable) as exc:
        return _fail(f"{exc}")
    except ValueError as exc:
        return _fail(f"{exc}. Check the options")

    from declip_desktop.cli.progress_output import ProgressOutput
    from declip_desktop.common.outputs import DiskFullError, OutputRefused
    from declip_desktop.common.probmaps import save_map
    from declip_desktop.common.text import terminal_safe

    if tiling is not None:  # said before anything runs: it is many forward passes per image
        from declip_desktop.analysis.tiling import estimate_tiled
        from declip_desktop.cli.tiling_args import print_estimate

        print_estimate(estimate_tiled(_image_sizes(images), tiling, localizer.input_size,
                                      localizer.seconds_per_pass(), localizer.device))
    failed = 0
    for raw, reason in missing:
        print(jsonout.dumps({"path": raw, "model": localizer.model_name, "model_sha256": localizer.model_sha256,
                             "error": reason}), flush=True)
        failed += 1
    on_terminal = sys.stderr.isatty()
    bar = ProgressOutput(len(images), "img", "Analysing", quiet=on_terminal and len(images) <= PROGRESS_MIN_IMAGES)
    done = 0
    remaining = [str(p) for p in images]
    try:
        while remaining:
            try:
                for pred in localizer.predict_iter(remaining):
                    remaining = remaining[1:]
                    map_path = tiled_path = None
                    if pred.error is None and map_paths:
                        map_path = map_paths.get(str(pred.source))
                        try:
                            save_map(map_path, pred.prob_map, force=args.force, protect=protect)
                            if pred.tiled is not None:
                                tiled_path = tiled_paths.get(str(pred.source))
                                save_map(tiled_path, pred.tiled.prob_map, force=args.force, protect=protect)
                        except DiskFullError:
                            raise  # the next map would not fit either: stop, cli.main names the disk
                        except (OSError, OutputRefused) as exc:
                            pred.error = f"the map could not be written to {map_path}: {getattr(exc, 'strerror', None) or exc}"
                            map_path = tiled_path = None
                    if pred.error is not None:
                        failed += 1
                    bar.clear()
                    print(jsonout.dumps(_record(pred, map_path, tiled_path)), flush=True)
                    done += 1
                    outcome = f"failed: {pred.error}" if pred.error is not None else f"score {pred.score:.3f}"
                    bar.item(done, terminal_safe(f"{Path(str(pred.source)).name}: {outcome}"))
            except OutOfDeviceMemory as exc:
                localizer = fall_back_to_cpu(localizer, str(exc), lambda: make("cpu", fallback=True),
                                             lambda _level, message, detail: print(
                                                 f"warning: {message} ({detail})", file=sys.stderr))
    except AnalysisError as exc:
        bar.close()
        return _fail(str(exc))
    finally:
        bar.close()
    return 1 if failed else 0
