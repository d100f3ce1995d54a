"""Loading installed models: a name or file → a hash-checked network → a Localizer.

The torch side of the model store. `store` finds models without torch (the GUI, the
cluster driver and `declip models list` use it); this module turns one into a network
(strictly: every tensor the network needs, with the right shape, and nothing else) and
into an inference `Localizer` (`load_localizer`, what `declip_desktop.load_localizer` is).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declip_desktop.common.model_card import ModelCard, ModelError
from declip_desktop.engine import networks as nets
from declip_desktop.engine.localizer import Localizer
from declip_desktop.modelstore.checkpoint_import import import_checkpoint
from declip_desktop.modelstore.model_facts import architecture_from_shapes, card_contradictions
from declip_desktop.modelstore.safetensors_header import WeightsFileError, read_index
from declip_desktop.modelstore.store import InstalledModel, ModelStore, find_model
from declip_desktop.modelstore.torch_files import list_names
from declip_desktop.modelstore.weights_digest import WeightsDigest

_FLOAT_NAMES = ("F16", "BF16", "F32", "F64")  # safetensors names of the float types


def resolve_model(name_or_path: str | Path | InstalledModel | None = None,
                  store: ModelStore | None = None) -> InstalledModel:
    """`store.find_model`, importing an authors' checkpoint file on first use (found again by
    its SHA-256 later); None gives the store's default model."""
    return find_model(name_or_path, store=store, importer=import_checkpoint)


def load_network(installed: InstalledModel, device: str = "cpu"):
    """The model's network in eval mode on `device` (torch module; `DeclipNet` for DeCLIP models).

    The weights file is hashed (while the network is built) and compared with the card before
    the network is returned; every tensor the network needs must be present with the right shape and nothing else may be there (`ModelError`
    naming the file and keys otherwise).
    """
    card, weights = installed.card, Path(installed.weights_path)
    if not weights.is_file():
        raise ModelError(f"model {card.name!r}: weights file {weights} is missing. Reinstall the model")
    # Hashing 1.3 GB is most of a ViT-L/14 load: it runs beside the network's construction
    # (hashlib releases the GIL) and the network is handed out only once the digest matches.
    with WeightsDigest(weights) as digest:
        try:
            net, failure = _build_loaded(installed, card, weights), None
        except ModelError as exc:  # a changed file is reported as changed, whatever else is wrong with it
            net, failure = None, exc
        actual = digest.result()
    if actual != card.sha256:
        raise ModelError(
            f"model {card.name!r}: {weights} has SHA-256 {actual}, but its card records {card.sha256}; "
            "the file was changed or damaged. Reinstall the model (`declip models remove` then import/download)"
        )
    if failure is not None:
        raise failure
    return net.to(device).eval()


def _build_loaded(installed: InstalledModel, card: ModelCard, weights: Path):
    """The network with the file's weights assigned (memory-mapped, not copied): checked key by
    key against the network's own state dict. The caller checks the file's hash."""
    try:
        index, _ = read_index(weights)
    except WeightsFileError as exc:
        raise ModelError(f"model {card.name!r}: {exc}") from None
    shapes = {k: t.shape for k, t in index.items()}
    contradictions = card_contradictions(card, architecture_from_shapes(shapes))
    if contradictions:
        raise ModelError(f"model {card.name!r} ({installed.card_path}): " + "; ".join(contradictions)
                         + ". The card does not describe these weights; reinstall the model")
    wrong = [f"{k} is {t.dtype}" for k, t in index.items()
             if (t.dtype not in ("I64", "I32") if k.endswith(".num_batches_tracked") else t.dtype not in _FLOAT_NAMES)]
    if wrong:
        raise ModelError(f"model {card.name!r}: {weights} holds weights of a type the network cannot use: {list_names(wrong)}")

    if card.kind == "starter":
        from declip_desktop.engine.starter import build_starter  # the starter network's own module, loaded when used

        net = build_starter(card)
        assign = False
    elif card.kind == "declip":
        try:
            spec = nets.spec_from_shapes(card.backbone, card.layer, card.decoder, shapes)
        except nets.NetworkSpecError as exc:
            raise ModelError(f"model {card.name!r} ({weights}): {exc}") from None
        net = nets.build_network(spec, meta=True)
        assign = True
    else:
        raise ModelError(f"model {card.name!r}: unknown kind {card.kind!r} in {installed.card_path}")

    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    misshaped = [f"{k} is {list(shapes[k])}, expected {list(expected[k])}"
                 for k in expected if k in shapes and shapes[k] != expected[k]]
    if missing or unexpected or misshaped:
        parts = [f"{label}: {list_names(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)) if keys]
        raise ModelError(f"model {card.name!r}: {weights} does not fit its network — " + "; ".join(parts))

    from safetensors.torch import load_file

    state = load_file(str(weights), device="cpu")
    net.load_state_dict(state, strict=True, assign=assign)
    del state
    return net


@dataclass(frozen=True)
class StoredModel:
    """An installed model as the Localizer's model source: its card, and its network loaded
    (hash-checked against the card) when the Localizer asks, so results record the card's
    SHA-256 of the weights file."""

    installed: InstalledModel

    @property
    def card(self) -> ModelCard:
        return self.installed.card

    def load_network(self, device: str = "cpu"):
        return load_network(self.installed, device=device)


def load_localizer(model: str | Path | InstalledModel | None = None, *, store: ModelStore | None = None,
                   **options: Any):
    """A `Localizer` for an installed model: a name, a path to an installed `.safetensors`, an
    authors' `.pth` (imported on the fly), an `InstalledModel`, or None for the default model.

    `options` are the Localizer's (`device`, `fast`, `batch_size`, `threads`, `precision`,
    `on_status`). Model errors are `ModelError`s naming the model and what to do.
    """
    return Localizer(StoredModel(resolve_model(model, store=store)), **options)
