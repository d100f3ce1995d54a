"""Installed models: the model store, finding a model by name or file (no torch).

A model is `<name>.safetensors` (the weights) plus `<name>.json` (its `ModelCard`) in
the model directory (`$DECLIP_HOME/models`), or read-only in the repository's bundled
`models/` folder (the starter model). This module never imports torch:
`declip models list`, the GUI and the cluster driver use it cheaply; loading a network and
importing a checkpoint live in `modelstore.loading` and `modelstore.checkpoint_import` (torch).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from declip_desktop.common import paths
from declip_desktop.common.facts import card_is_demo
from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.model_card import ModelCard, ModelError
from declip_desktop.common.model_card import TRAINING_SETS  # noqa: F401 - re-exported (checkpoint_import)
from declip_desktop.modelstore.model_facts import BUNDLED_DEMO_SHA256, architecture_from_shapes, card_contradictions

log = logging.getLogger(__name__)

#: In the model folder: which model is used when none is named (`declip models default NAME`).
DEFAULT_FILE = "default.json"

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]{0,79}")


@dataclass
class InstalledModel:
    card: ModelCard
    weights_path: Path
    card_path: Path
    read_only: bool = False  # bundled with the application

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def sha256(self) -> str:
        return self.card.sha256


def is_demo_model(model: ModelCard | InstalledModel | dict) -> bool:
    """Whether a model is a demo (not for casework): `common.facts.card_is_demo`, the one
    definition (bundled demo weights by SHA-256, starter networks, or the card's own `demo:
    true`; a card cannot make demo weights a casework model), for a card, snapshot or
    installed model."""
    return card_is_demo(model.card if isinstance(model, InstalledModel) else model)


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ModelError(
            f"invalid model name {name!r}. Use letters, digits and + . _ - (up to 80 characters, "
            "starting with a letter or digit)"
        )
    if name.lower() == Path(DEFAULT_FILE).stem:
        raise ModelError(f"{name!r} cannot be a model name (the model folder keeps its default-model record "
                         f"in {DEFAULT_FILE}); choose another --name")
    return name


class ModelStore:
    """The installed models (`root`, default `$DECLIP_HOME/models`) plus the bundled ones."""

    def __init__(self, root: str | Path | None = None, bundled: str | Path | None = ...):
        self.root = Path(root) if root is not None else paths.models_dir()
        # `...` = the repository's models/ folder; None = no bundled models (tests).
        self.bundled = Path(paths.BUNDLED_MODELS_DIR if bundled is ... else bundled) if bundled is not None else None

    # ------------------------------------------------------------------ listing

    def _scan(self, directory: Path | None, read_only: bool) -> dict[str, InstalledModel]:
        found: dict[str, InstalledModel] = {}
        if directory is None or not directory.is_dir():
            return found
        for card_path in sorted(directory.glob("*.json")):
            if card_path.name.startswith(".") or card_path.name == DEFAULT_FILE:
                continue
            try:
                card = ModelCard.from_json_file(card_path)
            except ModelError as exc:
                log.warning("%s", exc)
                continue
            weights = card_path.with_suffix(".safetensors")
            if card.name != card_path.stem:
                log.warning("model card %s names %r; ignored (the file name is the model name)", card_path, card.name)
                continue
            if not weights.is_file():
                continue  # a card without weights is not an installed model (e.g. a bare registry file)
            found[card.name] = InstalledModel(card, weights, card_path, read_only=read_only)
        return found

    def installed(self) -> list[InstalledModel]:
        """All usable models; an installed model hides a bundled one of the same name."""
        models = self._scan(self.bundled, read_only=True)
        models.update(self._scan(self.root, read_only=False))
        return sorted(models.values(), key=lambda m: m.name)

    def list(self) -> list[ModelCard]:
        return [m.card for m in self.installed()]

    def names(self) -> list[str]:
        return [m.name for m in self.installed()]

    def get(self, name: str) -> InstalledModel:
        for model in self.installed():
            if model.name == name:
                return model
        names = ", ".join(self.names()) or "none"
        raise ModelError(
            f"no model named {name!r} (installed: {names}). "
            "Run `declip models list`, or install one with `declip models import FILE`"
        )

    def __contains__(self, name: str) -> bool:
        return any(m.name == name for m in self.installed())

    def find_by_source(self, source_sha256: str) -> InstalledModel | None:
        for model in self.installed():
            if model.card.source_sha256 == source_sha256:
                return model
        return None

    # ------------------------------------------------------------------ changes

    def paths_for(self, name: str) -> tuple[Path, Path]:
        check_model_name(name)
        return self.root / f"{name}.safetensors", self.root / f"{name}.json"

    def remove(self, name: str) -> None:
        model = self.get(name)
        if model.read_only:
            raise ModelError(f"{name!r} ships with the application ({model.card_path.parent}) and cannot be removed")
        # Card first: a model without its card is invisible, never half-listed.
        model.card_path.unlink(missing_ok=True)
        model.weights_path.unlink(missing_ok=True)
        # Converted copies made from these weights (engine.backends.openvino_cpu): useless now.
        shutil.rmtree(model.card_path.with_name(f"{name}.openvino"), ignore_errors=True)

    def verify(self) -> list[tuple[str, bool, str]]:
        """Check every model against its card: [(name, ok, detail)].

        Checked: the weights' SHA-256 equals the card's; the header is a valid safetensors
        header; the architecture the tensor shapes form is the one the card names; a card does
        not call demo weights (known SHA-256) a casework model.
        """
        return [(model.name, *verify_model(model)) for model in self.installed()]

    # ------------------------------------------------------------------ the default model

    @property
    def default_file(self) -> Path:
        return self.root / DEFAULT_FILE

    def default_name(self) -> str | None:
        """The name recorded by `set_default` (None when none was ever recorded)."""
        try:
            data = json.loads(self.default_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ModelError(f"the default-model file {self.default_file} is unreadable ({exc}). "
                             "Choose the default again: `declip models default NAME`") from None
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name:
            raise ModelError(f"the default-model file {self.default_file} names no model. "
                             "Choose the default again: `declip models default NAME`")
        return name

    def set_default(self, name: str) -> InstalledModel:
        """Make `name` the model used when none is named (cases, `declip analyze`, the app)."""
        from declip_desktop.modelstore.safetensors_header import write_text_atomic

        model = self.get(name)
        self.root.mkdir(parents=True, exist_ok=True)
        record = {"name": model.name, "sha256": model.sha256, "set": utc_now_iso()}
        write_text_atomic(self.default_file, json.dumps(record, indent=2) + "\n")
        return model

    def default(self) -> InstalledModel:
        """The model used when none is named.

        The one recorded by `set_default`; a recorded model that is no longer installed is an
        error (never a silent switch to another model). With none recorded (a store from an
        older version): the most recently installed casework model, else a demo model.
        """
        name = self.default_name()
        if name is not None:
            if name in self:
                return self.get(name)
            raise ModelError(
                f"the default model {name!r} is not installed any more. Choose another with "
                "`declip models default NAME` (installed: " + (", ".join(self.names()) or "none") + ")"
            )
        return self._implicit_default()

    def _implicit_default(self) -> InstalledModel:
        models = self.installed()
        real = [m for m in models if not is_demo_model(m)]
        if real:
            return max(real, key=lambda m: (m.card.created, m.name))
        if models:
            return max(models, key=lambda m: (m.card.created, m.name))
        raise ModelError(
            "no model installed. Run `declip models download vit-ldm` "
            "or `declip models import FILE` (an authors' DeCLIP .pth checkpoint)"
        )

    def adopt_default_after_install(self, name: str) -> bool:
        """Called after installing `name`: record a default if none is recorded yet, so that later
        installs can never change it. Returns True when `name` became the default (the caller
        says so): that happens only when the store had no casework model to use before."""
        if self.default_name() is not None:
            return False
        others = [m for m in self.installed() if m.name != name and not is_demo_model(m)]
        if others:  # an older store: keep what it used, written down now
            self.set_default(max(others, key=lambda m: (m.card.created, m.name)).name)
            return False
        if name in self and not is_demo_model(self.get(name)):
            self.set_default(name)
            return True
        return False


def verify_model(model: InstalledModel) -> tuple[bool, str]:
    """(ok, detail) for one installed model; see `ModelStore.verify`."""
    from declip_desktop.modelstore.safetensors_header import WeightsFileError, read_header

    card = model.card
    try:
        actual = sha256_file(model.weights_path)
    except OSError as exc:
        return False, f"cannot read {model.weights_path}: {exc}"
    if actual != card.sha256:
        return False, f"SHA-256 {actual} differs from the card's {card.sha256}"
    try:
        shapes, _ = read_header(model.weights_path)
    except WeightsFileError as exc:
        return False, str(exc)
    problems = card_contradictions(card, architecture_from_shapes(shapes))
    if actual in BUNDLED_DEMO_SHA256 and card.demo is not True:
        problems.append("the card says demo: false, but the weights are a bundled demo network (by SHA-256)")
    if problems:
        return False, f"{model.card_path.name}: " + "; ".join(problems)
    return True, "SHA-256 matches the card; the weights' architecture is the one the card names" + (
        "; demo model — not for casework" if is_demo_model(card) else "")


# ---------------------------------------------------------------------- resolve


def find_model(name_or_path: str | Path | InstalledModel | None = None, store: ModelStore | None = None,
               importer: Callable[..., ModelCard] | None = None) -> InstalledModel:
    """A model by name, by path to an installed `.safetensors`, or by an authors' checkpoint file.

    None gives `store.default()`. A checkpoint file already imported is found by its SHA-256;
    one not yet imported goes to `importer(path, store=store, adopt_default=False)` (the
    torch-side `modelstore.checkpoint_import.import_checkpoint`, which `modelstore.loading.
    resolve_model` passes); without an importer it is refused, so this module never needs torch.
    """
    store = store or ModelStore()
    if name_or_path is None:
        return store.default()
    if isinstance(name_or_path, InstalledModel):
        return name_or_path
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    looks_like_path = candidate.suffix.lower() in (".safetensors", ".pth", ".pt", ".ckpt", ".bin") or (
        "/" in text or "\\" in text
    )
    if isinstance(name_or_path, str) and not looks_like_path and name_or_path in store:
        return store.get(name_or_path)
    if candidate.is_file():
        if candidate.suffix.lower() == ".safetensors":
            card_path = candidate.with_suffix(".json")
            if not card_path.is_file():
                raise ModelError(f"{candidate} has no model card beside it ({card_path.name}); import the original checkpoint instead")
            return InstalledModel(ModelCard.from_json_file(card_path), candidate, card_path,
                                  read_only=candidate.parent.resolve() != store.root.resolve())
        existing = store.find_by_source(sha256_file(candidate))
        if existing is not None:
            return existing
        if importer is None:
            raise ModelError(f"{candidate} is a checkpoint that is not imported yet; import it first: "
                             f"declip models import {candidate}")
        # Imported because this one call names it; that alone does not make it the default.
        card = importer(candidate, store=store, adopt_default=False)
        return store.get(card.name)
    if looks_like_path:
        raise ModelError(f"model file {candidate} does not exist")
    return store.get(text)
