"""Models → Choose model…: installed models with their cards, and import of an authors' checkpoint.

Listing reads only the JSON cards (no torch). Importing a checkpoint runs the importer the
application hands in (`EngineServices.checkpoint_importer`, the store's `import_checkpoint`) on
the thread pool (torch runs there, never on the UI thread) and shows its progress messages.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from declip_desktop.common.facts import card_is_demo, demo_label
from declip_desktop.gui.background import run_background
from declip_desktop.gui.progress_relay import ProgressRelay



def list_models() -> list:
    from declip_desktop.modelstore.store import ModelStore

    return ModelStore().list()


def default_model_name() -> str | None:
    from declip_desktop.common.model_card import ModelError
    from declip_desktop.modelstore.store import ModelStore

    try:
        return ModelStore().default().name
    except (ModelError, LookupError, OSError):
        return None


def set_default_model(name: str) -> None:
    """Record `name` as the store's default model (raises ModelError / OSError)."""
    from declip_desktop.modelstore.store import ModelStore

    ModelStore().set_default(name)


def default_model_sentence(installed: str) -> str:
    """After an install: which model is the default, so that no change goes unnoticed."""
    current = default_model_name()
    if current == installed:
        return f"{installed} is the default model."
    if current is None:
        return "No default model is set: choose one in Models → Choose model… → Set as default."
    return f"The default model is still {current} (Models → Choose model… → Set as default to change it)."


def prepare_and_describe(preparer: Callable[..., Any] | None, name: str, progress: Callable[[int, int, str], None],
                    should_stop: Callable[[], bool] | None = None) -> str:
    """Run the application's model preparer after an install (on the worker thread) and say in
    one sentence what it did; the install stands whatever happens here (a full disk only means
    the first analysis converts the model)."""
    if preparer is None:
        return ""
    try:
        report = preparer(name, progress=progress, should_stop=should_stop)
    except Exception as exc:  # noqa: BLE001 - the model is installed; the sentence tells what failed
        return f"It could not be prepared for this computer ({exc}); its first analysis will convert it."
    if report.ok and all(o.state == "not needed" for o in report.outcomes):
        return "Nothing to prepare on this computer."
    if report.ok:
        return "Prepared for this computer (no conversion at its first analysis)."
    if report.cancelled:
        return "Preparation cancelled: its first analysis will convert it."
    return "Not fully prepared: " + report.message.replace("\n", " ")


_MODE_NAMES = {"exact": "exact mode", "fast": "fast mode"}


def preparation_sentence(states: dict) -> tuple[str, bool]:
    """("On this computer: exact mode prepared · fast mode not prepared (…).", whether a mode could
    be prepared now) from `preparation_states`, so the analyst sees before the first analysis
    whether it starts at once or first spends minutes converting the model. Modes in the same
    state share one phrase."""
    phrases: dict[str, list[str]] = {}
    preparable = False
    for mode, state in states.items():
        prepared, detail = state.get("prepared"), str(state.get("detail") or "")
        if prepared is True:
            phrase = " prepared"
        elif prepared is False:
            preparable = True
            why = detail if detail.startswith("not usable") else "the first analysis converts it: minutes for ViT-L/14"
            phrase = f" not prepared ({why})"
        elif state.get("runs_on") is None:
            phrase = f" unavailable ({detail})" if detail else " unavailable"
        else:
            phrase = ": nothing to prepare"
        phrases.setdefault(phrase, []).append(_MODE_NAMES.get(mode, mode))
    parts = [" and ".join(names) + phrase for phrase, names in phrases.items()]
    return ("On this computer: " + " · ".join(parts) + "." if parts else ""), preparable


def find_card(name: str | None):
    if not name:
        return None
    return next((c for c in list_models() if c.name == name), None)


def describe_model(card) -> str:
    """One line for status bars: name plus the demo warning where it applies."""
    if card is None:
        return "no model installed"
    label = demo_label(card)
    return f"{card.name} — {label}" if label else card.name


def card_html(card) -> str:
    rows = [
        ("Name", card.name),
        ("Kind", card.kind),
        ("Backbone", card.backbone or "—"),
        ("Layer", card.layer or "—"),
        ("Decoder", card.decoder or "—"),
        ("Training data", card.training_set or "—"),
        ("SHA-256", card.sha256),
        ("Imported from", f"{card.source_file or '—'}"),
        ("Source SHA-256", card.source_sha256 or "—"),
        ("Created", card.created or "—"),
        ("Software", card.software_version or "—"),
    ]
    body = "".join(
        f"<tr><td style='color:#6b7280;padding-right:8px'>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    warn = ""
    if card_is_demo(card):
        warn = f"<p style='color:#b91c1c;font-weight:600'>⚠ {html.escape(demo_label(card))}</p>"
    notes = f"<p>{html.escape(card.notes)}</p>" if card.notes else ""
    return f"<h3>{html.escape(card.name)}</h3>{warn}<table>{body}</table>{notes}"


class ModelsDialog(QDialog):
    """Pick the case's model; set the default model; import an authors' checkpoint."""

    modelChosen = Signal(str)
    defaultChanged = Signal(str)
    modelImported = Signal(str)
    errorOccurred = Signal(str, str)

    def __init__(self, current: str | None, parent=None, *, importer: Callable[..., Any] | None = None,
                 preparer: Callable[..., Any] | None = None,
                 preparation_reader: Callable[[str], dict] | None = None):
        super().__init__(parent)
        self._importer = importer  # EngineServices.checkpoint_importer
        self._preparer = preparer  # EngineServices.model_preparer
        self._reader = preparation_reader  # EngineServices.preparation_reader
        self._preparing: str | None = None  # the model "Prepare now" is converting
        self.setWindowTitle("Models")
        self.resize(760, 460)
        self._current = current
        layout = QVBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._show_card)
        split.addWidget(self.list)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        self.card_view = QTextBrowser()
        rl.addWidget(self.card_view, 1)
        prep = QHBoxLayout()
        self.preparation_status = QLabel("")
        self.preparation_status.setWordWrap(True)
        self.preparation_status.setVisible(preparation_reader is not None)
        prep.addWidget(self.preparation_status, 1)
        self.prepare_button = QPushButton("Prepare now")
        self.prepare_button.setToolTip("Convert the model for this computer's back end now, so that no "
                                       "analysis waits for it (one to four minutes for ViT-L/14).")
        self.prepare_button.setVisible(False)
        self.prepare_button.clicked.connect(self._prepare_selected)
        prep.addWidget(self.prepare_button)
        rl.addLayout(prep)
        split.addWidget(right)
        split.setSizes([260, 480])
        layout.addWidget(split, 1)
        # import row
        imp = QWidget()
        il = QHBoxLayout(imp)
        il.setContentsMargins(0, 0, 0, 0)
        self.import_button = QPushButton("Import authors' checkpoint…")
        self.import_button.setToolTip(
            "A DeCLIP .pth file released by the authors. Fusion (ViT+RN50) checkpoints also need "
            "OpenAI's ViT-L-14.pt and RN50.pt: you will be asked for them."
        )
        self.import_button.clicked.connect(self._choose_checkpoint)
        il.addWidget(self.import_button)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name (optional)")
        self.name_edit.setMaximumWidth(180)
        il.addWidget(self.name_edit)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        self.progress.setMaximumWidth(120)
        il.addWidget(self.progress)
        self.import_status = QLabel("")
        self.import_status.setWordWrap(True)
        il.addWidget(self.import_status, 1)
        layout.addWidget(imp)
        buttons = QHBoxLayout()
        self.default_button = QPushButton("Set as default")
        self.default_button.setToolTip(
            "The model used when none is chosen (new cases, `declip analyze`). Importing or downloading "
            "a model never changes it."
        )
        self.default_button.clicked.connect(self._set_default)
        buttons.addWidget(self.default_button)
        self.default_status = QLabel("")
        buttons.addWidget(self.default_status)
        buttons.addStretch(1)
        self.use_button = QPushButton("Use for this case")
        self.use_button.clicked.connect(self._use)
        buttons.addWidget(self.use_button)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.refresh()

    def refresh(self, select: str | None = None) -> None:
        select = select or self._current
        self.list.clear()
        try:
            cards = list_models()
        except Exception as exc:  # unreadable model folder
            self.card_view.setHtml(f"<p style='color:#b91c1c'>Models could not be listed: {html.escape(str(exc))}</p>")
            return
        default = default_model_name()
        for card in cards:
            text = describe_model(card)
            if card.name == default:
                text += "   (default)"
            if card.name == self._current:
                text += "   (in use)"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, card)
            if card_is_demo(card):
                item.setForeground(Qt.GlobalColor.darkRed)
            self.list.addItem(item)
            if card.name == select:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        if not cards:
            self.card_view.setHtml("<p>No model is installed. Import an authors' checkpoint, or use Models → Download….</p>")
        self.use_button.setEnabled(bool(cards))
        self.default_button.setEnabled(bool(cards))

    def selected_name(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole).name if item else None

    def _show_card(self, item, _previous=None) -> None:
        if item is not None:
            self.card_view.setHtml(card_html(item.data(Qt.ItemDataRole.UserRole)))
            self._read_preparation(item.data(Qt.ItemDataRole.UserRole).name)

    # ------------------------------------------------------------ preparation state

    def _read_preparation(self, name: str) -> None:
        """Ask, off the UI thread, whether `name` is prepared; a reply for a model no longer
        selected is dropped."""
        self.prepare_button.setVisible(False)
        if self._reader is None:
            return
        if self._preparing == name:
            self.preparation_status.setText("Preparing for this computer…")
            return
        self.preparation_status.setText("On this computer: checking…")
        reader = self._reader
        run_background(lambda: reader(name), lambda states: self._show_preparation(name, states),
                       lambda exc, _detail: self._show_preparation_error(name, exc))

    def _show_preparation(self, name: str, states: dict) -> None:
        if name != self.selected_name() or self._preparing == name:
            return
        text, preparable = preparation_sentence(states)
        self.preparation_status.setText(text)
        self.prepare_button.setVisible(preparable and self._preparer is not None)
        self.prepare_button.setEnabled(self._preparing is None)

    def _show_preparation_error(self, name: str, exc: Exception) -> None:
        if name == self.selected_name():
            self.preparation_status.setText(f"Whether it is prepared could not be read: {exc}")

    def _prepare_selected(self) -> None:
        name, preparer = self.selected_name(), self._preparer
        if not name or preparer is None or self._preparing is not None:
            return
        self._preparing = name
        self.prepare_button.setEnabled(False)
        self.preparation_status.setText("Preparing for this computer…")
        relay = ProgressRelay(self)
        relay.counts.connect(lambda _d, _t, text: self._preparation_progress(name, text))
        run_background(lambda: prepare_and_describe(preparer, name, relay.counts.emit),
                       lambda sentence: self._prepared(name, sentence),
                       lambda exc, _detail: self._prepared(name, f"It could not be prepared: {exc}"))

    def _preparation_progress(self, name: str, text: str) -> None:
        if name == self.selected_name() and text:
            self.preparation_status.setText(f"Preparing: {text}")

    def _prepared(self, name: str, sentence: str) -> None:
        self._preparing = None
        self.import_status.setText(f"{name}: {sentence}")
        if name == self.selected_name():
            self._read_preparation(name)
        else:
            self.prepare_button.setEnabled(True)

    def _use(self) -> None:
        name = self.selected_name()
        if name:
            self._current = name
            self.modelChosen.emit(name)
            self.refresh(name)

    def _set_default(self) -> None:
        from declip_desktop.common.model_card import ModelError

        name = self.selected_name()
        if not name:
            return
        try:
            set_default_model(name)
        except (ModelError, OSError) as exc:
            self.default_status.setText("Not changed.")
            self.errorOccurred.emit(f"The default model could not be set: {exc}", "")
            return
        self.default_status.setText(f"Default: {name}")
        self.defaultChanged.emit(name)
        self.refresh(name)

    def _choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Authors' DeCLIP checkpoint", "", "PyTorch checkpoints (*.pth *.pt);;All files (*)"
        )
        if not path:
            return
        clip = []
        if "RN50" in path or "+" in path:
            clip, _ = QFileDialog.getOpenFileNames(
                self, "OpenAI CLIP weights for the fusion model (ViT-L-14.pt and RN50.pt)", "", "CLIP weights (*.pt)"
            )
        self.start_import(path, clip, self.name_edit.text().strip() or None)

    def start_import(self, path: str, clip_weights: list[str], name: str | None) -> None:
        self.import_button.setEnabled(False)
        self.progress.setVisible(True)
        self.import_status.setText("Importing… (verifying keys and writing safetensors)")
        relay = ProgressRelay(self)
        relay.counts.connect(lambda _done, _total, text: self.import_status.setText(text))

        importer, preparer = self._importer, self._preparer

        def work():
            if importer is None:
                raise RuntimeError("no checkpoint importer is connected to this window (start it with `declip-desktop`)")
            card = importer(path, name=name, clip_weights=clip_weights, progress=relay.counts.emit)
            return card, prepare_and_describe(preparer, card.name, relay.counts.emit)

        run_background(work, self._imported, self._import_failed)

    def _imported(self, result) -> None:
        card, prepared = result
        self.import_button.setEnabled(True)
        self.progress.setVisible(False)
        self.import_status.setText(f"Imported {card.name}. {prepared} {default_model_sentence(card.name)}".replace("  ", " "))
        self.modelImported.emit(card.name)
        self.refresh(card.name)

    def _import_failed(self, exc: Exception, detail: str) -> None:
        self.import_button.setEnabled(True)
        self.progress.setVisible(False)
        self.import_status.setText(f"Import failed: {exc}")
        self.errorOccurred.emit(f"The checkpoint could not be imported: {exc}", detail)
