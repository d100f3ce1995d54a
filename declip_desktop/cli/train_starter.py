"""`declip train-starter`: make the starter's data, train it, evaluate it, package it (demo model).

    declip train-starter data --photos data/photos --out data/synth_general --test-photos …
    declip train-starter train --data data/synth_general --run runs/starter_phase6 --max-side 1280 …
    declip train-starter package --data data/synth_general --run runs/starter_phase6 --max-side 1280 …

The whole lineage is replayed by `scripts/train_starter.sh` (see models/README.md). The engine
(`training.starter_training`, `training.synth_general`) takes plain configuration objects; the
command line lives here.
"""

from __future__ import annotations

import argparse
import sys

from declip_desktop.cli import FATAL, OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-starter",
        help="make data for, train, evaluate and package the bundled starter model (demo)",
        description="The starter model is a compact fully convolutional network trained from scratch on "
        "synthetic manipulations of registry photos. Its outputs are always labelled demo.",
    )
    sub = p.add_subparsers(dest="starter_command", metavar="ACTION", required=True)
    _register_data(sub)
    _register_train(sub)
    _register_package(sub)


def _register_data(sub) -> None:
    d = sub.add_parser("data", help="the generalization-oriented data set (7 families, authentic images, "
                                    "camera and post-processing stages)",
                       description="Writes OUT/{train,valid,test}/images|masks, OUT/manifest.jsonl and OUT/synth.json "
                                   "(engine/synth_general.py). Test, validation and training photos are disjoint.")
    d.add_argument("--photos", required=True, help="folder of source photos (each side at least 256 px)")
    d.add_argument("--out", required=True, help="new or empty output folder")
    d.add_argument("--train", type=int, default=4600, help="training images (default 4600)")
    d.add_argument("--valid", type=int, default=300, help="validation images (default 300)")
    d.add_argument("--test", type=int, default=700, help="test images (default 700)")
    d.add_argument("--test-photos", nargs="+", required=True, metavar="NAME", help="file names of the test-only photos")
    d.add_argument("--valid-photos", type=int, default=5, help="photos kept for validation only (default 5)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    d.set_defaults(func=run_data)


def _register_train(sub) -> None:
    t = sub.add_parser("train", help="train (or continue training) the starter network",
                       description="Keeps the weights with the best validation figure in RUN/best.safetensors "
                                   "(an interrupted run still leaves a usable model) and logs to RUN/log.jsonl.")
    t.add_argument("--data", required=True, help="synthetic data set (declip synth or declip train-starter data)")
    t.add_argument("--extra-data", nargs="*", default=[],
                   help="further synthetic sets whose train splits are added (validation stays on --data's)")
    t.add_argument("--run", default="runs/starter", help="run folder: log.jsonl, best/last weights (default runs/starter)")
    t.add_argument("--steps", type=int, default=1500, help="optimizer steps at most (default 1500)")
    t.add_argument("--batch", type=int, default=8, help="crops per step (default 8)")
    t.add_argument("--crop", type=int, default=256, help="side of the random training crops in px (default 256)")
    t.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 0.003)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    t.add_argument("--val-every", type=int, default=250, help="validate every N steps (default 250)")
    t.add_argument("--init", default=None, help="start from these weights (safetensors) instead of random")
    t.add_argument("--val-limit", type=int, default=96, help="validate on the first N valid images (0: all)")
    t.add_argument("--max-minutes", type=float, default=0.0,
                   help="time budget: the schedule decays over min(steps, this many minutes) (0: steps only)")
    t.add_argument("--input-size", type=int, default=512, help="square input of the old mode (without --max-side)")
    t.add_argument("--widths", type=int, nargs=5, default=[16, 24, 32, 48, 64],
                   help="channel widths of the five network stages (default 16 24 32 48 64)")
    t.add_argument("--max-side", type=int, default=0,
                   help="native resolution: images shrunk to this long side at most; validation also scores "
                        "authentic images (0: the old square --input-size mode)")
    t.set_defaults(func=run_train)


def _register_package(sub) -> None:
    p = sub.add_parser("package", help="evaluate RUN's best weights on the held-out test split and write the model + card")
    p.add_argument("--data", required=True, help="the data set whose validation and test splits are used")
    p.add_argument("--run", default="runs/starter", help="run folder holding the weights (default runs/starter)")
    p.add_argument("--weights", default="best.safetensors", help="file in RUN to package")
    p.add_argument("--photos", default="data/photos", help="folder with SOURCES.json (licences for the card)")
    p.add_argument("--models", default="models", help="folder the model and its card are written to (default models)")
    p.add_argument("--name", default="starter", help="model name (default starter)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--input-size", type=int, default=512, help="square input of the old mode (default 512)")
    p.add_argument("--max-side", type=int, default=0,
                   help="native resolution up to this long side (recorded in the card); 0: the old square mode")
    p.add_argument("--test-time-flips", type=int, choices=(1, 2, 4), default=1,
                   help="average the logits over this many flips of the input (recorded in the card)")
    p.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                   help="do not fit the output bias (nor the image score) on the validation split")
    p.add_argument("--compare", default=None, metavar="CARD",
                   help="also evaluate this earlier model (its card; weights beside it) on the same test split")
    p.add_argument("--compare-flips", type=int, choices=(1, 2, 4), default=None,
                   help="evaluate the earlier model with this many flips (default: its card's)")
    p.add_argument("--valid-limit", type=int, default=0,
                   help="native mode: calibrate on the first N validation images (0: all; the split is balanced in cycles)")
    p.add_argument("--false-alarm-budget", type=float, default=0.20,
                   help="native mode: the bias fit keeps at most this share of authentic validation images with "
                        "more than 1 %% flagged (default 0.20, the issue's target)")
    p.add_argument("--test-limit", type=int, default=0, help="native mode: evaluate the first N test images (0: all)")
    p.set_defaults(func=run_package)


def run_data(args: argparse.Namespace) -> int:
    from declip_desktop.common.images import ImageError
    from declip_desktop.common.outputs import check_output_folder
    from declip_desktop.common.text import terminal_safe
    from declip_desktop.training.synth import SynthError
    from declip_desktop.training.synth_general import generate

    check_output_folder(args.out, create=False)

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"\r{done}/{total} images", end="" if done < total else "\n", file=sys.stderr, flush=True)

    try:
        summary = generate(args.photos, args.out, {"train": args.train, "valid": args.valid, "test": args.test},
                           args.test_photos, seed=args.seed, n_valid_photos=args.valid_photos,
                           workers=args.workers, progress=progress)
    except (SynthError, ImageError) as exc:
        print(f"error: {terminal_safe(exc)}", file=sys.stderr)
        return FATAL
    c = summary["counts"]
    print(terminal_safe(f"wrote {sum(c.values())} images to {args.out}: train {c['train']}, valid {c['valid']}, "
                        f"test {c['test']}"))
    return OK


def _config(args: argparse.Namespace, cls):
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names})


def run_train(args: argparse.Namespace) -> int:
    from declip_desktop.training.starter_training import StarterDataError, TrainConfig, train

    try:
        return train(_config(args, TrainConfig))
    except StarterDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FATAL


def run_package(args: argparse.Namespace) -> int:
    from declip_desktop.training.starter_training import PackageConfig, StarterDataError, package

    try:
        return package(_config(args, PackageConfig))
    except StarterDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return FATAL
