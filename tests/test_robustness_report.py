"""The report states agreement across models and stability per region (issue 19 items 3–5)."""

from __future__ import annotations

import re

import numpy as np
import pypdf

from declip_desktop.analysis.stability import check_stability
from declip_desktop.cases import Case
from declip_desktop.reports import build_report
from declip_desktop.reports.robustness_rows import robustness_for
from tests.cases_util import noise_image
from tests.test_stability import BoxLocalizer


def _text(path) -> str:
    return re.sub(r"\s+", " ", " ".join(p.extract_text() or "" for p in pypdf.PdfReader(str(path)).pages))


def _store(case, name, sha, prob, secondary=False):
    params = {"model_card": {"name": name, "sha256": sha, "kind": "declip", "demo": False}}
    if secondary:
        params["agreement"] = {"role": "secondary", "primary": "b" * 64}
    case.store_result(1, model_name=name, model_sha256=sha, parameters=params, score=float(prob.max()),
                      prob_map=prob, device="cpu", seconds=0.0, started="2026-12-02T00:00:00+00:00",
                      finished="2026-12-02T00:00:01+00:00")


def test_details_page_names_the_models_flagging_each_region_and_its_stability(tmp_path):
    noise_image(tmp_path / "src" / "a.png", (64, 48), seed=1)
    with Case.create(tmp_path / "case", number="19", title="Robust", analyst="Ana") as case:
        case.import_paths([tmp_path / "src"])
        box = BoxLocalizer()  # the shown result: two boxes that survive every copy
        shown = box.predict([case.evidence_file(case.get_evidence(1))])[0].prob_map
        other = np.zeros_like(shown)
        other[12:24, 16:32] = 0.7  # the second model agrees on the larger box only
        _store(case, "other", "c" * 64, other, secondary=True)
        _store(case, "box", "b" * 64, shown)
        assert case.latest_analysis(1).model_name == "box"
        check_stability(case, box, 1)

        rob = robustness_for(case, case.get_evidence(1), 0.5)
        rows = dict(rob.rows)
        assert rows["Agreement"].startswith("box, other: 2 models;")
        assert "1 of 2 region(s) flagged by one checkpoint only" in rows["Agreement"]
        assert rows["Stability"].startswith("checked ") and "2 of 2 region(s) persist in all 4 copies" in rows[
            "Stability"]
        cells = sorted(rob.agreement_cells.values())
        assert cells == ["all 2", "only box"] and all(v.startswith("4/4 ·") for v in rob.stability_cells.values())
        other_threshold = dict(robustness_for(case, case.get_evidence(1), 0.3).rows)["Stability"]
        assert "so its regions differ: re-run the check" in other_threshold

        text = _text(build_report(case).path)
        assert "Flagged by" in text and "Stable in" in text and "only box" in text and "all 2" in text
        assert "4/4 · IoU" in text and "persist in all 4 copies" in text
        assert "Agreement across models" in text and "Stability under re-compression" in text  # method text
        assert "Agreement is not confirmation" in text
        compact = _text(build_report(case, layout="compact").path)
        assert "agreement 50 %" in compact and "persist in all 4 copies" in compact
