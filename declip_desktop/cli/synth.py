"""`declip synth`: synthetic local manipulations with exact masks, from a folder of photos."""

from __future__ import annotations

import argparse
import sys

from declip_desktop.cli import jsonout


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="make manipulated images with exact masks from a folder of photos",
        description=(
            "Writes OUT/{train,valid,test}/images/*.png|jpg and OUT/<split>/masks/*.png (white = manipulated), "
            "plus OUT/manifest.jsonl (one JSON line per image: source photo, manipulation type, parameters, "
            "mask coverage, JPEG quality) and OUT/synth.json. The test split uses only photos never used in "
            "train/valid. Same seed and photos → same files."
        ),
    )
    p.add_argument("--photos", required=True, help="folder of source photos (each side at least 256 px)")
    p.add_argument("--out", required=True, help="new or empty output folder")
    p.add_argument("--n", type=int, required=True, help="number of images over all splits")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same set (default: 0)")
    p.add_argument("--jpeg-prob", type=float, default=0.0,
                   help="probability that an image is recompressed as a whole to JPEG (quality 70-95)")
    p.add_argument("--size", type=int, default=512, help="largest side of the crops (default 512)")
    p.add_argument("--valid-fraction", type=float, default=0.1, help="share of images in the validation split (default: 0.1)")
    p.add_argument("--test-fraction", type=float, default=0.15, help="share of images in the test split (default: 0.15)")
    p.add_argument("--test-photo-fraction", type=float, default=0.25,
                   help="share of the photos kept for the test split only")
    p.add_argument("--test-photos", nargs="+", default=None, metavar="NAME",
                   help="explicit file names of the test-only photos (instead of a seeded random choice)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from declip_desktop.common.images import ImageError
    from declip_desktop.common.outputs import check_output_folder
    from declip_desktop.common.text import terminal_safe
    from declip_desktop.training.synth import SynthError, generate_dataset

    check_output_folder(args.out, create=False)  # a data set is never written into a case folder

    def progress(done: int, total: int) -> None:
        if not args.json and (done % 50 == 0 or done == total):
            print(f"\r{done}/{total} images", end="" if done < total else "\n", file=sys.stderr, flush=True)

    try:
        summary = generate_dataset(
            args.photos, args.out, args.n, seed=args.seed, jpeg_prob=args.jpeg_prob, size=args.size,
            valid_fraction=args.valid_fraction, test_fraction=args.test_fraction,
            test_photo_fraction=args.test_photo_fraction, test_photos=args.test_photos, progress=progress,
        )
    except (SynthError, ImageError) as exc:
        print(f"error: {terminal_safe(exc)}", file=sys.stderr)
        return 2
    if args.json:
        print(jsonout.dumps(summary, indent=2, sort_keys=True))
    else:
        c = summary["counts"]
        test_photos = sorted(k for k, v in summary["photos"].items() if v == "test")
        print(terminal_safe(f"wrote {sum(c.values())} images to {args.out}: train {c['train']}, valid {c['valid']}, "
                            f"test {c['test']}"))
        print(f"test-only photos: {terminal_safe(', '.join(test_photos))}")
    return 0
