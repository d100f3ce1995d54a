"""Make the conformance goldens from the DeCLIP authors' own code (tests/goldens/conformance/).

    python benchmarks/conformance_goldens.py [--authors /path/to/DeCLIP/git-or-checkout]

The authors' code (github.com/bit-ml/DeCLIP, CC BY-NC-SA) is never committed here: its
`models/` package is extracted into a temporary folder and imported from there. Changes to
it, all of them outside the computation:
- `clip.load` downloads OpenAI's weights; it is replaced by a function that builds their
  CLIP with their own `build_model` (which rounds to fp16 and back, as their loader does)
  from a seeded random state dict in OpenAI's layout (tests/conformance_cases.py);
- their fusion model moves its two backbones to "cuda"; that call is made a no-op so it runs
  on the CPU;
- `pkg_resources` (setuptools, absent from this environment) is only used by them for a torch
  version warning; a stand-in module provides `packaging`.
Everything else runs as written: `CLIPModelLocalisation(...)`, `load_state_dict(ckpt["model"],
strict=False)` (the missing/unexpected key counts are printed and must be 0) and `forward`.
Maps are the authors' evaluation read-out: sigmoid of the logits, resized to the image's size
with torchvision's bilinear `resize` (antialias on). Stored as float32 .npy, one per model and
image, with MANIFEST.json (authors' commit, versions, logit ranges).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_AUTHORS = Path("/work/.mirror/bit-ml+DeCLIP/repo")


def extract_authors_models(source: Path, dest: Path) -> str:
    """Copy the authors' `models/` package into `dest`; return the commit it came from."""
    if (source / "models" / "clip_models.py").is_file():  # a checkout
        import shutil

        shutil.copytree(source / "models", dest / "models")
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        return commit.strip() or "unknown (plain folder)"
    archive = subprocess.run(["git", "--git-dir", str(source), "archive", "HEAD", "models"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return subprocess.run(["git", "--git-dir", str(source), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors", type=Path, default=DEFAULT_AUTHORS,
                        help="the authors' repository: a git directory (bare/mirror) or a checkout")
    parser.add_argument("--out", type=Path, default=None, help="default: tests/goldens/conformance")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    import torchvision
    from PIL import Image
    from torchvision import transforms
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    from tests import conformance_cases as cc
    from tests import factories

    torch.set_num_threads(args.threads)
    out_dir = args.out or cc.GOLDENS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="declip-authors-"))
    commit = extract_authors_models(args.authors, scratch)
    models_py = scratch / "models" / "clip_models.py"
    text = models_py.read_text()
    cuda = 'self.model = [model1.to("cuda"), model2.to("cuda")]'
    assert cuda in text, "the authors' fusion code changed; update this script"
    models_py.write_text(text.replace(cuda, "self.model = [model1, model2]"))
    import packaging.version

    sys.modules.setdefault("pkg_resources", types.SimpleNamespace(packaging=packaging))
    sys.path.insert(0, str(scratch))
    from models.clip import clip as authors_clip  # noqa: E402 - their code, from the scratch copy
    from models.clip.model import build_model  # noqa: E402
    from models.clip_models import CLIPModelLocalisation  # noqa: E402

    clip_states: dict[str, dict] = {}

    def load_without_download(name, device="cpu", intermidiate_layers=None, **_):
        model = build_model(dict(clip_states[name]), intermidiate_layers=intermidiate_layers).to(device)
        return model.float(), None  # as their load does on the CPU

    authors_clip.load = load_without_download
    preprocess = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(),
                                     transforms.Normalize(mean=(0.48145466, 0.4578275, 0.40821073),
                                                          std=(0.26862954, 0.26130258, 0.27577711))])
    pictures = {name: cc.image(h, w) for name, h, w in cc.IMAGES}
    batch = torch.stack([preprocess(Image.fromarray(pictures[name])) for name, _, _ in cc.IMAGES])
    manifest = {"authors_commit": commit, "torch": torch.__version__, "torchvision": torchvision.__version__,
                "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "tolerance": cc.TOLERANCE, "cases": {}}

    for case in cc.CASES:
        t0 = time.perf_counter()
        files = scratch / "files" / case.name
        ckpt_path, clip_files = cc.write_case_files(case, files)
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        # Their model needs *some* CLIP state to build; for ViT checkpoints load_state_dict then
        # overwrites every backbone weight from the checkpoint, as in their evaluation.
        if case.fusion:
            clip_states["ViT-L/14"] = torch.load(clip_files[0], map_location="cpu", weights_only=True)
            clip_states["RN50"] = torch.load(clip_files[1], map_location="cpu", weights_only=True)
        else:
            clip_states["ViT-L/14"] = factories.openai_clip_state("ViT", 0, tiny=False, half=True)
        net = CLIPModelLocalisation(case.backbone, case.layer, case.decoder)
        result = net.load_state_dict(ckpt["model"], strict=False)
        missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
        print(f"{case.name}: load_state_dict missing {len(missing)}, unexpected {len(unexpected)}")
        if missing or unexpected:
            raise SystemExit(f"{case.name}: keys do not line up: {missing[:5]} {unexpected[:5]}")
        net.eval()
        if case.fusion:
            for m in net.model:
                m.eval()
        with torch.no_grad():
            logits = net(batch).view(len(cc.IMAGES), 256, 256)
        prob = torch.sigmoid(logits)
        for (name, h, w), p in zip(cc.IMAGES, prob):
            m = TF.resize(p[None], [h, w], interpolation=InterpolationMode.BILINEAR, antialias=True)[0]
            np.save(cc.golden_path(case, name) if args.out is None else out_dir / cc.golden_path(case, name).name,
                    m.clamp(0, 1).numpy().astype(np.float32))
        manifest["cases"][case.name] = {
            "backbone": case.backbone, "layer": case.layer, "decoder": case.decoder, "seed": case.seed,
            "last_conv_scale": case.last_conv_scale, "logit_min": float(logits.min()), "logit_max": float(logits.max()),
            "probability_std": float(prob.std()), "images": [list(i) for i in cc.IMAGES],
        }
        print(f"{case.name}: logits {float(logits.min()):.2f} … {float(logits.max()):.2f}, "
              f"{time.perf_counter() - t0:.0f} s")
        del net, ckpt, clip_states["ViT-L/14"], logits, prob
        clip_states.clear()
        import shutil

        shutil.rmtree(files, ignore_errors=True)
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"goldens in {out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
