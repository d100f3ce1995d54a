"""Tags and bookmarks in the window (issue 20 item 4): shown in the list, filtered by, changed from the
context menu's actions, undone with Edit → Undo; every change an audit entry verify replays."""

from __future__ import annotations

import pytest

import pytestqt  # noqa: F401  (dev dependency: missing must fail, never skip)

from declip_desktop.cases import Case
from declip_desktop.cases.tags import TAGS_ACTION, Marks, change_marks, get_marks
from declip_desktop.gui.background import wait_for_background
from declip_desktop.gui.evidence_panel import BOOKMARKED, ROW_ROLE, NameDelegate
from declip_desktop.gui.main_window import MainWindow
from declip_desktop.gui.settings import Settings
from tests.cases_util import noise_image

NAMES = ("harbour_before.png", "harbour_after.png", "street.png")


@pytest.fixture
def case_dir(tmp_path):
    folder = tmp_path / "case"
    with Case.create(folder, "T-20", "Tags", "Ana") as case:
        for i, name in enumerate(NAMES):
            noise_image(tmp_path / "src" / name, (40, 30), seed=i)
        case.import_paths([tmp_path / "src"])
        street = next(e for e in case.evidence_list() if e.original_name == "street.png")
        change_marks(case, street.id, add=["Vehicle"])  # tagged before the window opened (e.g. from the CLI)
    return folder


@pytest.fixture
def window(qtbot, tmp_path, case_dir):
    win = MainWindow(Settings(tmp_path / "s.ini"))
    win.settings.analyst = "Bo"
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    assert win.open_case(case_dir, restore_evidence=False)
    yield win
    win.close()
    wait_for_background()


def _ids(win):
    return {row.name: row.evidence_id for row in win.evidence_panel.model.rows}


def _visible(win):
    proxy = win.evidence_panel.proxy
    return sorted(proxy.data(proxy.index(r, 0), ROW_ROLE).name for r in range(proxy.rowCount()))


def test_tags_show_filter_and_undo(window, case_dir, qtbot):
    win, tags = window, window.tags
    ids = _ids(win)
    before, after, street = ids["harbour_before.png"], ids["harbour_after.png"], ids["street.png"]
    # the tag written before the window opened is shown on a second line and offered in the filter
    model = win.evidence_panel.model
    assert model.data(model.index(model.row_of(street), 0)) == "street.png\nVehicle"
    assert [tags.tag_filter.itemText(i) for i in range(tags.tag_filter.count())] == [
        "All tags", "★ Bookmarked (0)", "Vehicle (1)"]
    tags.add_tag([before, after], "harbour")
    tags.toggle_bookmark([after])
    assert [tags.tag_filter.itemText(i) for i in range(tags.tag_filter.count())][1:] == [
        "★ Bookmarked (1)", "harbour (2)", "Vehicle (1)"]
    # filter by tag, then by bookmark, beside the name filter
    tags.tag_filter.setCurrentIndex(tags.tag_filter.findData("harbour"))
    assert _visible(win) == ["harbour_after.png", "harbour_before.png"]
    win.evidence_panel.name_filter.setText("after")
    assert _visible(win) == ["harbour_after.png"]
    win.evidence_panel.name_filter.setText("")
    tags.tag_filter.setCurrentIndex(tags.tag_filter.findData(BOOKMARKED))
    assert _visible(win) == ["harbour_after.png"]
    # the bookmark star is drawn before the (elided) name
    from PySide6.QtWidgets import QStyleOptionViewItem

    view = win.evidence_panel.view
    option = QStyleOptionViewItem()
    option.initFrom(view)
    option.rect = view.visualRect(view.model().index(0, 0))
    NameDelegate(view).initStyleOption(option, view.model().index(0, 0))
    assert option.text.startswith("★ harbour_after.png") and option.text.endswith("\u2028harbour")
    # Edit → Undo takes back the bookmark, then the tag on one item (each a new audit entry)
    assert win.undo_action.text() == "Undo bookmark of harbour_after.png"
    win.undo_action.trigger()
    assert win.tags.panel.model.marks.get(after, Marks()).bookmarked is False
    assert _visible(win) == []  # the bookmark filter now matches nothing
    assert win.undo_action.text() == "Undo tags of harbour_after.png"
    win.undo_action.trigger()
    assert get_marks(win.case, after) == Marks()
    win.redo_action.trigger()
    assert get_marks(win.case, after) == Marks(("harbour",), False)
    entries = [e for e in win.case.audit_entries() if e.action == TAGS_ACTION]
    assert len(entries) == 1 + 2 + 1 + 2 + 1 and {e.actor for e in entries[1:]} == {"Bo"}
    assert win.case.verify().ok


def test_a_refused_tag_says_why_and_changes_nothing(window):
    win = window
    street = _ids(win)["street.png"]
    posted = []
    win.notifications.posted.connect(lambda notice: posted.append(notice))
    tag_entries = len([e for e in win.case.audit_entries() if e.action == TAGS_ACTION])
    win.tags.add_tag([street], "bad\x07tag")
    assert any("street.png" in n.message and "control characters" in n.message for n in posted), posted
    assert get_marks(win.case, street) == Marks(("Vehicle",), False)
    assert len([e for e in win.case.audit_entries() if e.action == TAGS_ACTION]) == tag_entries
    assert not win.undo_action.isEnabled()
