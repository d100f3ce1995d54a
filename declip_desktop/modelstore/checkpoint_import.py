"""Importing the authors' DeCLIP checkpoints into the model store (safetensors + card).

Strictness: the architecture comes from `feature_layer` / `decoder_type` and the tensor
shapes; then every tensor the network needs must be present with the right shape, and
nothing unknown may be left over. The authors load with strict=False, which silently
runs half-random networks; we name the file and keys instead.

Memory: checkpoints are memory-mapped; the text tower and the blocks after the chosen
layer are never read, and tensors already in float32 are written straight from the
mapping, so importing a 1.9 GB checkpoint never holds the weights twice.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.model_card import ModelCard, ModelError
from declip_desktop.common.version import SOFTWARE_VERSION
from declip_desktop.engine import networks as nets
from declip_desktop.modelstore.safetensors_header import write_text_atomic
from declip_desktop.modelstore.store import TRAINING_SETS, ModelStore, check_model_name, utc_now_iso
from declip_desktop.modelstore.torch_files import (
    OPENAI_CLIP_SHA256,
    OPENAI_FILE_NAMES,
    Progress,
    check_values,
    list_names,
    read_clip_weights,
    read_torch_file,
    say,
    tensor_dict,
)
from declip_desktop.modelstore.weights_file import write_safetensors

#: Parts of an OpenAI CLIP state dict that DeCLIP never uses (text tower, bookkeeping ints).
_TEXT_TOWER = ("transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection", "logit_scale")

# ---------------------------------------------------------------------- the authors' checkpoints


def _decoder_from_shapes(fc: Mapping[str, torch.Tensor]) -> str:
    first = fc.get("fc.0.weight")
    if first is None:
        raise ModelError("missing fc.0.weight")
    if first.ndim == 2:
        return "linear"
    convs = sum(1 for k, v in fc.items() if k.endswith(".weight") and v.ndim == 4)
    return f"conv-{convs - 1}"


def _layout(model_sd: Mapping[str, torch.Tensor]) -> str:
    if any(k.startswith("model.visual.transformer.") for k in model_sd) or "model.visual.proj" in model_sd:
        return nets.VIT
    if any(k.startswith("model.visual.layer1.") for k in model_sd):
        return nets.RN50
    if not any(k.startswith("model.") for k in model_sd) and any(k.startswith("fc.") for k in model_sd):
        return nets.FUSION  # the authors keep the fusion backbones in a list, so only the decoder is saved
    return ""


def default_name(source: Path, backbone: str, layer: str, decoder: str, training_set: str | None) -> str:
    """`vit-ldm`, `vit+rn50-lama`, … from the authors' file names; else the file's stem."""
    base = {nets.VIT: "vit", nets.RN50: "rn50", nets.FUSION: "vit+rn50"}[backbone]
    match = re.fullmatch(r"(?:ViT|RN50)_layer\d+(?:\+RN50_layer3)?_(?:conv-\d+|linear)_(.+)", source.stem)
    if match:
        variant = "" if (layer, decoder) == ("layer20", "conv-20") else f"-{layer}-{decoder}"
        return f"{base}{variant}-{match.group(1).lower()}"
    stem = re.sub(r"[^A-Za-z0-9+._-]+", "-", source.stem).strip("-._") or base
    return stem[:80]


def training_set_from_name(source: Path) -> str | None:
    match = re.search(r"_(pluralistic|lama|repaint-p2-9k|ldm|cocosd)$", source.stem, re.IGNORECASE)
    return match.group(1).lower() if match else None


class _Tensors:
    """Our key → tensor, remembering each tensor's file and original key for error messages."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}
        self.origin: dict[str, tuple[str, str]] = {}

    def add(self, key: str, tensor: torch.Tensor, file: str, original: str) -> None:
        self.tensors[key] = tensor
        self.origin[key] = (file, original)

    def where(self, key: str) -> str:
        file, original = self.origin.get(key, ("", key))
        return f"{original} ({file})" if file else original


def _prune_unused(out: _Tensors, spec: nets.NetSpec) -> None:
    """Drop blocks after the chosen layer, the ViT head and the RN50 attention pool / later stages."""
    keep: dict[str, torch.Tensor] = {}
    for key, tensor in out.tensors.items():
        parts = key.split(".")
        if key.startswith("backbone.vit."):
            if parts[2] in ("ln_post", "proj"):
                continue
            block = re.match(r"backbone\.vit\.transformer\.resblocks\.(\d+)\.", key)
            if block and int(block.group(1)) > spec.vit_layer:
                continue
        if key.startswith("backbone.rn50."):
            if parts[2] == "attnpool":
                continue
            stage = re.fullmatch(r"layer(\d)", parts[2])
            if stage and int(stage.group(1)) > spec.resnet_layer:
                continue
        keep[key] = tensor
    out.tensors = keep


def _strict_check(out: _Tensors, spec: nets.NetSpec, source: Path) -> None:
    expected = nets.expected_shapes(spec)
    for key in expected:
        # BatchNorm's step counter is not used by an eval-mode forward pass.
        if key.endswith(".num_batches_tracked") and key not in out.tensors:
            out.add(key, torch.tensor(0, dtype=torch.long), "", key)
    missing = [k for k in expected if k not in out.tensors]
    unexpected = [k for k in out.tensors if k not in expected]
    misshaped = [k for k in expected if k in out.tensors and tuple(out.tensors[k].shape) != expected[k]]
    if not (missing or unexpected or misshaped):
        return
    problems = []
    if missing:
        problems.append(f"missing: {list_names(_originallist_names(out, spec, missing))}")
    if unexpected:
        problems.append(f"unexpected: {list_names(out.where(k) for k in unexpected)}")
    if misshaped:
        problems.append("wrong shape: " + list_names(
            f"{out.where(k)} is {list(out.tensors[k].shape)}, expected {list(expected[k])}" for k in misshaped))
    raise ModelError(
        f"{source} does not match a DeCLIP {spec.backbone} {spec.layer} {spec.decoder} network — "
        + "; ".join(problems)
        + ". The file is damaged or not one of the authors' checkpoints; nothing was installed"
    )


def _originallist_names(out: _Tensors, spec: nets.NetSpec, keys: list[str]) -> list[str]:
    # Say which names the file should have had, in the file's own naming.
    names = []
    for key in keys:
        if key.startswith("decoder."):
            names.append(key[len("decoder."):])
        elif key.startswith("backbone.vit."):
            prefix = "visual." if spec.backbone == nets.FUSION else "model.visual."
            names.append(prefix + key[len("backbone.vit."):])
        elif key.startswith("backbone.rn50."):
            prefix = "visual." if spec.backbone == nets.FUSION else "model.visual."
            names.append(prefix + key[len("backbone.rn50."):])
        else:
            names.append(key)
    return names


def convert_checkpoint(
    path: Path, clip_weights: Iterable[str | Path] = (), progress: Progress = None
) -> tuple[nets.NetSpec, dict[str, torch.Tensor], dict]:
    """Read an authors' checkpoint (+ CLIP files) → (spec, DeclipNet state dict, card facts)."""
    path = Path(path)
    say(progress, f"reading {path.name}")
    ckpt = read_torch_file(path)
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("model"), Mapping):
        kind = f"keys {list_names(list(ckpt)[:8])}" if isinstance(ckpt, Mapping) else f"a {type(ckpt).__name__}"
        raise ModelError(f"{path} is not a DeCLIP checkpoint: expected a dictionary with a 'model' state dict, found {kind}")
    model_sd = tensor_dict(ckpt["model"], path, "DeCLIP checkpoint's 'model' state dict")
    layer, decoder_type = ckpt.get("feature_layer"), ckpt.get("decoder_type")

    backbone = _layout(model_sd)
    if not backbone:
        raise ModelError(
            f"{path} is not a DeCLIP checkpoint: its 'model' holds neither a CLIP image encoder (model.visual.*) "
            f"nor a decoder (fc.*); keys start with {list_names(sorted({k.split('.')[0] for k in model_sd}))}"
        )
    fc = {k: v for k, v in model_sd.items() if k.startswith("fc.")}
    if not fc:
        raise ModelError(f"{path}: no decoder weights (fc.*) in the checkpoint")
    try:
        decoder = _decoder_from_shapes(fc)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
    if decoder_type is not None and decoder_type != decoder:
        raise ModelError(f"{path} says decoder_type={decoder_type!r} but its fc.* weights form a {decoder!r} decoder")
    if layer is None:
        if backbone != nets.RN50:
            raise ModelError(f"{path} does not say which layer its decoder reads (no 'feature_layer' entry)")
        in_ch = fc["fc.0.weight"].shape[1]
        layer = {256: "layer1", 512: "layer2", 1024: "layer3", 2048: "layer4"}.get(in_ch)
        if layer is None:
            raise ModelError(f"{path}: no 'feature_layer', and {in_ch} decoder input channels match no RN50 stage")
    if not isinstance(layer, str):
        raise ModelError(f"{path}: feature_layer must be text like 'layer20', found {layer!r}")

    clip_weights = [Path(p) for p in clip_weights]
    out = _Tensors()
    sources: list[dict] = []
    if backbone == nets.FUSION:
        _fusion_backbones(path, fc, layer, clip_weights, out, sources, progress)
    else:
        if clip_weights:
            raise ModelError(
                f"{path} holds its own {backbone} backbone; --clip-weights is only for the ViT-L/14+RN50 fusion "
                "checkpoints. Leave it out"
            )
        target = "vit" if backbone == nets.VIT else "rn50"
        for key, tensor in model_sd.items():
            if key.startswith("model.visual."):
                out.add(f"backbone.{target}.{key[len('model.visual.'):]}", tensor, path.name, key)
            elif key.startswith("model."):
                if not key[len("model."):].startswith(_TEXT_TOWER):
                    out.add(key, tensor, path.name, key)  # reported as unexpected
    for key, tensor in model_sd.items():
        if key.startswith("fc."):
            out.add(f"decoder.{key}", tensor, path.name, key)
        elif not key.startswith("model."):
            out.add(key, tensor, path.name, key)  # reported as unexpected

    try:
        spec = nets.spec_from_shapes(backbone, layer, decoder, {k: tuple(v.shape) for k, v in out.tensors.items()})
    except nets.NetworkSpecError as exc:
        raise ModelError(f"{path}: {exc}") from None
    _prune_unused(out, spec)
    _strict_check(out, spec, path)
    say(progress, "checking every weight's type and values")
    check_values(out.tensors, out.where, path)

    tensors = {}
    for key, tensor in out.tensors.items():
        # float32 tensors pass through untouched (still memory-mapped); fp16 CLIP files are widened
        tensors[key] = tensor.to(torch.float32) if tensor.is_floating_point() else tensor.to(torch.long)
    facts = {"backbone": backbone, "layer": layer, "decoder": decoder, "backbone_sources": sources}
    del model_sd, ckpt, out
    return spec, tensors, facts


def _fusion_backbones(path, fc, layer, clip_weights, out: _Tensors, sources: list, progress: Progress) -> None:
    in_ch = fc["fc.0.weight"].shape[1] if fc["fc.0.weight"].ndim == 4 else None
    needed = f"--clip-weights {OPENAI_FILE_NAMES[nets.VIT]} --clip-weights {OPENAI_FILE_NAMES[nets.RN50]}"
    if not clip_weights:
        # Decoder-only files exist only for the fusion (the authors keep its backbones in a list).
        odd = "" if in_ch == 2048 else f" (unusually, its decoder reads {in_ch} channels, not 2048)"
        raise ModelError(
            f"{path} holds only a decoder, like the authors' ViT-L/14+RN50 fusion checkpoints{odd}: its two frozen "
            f"backbones come from OpenAI's CLIP files {OPENAI_FILE_NAMES[nets.VIT]} and "
            f"{OPENAI_FILE_NAMES[nets.RN50]}. Pass them: {needed}"
        )
    roles: dict[str, tuple[Path, dict, str]] = {}
    for weights in clip_weights:
        role, state, sha = read_clip_weights(weights, progress)
        if role in roles:
            raise ModelError(f"two {role} CLIP weights files given ({roles[role][0].name}, {weights.name}); pass one of each")
        roles[role] = (weights, state, sha)
    absent = [OPENAI_FILE_NAMES[r] for r in (nets.VIT, nets.RN50) if r not in roles]
    if absent:
        raise ModelError(f"{path} needs both CLIP backbones; missing: {', '.join(absent)}. Pass: {needed}")
    vit_state, rn_state = roles[nets.VIT][1], roles[nets.RN50][1]
    vit_width = vit_state["visual.conv1.weight"].shape[0] if "visual.conv1.weight" in vit_state else None
    rn_l3 = None
    if "visual.layer3.0.conv3.weight" in rn_state:
        rn_l3 = rn_state["visual.layer3.0.conv3.weight"].shape[0]
    if vit_width is not None and rn_l3 is not None and in_ch is not None and vit_width + rn_l3 != in_ch:
        raise ModelError(
            f"the CLIP weights given (ViT width {vit_width}, RN50 layer3 {rn_l3} channels) do not fit {path.name}, "
            f"whose decoder reads {in_ch} channels. Pass OpenAI's {OPENAI_FILE_NAMES[nets.VIT]} and "
            f"{OPENAI_FILE_NAMES[nets.RN50]}"
        )
    for role, target in ((nets.VIT, "vit"), (nets.RN50, "rn50")):
        file, state, sha = roles[role]
        for key, tensor in state.items():
            out.add(f"backbone.{target}.{key[len('visual.'):]}", tensor, file.name, key)
        sources.append({"role": role, "file": file.name, "sha256": sha,
                        "openai_archive": sha in OPENAI_CLIP_SHA256})


def import_checkpoint(
    path: str | Path,
    name: str | None = None,
    clip_weights: Iterable[str | Path] = (),
    store: ModelStore | None = None,
    progress: Progress = None,
    adopt_default: bool = True,
    expected_architecture: tuple[str, str, str] | None = None,
) -> ModelCard:
    """Import an authors' `.pth` into the store as `<name>.safetensors` + `<name>.json`.

    Nothing is written under the model's name before every check has passed (the weights go to
    a temporary file that is renamed, then the card). Installing never changes a recorded
    default model; with `adopt_default`, a store that has none records one
    (`ModelStore.adopt_default_after_install`).
    """
    path = Path(path).expanduser()
    store = store or ModelStore()
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    if name is not None:
        check_model_name(name)
    say(progress, f"hashing {path.name}")
    source_sha = sha256_file(path)

    spec, tensors, facts = convert_checkpoint(path, clip_weights, progress)
    if expected_architecture is not None and (spec.backbone, spec.layer, spec.decoder) != tuple(expected_architecture):
        want = " ".join(expected_architecture)
        raise ModelError(
            f"{path} is a DeCLIP {spec.backbone} {spec.layer} {spec.decoder} network, but {want} was expected "
            "(the registry entry it was downloaded as).")
    training_set = training_set_from_name(path)
    name = name or default_name(path, spec.backbone, spec.layer, spec.decoder, training_set)
    check_model_name(name)
    if name in store:
        existing = store.get(name)
        if existing.card.source_sha256 == source_sha and not existing.read_only:
            return existing.card  # same file imported again under the same name: nothing to do
        raise ModelError(
            f"a model named {name!r} is installed already (from {existing.card.source_file}). "
            f"Choose another --name, or remove it first with `declip models remove {name}`"
        )

    store.root.mkdir(parents=True, exist_ok=True)
    weights_path, card_path = store.paths_for(name)
    say(progress, f"writing {weights_path.name}")
    sha = write_safetensors(weights_path, tensors, metadata={
        # only facts about the weights: the same weights give the same file and hash
        "format": "pt", "backbone": spec.backbone, "layer": spec.layer, "decoder": spec.decoder,
    })
    del tensors
    gc.collect()

    label = f"DeCLIP {spec.backbone} {spec.layer} {spec.decoder}"
    if training_set:
        label += f", trained on {TRAINING_SETS.get(training_set, training_set)}"
    card = ModelCard(
        name=name,
        kind="declip",
        backbone=spec.backbone,
        layer=spec.layer,
        decoder=spec.decoder,
        training_set=training_set,
        source_file=path.name,
        source_sha256=source_sha,
        sha256=sha,
        created=utc_now_iso(),
        software_version=SOFTWARE_VERSION,
        demo=False,
        label=label,
        input_size=nets.INPUT_SIZE,
        mean=list(nets.CLIP_MEAN),
        std=list(nets.CLIP_STD),
        notes="Imported from the authors' checkpoint; text tower and unused blocks dropped.",
        backbone_sources=facts["backbone_sources"],
    )
    try:
        write_text_atomic(card_path, card.to_json())
    except OSError:
        weights_path.unlink(missing_ok=True)
        raise
    if adopt_default:
        store.adopt_default_after_install(name)
    say(progress, f"installed {name}")
    return card
