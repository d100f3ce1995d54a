"""The network a decoder training run trains: a frozen CLIP backbone and a fresh decoder.

The backbone's weights come from exactly one source (an installed DeCLIP model, OpenAI's CLIP
files, or random weights for tests); the decoder starts from N(0, `init_gain`) as the authors'.
"""


from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from declip_desktop.common.hashing import sha256_file
from declip_desktop.engine import networks as nets
from declip_desktop.training.config import TINY_DECODER_WIDTHS, TINY_RESNET, TINY_VIT, TrainConfig, TrainingError

def pick_torch_device(device: str) -> torch.device:
    # The Localizer's rule (one definition): auto → cuda, else mps, else cpu; a missing one is refused.
    from declip_desktop.engine.devices import pick_device

    return torch.device(pick_device(device))


def _visual_to_backbone(state: dict[str, torch.Tensor], target: str) -> dict[str, torch.Tensor]:
    return {f"{target}.{k[len('visual.'):]}": v for k, v in state.items() if k.startswith("visual.")}


def build_frozen_network(cfg: TrainConfig) -> tuple[nets.DeclipNet, list[dict], bool]:
    """(network with the frozen backbone's weights loaded, backbone sources for the card, demo?)."""
    sources = [bool(cfg.base_model), bool(cfg.clip_weights), bool(cfg.random_backbone)]
    if sum(sources) != 1:
        raise TrainingError("choose where the frozen backbone's weights come from: --base-model NAME, "
                            "--clip-weights FILE (OpenAI ViT-L-14.pt / RN50.pt), or --random-backbone for tests")
    widths = tuple(cfg.decoder_widths) if cfg.decoder_widths else nets.DEFAULT_DECODER_WIDTHS
    try:
        if cfg.random_backbone:
            if cfg.random_backbone not in ("tiny", "full"):
                raise TrainingError(f"--random-backbone is tiny or full, not {cfg.random_backbone!r}")
            tiny = cfg.random_backbone == "tiny"
            spec = nets.NetSpec(cfg.backbone, cfg.layer, cfg.decoder,
                                vit=TINY_VIT if tiny else nets.VitSpec(),
                                resnet=TINY_RESNET if tiny else nets.ResNetSpec(),
                                decoder_widths=tuple(cfg.decoder_widths or (TINY_DECODER_WIDTHS if tiny else widths)))
            torch.manual_seed(cfg.seed)
            net = nets.DeclipNet(spec)
            return net, [{"role": cfg.backbone, "file": f"random ({cfg.random_backbone}, seed {cfg.seed})"}], True
        backbone_state, shapes, card_sources = _backbone_weights(cfg)
        spec = nets.spec_from_shapes(cfg.backbone, cfg.layer, cfg.decoder, shapes)
        spec = dataclasses.replace(spec, decoder_widths=widths)
    except nets.NetworkSpecError as exc:
        raise TrainingError(str(exc)) from None
    net = nets.DeclipNet(spec)
    expected = net.backbone.state_dict()
    missing = [k for k in expected if k not in backbone_state]
    wrong = [k for k in expected if k in backbone_state and tuple(backbone_state[k].shape) != tuple(expected[k].shape)]
    if missing or wrong:
        raise TrainingError(f"the backbone weights do not fit {cfg.backbone} {cfg.layer}: "
                            f"missing {missing[:5]}, wrong shape {wrong[:5]}")
    net.backbone.load_state_dict({k: backbone_state[k].float() for k in expected}, strict=True)
    return net, card_sources, False


def _backbone_weights(cfg: TrainConfig) -> tuple[dict[str, torch.Tensor], dict[str, tuple], list[dict]]:
    """Backbone-relative tensors (`vit.*`, `rn50.*`), their shapes as `backbone.*`, and their sources."""
    state: dict[str, torch.Tensor] = {}
    sources: list[dict] = []
    if cfg.base_model:
        from safetensors.torch import load_file

        from declip_desktop.modelstore.loading import resolve_model

        installed = resolve_model(cfg.base_model)
        if installed.card.kind != "declip":
            raise TrainingError(f"model {installed.name!r} is a {installed.card.kind} model; it has no CLIP backbone")
        if installed.card.backbone != cfg.backbone:
            raise TrainingError(f"model {installed.name!r} has a {installed.card.backbone} backbone, not {cfg.backbone}")
        if sha256_file(installed.weights_path) != installed.card.sha256:
            raise TrainingError(f"model {installed.name!r}: weights file changed since install (SHA-256 mismatch)")
        full = load_file(str(installed.weights_path))
        state = {k[len("backbone."):]: v for k, v in full.items() if k.startswith("backbone.")}
        sources.append({"role": cfg.backbone, "file": f"model {installed.name}", "sha256": installed.card.sha256})
    else:
        from declip_desktop.modelstore.torch_files import read_clip_weights

        for path in cfg.clip_weights:
            role, visual, sha = read_clip_weights(Path(path))
            target = "vit" if role == nets.VIT else "rn50"
            state.update(_visual_to_backbone(visual, target))
            sources.append({"role": role, "file": Path(path).name, "sha256": sha})
    shapes = {f"backbone.{k}": tuple(v.shape) for k, v in state.items()}
    return state, shapes, sources


def init_decoder(decoder: torch.nn.Module, gain: float) -> None:
    """The authors' initialisation: every `weight` in `fc` (conv, BatchNorm, linear) ~ N(0, gain)."""
    for module in decoder.fc:
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor):
            torch.nn.init.normal_(weight.data, 0.0, gain)
