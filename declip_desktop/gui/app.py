"""Application entry point (placeholder window until the GUI issue lands)."""

from __future__ import annotations

import os
import sys


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    if not _has_display():
        print(
            "DeCLIP Desktop needs a display. Start it from a desktop session, or on a "
            "headless machine run: xvfb-run -a make app",
            file=sys.stderr,
        )
        return 2
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication(sys.argv if argv is None else argv)
    label = QLabel("DeCLIP Desktop — the analysis window is being built. Use the `declip` CLI meanwhile.")
    label.resize(640, 120)
    label.show()
    return app.exec()
