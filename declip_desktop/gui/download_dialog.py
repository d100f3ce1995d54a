"""Models → Download…: fetch the authors' DeCLIP checkpoints from inside the app.

The dialog lists `modelstore.registry` with what is installed and runs
`modelstore.download.download_model` — the same function as `declip models download` — in
a QThread, so the window never waits on the network or on the install step (which
imports torch in that worker thread, never here). Cancel sets a CancelToken (a threading.Event) the
downloader checks between chunks; the partial file is kept and the next download of
the same model resumes it.

Entry point for the main window: `open_download_dialog(parent)`; connect
`DownloadDialog.modelInstalled(name)` to refresh a model picker.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.common.progress import CancelToken
from declip_desktop.gui.models_dialog import default_model_sentence, prepare_and_describe
from declip_desktop.modelstore.download import download_model, installed_cards
from declip_desktop.modelstore.download_errors import DownloadError, format_size
from declip_desktop.modelstore.fetch import Progress
from declip_desktop.modelstore.registry import CHECKPOINTS, MIRROR_ENV, RECOMMENDED

_COLUMNS = ("Model", "Backbone", "Trained on", "Size", "Status")


class _DownloadWorker(QObject):
    """Runs one download_model call on a QThread; talks back only through signals."""

    progressed = Signal(object)  # modelstore.fetch.Progress
    succeeded = Signal(object, str)  # modelstore.download.InstallResult, what the preparation did
    failed = Signal(str, str)  # kind, message
    done = Signal()

    def __init__(self, name: str, base_url: str | None, cancel: CancelToken, importer: Callable[..., Any],
                 preparer: Callable[..., Any] | None = None):
        super().__init__()
        self._name, self._base_url, self._cancel, self._importer = name, base_url, cancel, importer
        self._preparer = preparer

    @Slot()
    def run(self) -> None:
        try:
            if self._importer is None:
                raise DownloadError("No checkpoint importer is connected to this window, so nothing can be "
                                    "installed. Start the application with `declip-desktop`.", "internal")
            result = download_model(
                self._name, importer=self._importer, base_url=self._base_url, progress=self.progressed.emit, cancel=self._cancel
            )
        except DownloadError as exc:
            self.failed.emit(exc.kind, str(exc))
        except Exception as exc:  # noqa: BLE001 — shown to the user; the window must survive it
            self.failed.emit("internal", f"Unexpected error while installing {self._name}: {exc!r}")
        else:
            # Installed: a cancel from here on stops only the preparation (the model stays).
            def progress(_done: int, _total: int, text: str) -> None:
                self.progressed.emit(Progress(stage="prepare", label=self._name, detail=text))

            self.succeeded.emit(result, prepare_and_describe(self._preparer, result.card.name, progress, self._cancel))
        finally:
            self.done.emit()


class DownloadDialog(QDialog):
    """Registry table, mirror field, progress bar, Download / Cancel / Close."""

    modelInstalled = Signal(str)  # noqa: N815 (Qt naming)

    def __init__(self, parent: QWidget | None = None, *, base_url: str | None = None,
                 importer: Callable[..., Any] | None = None, preparer: Callable[..., Any] | None = None):
        super().__init__(parent)
        self._importer = importer  # EngineServices.checkpoint_importer
        self._preparer = preparer  # EngineServices.model_preparer
        self.setWindowTitle("Download DeCLIP models")
        self.setObjectName("downloadDialog")
        self.resize(780, 500)  # all nine rows visible without scrolling
        self._thread: QThread | None = None
        self._worker: _DownloadWorker | None = None
        self._cancel = CancelToken()
        self._close_when_done = False
        self._names = list(CHECKPOINTS)

        intro = QLabel(
            "Checkpoints released by the DeCLIP authors (CC BY-NC-SA 4.0). "
            f"<b>{RECOMMENDED}</b> generalizes best to unseen generators. Fusion models "
            "(vit+rn50-*) also download OpenAI's CLIP backbones once (about 1.2 GB). "
            "Downloads resume after an interruption."
        )
        intro.setWordWrap(True)

        self.table = QTableWidget(len(self._names), len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self.start_download())

        self.mirror = QLineEdit(base_url if base_url is not None else os.environ.get(MIRROR_ENV, ""))
        self.mirror.setPlaceholderText("optional: base URL of a lab mirror (see docs/MODELS.md)")
        mirror_row = QHBoxLayout()
        mirror_row.addWidget(QLabel("Mirror:"))
        mirror_row.addWidget(self.mirror, 1)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.status = QLabel("Select a model and press Download.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.download_button = QPushButton("Download")
        self.download_button.setDefault(True)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.clicked.connect(self.cancel_download)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        buttons.addButton(self.download_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.ActionRole)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addLayout(mirror_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(buttons)

        self.refresh()
        row = self._names.index(RECOMMENDED)
        self.table.selectRow(row)
        self._update_buttons()

    # ------------------------------------------------------------------ state

    def refresh(self) -> None:
        """Re-read what is installed (cheap: JSON cards only)."""
        installed = installed_cards()
        for row, name in enumerate(self._names):
            entry = CHECKPOINTS[name]
            card = installed.get(name)
            status = "Installed" if card is not None else "Not installed"
            cells = (name, entry.backbone, entry.training_set, f"~{format_size(entry.approx_size)}", status)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 4 and card is not None:
                    item.setToolTip(f"SHA-256 of the downloaded file: {card.get('source_sha256', '?')}")
                self.table.setItem(row, col, item)

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self._names[rows[0].row()] if rows else None

    def is_running(self) -> bool:
        return self._thread is not None

    def _update_buttons(self) -> None:
        running = self.is_running()
        name = self.selected_name()
        self.download_button.setEnabled(not running and name is not None)
        self.cancel_button.setEnabled(running and not self._cancel.is_set())
        self.table.setEnabled(not running)
        self.mirror.setEnabled(not running)
        if name is not None and not running:
            installed = self.table.item(self._names.index(name), 4).text() == "Installed"
            self.download_button.setText("Installed" if installed else "Download")
            self.download_button.setEnabled(not installed)

    # ---------------------------------------------------------------- actions

    @Slot()
    def start_download(self) -> None:
        name = self.selected_name()
        if name is None or self.is_running():
            return
        self._cancel = CancelToken()
        self._thread = QThread(self)
        # An empty field means the original hosts, even when DECLIP_MODELS_URL is set.
        self._worker = _DownloadWorker(name, self.mirror.text().strip(), self._cancel, self._importer,
                                       self._preparer)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progressed.connect(self._on_progress)
        self._worker.succeeded.connect(self._on_success)
        self._worker.failed.connect(self._on_failure)
        self._worker.done.connect(self._thread.quit)
        self._thread.finished.connect(self._on_thread_finished)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status.setText(f"Starting download of {name}…")
        self._thread.start()
        self._update_buttons()

    @Slot()
    def cancel_download(self) -> None:
        if self.is_running():
            self._cancel.set()
            self.status.setText("Cancelling… (the partial download is kept and resumes next time)")
            self._update_buttons()

    # ---------------------------------------------------------- worker replies

    @Slot(object)
    def _on_progress(self, p: Progress) -> None:
        if p.stage == "import":
            self.progress.setRange(0, 0)  # busy indicator: conversion reports no bytes
            detail = f": {p.detail}" if p.detail else ""
            self.status.setText(f"Installing {p.label} (converting to safetensors){detail}…")
            return
        if p.stage == "prepare":
            self.progress.setRange(0, 0)
            self.status.setText(f"Preparing {p.label} for this computer: {p.detail}")
            return
        self.progress.setRange(0, 1000)
        fraction = p.fraction
        self.progress.setValue(int(1000 * fraction) if fraction is not None else 0)
        verb = "Checking" if p.stage == "verify" else "Downloading"
        parts = [f"{verb} {p.label}: {format_size(p.done)}" + (f" of {format_size(p.total)}" if p.total else "")]
        if p.stage == "download" and p.speed > 0:
            parts.append(f"{format_size(int(p.speed))}/s")
        if p.stage == "download" and p.eta is not None:
            minutes, seconds = divmod(int(p.eta + 0.5), 60)
            parts.append(f"{minutes}:{seconds:02d} left")
        self.status.setText(" — ".join(parts))

    @Slot(object, str)
    def _on_success(self, result, prepared: str = "") -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        name = result.entry.name
        if result.already_installed:
            self.status.setText(f"{name} is already installed. {prepared}".strip())
        else:
            self.status.setText(
                f"{name} installed. SHA-256 of the downloaded file: {result.source_sha256} "
                f"(recorded in its model card). {prepared} {default_model_sentence(name)}".replace("  ", " ")
            )
        self.refresh()
        self.modelInstalled.emit(name)

    @Slot(str, str)
    def _on_failure(self, kind: str, message: str) -> None:
        self.progress.setRange(0, 1000)
        self.status.setText(("Cancelled. " if kind == "cancelled" else "Download failed: ") + message)

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._worker is not None:
            self._worker.deleteLater()
        if self._thread is not None:
            self._thread.deleteLater()
        self._thread, self._worker = None, None
        self._update_buttons()
        if self._close_when_done:
            self.close()

    # ----------------------------------------------------------------- closing

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        if self.is_running():
            # Never block the window waiting for the worker: ask it to stop and close
            # once it has (between two chunks, or after the install step).
            self._close_when_done = True
            self.cancel_download()
            event.ignore()
            return
        super().closeEvent(event)


def open_download_dialog(parent: QWidget | None = None, *, importer: Callable[..., Any] | None = None,
                         preparer: Callable[..., Any] | None = None) -> DownloadDialog:
    """Show the (non-modal) download dialog; keep the returned object to connect
    `modelInstalled` to the window's model picker. A dialog already open for `parent`
    is brought to the front instead of opening a second one."""
    if parent is not None:
        for existing in parent.findChildren(DownloadDialog):
            if existing.isVisible():
                existing.raise_()
                existing.activateWindow()
                return existing
    dialog = DownloadDialog(parent, importer=importer, preparer=preparer)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    dialog.raise_()
    return dialog
