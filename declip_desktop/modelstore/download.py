"""Download, verify and install the DeCLIP checkpoints listed in `modelstore.registry`.

This is the application's only network access, and it happens only when a user asks
for a download (`declip models download`, Models → Download… in the app). Nothing here
touches the network at import time, and this module never imports torch: the install step
runs the importer the caller passes (`modelstore.checkpoint_import.import_checkpoint`).

The pieces, from the bottom up:

- `modelstore.fetch.fetch(url, dest, …)` streams one URL to disk, resumable and
  hash-checked (with `http_checks`, `partial_files`, `download_errors`).
- `ensure_backbone(entry, …)` keeps OpenAI's CLIP files in `$DECLIP_HOME/downloads/` for
  reuse, re-hashing a cached copy before trusting it.
- `download_model(name, …)` downloads a checkpoint (and, for a fusion model, the two
  backbones) and installs it through the importer, the same path
  as `declip models import`.

Every failure is a `DownloadError` whose message says what happened and what to do.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declip_desktop.common.hashing import CHUNK
from declip_desktop.common.model_card import ModelCard, ModelError
from declip_desktop.common.paths import declip_home, models_dir
from declip_desktop.common.progress import CancelToken, StepProgress
from declip_desktop.modelstore.download_errors import DownloadCancelled, DownloadError
from declip_desktop.modelstore.fetch import (
    PROGRESS_INTERVAL,
    FetchResult,
    Progress,
    ProgressCallback,
    fetch,
    fetch_locked,
)
from declip_desktop.modelstore.partial_files import exclusive, read_meta, remove_files, write_meta
from declip_desktop.modelstore.registry import (
    MIRROR_ENV,
    BackboneEntry,
    CheckpointEntry,
    backbones_for,
    get_checkpoint,
    join_url,
)
from declip_desktop.modelstore.store import ModelStore


def downloads_dir() -> Path:
    """Where downloads land: partial files, and OpenAI's backbones kept for reuse."""
    return declip_home() / "downloads"


def mirror_base(base_url: str | None = None) -> str | None:
    """The mirror to use: the argument, else $DECLIP_MODELS_URL, else None (the origin)."""
    base = base_url if base_url is not None else os.environ.get(MIRROR_ENV, "")
    return base.strip() or None


def source_url(entry: CheckpointEntry | BackboneEntry, base_url: str | None = None) -> str:
    """Where `entry` is fetched from: the mirror's `<base>/<mirror_path>` or the origin."""
    base = mirror_base(base_url)
    return join_url(base, entry.mirror_path) if base else entry.url


def ensure_backbone(
    entry: BackboneEntry,
    *,
    base_url: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    retries: int = 3,
    retry_delay: float = 1.0,
) -> Path:
    """`$DECLIP_HOME/downloads/<file>`, downloaded if missing, its SHA-256 checked either way.

    The files are kept after the install: every fusion model needs the same two, and
    re-downloading 1.2 GB for each would be wasteful. A cached copy that no longer
    matches its published hash is deleted and downloaded again.
    """
    dest = downloads_dir() / entry.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(dest):
        if dest.exists():
            digest = _hash_file(dest, progress, cancel)
            if digest == entry.sha256:
                return dest
            dest.unlink()  # damaged or replaced on disk: fetch a clean copy
        fetch_locked(source_url(entry, base_url), dest, sha256=entry.sha256, progress=progress,
                      cancel=cancel, retries=retries, retry_delay=retry_delay, max_bytes=entry.max_size)
    return dest


def _hash_file(path: Path, progress: ProgressCallback | None, cancel: CancelToken | None) -> str:
    size = path.stat().st_size
    hasher = hashlib.sha256()
    done = 0
    last = 0.0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled("Cancelled while checking a cached download.")
            hasher.update(chunk)
            done += len(chunk)
            now = time.monotonic()
            if progress is not None and now - last >= PROGRESS_INTERVAL:
                last = now
                progress(Progress(stage="verify", label=path.name, done=done, total=size))
    return hasher.hexdigest()


@dataclass
class InstallResult:
    entry: CheckpointEntry
    card: Any  # common.model_card.ModelCard of the installed model
    already_installed: bool = False
    source_url: str | None = None
    source_sha256: str | None = None
    resumed: bool = False
    backbone_files: list[Path] = field(default_factory=list)


def installed_cards(root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Installed models' cards as plain dicts (name → card), from the model store.

    Light (json, no torch): the download dialog calls this on the UI thread to mark
    what is installed. Bundled models are left out: they are never downloads.
    """
    store = ModelStore(root=root if root is not None else models_dir(), bundled=None)
    return {m.name: m.card.to_dict() for m in store.installed()}


def download_model(
    name: str,
    *,
    importer: Callable[..., ModelCard],
    url: str | None = None,
    base_url: str | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    store: Any = None,
    retries: int = 3,
    retry_delay: float = 1.0,
) -> InstallResult:
    """Download the registry checkpoint `name` and install it as `name`.

    `url`: fetch the checkpoint itself from this exact URL (a local server, a mirror).
    `base_url` (else $DECLIP_MODELS_URL): a mirror for every file, including OpenAI's.
    `force`: download and reinstall even if `name` is installed. Because the authors
    publish no checksums, a re-download must then match the SHA-256 recorded in the
    installed card when the model was first downloaded; a different file is refused.
    `store`: a `modelstore.store.ModelStore` (default: the user's model directory).
    `importer`: `modelstore.checkpoint_import.import_checkpoint`, the same importer as
    `declip models import`; passed in because it imports torch, which this module (read by
    the GUI's download dialog) never does.
    """
    try:
        entry = get_checkpoint(name)
    except KeyError as exc:
        raise DownloadError(str(exc), "unknown-model") from None

    cards = installed_cards(getattr(store, "root", None))
    existing = cards.get(entry.name)
    if existing is not None and not force:
        return InstallResult(entry=entry, card=ModelCard.from_dict(existing), already_installed=True,
                             source_sha256=existing.get("source_sha256"))

    backbone_files = [
        ensure_backbone(b, base_url=base_url, progress=progress, cancel=cancel,
                        retries=retries, retry_delay=retry_delay)
        for b in backbones_for(entry)
    ]

    ckpt_url = url or source_url(entry, base_url)
    pinned = entry.sha256 or (existing or {}).get("source_sha256")
    dest = downloads_dir() / entry.filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    note = dest.with_name(dest.name + ".source.json")
    # Held from download to install: a second process must neither append to our
    # `.part` nor delete the finished file while we import it.
    with exclusive(dest):
        fetched = _reusable_download(dest, note, ckpt_url, pinned, progress, cancel)
        if fetched is None:
            try:
                fetched = fetch_locked(ckpt_url, dest, sha256=pinned, progress=progress, cancel=cancel,
                                        retries=retries, retry_delay=retry_delay, max_bytes=entry.max_size)
            except DownloadError as exc:
                if exc.kind == "checksum" and not entry.sha256:
                    # The pin is the hash recorded when this model was first installed.
                    raise DownloadError(
                        f"The file downloaded from {ckpt_url} differs from the one {entry.name} was "
                        f"installed from (SHA-256 {pinned}, recorded in its model card). It has been "
                        "deleted and the installed model is untouched. If you trust the new file "
                        f"(e.g. the authors re-published it), run `declip models remove {entry.name}` "
                        "and download it again.",
                        "checksum",
                    ) from None
                raise
            write_meta(note, {"url": ckpt_url, "sha256": fetched.sha256, "final_url": fetched.final_url})
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled(f"Cancelled before installing {entry.name}; the download is kept in {dest}.")

        if progress is not None:
            progress(Progress(stage="import", label=entry.name))

        def import_progress(_done: int, _total: int, message: str) -> None:
            if progress is not None:
                progress(Progress(stage="import", label=entry.name, detail=str(message)))

        card = _install(entry, fetched, backbone_files, ckpt_url, note, replace=existing is not None,
                        store=store, importer=importer, progress=import_progress)
        # The safetensors copy is what the app runs; the 2 GB pickle is no longer needed
        # (its SHA-256 stays in the card as source_sha256).
        remove_files(dest, note)
    return InstallResult(entry=entry, card=card, source_url=ckpt_url, source_sha256=fetched.sha256,
                         resumed=fetched.resumed, backbone_files=backbone_files)


def _reusable_download(
    dest: Path,
    note: Path,
    url: str,
    pinned: str | None,
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> FetchResult | None:
    """A complete download left by an install that failed afterwards (disk full while
    converting, a crash): reused when it came from the same URL and still has the hash
    it had when it was verified, so 2 GB are not fetched twice."""
    if not dest.exists():
        return None
    meta = read_meta(note)
    recorded = meta.get("sha256")
    if meta.get("url") != url or not recorded or (pinned and recorded != pinned):
        return None
    if _hash_file(dest, progress, cancel) != recorded:
        return None
    return FetchResult(path=dest, sha256=recorded, size=dest.stat().st_size, resumed=False, attempts=0,
                       final_url=meta.get("final_url"))


def _install(
    entry: CheckpointEntry,
    fetched: FetchResult,
    clip_weights: Sequence[Path],
    url: str,
    note: Path,
    *,
    replace: bool,
    store: Any,
    importer: Callable[..., ModelCard],
    progress: StepProgress | None = None,
) -> Any:
    """Hand the verified file to the same importer as `declip models import`, then note
    in the card where the file came from (its hash is the card's `source_sha256`).

    The file must be the architecture the registry names (e.g. `vit-ldm` is ViT-L/14 layer20
    conv-20); anything else is refused before it is written. With `replace` (`--force`), the
    new model is built in a hidden staging folder beside the store and swapped in only once
    it is complete, so a failed download or import leaves the installed model as it was.
    """
    store = store or ModelStore()
    expected = (entry.backbone, entry.layer, entry.decoder)
    target = ModelStore(root=store.root / STAGING_DIR, bundled=None) if replace else store
    try:
        if replace:
            shutil.rmtree(target.root, ignore_errors=True)  # leftovers of an earlier failed attempt
        card = importer(
            fetched.path, name=entry.name, clip_weights=[Path(p) for p in clip_weights], store=target,
            progress=progress, expected_architecture=expected, adopt_default=not replace,
        )
        _record_download(target, card, url, fetched, entry)
        if replace:
            _swap_in(target, store, entry.name)
    except ModelError as exc:
        remove_files(fetched.path, note)
        raise DownloadError(
            f"The file downloaded from {url} is not a usable DeCLIP checkpoint for {entry.name}: {str(exc).rstrip('.')}. "
            "It has been deleted and nothing was installed"
            + (f" (the installed {entry.name} is untouched)" if replace else "")
            + ". If you used --url or a mirror, check that it serves the right file.",
            "checkpoint",
        ) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DownloadError(
                f"The disk filled up while installing {entry.name} into {store.root}. "
                f"The download is kept in {fetched.path}; free some space and run the "
                "same download again: the kept file is re-checked and installed without "
                "fetching it twice.",
                "disk",
            ) from None
        raise
    finally:
        if replace:
            shutil.rmtree(store.root / STAGING_DIR, ignore_errors=True)
    return card


#: Hidden folder inside the model store where `--force` builds the replacement model.
STAGING_DIR = ".staging"


def _swap_in(staging: Any, store: Any, name: str) -> None:
    """Move a complete staged model over the installed one. The old card goes first: during
    the two renames the model is invisible (a card is what makes a model listed), never a card
    paired with weights it does not describe."""
    new_weights, new_card = staging.paths_for(name)
    weights, card = store.paths_for(name)
    remove_files(card)
    os.replace(new_weights, weights)
    os.replace(new_card, card)


def _record_download(store: Any, card: Any, url: str, fetched: FetchResult, entry: CheckpointEntry) -> None:
    """Add the download's provenance to the installed card (atomically rewritten)."""
    card.extra["download"] = {
        "url": url,
        # after redirects: the server that actually sent the bytes
        "final_url": fetched.final_url or url,
        "sha256": fetched.sha256,
        "registry_name": entry.name,
        "reference": (
            "published SHA-256" if entry.sha256 else
            "first verified download: the authors publish no checksum; later downloads must match it"
        ),
        "downloaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _weights, card_path = store.paths_for(card.name)
    tmp = card_path.with_name(card_path.name + ".tmp")
    tmp.write_text(card.to_json(), encoding="utf-8")
    os.replace(tmp, card_path)
