"""`declip train`: train a DeCLIP decoder over a frozen CLIP backbone (the paper's recipe).

    declip train --data DOLOS_ROOT --generator ldm --name my-ldm \\
                 --clip-weights ViT-L-14.pt [--layer layer20 --decoder conv-20]

The best decoder (by validation IoU) is installed as a model with its card. The state is
saved after every epoch: after an interruption, run the same command with `--resume`.
"""

from __future__ import annotations

import argparse
import sys

from declip_desktop.cli import jsonout
from declip_desktop.cli import FATAL, OK


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a decoder over a frozen CLIP backbone on your own image/mask folders",
        description="Train the DeCLIP decoder (BCE with logits on 256×256 masks, AdamW, lr ÷10 when the "
        "validation IoU stops improving, early stop) over a frozen backbone whose features are cached on disk.",
    )
    d = p.add_argument_group("data")
    d.add_argument("--data", required=True, help="Dolos layout (fake/<generator>/images|masks/<split>) or images/ + masks/")
    d.add_argument("--generator", help="Dolos generator folder (e.g. ldm)")
    d.add_argument("--train-split", default="train", help="Dolos training split (default: train)")
    d.add_argument("--val-split", default="valid", help="Dolos validation split (default: valid)")
    d.add_argument("--val-data", help="separate validation folder (any layout)")
    d.add_argument("--val-fraction", type=float, default=0.1,
                   help="plain layout without --val-data: share of images held out for validation (default 0.1)")
    d.add_argument("--mask-polarity", choices=("white", "black"),
                   help="which mask colour is manipulated (default: black for Dolos, white otherwise)")
    m = p.add_argument_group("model")
    m.add_argument("--name", required=True, help="name of the trained model in the model store")
    m.add_argument("--backbone", default="ViT-L/14", choices=("ViT-L/14", "RN50", "ViT-L/14,RN50"),
                   help="frozen CLIP backbone (default: ViT-L/14)")
    m.add_argument("--layer", default="layer20", help="feature layer (ViT: layer0…layer23; RN50: layer1…layer4)")
    m.add_argument("--decoder", default="conv-20", choices=("conv-4", "conv-12", "conv-20", "linear"),
                   help="decoder trained on the features (default: conv-20)")
    w = m.add_mutually_exclusive_group()
    w.add_argument("--clip-weights", nargs="+", metavar="FILE",
                   help="OpenAI CLIP weights for the frozen backbone (ViT-L-14.pt; plus RN50.pt for the fusion)")
    w.add_argument("--base-model", metavar="M", help="reuse the backbone of an installed DeCLIP model")
    w.add_argument("--random-backbone", choices=("tiny", "full"),
                   help="random backbone weights — for tests and benchmarks only (the model is marked demo)")
    t = p.add_argument_group("optimisation")
    t.add_argument("--epochs", type=int, default=400, help="maximum number of epochs (default 400, as the authors)")
    t.add_argument("--batch-size", type=int, default=16, help="images per step (default: 16)")
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 0.001)")
    t.add_argument("--weight-decay", type=float, default=0.0, help="weight decay (default: 0)")
    t.add_argument("--patience", type=int, default=5, help="epochs without val IoU gain before lr ÷10 (default 5)")
    t.add_argument("--augment", default="none", choices=("none", "blur", "jpeg", "color_jitter", "all"),
                   help="augmentation of the training images (default: none)")
    t.add_argument("--aug-variants", type=int, default=4,
                   help="fixed augmented variants per image, cached (default 4); 0 = fresh every epoch, not cached")
    t.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    c = p.add_argument_group("running")
    c.add_argument("--no-cache", action="store_true", help="do not cache backbone features (the backbone runs every epoch)")
    c.add_argument("--cache-dir", help="feature cache folder (default: $DECLIP_HOME/cache/features)")
    c.add_argument("--cache-dtype", default="float32", choices=("float32", "float16"),
                   help="float16 halves the cache's disk use at a small rounding of the features")
    c.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    c.add_argument("--work-dir", help="where the per-epoch state is kept (default: $DECLIP_HOME/training/<name>)")
    c.add_argument("--resume", action="store_true", help="continue an interrupted run (same options)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_run)


def _err(message: str) -> int:
    from declip_desktop.common.text import terminal_safe

    print(f"error: {terminal_safe(message)}", file=sys.stderr)
    return FATAL


def _run(args: argparse.Namespace) -> int:
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.common.outputs import check_output_folder
    from declip_desktop.training.config import TrainConfig, TrainingError
    from declip_desktop.training.datasets import DatasetError
    from declip_desktop.training.decoder_training import train

    for folder in (args.cache_dir, args.work_dir):  # scratch folders: never inside a case folder
        if folder:
            check_output_folder(folder, create=False)
    cfg = TrainConfig(
        data=args.data, name=args.name, backbone=args.backbone, layer=args.layer, decoder=args.decoder,
        generator=args.generator, train_split=args.train_split, val_split=args.val_split, val_data=args.val_data,
        val_fraction=args.val_fraction, mask_polarity=args.mask_polarity, base_model=args.base_model,
        clip_weights=list(args.clip_weights or []), random_backbone=args.random_backbone, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, patience=args.patience,
        augment=args.augment, aug_variants=args.aug_variants, cache=not args.no_cache, cache_dir=args.cache_dir,
        cache_dtype=args.cache_dtype, device=args.device, seed=args.seed, work_dir=args.work_dir,
    )

    def say(_done: int, _total: int, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        result = train(cfg, resume=args.resume, progress=say, show_bars=sys.stderr.isatty())
    except (TrainingError, DatasetError, ModelError) as exc:
        return _err(str(exc))
    except KeyboardInterrupt:
        print("Interrupted. The last completed epoch is saved; continue with the same command plus --resume.",
              file=sys.stderr)
        return 130
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    best = result.best_val or {}
    summary = {
        "name": result.name, "finished": result.finished, "stop_reason": result.stop_reason,
        "epochs": len(result.history), "best_epoch": result.best_epoch,
        "val": {k: best.get(k) for k in ("n", "iou", "f1_best", "f1_fixed", "ap")},
        "model_sha256": result.card.sha256 if result.card else None, "work_dir": str(result.work_dir),
        "history": [{"epoch": h.epoch, "loss": h.loss, "val_iou": h.val.get("authors_mean", {}).get("iou"),
                     "lr": h.lr, "backbone_images": h.backbone_images, "seconds": round(h.seconds, 3)}
                    for h in result.history],
    }
    if args.json:
        from declip_desktop.training.evaluation import json_safe

        print(jsonout.dumps(json_safe(summary), indent=2))
    else:
        print(f"Trained {result.name}: {len(result.history)} epoch(s), {result.stop_reason}.")
        if result.best_epoch:
            v = summary["val"]
            shown = {k: "n/a" if v[k] is None else f"{v[k]:.{2 if k == 'iou' else 4}f}" for k in ("iou", "f1_best", "ap")}
            print(f"  best validation (epoch {result.best_epoch}): IoU {shown['iou']}, F1 best {shown['f1_best']}, "
                  f"AP {shown['ap']}")
        if result.card:
            print(f"  installed as model {result.card.name!r} (SHA-256 {result.card.sha256[:16]}…)")
    return OK
