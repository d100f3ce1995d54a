"""The reproducibility bundle's format, shared by the writer (`cases.bundle`) and the re-runner
(`training.reproduce`), which must not import each other.

A bundle is a ZIP file:
  manifest.json              what was analysed and how (see `cases.bundle.build_manifest`)
  maps/<evidence id>.npy     each result's probability map, float32, as stored in the case
  evidence/<sha256><suffix>  the evidence files themselves (only with --with-evidence)
Every member's SHA-256 is in the manifest's `files`; a reader refuses a bundle whose members
do not match it.
"""

from __future__ import annotations

FORMAT = "declip-reproducibility-bundle/1"
MANIFEST = "manifest.json"
MAPS_DIR = "maps"
EVIDENCE_DIR = "evidence"
#: Default pass/fail tolerance of `declip reproduce`: max |Δ| over the map and |Δ score|. Reruns on
#: the same machine and model agree to ~1e-7 (float32); another CPU or a GPU differs by up to
#: ~1e-4 from differently ordered float sums, which is far below any threshold's meaning.
DEFAULT_TOLERANCE = 1e-4
#: Installed packages whose versions the manifest records (read from package metadata, not imported).
DEPENDENCIES = ("torch", "torchvision", "open_clip_torch", "numpy", "pillow", "safetensors", "PySide6")


def map_member(evidence_id: int) -> str:
    return f"{MAPS_DIR}/{int(evidence_id)}.npy"
