"""Light and dark mode: follow the desktop's colour scheme, or a fixed one the analyst chose.

Qt reports the desktop's scheme in `QStyleHints.colorScheme()` (and `colorSchemeChanged`).
Not every platform lets an application ask for the other scheme (Xvfb and the offscreen
platform ignore `setColorScheme`), so the window's palette is set here: Fusion's own light
palette, or a dark one with the same roles. "system" follows the desktop, including changes
while the app runs. The heat map's colours never change with the scheme: they are
measurements, not decoration.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

from declip_desktop.gui.settings import APPEARANCES

_current = {"mode": "system", "connected": False}


def dark_palette() -> QPalette:
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#2b2b2e", QPalette.ColorRole.WindowText: "#e6e6e6",
        QPalette.ColorRole.Base: "#1f1f22", QPalette.ColorRole.AlternateBase: "#29292d",
        QPalette.ColorRole.ToolTipBase: "#3a3a3f", QPalette.ColorRole.ToolTipText: "#f0f0f0",
        QPalette.ColorRole.PlaceholderText: "#8a8a90", QPalette.ColorRole.Text: "#e6e6e6",
        QPalette.ColorRole.Button: "#35353a", QPalette.ColorRole.ButtonText: "#e6e6e6",
        QPalette.ColorRole.BrightText: "#ff6b6b", QPalette.ColorRole.Link: "#7ab7ff",
        QPalette.ColorRole.Highlight: "#3d6fb6", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Light: "#4a4a50", QPalette.ColorRole.Midlight: "#3f3f45",
        QPalette.ColorRole.Mid: "#2f2f33", QPalette.ColorRole.Dark: "#18181a", QPalette.ColorRole.Shadow: "#000000",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a80"))
    return p


def _wants_dark(mode: str, app: QApplication) -> bool:
    if mode == "system":
        return app.styleHints().colorScheme() == Qt.ColorScheme.Dark
    return mode == "dark"


def apply_appearance(mode: str) -> None:
    if mode not in APPEARANCES:
        raise ValueError(f"unknown appearance {mode!r}; choose one of {', '.join(APPEARANCES)}")
    app = QApplication.instance()
    if app is None:
        return
    _current["mode"] = mode
    if not _current["connected"]:  # the desktop switched light/dark while the app runs
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_appearance(_current["mode"]))
        _current["connected"] = True
    style = QStyleFactory.create("Fusion")
    app.setPalette(dark_palette() if _wants_dark(mode, app) else style.standardPalette())


def is_dark() -> bool:
    app = QApplication.instance()
    return app is not None and app.palette().window().color().lightness() < 128


__all__ = ["apply_appearance", "dark_palette", "is_dark"]
