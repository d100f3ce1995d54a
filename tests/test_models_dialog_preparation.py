"""Models dialog: whether the selected model is prepared on this computer, read off the UI thread
through `EngineServices.preparation_reader`, and "Prepare now" for a mode that is not."""

from __future__ import annotations

import threading

from declip_desktop.gui.models_dialog import preparation_sentence
from tests.factories import install_tiny_model


def _select(dialog, name: str) -> None:
    for i in range(dialog.list.count()):
        if dialog.list.item(i).text().startswith(name):
            dialog.list.setCurrentRow(i)
            return
    raise AssertionError(f"{name} is not listed")


def test_the_sentence_names_every_mode_and_says_whether_preparing_helps():
    text, preparable = preparation_sentence({
        "exact": {"runs_on": "openvino f32", "prepared": True, "detail": "/x"},
        "fast": {"runs_on": "openvino bf16", "prepared": False, "detail": "not prepared: converted at its first use"}})
    assert text.startswith("On this computer: exact mode prepared · fast mode not prepared (the first analysis")
    assert preparable
    text, preparable = preparation_sentence({
        "exact": {"runs_on": "torch", "prepared": None, "detail": "PyTorch"},
        "fast": {"runs_on": None, "prepared": None, "detail": "unknown CPU back end 'x'"}})
    assert text == "On this computer: exact mode: nothing to prepare · fast mode unavailable (unknown CPU back end 'x')."
    assert not preparable
    text, preparable = preparation_sentence({m: {"runs_on": "openvino f32", "prepared": False, "detail": ""}
                                             for m in ("exact", "fast")})
    assert text == ("On this computer: exact mode and fast mode not prepared (the first analysis converts it: "
                    "minutes for ViT-L/14).") and preparable
    text, _ = preparation_sentence({"exact": {"runs_on": "openvino f32", "prepared": False,
                                              "detail": "not usable: model.bin was changed"}})
    assert "exact mode not prepared (not usable: model.bin was changed)" in text


def test_the_dialog_shows_the_state_and_prepares_on_request(qtbot):
    from declip_desktop.gui.models_dialog import ModelsDialog

    install_tiny_model("tiny")
    prepared = {"exact": False}
    readers: list[str] = []
    asked: list[str] = []
    release = threading.Event()

    def reader(name):
        readers.append(threading.current_thread().name)
        return {"exact": {"runs_on": "openvino f32", "prepared": prepared["exact"], "detail": ""}}

    def preparer(name, progress=None, should_stop=None):
        asked.append(name)
        progress(0, 1, "exact mode: converting")
        release.wait(10)
        prepared["exact"] = True
        from types import SimpleNamespace
        return SimpleNamespace(ok=True, cancelled=False, message="", outcomes=[SimpleNamespace(state="prepared")])

    dialog = ModelsDialog(current=None, preparer=preparer, preparation_reader=reader)
    qtbot.addWidget(dialog)
    _select(dialog, "tiny")
    qtbot.waitUntil(lambda: "not prepared" in dialog.preparation_status.text(), timeout=10_000)
    assert threading.main_thread().name not in readers  # read on the pool, never on the UI thread
    assert not dialog.prepare_button.isHidden() and dialog.prepare_button.isEnabled()
    dialog.prepare_button.click()
    qtbot.waitUntil(lambda: "converting" in dialog.preparation_status.text(), timeout=10_000)
    assert not dialog.prepare_button.isEnabled()  # one preparation at a time
    dialog.prepare_button.click()
    release.set()
    qtbot.waitUntil(lambda: dialog.preparation_status.text() == "On this computer: exact mode prepared.",
                    timeout=10_000)
    assert asked == ["tiny"]
    assert dialog.prepare_button.isHidden()
    assert "tiny: Prepared for this computer" in dialog.import_status.text()


def test_a_reply_for_a_model_no_longer_selected_is_dropped(qtbot):
    from declip_desktop.gui.models_dialog import ModelsDialog

    install_tiny_model("slow")
    install_tiny_model("quick", seed=1)
    gate = threading.Event()

    def reader(name):
        if name == "slow":
            gate.wait(10)
        return {"exact": {"runs_on": "openvino f32", "prepared": name == "quick", "detail": ""}}

    dialog = ModelsDialog(current=None, preparation_reader=reader)
    qtbot.addWidget(dialog)
    _select(dialog, "slow")
    _select(dialog, "quick")
    qtbot.waitUntil(lambda: dialog.preparation_status.text() == "On this computer: exact mode prepared.",
                    timeout=10_000)
    gate.set()
    qtbot.wait(300)
    assert dialog.preparation_status.text() == "On this computer: exact mode prepared."
    assert dialog.prepare_button.isHidden()  # no preparer: no button, even for a model that is not prepared


def test_the_real_reader_on_the_bundled_starter_says_nothing_to_prepare(qtbot):
    from declip_desktop.desktop import engine_services
    from declip_desktop.gui.models_dialog import ModelsDialog

    services = engine_services()
    dialog = ModelsDialog(current=None, preparer=services.model_preparer,
                          preparation_reader=services.preparation_reader)
    qtbot.addWidget(dialog)
    _select(dialog, "starter")
    qtbot.waitUntil(lambda: "checking" not in dialog.preparation_status.text(), timeout=60_000)
    assert dialog.preparation_status.text() == "On this computer: exact mode and fast mode: nothing to prepare.", \
        dialog.preparation_status.text()
