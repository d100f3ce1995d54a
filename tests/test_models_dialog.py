"""Models dialog: "Set as default" records the store's default; demo models are marked by the engine's rule."""

from __future__ import annotations

import json
import subprocess
import sys

from declip_desktop.modelstore.store import ModelStore  # noqa: E402
from tests.factories import install_tiny_model  # noqa: E402


def _row_texts(dialog) -> dict[str, str]:
    return {dialog.list.item(i).text().split()[0]: dialog.list.item(i).text() for i in range(dialog.list.count())}


def test_set_as_default_changes_only_the_default(qtbot):
    from declip_desktop.gui.models_dialog import ModelsDialog

    install_tiny_model("first")
    install_tiny_model("second", seed=1)
    assert ModelStore().default().name == "first"  # the first casework model; the second changed nothing
    dialog = ModelsDialog(current=None)
    qtbot.addWidget(dialog)
    rows = _row_texts(dialog)
    assert "(default)" in rows["first"] and "(default)" not in rows["second"]
    assert "not for casework" in rows["starter"]
    for i in range(dialog.list.count()):
        if dialog.list.item(i).text().startswith("second"):
            dialog.list.setCurrentRow(i)
    with qtbot.waitSignal(dialog.defaultChanged, timeout=2000) as changed:
        dialog.default_button.click()
    assert changed.args == ["second"]
    assert ModelStore().default().name == "second"
    assert "(default)" in _row_texts(dialog)["second"] and "(default)" not in _row_texts(dialog)["first"]


def test_a_card_claiming_not_demo_is_still_shown_as_demo():
    from declip_desktop.common.model_card import ModelCard
    from declip_desktop.gui.models_dialog import card_html, describe_model
    from declip_desktop.modelstore.model_facts import BUNDLED_DEMO_SHA256

    lying = ModelCard(name="casework", kind="declip", demo=False, sha256=next(iter(BUNDLED_DEMO_SHA256)))
    assert "not for casework" in describe_model(lying) and "not for casework" in card_html(lying)


def test_setting_the_default_from_the_gui_module_needs_no_torch(tmp_path):
    install_tiny_model("only")
    code = ("import sys, json; from declip_desktop.gui import models_dialog as m; m.set_default_model('only'); "
            "print(json.dumps([m.default_model_name(), 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["only", False]


def test_import_and_download_say_which_model_is_the_default():
    from declip_desktop.gui.models_dialog import default_model_sentence

    install_tiny_model("first")
    assert default_model_sentence("first") == "first is the default model."
    install_tiny_model("second", seed=1)
    assert "still first" in default_model_sentence("second")
