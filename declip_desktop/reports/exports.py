"""Per-evidence image exports: the annotated overlay and the binary mask, as PNG files.

Both are at the image's full resolution and use the same regions as the PDF report and the
GUI (`common.regions`). The CSV/JSON export of the results is the cases layer's
`declip case export`; it is not duplicated here. Every written file's SHA-256 goes into the
case's audit log so an exported picture that circulates can be traced back to the case.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from declip_desktop.common.hashing import sha256_file
from declip_desktop.common.images import ImageError, load_rgb
from declip_desktop.common.outputs import (
    DiskFullError,
    OutputRefused,
    Protected,
    atomic_output,
    check_destination,
    check_output_folder,
)
from declip_desktop.common.progress import StepProgress
from declip_desktop.reports.build import case_originals, safe_file_stem
from declip_desktop.reports.collect import SelectionError, collect_report_data
from declip_desktop.reports.imaging import annotated_image
from declip_desktop.reports.errors import ReportError
from declip_desktop.reports.formatting import fmt_threshold

EXPORTS_DIR = "exports"


@dataclass
class ExportResult:
    folder: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (evidence id, reason)


def _write_png(path: Path, arr: np.ndarray, force: bool, protect: Protected) -> None:
    """Guarded atomic PNG write (common.outputs); cv2.imencode + Python I/O also works for
    non-ASCII paths on Windows."""
    bgr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise ReportError(f"could not encode {path.name} as PNG")
    with atomic_output(path, force=force, protect=protect, needed=len(buf), what="image") as part:
        part.write_bytes(buf.tobytes())


def _names(item) -> tuple[str, str]:  # noqa: ANN001 - a collect.EvidenceData
    stem = f"{item.id:04d}-{safe_file_stem(Path(item.name).stem, 'evidence', 60)}"
    t = fmt_threshold(item.threshold)
    return f"{stem}-overlay-t{t}.png", f"{stem}-mask-t{t}.png"


def export_images(
    case,
    evidence_ids: Sequence[int] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    threshold: float | None = None,
    *,
    analyst: str | None = None,
    progress: StepProgress | None = None,
    force: bool = False,
) -> ExportResult:
    """Write `<id>-<name>-overlay.png` and `<id>-<name>-mask-t<T>.png` per analysed item.

    Default folder: a new `exports/<case number>-images-<UTC time>/` in the case (existing
    exports are never touched). A folder the user gives is created if needed; it may not lie
    inside a case except in its exports/ (OutputRefused). Files of the same name in it are
    replaced only with `force`; without it the export refuses before writing anything. Items
    without a successful analysis are skipped with a reason. A full disk raises DiskFullError.
    """
    try:
        data = collect_report_data(case, evidence_ids, threshold, generated_by=analyst)
    except SelectionError as exc:
        raise ReportError(str(exc)) from None
    if out_dir is None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        folder = Path(case.path) / EXPORTS_DIR / f"{safe_file_stem(data.case_number)}-images-{stamp}"
        suffix = 2
        while folder.exists():
            folder = folder.with_name(f"{safe_file_stem(data.case_number)}-images-{stamp}-{suffix}")
            suffix += 1
    else:
        folder = Path(out_dir).expanduser()
        if folder.exists() and not folder.is_dir():
            raise ReportError(f"{folder} is a file. Give a folder for the exported images")
    protect = case_originals(case)
    try:
        folder = check_output_folder(folder)
        for item in data.evidence:  # refuse before writing anything, not after half the files
            if item.analysed:
                for name in _names(item):
                    check_destination(folder / name, force=force, protect=protect, what="image")
    except OutputRefused as exc:
        raise ReportError(str(exc)) from None
    result = ExportResult(folder)
    hashes: dict[str, str] = {}
    for index, item in enumerate(data.evidence):
        if progress:
            progress(index, len(data.evidence), item.name)
        if not item.analysed:
            reason = "analysis failed" if item.failed else f"not analysed (status {item.status})"
            result.skipped.append((item.id, reason))
            continue
        path = item.image_path
        if path is None or not Path(path).is_file():
            result.skipped.append((item.id, "the evidence file is missing from the case folder"))
            continue
        if sha256_file(path) != item.sha256:
            result.skipped.append((item.id, "the evidence file no longer matches its recorded SHA-256"))
            continue
        try:
            rgb = load_rgb(path)
            prob = item.load_map()
        except ImageError as exc:
            result.skipped.append((item.id, f"image cannot be decoded: {exc.reason}"))
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. a map whose hash no longer matches; reported per item
            result.skipped.append((item.id, str(exc)))
            continue
        over, mask, _ = annotated_image(rgb, prob, item.threshold)
        for name, arr in zip(_names(item), (over, mask)):
            target = folder / name
            try:
                _write_png(target, arr, force, protect)
            except DiskFullError as full:  # the files written so far are whole; say why the rest are not
                case.log_event("images.export_stopped", "case",
                               {"folder": str(folder), "files": hashes, "reason": str(full)}, analyst=analyst)
                raise
            result.written.append(target)
            hashes[name] = sha256_file(target)
    if progress:
        progress(len(data.evidence), len(data.evidence), "done")
    case.log_event(
        "images.exported",
        "case",
        {
            "folder": str(folder),
            "files": hashes,
            "skipped": {str(i): r for i, r in result.skipped},
            "threshold": threshold,
        },
        analyst=analyst,
    )
    return result
