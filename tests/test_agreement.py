"""Agreement across models (issue 19 item 3): counts on constructed maps, per-region flags, multi-model runs."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from declip_desktop.analysis import AnalysisError
from declip_desktop.analysis.multi_model import MultiModelRun, parse_models
from declip_desktop.cases import Case
from declip_desktop.cases.case_settings import pin_model, pinned_model
from declip_desktop.cases.model_agreement import item_agreement, results_per_model
from declip_desktop.common.agreement import UNION, agreement_maps, region_agreement, summarize
from declip_desktop.common.regions import find_regions
from tests.cases_util import Pred, noise_image
from tests.robustness_util import _two_tiny_model_files, two_tiny_models  # noqa: F401 (fixtures)


def constructed_maps():
    """Three 20×30 maps. Region P (rows 2–6, cols 2–6, 25 px) and Q (rows 10–14, cols 20–25, 30 px)."""
    a = np.zeros((20, 30), np.float32)
    b = np.zeros_like(a)
    c = np.zeros_like(a)
    a[2:7, 2:7] = 0.9
    a[10:15, 20:26] = 0.8
    b[2:7, 2:7] = 0.7  # b flags P, not Q
    c[2:3, 2:7] = 0.9  # c: 5 of P's 25 pixels (20 %), above its own threshold 0.6
    c[3:7, 2:7] = 0.55  # the rest of P at 0.55: under c's threshold, above the others'
    c[18:20, 0:2] = 0.95  # c alone, somewhere else
    return [a, b, c], [0.5, 0.5, 0.6]


def test_counts_mean_and_spread_are_exact_on_constructed_maps():
    maps, ts = constructed_maps()
    agg = agreement_maps(maps, ts)
    assert agg.count.dtype == np.uint8 and agg.count.shape == (20, 30) and agg.n_models == 3
    assert (agg.count[2, 2:7] == 3).all()  # a, b and c
    assert (agg.count[3:7, 2:7] == 2).all()  # c is below its own threshold there (0.55 < 0.6)
    assert (agg.count[10:15, 20:26] == 1).all() and (agg.count[18:20, 0:2] == 1).all()
    assert int(agg.count.sum()) == 5 * 3 + 20 * 2 + 30 + 4
    stack = np.stack(maps)
    np.testing.assert_allclose(agg.mean, stack.mean(0), atol=1e-6)
    np.testing.assert_allclose(agg.spread, stack.std(0), atol=1e-6)
    assert agg.fraction(3) == pytest.approx(5 / 600)
    s = summarize(agg)
    assert s.any_pct == pytest.approx(100 * 59 / 600) and s.all_pct == pytest.approx(100 * 5 / 600)
    assert s.one_pct == pytest.approx(100 * 34 / 600) and s.overlap_pct == pytest.approx(100 * 5 / 59)


def test_each_region_names_the_models_that_flag_it():
    maps, ts = constructed_maps()
    regions = region_agreement(maps, ts, regions_of=0)
    # Numbered like the regions table (find_regions on model 0's map): Q (30 px) first.
    assert [(r.bbox, r.area_px) for r in regions] == [(r.bbox, r.area_px) for r in find_regions(maps[0], 0.5)]
    q, p = regions
    assert q.flagged_by == (0,) and q.single_model and q.overlap == (1.0, 0.0, 0.0)
    assert p.flagged_by == (0, 1) and not p.single_model and p.overlap == pytest.approx((1.0, 1.0, 0.2))
    # The stated fraction decides: at 20 % c flags P too.
    assert region_agreement(maps, ts, regions_of=0, min_overlap=0.2)[1].flagged_by == (0, 1, 2)
    union = region_agreement(maps, ts, regions_of=UNION)
    assert sorted((r.area_px, r.flagged_by) for r in union) == [(4, (2,)), (25, (0, 1)), (30, (0,))]
    assert region_agreement([np.zeros((4, 4))] * 2, [0.5, 0.5]) == []


def test_bad_inputs_are_refused_with_the_reason():
    maps, ts = constructed_maps()
    with pytest.raises(ValueError, match="one threshold per model"):
        agreement_maps(maps, ts[:2])
    with pytest.raises(ValueError, match="shape"):
        agreement_maps([maps[0], maps[1][:10]], [0.5, 0.5])
    with pytest.raises(ValueError, match="regions_of"):
        region_agreement(maps, ts, regions_of=3)
    with pytest.raises(ValueError, match="outside"):
        agreement_maps(maps, [0.5, 0.5, 1.5])


# ------------------------------------------------------------------ multi-model runs in a case
class MapLocalizer:
    """A stand-in Localizer whose map is `fn(red channel in [0, 1])`."""

    def __init__(self, name, sha, fn):
        self.card = SimpleNamespace(name=name, sha256=sha, kind="declip", demo=False, label="")
        self.model_sha256 = sha
        self.model_name = name
        self.batch_size = 2
        self.device = "cpu"
        self.fn = fn

    @property
    def card_snapshot(self):
        return {"name": self.card.name, "sha256": self.model_sha256, "kind": "declip", "demo": False}

    @property
    def parameters(self):
        return {"fast": False, "device": "cpu"}

    def predict(self, images):
        out = []
        for p in images:
            red = np.asarray(Image.open(p).convert("RGB"), np.float32)[:, :, 0] / 255.0
            m = self.fn(red).astype(np.float32)
            out.append(Pred(source=p, prob_map=m, score=float(m.max()), model_name=self.model_name,
                            model_sha256=self.model_sha256, seconds=0.0, device="cpu", error=None))
        return out


def engine(**fns):
    models = {name: SimpleNamespace(card=SimpleNamespace(name=name, sha256=name[0] * 64)) for name in fns}

    def resolve(spec):
        if spec not in models:
            raise LookupError(f"no installed model named {spec!r}")
        return models[spec]

    def factory(model, **_kw):
        return MapLocalizer(model.card.name, model.card.sha256, fns[model.card.name])

    return dict(localizer_factory=factory, model_resolver=resolve)


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="19", title="Agreement", analyst="Ana")
    for i in range(2):
        noise_image(tmp_path / "src" / f"{i}.png", (30, 20), seed=i)
    c.import_paths([tmp_path / "src"])
    yield c
    c.close()


def half(red):
    m = np.zeros_like(red)
    m[:, : red.shape[1] // 2] = 0.9
    return m


FNS = dict(alpha=half, beta=lambda red: half(red) * 0.4, gamma=lambda red: np.where(red > 0.5, 0.8, 0.1))


def test_several_models_store_one_result_each_and_the_primary_stays_the_shown_one(case):
    summary = MultiModelRun(case, ["alpha", "beta", "gamma"], **engine(**FNS)).run()
    assert [(n, r) for n, r, _s in summary.runs] == [("beta", "secondary"), ("gamma", "secondary"),
                                                     ("alpha", "primary")]
    assert summary.failed == 0 and pinned_model(case).name == "alpha"
    for ev in case.evidence_list():
        results = results_per_model(case, ev.id)
        assert [a.model_name for a in results] == ["alpha", "beta", "gamma"]
        assert case.latest_analysis(ev.id).model_name == "alpha" and ev.score == pytest.approx(0.9)
        for a in results:
            assert a.parameters["model_card"]["sha256"] == a.model_sha256
        assert results[1].parameters["agreement"] == {"role": "secondary", "primary": "a" * 64}
        assert "agreement" not in results[0].parameters
        agg = item_agreement(case, ev.id, 0.5)
        assert [m.name for m in agg.models] == ["alpha", "beta", "gamma"]
        left = agg.maps.count[:, :15]
        red = np.asarray(Image.open(case.evidence_file(ev)).convert("RGB"), np.float32)[:, :, 0] / 255.0
        # alpha flags the left half, beta never (0.36 < 0.5), gamma where red > 0.5.
        np.testing.assert_array_equal(left, 1 + (red[:, :15] > 0.5))
        assert agg.regions[0].flagged_by[0] == 0 and 1 not in agg.regions[0].flagged_by
        union = item_agreement(case, ev.id, 0.5, regions_of="union")
        gamma = item_agreement(case, ev.id, 0.5, regions_of="gamma")
        assert sum(r.area_px for r in union.regions) == int(np.count_nonzero(union.maps.count))
        assert all(2 in r.flagged_by for r in gamma.regions)  # gamma's own regions: gamma flags each
        with pytest.raises(ValueError, match="no model named 'delta' analysed this item"):
            item_agreement(case, ev.id, 0.5, regions_of="delta")
    assert case.verify().ok


def test_the_pinned_model_stays_primary_and_an_added_model_never_hides_it(case):
    eng = engine(**FNS)
    pin_model(case, "beta", "b" * 64)
    summary = MultiModelRun(case, ["alpha", "beta"], **eng).run()
    assert summary.primary == "beta" and [r for _n, r, _s in summary.runs] == ["secondary", "primary"]
    # A model added later analyses every item; the shown result stays the pinned model's.
    later = MultiModelRun(case, ["beta", "gamma"], **eng).run()
    assert [(n, s.done) for n, _r, s in later.runs] == [("gamma", 2), ("beta", 0)]
    for ev in case.evidence_list():
        assert case.latest_analysis(ev.id).model_name == "beta"
        assert len(item_agreement(case, ev.id, 0.5).models) == 3
    assert case.verify().ok


def test_hand_edits_of_the_roles_are_caught_and_break_nothing(case):
    import sqlite3

    MultiModelRun(case, ["alpha", "beta"], **engine(**FNS)).run()
    primary, other = (next(a for a in case.analyses(1) if a.model_name == n) for n in ("alpha", "beta"))
    demoted = {**primary.parameters, "agreement": {"role": "secondary", "primary": "x"}}
    promoted = {k: v for k, v in other.parameters.items() if k != "agreement"}
    with sqlite3.connect(case.path / "case.sqlite") as conn:  # swap which map is shown
        conn.execute("UPDATE analyses SET parameters = ? WHERE id = ?", (json.dumps(demoted), primary.id))
        conn.execute("UPDATE analyses SET parameters = ? WHERE id = ?", (json.dumps(promoted), other.id))
    assert case.latest_analysis(1).model_name == "beta"  # the edit works on screen…
    problems = sorted(p.object for p in case.verify().problems if p.kind == "record_changed")
    assert problems == sorted([f"analysis:{primary.id}", f"analysis:{other.id}"])  # …and verify names both
    secondary = next(a for a in case.analyses(2) if a.model_name == "beta")
    with sqlite3.connect(case.path / "case.sqlite") as conn:  # not even JSON any more
        conn.execute("UPDATE analyses SET parameters = '{' WHERE id = ?", (secondary.id,))
    assert [e.id for e in case.evidence_list()] == [1, 2]  # listings still work
    assert case.latest_analysis(2).model_name == "alpha"
    assert any(p.object == f"analysis:{secondary.id}" for p in case.verify().problems)


def test_refusals_happen_before_anything_is_stored(case):
    eng = engine(alpha=half, another=half)
    eng_same = dict(eng)
    eng_same["model_resolver"] = lambda spec: SimpleNamespace(card=SimpleNamespace(name=spec, sha256="a" * 64))
    with pytest.raises(AnalysisError, match="same weights"):
        MultiModelRun(case, ["alpha", "alias"], **eng_same).run()
    with pytest.raises(AnalysisError, match="no installed model named 'nope'"):
        MultiModelRun(case, ["alpha", "nope"], **eng).run()
    with pytest.raises(AnalysisError, match="at least two"):
        MultiModelRun(case, ["alpha"], **eng)
    with pytest.raises(AnalysisError, match="twice"):
        parse_models("alpha,alpha")
    with pytest.raises(AnalysisError, match="empty"):
        parse_models("alpha,,beta")
    assert case.analyses() == [] and item_agreement(case, 1, 0.5) is None


def test_cli_analyses_with_two_tiny_models_then_reports_agreement_and_stability(tmp_path, capsys, two_tiny_models):
    from declip_desktop.cli import main

    first, second = two_tiny_models
    d = tmp_path / "case"
    assert main(["case", "create", str(d), "--number", "7", "--title", "t", "--analyst", "Ana"]) == 0
    noise_image(tmp_path / "src" / "p.png", (40, 30), seed=3)
    assert main(["case", "import", str(d), str(tmp_path / "src")]) == 0
    capsys.readouterr()
    assert main(["case", "analyze", str(d), "--models", "tiny-a,tiny-b", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "tiny-b (secondary): analysed 1" in out and "tiny-a (primary): analysed 1" in out
    assert "Model 1/2: tiny-b (secondary)" in err
    assert main(["case", "agreement", str(d), "--json", "--threshold", "0.0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [m["sha256"] for m in doc[0]["models"]] == [first.sha256, second.sha256]
    assert doc[0]["flagged_pct"]["any"] == pytest.approx(100.0)  # every probability is above 0
    # Each model at its own case calibration (cases.calibration) where it has one.
    assert main(["case", "calibrate", str(d), "--references", "1", "--false-alarm", "0.1", "--pixel-rate", "0.01",
                 "--resamples", "100", "--model-sha256", second.sha256]) == 0
    capsys.readouterr()
    from declip_desktop.cases.calibration import current_calibration

    with Case.open(d, read_only=True) as c:
        calibrated = current_calibration(c, second.sha256).pixel.threshold
    assert main(["case", "agreement", str(d), "--json", "--calibrated"]) == 0
    models = json.loads(capsys.readouterr().out)[0]["models"]
    assert [m["threshold"] for m in models] == [0.5, pytest.approx(calibrated)]
    assert main(["case", "stability", str(d), "1", "--device", "cpu", "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)["checks"][0]
    assert checked["model_sha256"] == first.sha256 and len(checked["variants"]) == 4
    assert main(["case", "stability", str(d), "9", "--device", "cpu"]) == 2
    assert "no evidence with ID 9" in capsys.readouterr().err
    assert main(["case", "analyze", str(d), "--models", "tiny-a,nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["case", "verify", str(d)]) == 0


def test_a_changed_map_is_named_and_the_other_items_still_compared(case, capsys):
    import os

    from declip_desktop.cli import main

    MultiModelRun(case, ["alpha", "gamma"], **engine(**FNS)).run()
    changed = next(a for a in case.analyses(2) if a.model_name == "gamma")
    path = case.map_file(changed)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    assert main(["case", "agreement", str(case.path), "--json"]) == 1
    out, err = capsys.readouterr()
    assert [item["evidence_id"] for item in json.loads(out)] == [1]
    assert "evidence 2" in err and "changed after it was stored" in err
    assert main(["case", "agreement", str(case.path), "--min-overlap", "0"]) == 2
    assert "--min-overlap 0.0 must be above 0" in capsys.readouterr().err


def test_a_secondary_model_failing_leaves_an_analysed_item_done(case):
    MultiModelRun(case, ["alpha", "gamma"], **engine(**FNS)).run()

    def broken(red):
        raise RuntimeError("decoder exploded")

    eng = engine(alpha=half, omega=broken)
    summary = MultiModelRun(case, ["alpha", "omega"], **eng).run()
    assert [(n, s.failed) for n, _r, s in summary.runs] == [("omega", 2), ("alpha", 0)]
    assert [e.status for e in case.evidence_list()] == ["done", "done"]  # alpha's results stand
    assert case.latest_analysis(1).model_name == "alpha"
    assert case.verify().ok  # the replay agrees on the status
    fresh = Case.create(case.path.parent / "fresh", number="f", title="t", analyst="Ana")
    with fresh:
        noise_image(case.path.parent / "one" / "x.png", (8, 6), seed=9)
        fresh.import_paths([case.path.parent / "one"])
        MultiModelRun(fresh, ["alpha", "omega"], **eng).run(evidence_ids=[1])
        assert fresh.get_evidence(1).status == "done"  # omega failed first, alpha then succeeded
        assert fresh.verify().ok
