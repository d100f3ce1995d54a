"""The model files DeCLIP Desktop knows how to download.

Two kinds of entries:

- `CheckpointEntry`: the nine checkpoints the DeCLIP authors released (all ViT-L/14
  layer20 with a conv-20 decoder; four of them fuse RN50 layer3 features). The authors
  publish no checksums, so `sha256` is None: the SHA-256 of the first verified download
  is recorded in the installed model card (`source_sha256`) and a later re-download
  (`--force`) must match it.
- `BackboneEntry`: OpenAI's CLIP weight files that the fusion checkpoints need, because
  those checkpoints hold only the decoder. OpenAI publishes each file's SHA-256 as the
  second-to-last segment of its URL; the download refuses anything else.

Mirrors (`DECLIP_MODELS_URL` or `--url`): a mirror is a base URL under which every file
sits at its `mirror_path` (see `docs/MODELS.md`):

    <base>/backbone_VIT/ViT_layer20_conv-20_ldm.pth
    <base>/backbone_VIT+RN50/ViT_layer20+RN50_layer3_conv-20_ldm.pth
    <base>/openai/ViT-L-14.pt
    <base>/openai/RN50.pt

The DeCLIP part is the same layout as the authors' bucket, so a copy of their `declip/`
folder is already a valid mirror. This module is data only: no network, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

#: Where the authors' bucket lives (DESIGN.md); `+` must be written `%2B` in a URL.
DECLIP_BASE_URL = "https://storage.googleapis.com/bitdefender_ml_artifacts/declip/"
OPENAI_BASE_URL = "https://openaipublic.azureedge.net/clip/models/"

#: Environment variable naming a mirror's base URL (same relative paths as `mirror_path`).
MIRROR_ENV = "DECLIP_MODELS_URL"

GB = 1_000_000_000
MB = 1_000_000

#: A download stops once its body passes `max_size`: the entry's size plus this share and a
#: fixed slack (the sizes are approximate: the authors publish none). A server that sends an
#: endless or inflated body cannot fill the disk.
SIZE_MARGIN_FRACTION = 0.25
SIZE_MARGIN_BYTES = 16 * MB


def _cap(approx_size: int) -> int:
    return int(approx_size * (1 + SIZE_MARGIN_FRACTION)) + SIZE_MARGIN_BYTES


@dataclass(frozen=True)
class BackboneEntry:
    """An OpenAI CLIP weight file (TorchScript archive) with its published SHA-256."""

    name: str  # "ViT-L/14" or "RN50": the backbone name used in model cards
    filename: str  # "ViT-L-14.pt"
    sha256: str
    approx_size: int  # bytes, approximate: for display and the up-front free-space check

    @property
    def url(self) -> str:
        return f"{OPENAI_BASE_URL}{self.sha256}/{self.filename}"

    @property
    def max_size(self) -> int:
        """Largest body accepted for this file (bytes)."""
        return _cap(self.approx_size)

    @property
    def mirror_path(self) -> str:
        return f"openai/{self.filename}"


@dataclass(frozen=True)
class CheckpointEntry:
    """One of the authors' released DeCLIP checkpoints."""

    name: str  # what users type: "vit-ldm", "vit+rn50-lama"
    backbone: str  # "ViT-L/14" or "ViT-L/14,RN50" (model-card spelling)
    layer: str  # "layer20" (ViT layer; fusion adds RN50 layer3)
    decoder: str  # "conv-20"
    training_set: str  # human-readable training data
    folder: str  # folder in the authors' bucket, unencoded ("backbone_VIT+RN50")
    filename: str  # file name in the bucket, unencoded
    approx_size: int  # bytes, approximate
    sha256: str | None = None  # the authors publish none
    backbones: tuple[str, ...] = ()  # BackboneEntry names the import needs (fusion only)

    @property
    def max_size(self) -> int:
        """Largest body accepted for this file (bytes)."""
        return _cap(self.approx_size)

    @property
    def mirror_path(self) -> str:
        """Path relative to a mirror's base URL, unencoded."""
        return f"{self.folder}/{self.filename}"

    @property
    def url(self) -> str:
        return DECLIP_BASE_URL + quote(self.mirror_path, safe="/")

    @property
    def is_fusion(self) -> bool:
        return bool(self.backbones)


VIT_L14 = BackboneEntry(
    name="ViT-L/14",
    filename="ViT-L-14.pt",
    sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
    approx_size=933 * MB,
)
RN50 = BackboneEntry(
    name="RN50",
    filename="RN50.pt",
    sha256="afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
    approx_size=256 * MB,
)

BACKBONES: dict[str, BackboneEntry] = {b.name: b for b in (VIT_L14, RN50)}

# Training data, as the paper names it. Dolos = CelebA-HQ faces inpainted by one generator.
_TRAINING_SETS = {
    "pluralistic": "Dolos — Pluralistic",
    "lama": "Dolos — LaMa",
    "repaint-p2-9k": "Dolos — RePaint-p2-9k",
    "ldm": "Dolos — LDM",
    "cocosd": "COCO-SD",
}

# ViT checkpoints hold the whole CLIP model (text tower too) plus the decoder: about
# 1.9 GB. Fusion checkpoints hold only the 2048-channel conv-20 decoder and its AdamW
# state (about 65 M parameters × 3 × 4 bytes): an estimate, the bucket lists no sizes.
_VIT_SIZE = 1900 * MB
_FUSION_SIZE = 800 * MB


def _vit(suffix: str) -> CheckpointEntry:
    return CheckpointEntry(
        name=f"vit-{suffix}",
        backbone="ViT-L/14",
        layer="layer20",
        decoder="conv-20",
        training_set=_TRAINING_SETS[suffix],
        folder="backbone_VIT",
        filename=f"ViT_layer20_conv-20_{suffix}.pth",
        approx_size=_VIT_SIZE,
    )


def _fusion(suffix: str) -> CheckpointEntry:
    return CheckpointEntry(
        name=f"vit+rn50-{suffix}",
        backbone="ViT-L/14,RN50",
        layer="layer20",
        decoder="conv-20",
        training_set=_TRAINING_SETS[suffix],
        folder="backbone_VIT+RN50",
        filename=f"ViT_layer20+RN50_layer3_conv-20_{suffix}.pth",
        approx_size=_FUSION_SIZE,
        backbones=(VIT_L14.name, RN50.name),
    )


CHECKPOINTS: dict[str, CheckpointEntry] = {
    e.name: e
    for e in (
        [_vit(s) for s in ("pluralistic", "lama", "repaint-p2-9k", "ldm", "cocosd")]
        + [_fusion(s) for s in ("pluralistic", "lama", "repaint-p2-9k", "ldm")]
    )
}

#: The paper's finding: the LDM-trained models generalize best. Suggested first download.
RECOMMENDED = "vit-ldm"


class UnknownModelError(KeyError):
    """A name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0])


def get_checkpoint(name: str) -> CheckpointEntry:
    """The registry entry for `name` (case-insensitive), or a clear error listing the names."""
    entry = CHECKPOINTS.get(name.strip().lower())
    if entry is None:
        raise UnknownModelError(
            f"'{name}' is not a known DeCLIP checkpoint. Known names: {', '.join(CHECKPOINTS)}. "
            "To install a file you already have, use `declip models import FILE`."
        )
    return entry


def backbones_for(entry: CheckpointEntry) -> list[BackboneEntry]:
    return [BACKBONES[b] for b in entry.backbones]


def join_url(base: str, relative_path: str) -> str:
    """`base` + `relative_path` with the path percent-encoded (`+` → `%2B`)."""
    if not base.endswith("/"):
        base += "/"
    return base + quote(relative_path, safe="/")
