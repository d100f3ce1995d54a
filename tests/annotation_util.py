"""A small analysed case for the annotation tests: one 120×90 photo whose stored map is a
horizontal ramp (probability = x / 119), so the map's mean / max inside a shape is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from declip_desktop.cases import Case
from tests.cases_util import noise_image

WIDTH, HEIGHT = 120, 90
CARD = {"name": "fake-model", "sha256": "f" * 64, "kind": "declip", "backbone": "fake", "layer": None,
        "decoder": "ramp", "training_set": None, "demo": False, "label": "", "software_version": "test"}


def ramp_map(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    return np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))


def analysed_case(tmp_path: Path, count: int = 1, name: str = "case") -> Path:
    folder = tmp_path / name
    with Case.create(folder, "A-18", "Annotations", "Ana") as case:
        for i in range(count):
            noise_image(tmp_path / "src" / f"photo_{i + 1}.png", (WIDTH, HEIGHT), seed=i)
        case.import_paths([tmp_path / "src"])
        for ev in case.evidence_list():
            case.store_result(ev.id, model_name="fake-model", model_sha256="f" * 64,
                              parameters={"model_card": CARD}, score=0.5, prob_map=ramp_map(), device="cpu",
                              seconds=0.01, started="2026-12-01T10:00:00+00:00",
                              finished="2026-12-01T10:00:01+00:00")
    return folder
