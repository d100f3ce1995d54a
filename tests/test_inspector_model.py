"""The inspector's state without Qt (gui.inspector_model): no display, no qtbot."""

from __future__ import annotations

import pytest

from declip_desktop.cases import Case
from declip_desktop.cases.case_settings import set_case_threshold
from declip_desktop.gui.inspector_model import InspectorModel, Layer
from tests.cases_util import noise_image


@pytest.fixture
def case(tmp_path):
    c = Case.create(tmp_path / "case", number="M-1", title="Model", analyst="Ana")
    for i in range(2):
        noise_image(tmp_path / "src" / f"{i}.png", (32, 24), seed=i)
    c.import_paths([tmp_path / "src"])
    yield c
    c.close()


def test_selection_applies_the_case_rule_for_thresholds(case):
    model = InspectorModel()
    model.set_case(case)
    assert model.select(1) and (model.threshold, model.threshold_source) == (0.5, "default")
    set_case_threshold(case, 0.35)
    model.case_default_changed()
    assert (model.threshold, model.threshold_source) == (0.35, "case")
    case.set_review(2, threshold=0.8)
    assert model.select(2) and (model.threshold, model.threshold_source) == (0.8, "reviewed")
    set_case_threshold(case, 0.2)
    model.case_default_changed()  # an item with its own threshold keeps it
    assert model.threshold == 0.8


def test_threshold_changes_are_clamped_and_saved_once(case):
    model = InspectorModel()
    model.set_case(case)
    model.select(1)
    seen = []
    model.on("threshold", lambda: seen.append(model.threshold))
    assert model.set_threshold(1.7) and model.threshold == 1.0
    assert not model.set_threshold(1.0)  # unchanged: nothing to redraw or save
    assert model.nudge_threshold(-0.25) and model.threshold == 0.75
    assert seen == [1.0, 0.75]
    assert model.threshold_to_save() == 0.75
    model.threshold_saved(case.set_review(1, threshold=0.75))
    assert model.threshold_to_save() is None


def test_results_for_an_item_left_behind_are_recognised(case):
    model = InspectorModel()
    model.set_case(case)
    model.select(1)
    token = model.load_token
    model.select(2)
    assert not model.is_current(token) and model.is_current(model.load_token)
    regions = model.regions_token
    model.set_threshold(0.3)
    assert model.regions_token != regions  # outlines computed for 0.5 are stale now


def test_view_mode_decides_which_layers_are_drawn():
    model = InspectorModel()
    assert not any(model.visible_layers().values())  # no map: nothing to overlay
    model.has_map = True
    assert model.visible_layers() == {"heat": True, "mask": False, "outlines": False, "edges": True}
    model.live_edges = False  # the full-resolution outlines arrived
    assert model.visible_layers()["outlines"] and not model.visible_layers()["edges"]
    model.set_flicker(True)
    model.flicker_tick()
    assert not any(model.visible_layers().values())  # the blink's "off" half
    model.flicker_tick()
    model.toggle_overlay()
    assert not any(model.visible_layers().values())
    model.toggle_overlay()
    model.set_layer_visible("mask", True)
    assert model.visible_layers()["mask"]


def test_a_new_layer_is_one_call():
    model = InspectorModel()
    model.has_map = True
    changed = []
    model.on("view", lambda: changed.append(True))
    model.add_layer(Layer("ela", "Error level", visible=True), before="mask")
    assert [layer.name for layer in model.layers] == ["heat", "ela", "mask", "outlines"]
    assert model.visible_layers()["ela"] and changed
    with pytest.raises(ValueError, match="already has a layer named 'ela'"):
        model.add_layer(Layer("ela", "again"))
