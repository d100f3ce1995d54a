"""`declip reproduce BUNDLE.zip`: re-run every analysis of a reproducibility bundle and compare.

The bundle (`common.bundle_format`, written by `cases.bundle`) names, per item, the evidence by
its SHA-256, the model by its SHA-256 and the parameters of the run. Here the evidence comes
from the bundle or from `--evidence-dir` (any file there with the right SHA-256), the model
must be installed with exactly that SHA-256 (the weights are re-hashed, not the card
believed), and the map is recomputed with the recorded fast mode and precision. Per item the
result is max |Δ| over the map, |Δ score| and pass/fail against the tolerance.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from declip_desktop.common import bundle_format as F
from declip_desktop.common.hashing import sha256_bytes, sha256_file
from declip_desktop.common.probmaps import from_uint16, to_uint16


class BundleError(ValueError):
    """The bundle cannot be used (not a bundle, damaged, altered); nothing was re-run."""


@dataclass
class ItemResult:
    evidence_id: int
    name: str
    max_abs_diff: float | None  # over the map; None: not re-run
    score_diff: float | None
    passed: bool
    problem: str | None = None  # why it was not re-run, or why it failed besides the figures


def read_bundle(path: str | os.PathLike[str]) -> tuple[zipfile.ZipFile, dict[str, Any]]:
    """Open the bundle and check every member against the manifest's SHA-256."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{path} is not a readable ZIP file ({exc}). Give a bundle made by `declip case bundle`.") from None
    try:
        manifest = json.loads(zf.read(F.MANIFEST).decode("utf-8"))
    except (KeyError, ValueError, UnicodeDecodeError):
        zf.close()
        raise BundleError(f"{path} has no readable {F.MANIFEST}; it is not a reproducibility bundle.") from None
    if manifest.get("format") != F.FORMAT:
        zf.close()
        raise BundleError(f"{path} is of format {manifest.get('format')!r}; this version reads {F.FORMAT}.")
    files = manifest.get("files") or {}
    names = set(zf.namelist()) - {F.MANIFEST}
    extra = sorted(names - set(files))
    for name, sha in files.items():
        try:
            actual = sha256_bytes(zf.read(name))
        except KeyError:
            zf.close()
            raise BundleError(f"{path}: {name} is listed in the manifest but missing from the bundle.") from None
        if actual != sha:
            zf.close()
            raise BundleError(f"{path}: {name} does not match its SHA-256 in the manifest; the bundle was altered.")
    if extra:
        zf.close()
        raise BundleError(f"{path}: {extra[0]} is in the bundle but not in its manifest; the bundle was altered.")
    return zf, manifest


def _index_dir(folder: Path | None, wanted: set[str]) -> dict[str, Path]:
    """SHA-256 -> file for the wanted hashes among the files of `folder` (recursively)."""
    found: dict[str, Path] = {}
    if folder is None:
        return found
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if len(found) == len(wanted):
            break
        try:
            sha = sha256_file(path)
        except OSError:
            continue
        if sha in wanted:
            found.setdefault(sha, path)
    return found


def _installed_by_sha(store: Any, sha: str) -> Any:
    for model in store.installed():
        if model.sha256 == sha and sha256_file(model.weights_path) == sha:
            return model
    return None


def reproduce(path: str | os.PathLike[str], evidence_dir: str | os.PathLike[str] | None = None,
              tolerance: float | None = None, device: str = "cpu", store: Any = None,
              progress=None) -> tuple[dict[str, Any], list[ItemResult]]:  # noqa: ANN001
    """Re-run the bundle's analyses; returns (manifest, one ItemResult per item)."""
    from declip_desktop.modelstore.loading import load_localizer
    from declip_desktop.modelstore.store import ModelStore

    store = store or ModelStore()
    zf, manifest = read_bundle(path)
    tol = float(manifest.get("tolerance", F.DEFAULT_TOLERANCE) if tolerance is None else tolerance)
    items = manifest["items"]
    on_disk = _index_dir(Path(evidence_dir) if evidence_dir else None,
                         {i["sha256"] for i in items if "evidence_file" not in i})
    results: list[ItemResult] = []
    localizers: dict[tuple, Any] = {}
    with zf, tempfile.TemporaryDirectory(prefix="declip-reproduce-") as scratch:
        for n, item in enumerate(items):
            if progress:
                progress(n, len(items), item["name"])
            a = item["analysis"]
            fail = lambda why, it=item: ItemResult(it["evidence_id"], it["name"], None, None, False, why)  # noqa: E731
            if "evidence_file" in item:
                image = Path(scratch) / f"{item['evidence_id']}{Path(item['evidence_file']).suffix}"
                image.write_bytes(zf.read(item["evidence_file"]))
            elif item["sha256"] in on_disk:
                image = on_disk[item["sha256"]]
            else:
                where = f"in {evidence_dir}" if evidence_dir else "in the bundle (give --evidence-dir DIR)"
                results.append(fail(f"no file with SHA-256 {item['sha256']} {where}"))
                continue
            model = _installed_by_sha(store, a["model_sha256"])
            if model is None:
                results.append(fail(f"model {a['model_name']} with SHA-256 {a['model_sha256']} is not installed; "
                                    f"install it (`declip models download {a['model_name']}` or "
                                    "`declip models import FILE`) and run again"))
                continue
            params = a.get("parameters") or {}
            tiling = _tiling_of(params)  # a tiled map is re-run tiled, with its recorded tiling
            key = (model.sha256, bool(params.get("fast", False)), params.get("precision") or "fp32", tiling)
            if key not in localizers:
                precision = key[2] if device != "cpu" else "fp32"  # half precision exists on GPUs only
                localizers[key] = load_localizer(model, device=device, fast=key[1], batch_size=1, precision=precision,
                                                 tiling=tiling)
            pred = localizers[key].predict_one(image)
            if pred.ok and tiling is not None:
                pred = dataclasses.replace(pred, prob_map=pred.tiled.prob_map, score=pred.tiled.score)
            if not pred.ok:
                results.append(fail(f"the re-run failed: {pred.error}"))
                continue
            stored = np.load(io.BytesIO(zf.read(item["map"])), allow_pickle=False)
            if stored.shape != pred.prob_map.shape:
                results.append(fail(f"the map is {pred.prob_map.shape[1]}×{pred.prob_map.shape[0]} now but "
                                    f"{stored.shape[1]}×{stored.shape[0]} in the bundle"))
                continue
            fresh = pred.prob_map
            if item.get("map_encoding") == "png16":  # as the case stored the original result
                fresh = from_uint16(to_uint16(fresh))
            diff = float(np.max(np.abs(fresh.astype(np.float64) - stored.astype(np.float64))))
            score_diff = abs(float(pred.score) - float(a["score"]))
            results.append(ItemResult(item["evidence_id"], item["name"], diff, score_diff,
                                      diff <= tol and score_diff <= tol))
    return manifest, results


def _tiling_of(params: dict):
    """The TilingOptions a tiled result recorded (`parameters.mode` "tiled"), else None."""
    if params.get("mode") != "tiled":
        return None
    from declip_desktop.common.tiling_plan import TilingOptions

    return TilingOptions(tile=params.get("tile"), overlap=float(params.get("overlap", 0.25)),
                         scales=tuple(params.get("scales") or (1.0,)))


__all__ = ["BundleError", "ItemResult", "read_bundle", "reproduce"]
