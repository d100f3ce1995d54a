"""The inspector's annotation tools (a mixin of `gui.inspector.Inspector`): Box and Lasso in the
view's tool bar (keys B and Shift+L while the image has focus, Esc leaves the tool), a label asked
after each drawing, the annotations drawn over the image and listed in the regions table,
Relabel… and Delete (Del) for the selected one, and each change a step of Edit → Undo / Redo.

State and writes are `gui.annotation_model.AnnotationModel`'s (Qt-free, through
`cases.annotations`, every change an audit entry). An item whose file is missing or changed is
locked: the tools are off and disabled.
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
)

from declip_desktop.cases.annotations import MAX_LABEL_CHARS
from declip_desktop.gui.annotation_model import AnnotationModel, statistics
from declip_desktop.gui.annotation_tool import AnnotationLayer, DrawingTool
from declip_desktop.gui.background import run_background
from declip_desktop.gui.inspector_model import Layer

log = logging.getLogger("declip_desktop.gui")


class LabelDialog(QDialog):
    """Label (required) and note of an annotation."""

    def __init__(self, parent, title: str, label: str = "", note: str = ""):  # noqa: ANN001
        super().__init__(parent)
        self.setWindowTitle(title)
        form = QFormLayout(self)
        self.label_edit = QLineEdit(label)
        self.label_edit.setMaxLength(MAX_LABEL_CHARS)
        self.label_edit.setPlaceholderText("What you see there, e.g. \"cloned sky\"")
        self.note_edit = QPlainTextEdit(note)
        self.note_edit.setPlaceholderText("Optional note")
        self.note_edit.setFixedHeight(80)
        form.addRow("Label", self.label_edit)
        form.addRow("Note", self.note_edit)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setEnabled(bool(label.strip()))
        self.label_edit.textChanged.connect(lambda t: self.ok_button.setEnabled(bool(t.strip())))
        form.addRow(buttons)


def ask_label(parent, title: str, label: str = "", note: str = "") -> tuple[str, str] | None:  # noqa: ANN001
    dialog = LabelDialog(parent, title, label, note)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.label_edit.text().strip(), dialog.note_edit.toPlainText().strip()


class AnnotationControls:
    """Box / lasso tools, the annotation layer, and the annotation rows of the regions table."""

    def _init_annotations(self) -> None:
        self.annotations = AnnotationModel(locked=lambda evidence_id: self.model.integrity.get(evidence_id))
        #: (title, label, note) -> (label, note) or None; tests replace it (no modal dialog offscreen).
        self.ask_label = lambda title, label="", note="": ask_label(self, title, label, note)
        self.selected_annotation: int | None = None
        self._stats_asked = -1  # the list (stats token) whose statistics were asked for
        self.quiet_selection = False  # a row selected by the program: no zoom to it
        self.drawing_tool = DrawingTool(self.view)
        self.drawing_tool.shapeDrawn.connect(self._shape_drawn)
        self.drawing_tool.clickedAt.connect(self._pick_annotation)
        self.annotation_layer = AnnotationLayer()
        self.view.scene().addItem(self.annotation_layer.root)
        self.add_overlay_layer(Layer("annotations", "Annotations", True, "Show the analyst's box and lasso annotations",
                                     needs_map=False), self.annotation_layer.root)
        self.box_action = self._tool_action("Box", "B", "Draw a box annotation (B while the image has focus)", "box")
        self.lasso_action = self._tool_action("Lasso", "Shift+L",
                                              "Draw a freehand lasso annotation (Shift+L while the image has focus)",
                                              "lasso")
        self.leave_tool_action = QAction("Leave the annotation tool", self)
        self.leave_tool_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.leave_tool_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.leave_tool_action.triggered.connect(lambda: self.set_annotation_tool(None))
        self.view.addAction(self.leave_tool_action)
        self.delete_annotation_action = QAction("Delete annotation", self)
        self.delete_annotation_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.delete_annotation_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.delete_annotation_action.triggered.connect(self.delete_selected_annotation)
        self.view.addAction(self.delete_annotation_action)
        self.regions_table.addAction(self.delete_annotation_action)
        self.annotation_actions = [self.box_action, self.lasso_action, self.delete_annotation_action]
        self._insert_tool_actions()
        # Under the regions table: what can be done with the selected annotation.
        row = QHBoxLayout()
        self.relabel_button = QPushButton("Relabel…")
        self.relabel_button.setToolTip("Change the selected annotation's label or note (audit-logged)")
        self.relabel_button.clicked.connect(self.relabel_selected_annotation)
        self.delete_annotation_button = QPushButton("Delete annotation")
        self.delete_annotation_button.setToolTip("Delete the selected annotation (Del; kept in the audit trail, "
                                                 "Edit → Undo brings it back)")
        self.delete_annotation_button.clicked.connect(self.delete_selected_annotation)
        row.addWidget(self.relabel_button)
        row.addWidget(self.delete_annotation_button)
        row.addStretch(1)
        self.regions_table.parentWidget().layout().addLayout(row)
        self.regions_table.doubleClicked.connect(lambda _index: self.relabel_selected_annotation())
        self.annotations.on("annotations", self._annotations_changed)
        self.annotations.on("tool", self._tool_changed)
        self.model.on("integrity", self._annotations_lock_changed)
        self._tool_changed()
        self._update_annotation_buttons()

    def _tool_action(self, text: str, key: str, tip: str, tool: str) -> QAction:
        action = QAction(text, self)
        action.setCheckable(True)
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # only while the image view has focus
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.triggered.connect(lambda checked, t=tool: self.set_annotation_tool(t if checked else None))
        self.view.addAction(action)
        return action

    def _insert_tool_actions(self) -> None:
        """Box and Lasso right after the zoom controls in the view's tool bar (what does not fit
        at 1280 px goes into its » menu from the right end, so the drawing tools stay in view)."""
        actions = self.view_toolbar.actions()
        after = next((i for i, a in enumerate(actions) if self.view_toolbar.widgetForAction(a) is self.zoom_label),
                     len(actions) - 1)
        before = actions[after + 1] if after + 1 < len(actions) else None
        for action in (self.box_action, self.lasso_action):
            if before is not None:
                self.view_toolbar.insertAction(before, action)
            else:
                self.view_toolbar.addAction(action)
        if before is not None:
            self.view_toolbar.insertSeparator(before)

    # ----- current item -----------------------------------------------------------------------
    def _load_annotations(self) -> None:
        """The current item's annotations (called when the inspector shows an item or nothing)."""
        self.selected_annotation = None
        try:
            self.annotations.load(self.case, self.evidence)
        except Exception as exc:  # noqa: BLE001 - e.g. the case went away: say so, show none
            self.errorOccurred.emit(f"The annotations could not be read: {exc}", repr(exc))
            self.annotations.items = []
            self._annotations_changed()
        self._annotations_lock_changed()

    def _annotations_lock_changed(self) -> None:
        locked = self.evidence is None or self.model.review_locked
        if locked:
            self.annotations.set_tool(None)
        for action in (self.box_action, self.lasso_action):
            action.setEnabled(not locked)
        self._update_annotation_buttons()

    def _annotation_stats_for_map(self) -> None:
        """The map's mean / max inside each annotation, off the UI thread (the map is full size)."""
        prob, ev, items = self.prob_map, self.evidence, list(self.annotations.items)
        if prob is None or ev is None or not items:
            return
        token = self.annotations.stats_token
        if token == self._stats_asked:
            return
        self._stats_asked = token
        run_background(lambda: statistics(items, prob, ev.width, ev.height),
                       lambda stats: self.annotations.set_stats(token, stats),
                       lambda e, d: self.errorOccurred.emit(f"Annotation statistics could not be computed: {e}", d))

    def _annotations_changed(self) -> None:
        items = self.annotations.items
        if self.selected_annotation is not None and self.annotations.find(self.selected_annotation) is None:
            self.selected_annotation = None
        self.annotation_layer.set_annotations(items, self.selected_annotation)
        size = (self.evidence.width, self.evidence.height) if self.evidence is not None else None
        selected = self.selected_annotation
        self.regions_model.set_annotations(items, self.annotations.stats, size)
        if items:
            self.regions_table.resizeColumnToContents(1)  # the Kind column holds the labels
        if selected is not None:
            self._select_annotation_row(selected)
        if not self.annotations.stats and items and self.prob_map is not None:
            self._annotation_stats_for_map()
        self._update_visibility()
        self._update_annotation_buttons()

    # ----- tools ------------------------------------------------------------------------------
    def set_annotation_tool(self, tool: str | None) -> str | None:
        if tool is not None and self.model.review_locked:
            name = self.evidence.original_name if self.evidence is not None else "this item"
            self.errorOccurred.emit(f"{name} cannot be annotated: its file is "
                                    f"{self.model.file_problem}. Restore it and run Case → Verify integrity.", "")
        return self.annotations.set_tool(tool)

    def _tool_changed(self) -> None:
        tool = self.annotations.tool
        self.box_action.setChecked(tool == "box")
        self.lasso_action.setChecked(tool == "lasso")
        self.drawing_tool.set_kind(tool)

    def _shape_drawn(self, kind: str, geometry: dict) -> None:
        title = "Label the box" if kind == "box" else "Label the lasso"
        answer = self.ask_label(title)
        if not answer:
            return  # cancelled: nothing stored
        label, note = answer
        try:
            added, step = self.annotations.add(kind, geometry, label, note, analyst=self.settings.analyst or None)
        except Exception as exc:  # noqa: BLE001 - a locked item, bad shape, read-only case: say what, keep the rest
            self.errorOccurred.emit(f"The annotation could not be stored: {exc}", repr(exc))
            return
        self.history.record(step)
        self.selected_annotation = added.id
        self._annotations_changed()
        self.reviewSaved.emit(added.evidence_id)

    # ----- selection, relabel, delete ---------------------------------------------------------
    def _selected_row(self) -> int | None:
        rows = self.regions_table.selectionModel().selectedRows()
        return self.regions_proxy.mapToSource(rows[0]).row() if rows else None

    def _annotation_row_selected(self, row: int | None) -> None:
        annotation = self.regions_model.annotation_at_row(row) if row is not None else None
        selected = annotation.id if annotation is not None else None
        if selected != self.selected_annotation:
            self.selected_annotation = selected
            self.annotation_layer.set_annotations(self.annotations.items, selected)
        self._update_annotation_buttons()

    def _select_annotation_row(self, annotation_id: int) -> None:
        row = self.regions_model.row_of_annotation(annotation_id)
        if row is not None:
            # Selected for the analyst (just drawn, picked on the image, list refreshed): outlined,
            # but the view does not jump to it as a row chosen in the table does.
            self.quiet_selection = True
            try:
                self.regions_table.selectRow(self.regions_proxy.mapFromSource(self.regions_model.index(row, 0)).row())
            finally:
                self.quiet_selection = False

    def _pick_annotation(self, x: float, y: float) -> None:
        picked = self.annotation_layer.annotation_at(x, y)
        if picked is not None:
            self._select_annotation_row(picked)

    def _update_annotation_buttons(self) -> None:
        usable = self.selected_annotation is not None and not self.model.review_locked
        self.relabel_button.setEnabled(usable)
        self.delete_annotation_button.setEnabled(usable)
        self.delete_annotation_action.setEnabled(usable)

    def delete_selected_annotation(self) -> bool:
        if self.selected_annotation is None:
            return False
        try:
            step = self.annotations.delete(self.selected_annotation, analyst=self.settings.analyst or None)
        except Exception as exc:  # noqa: BLE001
            self.errorOccurred.emit(f"The annotation could not be deleted: {exc}", repr(exc))
            return False
        self.history.record(step)
        self.reviewSaved.emit(step.evidence_id)
        return True

    def relabel_selected_annotation(self) -> bool:
        current = self.annotations.find(self.selected_annotation) if self.selected_annotation is not None else None
        if current is None or self.model.review_locked:
            return False
        answer = self.ask_label(f"Relabel annotation A{current.id}", current.label, current.note)
        if not answer:
            return False
        try:
            step = self.annotations.relabel(current.id, label=answer[0], note=answer[1],
                                            analyst=self.settings.analyst or None)
        except Exception as exc:  # noqa: BLE001
            self.errorOccurred.emit(f"The annotation could not be relabelled: {exc}", repr(exc))
            return False
        if step is not None:
            self.history.record(step)
            self.reviewSaved.emit(step.evidence_id)
        return step is not None

    def _annotation_ops(self):  # noqa: ANN202 - gui.annotation_model.AnnotationOps
        return self.annotations.ops(self.settings.analyst or None) if self.case is not None else None
