"""The cases of the conformance golden test, shared by the script that makes the goldens
from the authors' code (benchmarks/conformance_goldens.py) and the test that checks the
engine against them (tests/test_conformance_goldens.py).

Everything here is rebuilt from seeds by the project's own code (tests/factories.py):
full-size random weights in the authors' exact checkpoint layout, and procedural images.
The last decoder convolution is scaled up so that the logits span a realistic range; with
plain random weights they stay within ±0.3 and a comparison would say little.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tests import factories

GOLDENS_DIR = Path(__file__).parent / "goldens" / "conformance"
#: The engine must agree with the authors' maps this closely (probability, per pixel).
TOLERANCE = 1e-4


@dataclass(frozen=True)
class Case:
    name: str  # file stem of the goldens
    backbone: str  # "ViT-L/14" | "ViT-L/14,RN50" (the authors' model name)
    layer: str
    decoder: str
    seed: int
    last_conv_scale: float

    @property
    def fusion(self) -> bool:
        return "," in self.backbone

    @property
    def file_name(self) -> str:  # an authors'-style checkpoint name
        if self.fusion:
            return f"ViT_{self.layer}+RN50_layer3_{self.decoder}_golden.pth"
        return f"ViT_{self.layer}_{self.decoder}_golden.pth"


CASES = (
    Case("vit-layer20-conv20", "ViT-L/14", "layer20", "conv-20", seed=101, last_conv_scale=30.0),
    Case("vit-layer8-conv4", "ViT-L/14", "layer8", "conv-4", seed=102, last_conv_scale=10.0),
    Case("fusion-layer20-conv20", "ViT-L/14,RN50", "layer20", "conv-20", seed=103, last_conv_scale=30.0),
)

#: (name, height, width): the 256×256 one is the map's own size (Dolos), the other is resized.
IMAGES = (("square256", 256, 256), ("wide200x312", 200, 312))


def image(height: int, width: int, seed: int = 7) -> np.ndarray:
    """A deterministic H×W×3 uint8 picture: smooth shading, an edge, a textured patch, noise."""
    rng = np.random.default_rng(seed + height * 1000 + width)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    img = np.stack([220 * xx, 200 * yy, 110 + 80 * np.sin(9 * xx + 4 * yy)], axis=2)
    img[height // 3: height // 2, width // 4: width // 2] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _scale_last_conv(state: dict, factor: float) -> None:
    last = max((k for k in state if k.startswith("fc.") and k.endswith(".weight")), key=lambda k: int(k.split(".")[1]))
    state[last] = state[last] * factor


def write_case_files(case: Case, folder: Path) -> tuple[Path, list[Path]]:
    """The case's checkpoint (and, for the fusion, OpenAI-style fp16 CLIP files) under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    if case.fusion:
        state = factories.fusion_checkpoint_state(case.decoder, case.seed, vit=factories.REAL_VIT,
                                                  rn=factories.REAL_RN, widths=factories.REAL_DECODER_WIDTHS)
        _scale_last_conv(state, case.last_conv_scale)
        ckpt = factories._save_authors(folder / case.file_name, state, case.layer, case.decoder)
        clips = []
        for kind, file in (("ViT", "ViT-L-14-random.pt"), ("RN50", "RN50-random.pt")):
            # fp16, as OpenAI ships them: the authors' loader rounds to fp16, so the values must be fp16 already
            sd = factories.openai_clip_state(kind, case.seed + (0 if kind == "ViT" else 1), tiny=False, half=True)
            torch.save(sd, folder / file)
            del sd
            clips.append(folder / file)
        return ckpt, clips
    state = factories.vit_checkpoint_state(case.layer, case.decoder, case.seed, vit=factories.REAL_VIT,
                                           text=factories.REAL_TEXT_VIT, widths=factories.REAL_DECODER_WIDTHS)
    _scale_last_conv(state, case.last_conv_scale)
    return factories._save_authors(folder / case.file_name, state, case.layer, case.decoder), []


def golden_path(case: Case, image_name: str) -> Path:
    return GOLDENS_DIR / f"{case.name}__{image_name}.npy"
