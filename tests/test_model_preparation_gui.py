"""The app's Models → Import and Models → Download prepare the installed model on their worker,
through `EngineServices.model_preparer` (the GUI itself never imports torch)."""

from __future__ import annotations

import pytest
from tests.local_http import LocalServer, no_proxy, server, tiny_registry  # noqa: F401 (fixtures)

from declip_desktop.engine.backends import openvino_cpu
from declip_desktop.modelstore import registry
from declip_desktop.modelstore.checkpoint_import import import_checkpoint
from declip_desktop.modelstore.preparation import prepare_installed
from declip_desktop.modelstore.store import ModelStore
from tests.factories import make_tiny_vit_checkpoint

pytestmark = pytest.mark.timeout(900)  # a conversion of the tiny model: minutes on a loaded machine


@pytest.fixture()
def src(tmp_path):
    return make_tiny_vit_checkpoint(tmp_path / "src" / "ViT_layer1_conv-12_ldm.pth", layer="layer1",
                                    decoder="conv-12", seed=11)


def test_import_in_the_models_dialog_prepares_the_model(qtbot, src, monkeypatch):
    from declip_desktop.gui.models_dialog import ModelsDialog

    monkeypatch.setenv("DECLIP_CPU_BACKEND", "auto")
    dialog = ModelsDialog(current=None, importer=import_checkpoint, preparer=prepare_installed)
    qtbot.addWidget(dialog)
    dialog.start_import(str(src), [], "tiny")
    qtbot.waitUntil(lambda: dialog.import_button.isEnabled(), timeout=900_000)
    assert "Imported tiny. Prepared for this computer" in dialog.import_status.text(), dialog.import_status.text()
    model = ModelStore().get("tiny")
    directory = openvino_cpu.cache_dir(openvino_cpu.cache_root(model), model.sha256, 224, openvino_cpu.IR_RECIPES["f32"])
    openvino_cpu.check_cached(directory, model.sha256, 224, openvino_cpu.IR_RECIPES["f32"])


def test_a_failed_preparation_keeps_the_import_and_says_so(qtbot, src):
    from declip_desktop.gui.models_dialog import ModelsDialog

    def full_disk(name, progress=None, should_stop=None):
        raise OSError(28, "No space left on device")

    dialog = ModelsDialog(current=None, importer=import_checkpoint, preparer=full_disk)
    qtbot.addWidget(dialog)
    dialog.start_import(str(src), [], "tiny")
    qtbot.waitUntil(lambda: dialog.import_button.isEnabled(), timeout=120_000)
    text = dialog.import_status.text()
    assert text.startswith("Imported tiny.") and "No space left on device" in text and "first analysis" in text
    assert "tiny" in ModelStore()


def test_download_dialog_prepares_after_installing(qtbot, server, tmp_path, tiny_registry):
    from declip_desktop.gui.download_dialog import DownloadDialog

    entry = registry.get_checkpoint("vit-cocosd")
    source = make_tiny_vit_checkpoint(tmp_path / "c.pth")
    server.served.add("/mirror/" + entry.mirror_path, source.read_bytes())
    asked: list[str] = []

    def preparer(name, progress=None, should_stop=None):
        asked.append(name)
        progress(0, 2, "exact mode: checking")  # shown while it runs
        return prepare_installed(name, progress=progress, should_stop=should_stop)  # PyTorch: nothing to do

    dialog = DownloadDialog(base_url=server.url("/mirror"), importer=import_checkpoint, preparer=preparer)
    qtbot.addWidget(dialog)
    dialog.table.selectRow(list(registry.CHECKPOINTS).index("vit-cocosd"))
    with qtbot.waitSignal(dialog.modelInstalled, timeout=60_000):
        dialog.download_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=10_000)
    assert asked == ["vit-cocosd"]
    assert "installed" in dialog.status.text() and "Nothing to prepare on this computer." in dialog.status.text()
