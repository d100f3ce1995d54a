"""DeCLIP networks: a frozen CLIP image encoder cut at one layer, plus a trained decoder.

Everything is built from open_clip's *local* model configs with no pretrained weights
(nothing is ever downloaded); weights come from an installed model file.

Shapes (ViT-L/14, 224 px input): `layerN` is the 257-token sequence after block N of
the visual transformer; the class token is dropped and the 256 patch tokens become a
1024×16×16 map (row-major). Blocks after N, `ln_post` and `proj` are never built, so
they cost neither time nor memory. RN50 (`layer1`…`layer4`) keeps its stem and stages
up to the one used. The fusion concatenates ViT `layerN` with RN50 `layer3` resized to
16×16. The decoders turn a feature map into 1×256×256 logits.

State-dict layout of `DeclipNet` (what the installed `.safetensors` files hold):
`backbone.vit.*` (open_clip/OpenAI ViT naming), `backbone.rn50.*` (OpenAI ModifiedResNet
naming) and `decoder.fc.<index>.*` (the authors' `fc` Sequential, same indices).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

VIT = "ViT-L/14"
RN50 = "RN50"
FUSION = "ViT-L/14,RN50"
BACKBONES = (VIT, RN50, FUSION)
DECODERS = ("conv-4", "conv-12", "conv-20", "linear")

#: CLIP's input normalization (the network expects already-normalized input).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INPUT_SIZE = 224
OUTPUT_SIZE = 256

#: The RN50 stage the fusion model uses (fixed by the authors' code).
FUSION_RN50_LAYER = 3


class NetworkSpecError(ValueError):
    """A backbone/layer/decoder combination or tensor shape that no DeCLIP network has."""


def _open_clip_vision_cfg(name: str) -> dict:
    # open_clip ships its model configs as JSON inside the package: reading one is local.
    import open_clip

    cfg = open_clip.get_model_config(name)
    if cfg is None:  # pragma: no cover - only if open_clip drops the config
        raise NetworkSpecError(f"open_clip has no local config {name!r}")
    return cfg


@dataclass(frozen=True)
class VitSpec:
    """Shape of a CLIP vision transformer (defaults: OpenAI ViT-L/14, QuickGELU)."""

    width: int = 1024
    depth: int = 24  # blocks in the full tower; only blocks 0…N are ever built
    patch_size: int = 14
    image_size: int = 224
    mlp_ratio: float = 4.0
    head_width: int = 64  # OpenAI rule: heads = width // 64

    @classmethod
    def from_open_clip(cls, name: str = "ViT-L-14-quickgelu") -> VitSpec:
        cfg = _open_clip_vision_cfg(name)
        if not cfg.get("quick_gelu"):
            raise NetworkSpecError(f"{name}: DeCLIP needs the QuickGELU variant of CLIP")
        v = cfg["vision_cfg"]
        return cls(
            width=v["width"],
            depth=v["layers"],
            patch_size=v["patch_size"],
            image_size=v["image_size"],
            mlp_ratio=v.get("mlp_ratio", 4.0),
            head_width=v.get("head_width", 64),
        )

    @property
    def heads(self) -> int:
        return max(1, self.width // self.head_width)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class ResNetSpec:
    """Shape of OpenAI's ModifiedResNet (defaults: RN50)."""

    width: int = 64
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    image_size: int = 224

    @classmethod
    def from_open_clip(cls, name: str = "RN50-quickgelu") -> ResNetSpec:
        v = _open_clip_vision_cfg(name)["vision_cfg"]
        return cls(width=v["width"], blocks=tuple(v["layers"]), image_size=v["image_size"])

    def stage_channels(self, stage: int) -> int:
        return self.width * (2 ** (stage - 1)) * 4  # Bottleneck expansion is 4

    def stage_size(self, stage: int) -> int:
        return self.image_size // (2 ** (stage + 1))  # stem /4, then /2 per stage after the first


DEFAULT_DECODER_WIDTHS = (512, 256, 128, 64)


@dataclass(frozen=True)
class NetSpec:
    """Everything needed to build a `DeclipNet` (weights aside).

    `backbone`, `layer` and `decoder` use the authors' vocabulary ("ViT-L/14", "layer20",
    "conv-20"). `vit`, `resnet` and `decoder_widths` default to the real sizes; tests use
    tiny ones.
    """

    backbone: str
    layer: str
    decoder: str
    vit: VitSpec = field(default_factory=VitSpec)
    resnet: ResNetSpec = field(default_factory=ResNetSpec)
    decoder_widths: tuple[int, ...] = DEFAULT_DECODER_WIDTHS

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise NetworkSpecError(f"unknown backbone {self.backbone!r} (known: {', '.join(BACKBONES)})")
        if self.decoder not in DECODERS:
            raise NetworkSpecError(f"unknown decoder {self.decoder!r} (known: {', '.join(DECODERS)})")
        index = layer_index(self.layer)
        if self.backbone == RN50:
            if not 1 <= index <= 4:
                raise NetworkSpecError(f"RN50 has layer1…layer4, not {self.layer!r}")
        elif not 0 <= index < self.vit.depth:
            raise NetworkSpecError(f"the ViT has layer0…layer{self.vit.depth - 1}, not {self.layer!r}")
        if self.decoder == "linear" and self.backbone != VIT:
            # The authors' linear decoder only works on ViT tokens.
            raise NetworkSpecError(f"the linear decoder exists only for {VIT}, not {self.backbone}")
        if self.vit.grid * 16 != OUTPUT_SIZE and self.backbone != RN50:
            raise NetworkSpecError("the ViT must produce a 16×16 patch grid (224 px input, 14 px patches)")
        if len(self.decoder_widths) != 4:
            raise NetworkSpecError("a conv decoder has four stages")

    @property
    def uses_vit(self) -> bool:
        return self.backbone in (VIT, FUSION)

    @property
    def uses_resnet(self) -> bool:
        return self.backbone in (RN50, FUSION)

    @property
    def vit_layer(self) -> int | None:
        return layer_index(self.layer) if self.uses_vit else None

    @property
    def resnet_layer(self) -> int | None:
        if self.backbone == RN50:
            return layer_index(self.layer)
        return FUSION_RN50_LAYER if self.backbone == FUSION else None

    @property
    def feature_channels(self) -> int:
        channels = 0
        if self.uses_vit:
            channels += self.vit.width
        if self.uses_resnet:
            channels += self.resnet.stage_channels(self.resnet_layer)
        return channels

    @property
    def convs_per_stage(self) -> int:
        return conv_count(self.decoder) // 4

    def skipped_upsamplings(self) -> set[int]:
        """Decoder stages (1-based) without an ×2 upsampling: RN50's large early maps."""
        if self.backbone != RN50:
            return set()
        return {2: {1}, 1: {1, 2}}.get(layer_index(self.layer), set())

    def decoder_layout(self) -> list[str]:
        """Kind of each module in the authors' `fc` Sequential, by index."""
        if self.decoder == "linear":
            return ["linear"]
        layout: list[str] = []
        skipped = self.skipped_upsamplings()
        for stage in range(1, 5):
            layout += ["conv", "bn", "relu"] * self.convs_per_stage
            if stage not in skipped:
                layout.append("up2")
        if self.uses_resnet:  # the authors add it whenever RN50 is involved, fusion included
            layout.append("resize256")
        layout.append("conv_out")
        return layout

    def stage_first_conv_indices(self) -> list[int]:
        layout = self.decoder_layout()
        firsts, per_stage = [], self.convs_per_stage
        conv_positions = [i for i, kind in enumerate(layout) if kind == "conv"]
        for stage in range(4):
            firsts.append(conv_positions[stage * per_stage])
        return firsts


def layer_index(layer: str) -> int:
    match = re.fullmatch(r"layer(\d{1,2})", layer or "")
    if not match:
        raise NetworkSpecError(f"a feature layer looks like 'layer20', not {layer!r}")
    return int(match.group(1))


def conv_count(decoder: str) -> int:
    match = re.fullmatch(r"conv-(\d+)", decoder)
    if not match or int(match.group(1)) % 4 or int(match.group(1)) == 0:
        raise NetworkSpecError(f"not a conv decoder: {decoder!r}")
    return int(match.group(1))


# --------------------------------------------------------------------------- backbone


def build_vit_tower(spec: VitSpec, blocks: int) -> nn.Module:
    """open_clip's VisionTransformer with QuickGELU and only `blocks` blocks, no head."""
    from open_clip.transformer import QuickGELU, VisionTransformer

    tower = VisionTransformer(
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        width=spec.width,
        layers=blocks,
        heads=spec.heads,
        mlp_ratio=spec.mlp_ratio,
        output_dim=spec.width,  # irrelevant: the projection is removed just below
        act_layer=QuickGELU,
    )
    # ln_post and proj only serve the image embedding, which DeCLIP never uses.
    tower.prune_intermediate_layers([blocks - 1], prune_norm=True, prune_head=True)
    return tower


def build_resnet_trunk(spec: ResNetSpec, stages: int) -> nn.Module:
    """open_clip's ModifiedResNet (OpenAI RN50 layout) keeping the stem and stages 1…`stages`."""
    from open_clip.modified_resnet import ModifiedResNet

    trunk = ModifiedResNet(
        layers=list(spec.blocks),
        output_dim=1024,  # irrelevant: the attention pool is removed just below
        heads=max(1, spec.width * 32 // 64),
        image_size=spec.image_size,
        width=spec.width,
    )
    trunk.attnpool = None
    for stage in range(stages + 1, 5):
        setattr(trunk, f"layer{stage}", None)
    return trunk


class ClipBackbone(nn.Module):
    """Frozen CLIP features: ViT `layerN` tokens as a map, RN50 stage output, or both.

    `vit` and `rn50` are plain open_clip modules, so a fast mode can quantize or swap
    their parts (e.g. `backbone.vit.transformer.resblocks[i].mlp`).
    """

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.vit_layer = spec.vit_layer
        self.rn50_layer = spec.resnet_layer
        self.vit = build_vit_tower(spec.vit, spec.vit_layer + 1) if spec.uses_vit else None
        self.rn50 = build_resnet_trunk(spec.resnet, spec.resnet_layer) if spec.uses_resnet else None
        self.out_channels = spec.feature_channels

    def vit_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.vit.forward_intermediates(
            x, indices=[self.vit_layer], stop_early=True, intermediates_only=True, output_fmt="NCHW"
        )
        return out["image_intermediates"][0]  # B×width×16×16, class token dropped

    def rn50_features(self, x: torch.Tensor) -> torch.Tensor:
        trunk = self.rn50
        x = trunk.stem(x.to(trunk.conv1.weight.dtype))
        for stage in range(1, self.rn50_layer + 1):
            x = getattr(trunk, f"layer{stage}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.vit is not None and self.rn50 is not None:
            vit = self.vit_features(x)
            rn = self.rn50_features(x)
            rn = F.interpolate(rn, size=vit.shape[-2:], mode="bilinear", align_corners=False)
            return torch.cat([vit, rn], dim=1)
        if self.vit is not None:
            return self.vit_features(x)
        return self.rn50_features(x)


# --------------------------------------------------------------------------- decoders


class ConvDecoder(nn.Module):
    """`conv-K`: four stages of K/4 × (Conv5×5 → BN → ReLU), ×2 bilinear upsampling, Conv5×5 → 1.

    Module indices inside `fc` follow the authors' Sequential exactly, so their
    `fc.<i>.*` keys load unchanged.
    """

    def __init__(self, spec: NetSpec):
        super().__init__()
        widths = [spec.feature_channels, *spec.decoder_widths]
        modules: list[nn.Module] = []
        stage, convs_done, channels = 0, 0, widths[0]
        for kind in spec.decoder_layout():
            if kind == "conv":
                out = widths[stage + 1]
                modules.append(nn.Conv2d(channels, out, kernel_size=5, padding=2))
                channels = out
                convs_done += 1
            elif kind == "bn":
                modules.append(nn.BatchNorm2d(channels))
            elif kind == "relu":
                modules.append(nn.ReLU())
                if convs_done == spec.convs_per_stage:
                    stage, convs_done = stage + 1, 0
            elif kind == "up2":
                modules.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            elif kind == "resize256":
                modules.append(nn.Upsample(size=(OUTPUT_SIZE, OUTPUT_SIZE), mode="bilinear", align_corners=False))
            elif kind == "conv_out":
                modules.append(nn.Conv2d(channels, 1, kernel_size=5, padding=2))
        self.fc = nn.Sequential(*modules)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


class LinearDecoder(nn.Module):
    """`linear`: one Linear(C → 1) per patch token, the 16×16 result resized bicubic to 256."""

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(spec.feature_channels, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, _, h, w = features.shape
        tokens = features.flatten(2).transpose(1, 2)  # B×(H·W)×C, row-major like the token order
        logits = self.fc(tokens).reshape(b, 1, h, w)
        return F.interpolate(logits, size=(OUTPUT_SIZE, OUTPUT_SIZE), mode="bicubic", align_corners=False)


# --------------------------------------------------------------------------- the network


class DeclipNet(nn.Module):
    """forward(x: B×3×224×224, CLIP-normalized) → logits B×1×256×256."""

    def __init__(self, spec: NetSpec):
        super().__init__()
        self.spec = spec
        self.backbone = ClipBackbone(spec)
        self.decoder = LinearDecoder(spec) if spec.decoder == "linear" else ConvDecoder(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.backbone(x))


def build_network(spec: NetSpec, *, meta: bool = False) -> DeclipNet:
    """A `DeclipNet` in eval mode. `meta=True` allocates no memory (weights to be assigned)."""
    if meta:
        with torch.device("meta"):
            net = DeclipNet(spec)
    else:
        net = DeclipNet(spec)
    return net.eval()


# --------------------------------------------------------------------------- shapes → spec


def spec_from_shapes(backbone: str, layer: str, decoder: str, shapes: Mapping[str, tuple[int, ...]]) -> NetSpec:
    """Read the network's sizes from the tensor shapes of a `DeclipNet` state dict.

    `backbone`, `layer` and `decoder` name the architecture; the shapes say how wide and
    deep it is (real ViT-L/14 or a tiny test model). Shapes that contradict each other are
    not resolved here: the strict load that follows reports them key by key.
    """
    spec = NetSpec(backbone, layer, decoder, vit=VitSpec(depth=10**6))  # depth checked below
    vit, resnet = VitSpec(), ResNetSpec()
    if spec.uses_vit:
        conv1 = _need(shapes, "backbone.vit.conv1.weight", 4)
        pos = _need(shapes, "backbone.vit.positional_embedding", 2)
        grid = round((pos[0] - 1) ** 0.5)
        blocks = {int(m.group(1)) for k in shapes if (m := re.match(r"backbone\.vit\.transformer\.resblocks\.(\d+)\.", k))}
        vit = VitSpec(
            width=conv1[0],
            depth=max(VitSpec().depth, max(blocks, default=0) + 1),
            patch_size=conv1[-1],
            image_size=conv1[-1] * grid,
        )  # MLP ratio 4 and 64-wide heads are CLIP's; a different file is reported key by key
    if spec.uses_resnet:
        width = _need(shapes, "backbone.rn50.layer1.0.conv1.weight", 4)[0]
        counts = []
        for stage in range(1, 5):
            ids = {int(m.group(1)) for k in shapes if (m := re.match(rf"backbone\.rn50\.layer{stage}\.(\d+)\.", k))}
            # stages beyond the one used are never built: their depth does not matter
            counts.append(max(ids) + 1 if ids else ResNetSpec().blocks[stage - 1])
        resnet = ResNetSpec(width=width, blocks=tuple(counts))
    spec = replace(spec, vit=vit, resnet=resnet)
    if decoder != "linear":
        widths = []
        for idx, default in zip(spec.stage_first_conv_indices(), DEFAULT_DECODER_WIDTHS, strict=True):
            shape = shapes.get(f"decoder.fc.{idx}.weight")
            widths.append(shape[0] if shape is not None and len(shape) == 4 else default)
        spec = replace(spec, decoder_widths=tuple(widths))
    return spec


def _need(shapes: Mapping[str, tuple[int, ...]], key: str, ndim: int) -> tuple[int, ...]:
    shape = shapes.get(key)
    if shape is None:
        raise NetworkSpecError(f"missing weight {key}")
    if len(shape) != ndim:
        raise NetworkSpecError(f"weight {key} has shape {list(shape)}, expected {ndim} dimensions")
    return tuple(shape)


def expected_shapes(spec: NetSpec) -> dict[str, tuple[int, ...]]:
    """Key → shape of every tensor a network of this spec needs (no memory allocated)."""
    net = build_network(spec, meta=True)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}
