"""PDF reports and image exports (QtGui painting only, no widgets).

Public surface: `build_report(case, out_path=None, evidence_ids=None, threshold=None)` and
`export_images(case, evidence_ids=None, out_dir=None, threshold=None)`; both raise
`ReportError` with a message meant for the user. Importing this package does not import Qt;
the functions do, and create a headless-capable QGuiApplication when none exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from declip_desktop.reports.build import build_report
    from declip_desktop.reports.exports import ExportResult, export_images
    from declip_desktop.reports.errors import ReportCancelled, ReportError

__all__ = ["ExportResult", "ReportCancelled", "ReportError", "build_report", "export_images"]

_LAZY = {
    "build_report": "declip_desktop.reports.build",
    "export_images": "declip_desktop.reports.exports",
    "ExportResult": "declip_desktop.reports.exports",
    "ReportError": "declip_desktop.reports.errors",
    "ReportCancelled": "declip_desktop.reports.errors",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
