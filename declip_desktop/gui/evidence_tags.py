"""Tags and bookmarks in the window: the evidence list shows them (★ before the name, tags on a
second line), filters by them (a tag box beside the name filter), and its context menu and
Edit → Bookmark (Ctrl+D) change them. Storage and the audit trail are `cases.tags`; each change of
an item is a step of the review history, so Edit → Undo takes it back (as a new audit entry).
"""

from __future__ import annotations

import logging

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QInputDialog

from declip_desktop.cases.tags import Marks, all_marks, change_marks, set_marks, tag_counts
from declip_desktop.gui.evidence_panel import BOOKMARKED
from declip_desktop.gui.review_history import ReviewStep

log = logging.getLogger("declip_desktop.gui")
TAG_FIELDS = ("tags", "bookmarked")


class TagControls:
    """Wires `cases.tags` into a MainWindow's evidence panel, menus and review history."""

    def __init__(self, window) -> None:  # noqa: ANN001 - MainWindow
        self.window = window
        self.panel = window.evidence_panel
        self.tag_filter = QComboBox()
        self.tag_filter.setToolTip("Show only evidence with this tag, or the bookmarked items")
        self.tag_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.tag_filter.currentIndexChanged.connect(self._filter_changed)
        self.panel.name_bar.addWidget(self.tag_filter)
        self._fill_filter([])
        self.panel.contextMenuAboutToShow.connect(self._add_menu_actions)
        self.bookmark_action = QAction("Bookmark / unbookmark the selected evidence", window)
        self.bookmark_action.setShortcut(QKeySequence("Ctrl+D"))
        self.bookmark_action.triggered.connect(lambda: self.toggle_bookmark(self.panel.selected_evidence_ids()))
        self.tag_action = QAction("Add a tag to the selected evidence…", window)
        self.tag_action.setShortcut(QKeySequence("Ctrl+T"))
        self.tag_action.triggered.connect(lambda: self.ask_tag(self.panel.selected_evidence_ids()))
        for action in (self.bookmark_action, self.tag_action):
            window.add_action("Edit", action)
        window.caseOpened.connect(lambda _case: self.refresh())
        window.caseClosed.connect(self.refresh)
        window.inspector.reviewSaved.connect(lambda _eid: self.refresh())  # undo / redo of a tag step

    # ----- reading ------------------------------------------------------------------------------
    def refresh(self) -> None:
        case = self.window.case
        try:
            marks = all_marks(case) if case is not None else {}
            counts = tag_counts(case) if case is not None else []
        except Exception:  # the list still works without tags; say so in the log
            log.exception("tags could not be read")
            marks, counts = {}, []
        self.panel.model.set_marks(marks)
        self._fill_filter(counts, bookmarked=sum(1 for m in marks.values() if m.bookmarked))

    def _fill_filter(self, counts: list[tuple[str, int]], bookmarked: int = 0) -> None:
        current = self.tag_filter.currentData() or ""
        self.tag_filter.blockSignals(True)
        self.tag_filter.clear()
        self.tag_filter.addItem("All tags", "")
        self.tag_filter.addItem(f"★ Bookmarked ({bookmarked})", BOOKMARKED)
        for tag, n in counts:
            self.tag_filter.addItem(f"{tag} ({n})", tag)
        keys = [(self.tag_filter.itemData(i) or "").casefold() for i in range(self.tag_filter.count())]
        index = keys.index(current.casefold()) if current.casefold() in keys else 0
        self.tag_filter.setCurrentIndex(index)
        self.tag_filter.blockSignals(False)
        self.panel.proxy.set_tag(self.tag_filter.currentData() or "")

    def _filter_changed(self) -> None:
        self.panel.proxy.set_tag(self.tag_filter.currentData() or "")

    # ----- changing -----------------------------------------------------------------------------
    def toggle_bookmark(self, ids: list[int]) -> None:
        """Bookmark every selected item, or, when all of them are bookmarked already, none of them."""
        marks = self.panel.model.marks
        star = not all(marks.get(i, Marks()).bookmarked for i in ids)
        self._change(ids, "bookmark" if star else "remove the bookmark of", bookmarked=star)

    def ask_tag(self, ids: list[int]) -> None:
        if not ids or self.window.case is None:
            return
        known = [tag for tag, _ in tag_counts(self.window.case)]
        tag, ok = QInputDialog.getItem(self.window, "Add a tag",
                                       f"Tag for {len(ids)} item(s) (a word or short phrase; it never changes "
                                       "a result):", known, 0, True)
        if ok and tag.strip():
            self.add_tag(ids, tag)

    def add_tag(self, ids: list[int], tag: str) -> None:
        self._change(ids, f"tag {tag!r} on", add=[tag])

    def remove_tag(self, ids: list[int], tag: str) -> None:
        carrying = [i for i in ids if self.panel.model.marks.get(i, Marks()).has_tag(tag)]
        self._change(carrying, f"remove tag {tag!r} from", remove=[tag])

    def _change(self, ids: list[int], what: str, **change) -> None:
        case = self.window.case
        if case is None or not ids:
            return
        analyst = self.window.settings.analyst or None
        for evidence_id in ids:
            row = self.panel.model.row_of(evidence_id)
            name = self.panel.model.rows[row].name if row is not None else f"evidence {evidence_id}"
            try:
                before = all_marks(case).get(evidence_id, Marks())
                after = change_marks(case, evidence_id, analyst=analyst, **change)
            except Exception as exc:  # a refused tag, a read-only case, a full disk: say which item
                self.window.notifications.error(f"Could not {what} {name}: {exc}", repr(exc))
                break
            self.window.inspector.history.record(ReviewStep(
                evidence_id, name, {"tags": before.tags, "bookmarked": before.bookmarked},
                {"tags": after.tags, "bookmarked": after.bookmarked}))
        self.refresh()

    def _add_menu_actions(self, menu, ids: list[int]) -> None:  # noqa: ANN001 - QMenu
        menu.addSeparator()
        marks = self.panel.model.marks
        starred = all(marks.get(i, Marks()).bookmarked for i in ids)
        bookmark = menu.addAction("Remove bookmark" if starred else "★ Bookmark")
        bookmark.triggered.connect(lambda: self.toggle_bookmark(ids))
        menu.addAction("Add tag…").triggered.connect(lambda: self.ask_tag(ids))
        carried = sorted({t for i in ids for t in marks.get(i, Marks()).tags}, key=str.casefold)
        if carried:
            remove = menu.addMenu("Remove tag")
            for tag in carried:
                remove.addAction(tag).triggered.connect(lambda _c=False, t=tag: self.remove_tag(ids, t))


def write_tag_step(case, evidence_id: int, values: dict, analyst: str | None) -> None:  # noqa: ANN001
    """Undo / redo of a tag step: make the item's tags and bookmark what the step says."""
    current = all_marks(case).get(int(evidence_id), Marks())
    wanted = Marks(tuple(values.get("tags", current.tags)), bool(values.get("bookmarked", current.bookmarked)))
    set_marks(case, evidence_id, wanted, analyst=analyst)


class MarkedRecord:
    """An Evidence record plus its tags and bookmark, as the review history compares them."""

    def __init__(self, evidence, marks: Marks) -> None:  # noqa: ANN001 - cases.Evidence
        self._evidence = evidence
        self.tags = marks.tags
        self.bookmarked = marks.bookmarked

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._evidence, name)


def install_tag_controls(window) -> TagControls:  # noqa: ANN001 - MainWindow
    return TagControls(window)


__all__ = ["TAG_FIELDS", "MarkedRecord", "TagControls", "install_tag_controls", "write_tag_step"]
