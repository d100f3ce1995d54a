"""Seeded random-weight checkpoints in the authors' exact file layout, for tests.

Written from the layout described in ../shared/DESIGN.md (and checked against the
authors' save format), independently of `declip_desktop.engine.networks`, so a test
that loads these files really tests the importer's reading of the format.

Authors' `.pth` (torch.save of a dict):
    {"model": state_dict, "feature_layer": "layer20", "decoder_type": "conv-20",
     "optimizer": {...}, "total_steps": int}
ViT/RN50 checkpoints: `model.visual.*` (OpenAI CLIP naming), the unused text tower
(`model.transformer.*`, `model.token_embedding.weight`, …) and the decoder `fc.*`.
Fusion checkpoints: only `fc.*` (the backbones come from OpenAI's CLIP files).

Tiny sizes keep every forward pass far below a second: ViT width 64 (1 head), 2 blocks,
14 px patches on 224 px (16×16 grid, like the real one); RN50 width 8, one block per
stage; decoder widths (32, 16, 8, 8) instead of (512, 256, 128, 64).
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

TINY_VIT = {"width": 64, "blocks": 2, "patch": 14, "image": 224}
TINY_RN = {"width": 8, "blocks": (1, 1, 1, 1)}
TINY_TEXT = {"width": 64, "blocks": 1, "vocab": 100, "context": 8, "embed": 32}
TINY_DECODER_WIDTHS = (32, 16, 8, 8)

REAL_VIT = {"width": 1024, "blocks": 24, "patch": 14, "image": 224}
REAL_RN = {"width": 64, "blocks": (3, 4, 6, 3)}
REAL_TEXT_VIT = {"width": 768, "blocks": 12, "vocab": 49408, "context": 77, "embed": 768}
REAL_TEXT_RN = {"width": 512, "blocks": 12, "vocab": 49408, "context": 77, "embed": 1024}
REAL_DECODER_WIDTHS = (512, 256, 128, 64)


class _Rand:
    """Seeded tensor maker with scales that keep activations finite and non-trivial."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)

    def normal(self, *shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=self.gen) * std + mean

    def uniform(self, *shape, low=0.0, high=1.0):
        return torch.rand(*shape, generator=self.gen) * (high - low) + low

    def weight(self, *shape):
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        return self.normal(*shape, std=fan_in**-0.5)


def _layer_norm(sd, prefix, width, r):
    sd[f"{prefix}.weight"] = r.normal(width, std=0.1, mean=1.0)
    sd[f"{prefix}.bias"] = r.normal(width, std=0.05)


def _batch_norm(sd, prefix, width, r):
    sd[f"{prefix}.weight"] = r.normal(width, std=0.1, mean=1.0)
    sd[f"{prefix}.bias"] = r.normal(width, std=0.1)
    sd[f"{prefix}.running_mean"] = r.normal(width, std=0.1)
    sd[f"{prefix}.running_var"] = r.uniform(width, low=0.5, high=1.5)
    sd[f"{prefix}.num_batches_tracked"] = torch.tensor(1000, dtype=torch.long)


def _residual_blocks(sd, prefix, width, blocks, r):
    for i in range(blocks):
        p = f"{prefix}.resblocks.{i}"
        sd[f"{p}.attn.in_proj_weight"] = r.weight(3 * width, width)
        sd[f"{p}.attn.in_proj_bias"] = r.normal(3 * width, std=0.02)
        sd[f"{p}.attn.out_proj.weight"] = r.weight(width, width)
        sd[f"{p}.attn.out_proj.bias"] = r.normal(width, std=0.02)
        _layer_norm(sd, f"{p}.ln_1", width, r)
        sd[f"{p}.mlp.c_fc.weight"] = r.weight(4 * width, width)
        sd[f"{p}.mlp.c_fc.bias"] = r.normal(4 * width, std=0.02)
        sd[f"{p}.mlp.c_proj.weight"] = r.weight(width, 4 * width)
        sd[f"{p}.mlp.c_proj.bias"] = r.normal(width, std=0.02)
        _layer_norm(sd, f"{p}.ln_2", width, r)


def openai_vit_visual(r: _Rand, vit: dict, embed: int, prefix: str = "visual") -> dict:
    """OpenAI CLIP `visual.*` tensors of a VisionTransformer."""
    w, grid = vit["width"], vit["image"] // vit["patch"]
    sd: dict = OrderedDict()
    sd[f"{prefix}.class_embedding"] = r.normal(w, std=w**-0.5)
    sd[f"{prefix}.positional_embedding"] = r.normal(grid * grid + 1, w, std=w**-0.5)
    sd[f"{prefix}.proj"] = r.normal(w, embed, std=w**-0.5)
    sd[f"{prefix}.conv1.weight"] = r.weight(w, 3, vit["patch"], vit["patch"])
    _layer_norm(sd, f"{prefix}.ln_pre", w, r)
    _residual_blocks(sd, f"{prefix}.transformer", w, vit["blocks"], r)
    _layer_norm(sd, f"{prefix}.ln_post", w, r)
    return sd


def openai_resnet_visual(r: _Rand, rn: dict, embed: int, prefix: str = "visual", image: int = 224) -> dict:
    """OpenAI CLIP `visual.*` tensors of a ModifiedResNet (RN50 layout)."""
    w = rn["width"]
    sd: dict = OrderedDict()
    for name, cin, cout in (("conv1", 3, w // 2), ("conv2", w // 2, w // 2), ("conv3", w // 2, w)):
        sd[f"{prefix}.{name}.weight"] = r.weight(cout, cin, 3, 3)
        _batch_norm(sd, f"{prefix}.bn{name[-1]}", cout, r)
    inplanes = w
    for stage, blocks in enumerate(rn["blocks"], start=1):
        planes = w * 2 ** (stage - 1)
        for i in range(blocks):
            p = f"{prefix}.layer{stage}.{i}"
            sd[f"{p}.conv1.weight"] = r.weight(planes, inplanes, 1, 1)
            _batch_norm(sd, f"{p}.bn1", planes, r)
            sd[f"{p}.conv2.weight"] = r.weight(planes, planes, 3, 3)
            _batch_norm(sd, f"{p}.bn2", planes, r)
            sd[f"{p}.conv3.weight"] = r.weight(planes * 4, planes, 1, 1)
            _batch_norm(sd, f"{p}.bn3", planes * 4, r)
            if i == 0:  # first block of every stage changes width or stride: projection shortcut
                sd[f"{p}.downsample.0.weight"] = r.weight(planes * 4, inplanes, 1, 1)
                _batch_norm(sd, f"{p}.downsample.1", planes * 4, r)
            inplanes = planes * 4
    embed_dim = w * 32
    sd[f"{prefix}.attnpool.positional_embedding"] = r.normal((image // 32) ** 2 + 1, embed_dim, std=embed_dim**-0.5)
    for proj in ("k_proj", "q_proj", "v_proj"):
        sd[f"{prefix}.attnpool.{proj}.weight"] = r.weight(embed_dim, embed_dim)
        sd[f"{prefix}.attnpool.{proj}.bias"] = r.normal(embed_dim, std=0.02)
    sd[f"{prefix}.attnpool.c_proj.weight"] = r.weight(embed, embed_dim)
    sd[f"{prefix}.attnpool.c_proj.bias"] = r.normal(embed, std=0.02)
    return sd


def openai_text_tower(r: _Rand, text: dict, prefix: str = "") -> dict:
    """The text half of an OpenAI CLIP state dict (DeCLIP never uses it)."""
    w = text["width"]
    sd: dict = OrderedDict()
    sd[f"{prefix}positional_embedding"] = r.normal(text["context"], w, std=0.01)
    sd[f"{prefix}text_projection"] = r.normal(w, text["embed"], std=w**-0.5)
    sd[f"{prefix}logit_scale"] = torch.tensor(4.6052)
    _residual_blocks(sd, f"{prefix}transformer", w, text["blocks"], r)
    sd[f"{prefix}token_embedding.weight"] = r.normal(text["vocab"], w, std=0.02)
    _layer_norm(sd, f"{prefix}ln_final", w, r)
    return sd


def authors_decoder(
    r: _Rand,
    in_channels: int,
    decoder: str,
    *,
    widths=TINY_DECODER_WIDTHS,
    skipped_upsamplings: tuple[int, ...] = (),
    final_resize: bool = False,
) -> dict:
    """`fc.*` tensors with the authors' Sequential indices.

    Per stage: K/4 × (Conv, BN, ReLU) then an Upsample (unless skipped); then, for any
    model involving RN50, an Upsample to 256×256; then the last Conv. Parameter-free
    modules still take an index.
    """
    sd: dict = OrderedDict()
    if decoder == "linear":
        sd["fc.0.weight"] = r.weight(1, in_channels)
        sd["fc.0.bias"] = r.normal(1, std=0.1)
        return sd
    per_stage = int(re.fullmatch(r"conv-(\d+)", decoder).group(1)) // 4
    idx, cin = 0, in_channels
    for stage, cout in enumerate(widths, start=1):
        for _ in range(per_stage):
            sd[f"fc.{idx}.weight"] = r.weight(cout, cin, 5, 5)
            sd[f"fc.{idx}.bias"] = r.normal(cout, std=0.05)
            _batch_norm(sd, f"fc.{idx + 1}", cout, r)
            idx += 3  # conv, bn, relu
            cin = cout
        if stage not in skipped_upsamplings:
            idx += 1  # Upsample(scale_factor=2)
    if final_resize:
        idx += 1  # Upsample(size=(256, 256))
    sd[f"fc.{idx}.weight"] = r.weight(1, cin, 5, 5)
    sd[f"fc.{idx}.bias"] = r.normal(1, std=0.05)
    return sd


def _fake_optimizer_state(n_params: int) -> dict:
    return {
        "state": {},
        "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "weight_decay": 0.0, "params": list(range(n_params))}],
    }


def _save_authors(path, model_sd: dict, layer: str | None, decoder: str | None, extra: dict | None = None) -> Path:
    ckpt = {"model": model_sd, "optimizer": _fake_optimizer_state(len(model_sd)), "total_steps": 1234}
    if layer is not None:
        ckpt["feature_layer"] = layer
    if decoder is not None:
        ckpt["decoder_type"] = decoder
    ckpt.update(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


# --------------------------------------------------------------------------- public helpers


def vit_checkpoint_state(
    layer="layer1", decoder="conv-4", seed=0, *, vit=TINY_VIT, text=TINY_TEXT, widths=TINY_DECODER_WIDTHS
) -> dict:
    """The `model` state dict of a ViT DeCLIP checkpoint (whole CLIP under `model.`, decoder under `fc.`)."""
    r = _Rand(seed)
    sd: dict = OrderedDict()
    for k, v in openai_vit_visual(r, vit, text["embed"]).items():
        sd[f"model.{k}"] = v
    sd.update(openai_text_tower(r, text, prefix="model."))
    sd.update(authors_decoder(r, vit["width"], decoder, widths=widths))
    return sd


def make_tiny_vit_checkpoint(path, layer="layer1", decoder="conv-4", seed=0, **sizes) -> Path:
    """An authors'-format ViT checkpoint with tiny random weights; returns `path`."""
    return _save_authors(path, vit_checkpoint_state(layer, decoder, seed, **sizes), layer, decoder)


def make_vit_checkpoint(path, layer="layer20", decoder="conv-20", seed=0) -> Path:
    """Real ViT-L/14 shapes (about 1.7 GB on disk): for conformance and memory checks, not unit tests."""
    state = vit_checkpoint_state(layer, decoder, seed, vit=REAL_VIT, text=REAL_TEXT_VIT, widths=REAL_DECODER_WIDTHS)
    return _save_authors(path, state, layer, decoder)


def rn50_checkpoint_state(layer="layer3", decoder="conv-4", seed=0, *, rn=TINY_RN, text=TINY_TEXT,
                          widths=TINY_DECODER_WIDTHS) -> dict:
    r = _Rand(seed)
    stage = int(layer[len("layer"):])
    sd: dict = OrderedDict()
    for k, v in openai_resnet_visual(r, rn, text["embed"]).items():
        sd[f"model.{k}"] = v
    sd.update(openai_text_tower(r, text, prefix="model."))
    skipped = {1: (1, 2), 2: (1,)}.get(stage, ())
    channels = rn["width"] * 2 ** (stage - 1) * 4
    sd.update(authors_decoder(r, channels, decoder, widths=widths, skipped_upsamplings=skipped, final_resize=True))
    return sd


def make_tiny_rn50_checkpoint(path, layer="layer3", decoder="conv-4", seed=0) -> Path:
    return _save_authors(path, rn50_checkpoint_state(layer, decoder, seed), layer, decoder)


def fusion_checkpoint_state(decoder="conv-4", seed=0, *, vit=TINY_VIT, rn=TINY_RN, widths=TINY_DECODER_WIDTHS) -> dict:
    r = _Rand(seed)
    channels = vit["width"] + rn["width"] * 4 * 4  # ViT width + RN50 layer3 channels
    return authors_decoder(r, channels, decoder, widths=widths, final_resize=True)


def make_tiny_fusion_checkpoint(path, layer="layer1", decoder="conv-4", seed=0) -> Path:
    """An authors'-format ViT+RN50 checkpoint: only the decoder (`fc.*`)."""
    return _save_authors(path, fusion_checkpoint_state(decoder, seed), layer, decoder)


def make_fusion_checkpoint(path, layer="layer20", decoder="conv-20", seed=0) -> Path:
    state = fusion_checkpoint_state(decoder, seed, vit=REAL_VIT, rn=REAL_RN, widths=REAL_DECODER_WIDTHS)
    return _save_authors(path, state, layer, decoder)


def openai_clip_state(kind="ViT", seed=0, *, tiny=True, half=True) -> dict:
    """An OpenAI-style CLIP state dict (`visual.*`, text tower, and the three int entries)."""
    r = _Rand(seed)
    if kind == "ViT":
        vit, text = (TINY_VIT, TINY_TEXT) if tiny else (REAL_VIT, REAL_TEXT_VIT)
        sd = openai_vit_visual(r, vit, text["embed"])
        resolution = vit["image"]
    elif kind == "RN50":
        rn, text = (TINY_RN, TINY_TEXT) if tiny else (REAL_RN, REAL_TEXT_RN)
        sd = openai_resnet_visual(r, rn, text["embed"])
        resolution = 224
    else:
        raise ValueError(kind)
    sd.update(openai_text_tower(r, text))
    if half:  # OpenAI ships fp16 weights (BatchNorm statistics included)
        sd = OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in sd.items())
    sd["input_resolution"] = torch.tensor(resolution)
    sd["context_length"] = torch.tensor(text["context"])
    sd["vocab_size"] = torch.tensor(text["vocab"])
    return sd


def make_clip_weights(path, kind="ViT", seed=0, *, tiny=True) -> Path:
    """A plain (torch.save) OpenAI-style CLIP state dict for `--clip-weights`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(openai_clip_state(kind, seed, tiny=tiny), path)
    return path


def make_torchscript_clip(path, kind="ViT", seed=0) -> Path:
    """A TorchScript archive whose parameters carry an OpenAI-style CLIP state dict."""

    class Holder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Holder()
    for key, value in openai_clip_state(kind, seed).items():
        *parents, leaf = key.split(".")
        module = root
        for name in parents:
            if not hasattr(module, name):
                module.add_module(name, Holder())
            module = getattr(module, name)
        if value.is_floating_point():
            module.register_parameter(leaf, torch.nn.Parameter(value, requires_grad=False))
        else:
            module.register_buffer(leaf, value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated; OpenAI still ships it
        torch.jit.save(torch.jit.script(root), str(path))
    return path


def install_tiny_model(name="tiny", layer="layer1", decoder="conv-4", seed=0):
    """Import a tiny ViT checkpoint into the current DECLIP_HOME; returns its ModelCard."""
    from declip_desktop.common.paths import declip_home
    from declip_desktop.modelstore.checkpoint_import import import_checkpoint

    src = make_tiny_vit_checkpoint(declip_home() / "sources" / f"{name}_{layer}_{decoder}_{seed}.pth",
                                   layer=layer, decoder=decoder, seed=seed)
    return import_checkpoint(src, name=name)
