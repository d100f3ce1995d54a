"""Scoring folders of maps, or a model on a data folder, against ground-truth masks.

Shared by `declip eval` and anything else that wants the paper's numbers. Each image gets
a row (metrics from `training.metrics.image_metrics`, or an `error` saying why it could not
be scored); `summarize` turns rows into means. Nothing here stops at a bad image.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declip_desktop.common.outputs import write_output
from declip_desktop.common.text import csv_safe
from declip_desktop.common.progress import StepProgress
from declip_desktop.training.datasets import DatasetError, SampleSet, index_by_stem, load_mask, match_mask
from declip_desktop.training.metrics import METRIC_NAMES, MetricInputError, image_metrics, summarize

MAP_SUFFIXES = (".npy", ".png", ".tif", ".tiff")
CSV_COLUMNS = (
    "name", "iou", "f1_best", "f1_fixed", "ap", "undefined", "manipulated_px", "scored_px",
    "height", "width", "resized", "error", "map", "image", "mask",
)



@dataclass
class EvalResult:
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # e.g. masks that had no map

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("error")]


def _score(name: str, prob_map, mask_path: Path | None, polarity: str, **paths: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, **{k: str(v) if v else "" for k, v in paths.items()}}
    row["mask"] = str(mask_path) if mask_path else ""
    if mask_path is None:
        row["error"] = "no ground-truth mask with this name"
        return row
    try:
        gt = load_mask(mask_path, polarity)
        row.update(image_metrics(prob_map() if callable(prob_map) else prob_map, gt))
    except (DatasetError, MetricInputError, ValueError, OSError) as exc:
        row["error"] = str(exc)
    return row


def evaluate_maps(maps_dir: str | Path, masks_dir: str | Path, polarity: str = "white",
                  progress: StepProgress | None = None) -> EvalResult:
    """Score every map in `maps_dir` (`.npy` float, 8/16-bit PNG) against the mask of the same stem."""
    from declip_desktop.common.probmaps import load_map

    maps_dir, masks_dir = Path(maps_dir), Path(masks_dir)
    for d, what in ((maps_dir, "maps"), (masks_dir, "masks")):
        if not d.is_dir():
            raise DatasetError(f"{d}: {what} folder not found")
    maps = index_by_stem(maps_dir, MAP_SUFFIXES)
    if not maps:
        raise DatasetError(f"{maps_dir}: no maps (.npy, .png, .tif) found")
    masks = index_by_stem(masks_dir)
    rows = []
    for i, (stem, map_path) in enumerate(sorted(maps.items())):
        mask = match_mask(stem, masks)
        rows.append(_score(stem, lambda p=map_path: load_map(p), mask, polarity, map=map_path))
        if progress:
            progress(i + 1, len(maps), stem)
    used = {Path(r["mask"]).stem for r in rows if r.get("mask")}
    unmatched = sorted(s for s in masks if s not in used)
    notes = [f"{len(unmatched)} mask(s) without a map, not scored: {', '.join(unmatched[:10])}"
             + (" …" if len(unmatched) > 10 else "")] if unmatched else []
    return EvalResult(rows, summarize(rows), notes)


def evaluate_model(localizer, samples: SampleSet, progress: StepProgress | None = None,
                   save_maps: str | Path | None = None, *, force: bool = False, protect: Any = ()) -> EvalResult:
    """Run `localizer` (an `engine.localizer.Localizer`) on a sample set and score each map.

    Images without a mask are reported and not run. The Localizer returns maps at the
    image's size; `image_metrics` resizes them to the mask's size when that differs.
    `force`/`protect`: for the maps written to `save_maps` (see `common.outputs`).
    """
    from declip_desktop.common.outputs import check_output_folder
    from declip_desktop.common.probmaps import save_map

    out_dir = check_output_folder(save_maps) if save_maps else None
    rows: list[dict[str, Any]] = []
    todo = [s for s in samples.samples if s.mask is not None]
    for s in samples.samples:
        if s.mask is None:
            rows.append(_score(s.name, None, None, samples.polarity, image=s.image))
    done = len(rows)
    # The Localizer decodes ahead in a thread and yields each map as its batch finishes, in order.
    predictions = localizer.predict_iter(str(s.image) for s in todo)
    for s, pred in zip(todo, predictions):
        if pred.error:
            row = {"name": s.name, "image": str(s.image), "mask": str(s.mask), "error": f"model: {pred.error}"}
        else:
            row = _score(s.name, pred.prob_map, s.mask, samples.polarity, image=s.image)
            if out_dir:
                row["map"] = str(save_map(out_dir / f"{s.name}.png", pred.prob_map, force=force, protect=protect))
        rows.append(row)
        done += 1
        if progress:
            progress(done, len(samples.samples), s.name)
    order = {s.name: i for i, s in enumerate(samples.samples)}
    rows.sort(key=lambda r: order.get(r["name"], 0))
    return EvalResult(rows, summarize(rows))


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    if isinstance(value, (list, tuple)):
        return ";".join(value)
    return "" if value is None else value


def _text_cell(value: Any) -> Any:
    """Numbers as the authors' values; text (names, paths, errors) safe from spreadsheet formulas."""
    cell = _cell(value)
    return cell if isinstance(value, (int, float)) else csv_safe(cell)


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path, *, force: bool = False, protect: Any = ()) -> Path:
    """Per-image CSV: the authors' values at full precision, undefined metrics named, errors.

    Written through `common.outputs.write_output` (no overwrite without `force`, never over
    an input, into a case or through a link)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _text_cell(r.get(k)) for k in CSV_COLUMNS})
    return write_output(path, buf.getvalue().encode("utf-8"), force=force, protect=protect, what="CSV file")


def json_safe(value: Any) -> Any:
    """NaN and ±Inf → None (JSON has neither), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


__all__ = ["EvalResult", "evaluate_maps", "evaluate_model", "write_csv", "json_safe", "METRIC_NAMES"]
