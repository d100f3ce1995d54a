"""Models → Download… against a local HTTP server: listing, failure, cancel, install."""

from __future__ import annotations

import json

import pytest
from tests.local_http import LocalServer, no_proxy, server, tiny_registry  # noqa: F401 (fixtures)

from declip_desktop.common.paths import models_dir
from declip_desktop.gui.download_dialog import DownloadDialog, open_download_dialog
from declip_desktop.modelstore import download, registry
from declip_desktop.modelstore.checkpoint_import import import_checkpoint


def _row_status(dialog: DownloadDialog, name: str) -> str:
    return dialog.table.item(list(registry.CHECKPOINTS).index(name), 4).text()


def test_lists_the_registry_and_marks_installed_models(qtbot):
    folder = models_dir()
    folder.mkdir(parents=True)
    (folder / "vit-lama.safetensors").write_bytes(b"weights")
    (folder / "vit-lama.json").write_text(json.dumps({"name": "vit-lama", "source_sha256": "ab" * 32}))
    dialog = DownloadDialog()
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 9
    assert _row_status(dialog, "vit-lama") == "Installed"
    assert _row_status(dialog, "vit-ldm") == "Not installed"
    assert dialog.selected_name() == registry.RECOMMENDED
    assert dialog.download_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_a_failed_download_shows_the_reason_and_the_dialog_stays_usable(qtbot, server):
    dialog = DownloadDialog(base_url=server.url("/mirror"), importer=import_checkpoint)
    qtbot.addWidget(dialog)
    dialog.start_download()  # nothing served: 404
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=10_000)
    assert "HTTP 404" in dialog.status.text()
    assert dialog.download_button.isEnabled()


def test_cancel_stops_the_background_download_and_keeps_the_part(qtbot, server):
    entry = registry.get_checkpoint(registry.RECOMMENDED)
    server.served.add("/mirror/" + entry.mirror_path, b"\0" * 4_000_000)
    server.served.chunk, server.served.delay = 16 * 1024, 0.02  # ~0.8 MB/s: seconds to finish
    dialog = DownloadDialog(base_url=server.url("/mirror"), importer=import_checkpoint)
    qtbot.addWidget(dialog)
    dialog.start_download()
    assert dialog.is_running() and dialog.cancel_button.isEnabled()
    # The window keeps processing events while bytes arrive: the status text updates.
    qtbot.waitUntil(lambda: "Downloading" in dialog.status.text() and dialog.progress.value() > 0, timeout=10_000)
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=10_000)
    assert dialog.status.text().startswith("Cancelled.")
    part = download.downloads_dir() / (entry.filename + ".part")
    assert 0 < part.stat().st_size < 4_000_000
    assert _row_status(dialog, registry.RECOMMENDED) == "Not installed"


def test_closing_during_a_download_cancels_it_without_blocking(qtbot, server):
    entry = registry.get_checkpoint(registry.RECOMMENDED)
    server.served.add("/mirror/" + entry.mirror_path, b"\0" * 4_000_000)
    server.served.chunk, server.served.delay = 16 * 1024, 0.02
    dialog = DownloadDialog(base_url=server.url("/mirror"), importer=import_checkpoint)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start_download()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=10_000)
    dialog.close()  # returns at once: the worker is asked to stop, the dialog closes after
    assert dialog.isVisible() and dialog.is_running()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    assert not dialog.is_running()


def test_the_dialog_downloads_and_installs_from_a_local_mirror(qtbot, server, tmp_path, tiny_registry):
    from tests import factories

    entry = registry.get_checkpoint("vit-cocosd")
    src = factories.make_tiny_vit_checkpoint(tmp_path / "c.pth")
    server.served.add("/mirror/" + entry.mirror_path, src.read_bytes())
    dialog = DownloadDialog(base_url=server.url("/mirror"), importer=import_checkpoint)
    qtbot.addWidget(dialog)
    dialog.table.selectRow(list(registry.CHECKPOINTS).index("vit-cocosd"))
    with qtbot.waitSignal(dialog.modelInstalled, timeout=30_000) as installed:
        dialog.download_button.click()
    assert installed.args == ["vit-cocosd"]
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=10_000)
    assert _row_status(dialog, "vit-cocosd") == "Installed"
    assert "installed" in dialog.status.text()
    assert "vit-cocosd" in download.installed_cards()


def test_open_download_dialog_reuses_the_open_one(qtbot):
    from PySide6.QtWidgets import QWidget

    parent = QWidget()
    qtbot.addWidget(parent)
    first = open_download_dialog(parent)
    assert first.isVisible() and open_download_dialog(parent) is first
    first.close()
    second = open_download_dialog(parent)
    assert second is not first
    second.close()


def test_models_menu_opens_the_download_dialog(qtbot):
    from declip_desktop.desktop import engine_services
    from declip_desktop.gui.background import wait_for_background
    from declip_desktop.gui.main_window import MainWindow
    from declip_desktop.gui.settings import Settings

    win = MainWindow(Settings(), device="cpu", fast=False, services=engine_services())
    qtbot.addWidget(win)
    action = next(a for a in win.menus["Models"].actions() if "Download" in a.text())
    action.trigger()
    dialogs = win.findChildren(DownloadDialog)
    assert len(dialogs) == 1 and dialogs[0].isVisible()
    action.trigger()  # a second click brings the same dialog forward
    assert win.findChildren(DownloadDialog) == dialogs
    dialogs[0].close()
    win.close()
    wait_for_background()
