"""Joins the forensics tabs to the inspector (`attach(inspector)`) and badges to the evidence list.

Kept out of inspector.py / evidence_panel.py so those stay small: each gets a one-line hook.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject

from declip_desktop.gui.background import run_background
from declip_desktop.gui.case_access import own_case
from declip_desktop.gui.forensics_text import badge_for
from declip_desktop.gui.inspector_model import Layer
from declip_desktop.gui.metadata_tab import MetadataTab
from declip_desktop.gui.views_tab import ViewsTab


log = logging.getLogger(__name__)


class ForensicsPanel(QObject):
    """Metadata and Views tabs of one inspector; follows its current evidence."""

    def __init__(self, inspector):
        super().__init__(inspector)
        self.inspector = inspector
        self.metadata_tab = MetadataTab(self.reexamine)
        self.views_tab = ViewsTab(inspector.view)
        self.views_tab.failed.connect(inspector.errorOccurred)
        inspector.tabs.addTab(self.metadata_tab, "Metadata")
        inspector.tabs.addTab(self.views_tab, "Views")
        inspector.add_overlay_layer(Layer("forensic_view", "Forensic view", True,
                                          "Show the classical view chosen in the Views tab", needs_map=False),
                                    self.views_tab.layer)
        inspector.add_overlay_layer(Layer("c2pa_regions", "C2PA regions", True,
                                          "Outline the edit regions declared in the Content Credentials",
                                          needs_map=False), self.views_tab.region_group)
        self._token = 0
        self.case = None
        self.evidence = None

    def show_evidence(self, case, ev) -> None:
        """Called by the inspector on every change of item (ev None: nothing selected)."""
        self._token += 1
        self.case, self.evidence = case, ev
        self.metadata_tab.clear("Reading the stored examination…" if ev is not None else "")
        self.views_tab.clear_regions()
        self.views_tab.show_evidence(case, ev.id if ev is not None else None,
                                     (ev.width, ev.height) if ev is not None else None)
        if ev is None or case is None:
            return
        token = self._token

        def load():
            from declip_desktop.examination import load_examination

            with own_case(case) as private:
                return load_examination(private, ev.id)

        run_background(load, lambda exam: self._loaded(token, exam), lambda e, d: self._failed(token, e, d))

    def _loaded(self, token: int, exam) -> None:
        if token != self._token:
            return
        if exam is None:
            self.metadata_tab.clear("Not examined yet (imported before this version, or the examination failed: "
                                    "see the audit trail). Press “Examine again”.")
            return
        self.metadata_tab.show_record(exam.record, exam.path.name)
        self.views_tab.pins.set_alerts(exam.alerts)
        regions = (exam.c2pa or {}).get("regions") or []
        if regions and self.evidence is not None:
            self.views_tab.show_regions(regions, self.evidence.width, self.evidence.height)

    def _failed(self, token: int, exc: Exception, detail: str) -> None:
        if token != self._token:
            return
        self.metadata_tab.clear(f"The stored examination could not be used: {exc}")
        self.inspector.errorOccurred.emit(f"The examination of evidence {self.evidence.id} could not be used: {exc}",
                                          detail)

    def reexamine(self) -> None:
        if self.case is None or self.evidence is None:
            return
        case, ev, token = self.case, self.evidence, self._token
        self.metadata_tab.clear("Examining…")

        analyst = self.inspector.settings.analyst or None

        def work():
            from declip_desktop.examination import examine_evidence

            with own_case(case, read_only=False, analyst=analyst) as private:
                return examine_evidence(private, ev.id, analyst=analyst)

        run_background(work, lambda exam: self._loaded(token, exam), lambda e, d: self._failed(token, e, d))


def refresh_badges(panel, case) -> None:
    """Load alert summaries off the UI thread and show them as badges in the evidence list."""
    if case is None:
        panel.model.set_badges({})
        return

    def work():
        from declip_desktop.examination import alert_summaries

        with own_case(case) as private:
            return {eid: badge_for(s) for eid, s in alert_summaries(private).items()}

    def failed(exc: Exception, detail: str) -> None:
        log.warning("alert badges could not be read: %s\n%s", exc, detail)  # the list still works without them
        panel.model.set_badges({})

    run_background(work, lambda badges: panel.model.set_badges({k: v for k, v in badges.items() if v}), failed)
