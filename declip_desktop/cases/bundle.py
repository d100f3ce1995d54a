"""`declip case bundle`: what an opposing expert needs to re-run the analyses and compare.

For each chosen item with a result: its hashes, the result's model card snapshot and the model's
SHA-256, the parameters it was computed with (preprocessing: input size, fast mode, precision,
device), its threshold and score, and the map itself; plus the software, the dependency
versions and the machine. Evidence files are included only when asked (they may be
confidential; the hashes let the other side check the copies they were given). The bundle's
SHA-256 goes into the audit log (`case.bundled`). Format: `common.bundle_format`.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import uuid
import zipfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from declip_desktop.cases.case_settings import case_threshold, effective_threshold
from declip_desktop.cases.errors import CaseError
from declip_desktop.common import bundle_format as F
from declip_desktop.common.hashing import sha256_bytes, sha256_file
from declip_desktop.common.version import software_id


def environment() -> dict[str, Any]:
    """Software, dependency versions and machine (read without importing torch)."""
    versions = {}
    for name in F.DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"software": software_id(), "python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "processor": platform.processor() or None, "dependencies": versions}


def _choose(case: Any, evidence_ids: Sequence[int] | None) -> list:
    everything = {ev.id: ev for ev in case.evidence_list()}
    if evidence_ids is None:
        return list(everything.values())
    missing = [i for i in evidence_ids if i not in everything]
    if missing:
        raise CaseError(f"no evidence with ID {', '.join(map(str, missing))} in this case (its IDs: "
                        f"{', '.join(map(str, everything)) or 'none'}).")
    return [everything[i] for i in dict.fromkeys(evidence_ids)]


def _reading_record(read: Any) -> dict[str, Any] | None:
    if read is None:
        return None
    return {"calibration_id": read.calibration.id, "above_references": read.standing.below, "n": read.standing.n,
            "image_threshold": read.calibration.image.threshold, "pixel_threshold": read.pixel_threshold,
            "above_image_threshold": read.above_image_threshold, "text": read.text(), "notes": list(read.notes)}


def write_bundle(case: Any, out: str | os.PathLike[str], evidence_ids: Sequence[int] | None = None,
                 with_evidence: bool = False, analyst: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the bundle to the new file `out` (never replaced); returns (path, manifest)."""
    out_path = Path(out).expanduser().absolute()
    if out_path.suffix.lower() != ".zip":
        raise CaseError(f"{out_path}: a bundle is a .zip file; give a name ending in .zip.")
    if out_path.exists():
        raise CaseError(f"{out_path} already exists; a bundle never replaces a file. Choose another name.")
    if not out_path.parent.is_dir():
        raise CaseError(f"the folder {out_path.parent} does not exist. Create it or choose another place.")
    altered = case.check_records()
    if altered:
        raise CaseError(f"the case database does not match its audit trail ({len(altered)} problem(s), first: "
                        f"{altered[0].detail}); no bundle was written. Run `declip case verify {case.path}`.")
    from declip_desktop.cases.annotations import annotations
    from declip_desktop.cases.calibration import reading, roles
    from declip_desktop.cases.export import calibration_record

    default = case_threshold(case)
    marked = roles(case)
    members: dict[str, bytes | Path] = {}
    items, skipped = [], []
    for ev in _choose(case, evidence_ids):
        result = case.latest_analysis(ev.id, successful=True)
        if result is None or not result.map_file:
            skipped.append({"evidence_id": ev.id, "name": ev.original_name, "reason": "no successful analysis"})
            continue
        prob = np.asarray(case.load_map(result), dtype=np.float32)  # hash-checked by the case
        buf = io.BytesIO()
        np.save(buf, prob, allow_pickle=False)
        members[F.map_member(ev.id)] = buf.getvalue()
        threshold, source = effective_threshold(ev, default)
        item = {
            "evidence_id": ev.id, "name": ev.original_name, "sha256": ev.sha256, "md5": ev.md5, "size": ev.size,
            "width": ev.width, "height": ev.height, "threshold": threshold, "threshold_source": source,
            "analysis": {"id": result.id, "model_name": result.model_name, "model_sha256": result.model_sha256,
                         "model_card": (result.parameters or {}).get("model_card"),
                         "parameters": {k: v for k, v in (result.parameters or {}).items() if k != "model_card"},
                         "score": result.score, "device": result.device, "finished": result.finished,
                         "software_version": result.software_version, "map_sha256": result.map_sha256},
            "map": F.map_member(ev.id),
            # The analyst's statements about regions and the item's role, for the other side to compare
            # with the maps; the calibrated reading names its calibration (listed in the manifest).
            "role": marked.get(ev.id),
            "annotations": [a.as_dict() for a in annotations(case, ev.id)],
            "calibration": _reading_record(reading(case, ev.id)),
            # The case keeps maps as 16-bit PNG: a re-run is compared after the same rounding.
            "map_encoding": "png16" if str(result.map_file).lower().endswith(".png") else "float32",
        }
        if with_evidence:
            member = f"{F.EVIDENCE_DIR}/{ev.sha256}{Path(ev.original_name).suffix.lower()}"
            members[member] = case.evidence_file(ev)
            item["evidence_file"] = member
        items.append(item)
    if not items:
        raise CaseError("none of the chosen evidence has a successful analysis; there is nothing to reproduce.")
    files = {}
    for name, data in members.items():
        files[name] = sha256_file(data) if isinstance(data, Path) else sha256_bytes(data)
    for item in items:  # a copied evidence file must still be the evidence
        if "evidence_file" in item and files[item["evidence_file"]] != item["sha256"]:
            raise CaseError(f"evidence {item['evidence_id']} no longer matches its SHA-256; run `declip case verify`.")
    head, count = case.audit_head()
    manifest = {"format": F.FORMAT, "case": {"number": case.info.number, "uuid": case.info.uuid},
                "audit_head": head, "audit_count": count, "environment": environment(),
                "tolerance": F.DEFAULT_TOLERANCE, "items": items, "skipped": skipped, "files": files,
                **calibration_record(case)}
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.part")
    try:
        with zipfile.ZipFile(tmp, "x", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(F.MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
            for name, data in members.items():
                if isinstance(data, Path):
                    zf.write(data, name)
                else:
                    zf.writestr(name, data)
        os.link(tmp, out_path)  # fails if `out` appeared meanwhile: never replaced
    except FileExistsError:
        raise CaseError(f"{out_path} already exists; a bundle never replaces a file.") from None
    except OSError as exc:
        raise CaseError(f"cannot write {out_path}: {exc.strerror or exc}. Choose another location.") from None
    finally:
        tmp.unlink(missing_ok=True)
    case.log_event("case.bundled", f"bundle:{out_path.name}",
                   {"path": str(out_path), "sha256": sha256_file(out_path), "items": [i["evidence_id"] for i in items],
                    "with_evidence": with_evidence}, analyst=analyst)
    return out_path, manifest


__all__ = ["environment", "write_bundle"]
