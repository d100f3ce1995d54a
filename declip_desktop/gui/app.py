"""The window's start-up (arguments, logging, QApplication); `declip_desktop.desktop.main` calls it
with the engine connected."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from logging.handlers import RotatingFileHandler

log = logging.getLogger("declip_desktop.gui")


def _has_display() -> bool:
    if sys.platform != "linux":
        return True
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="declip-desktop", description="DeCLIP Desktop: forensic localization of generative edits.")
    parser.add_argument("case", nargs="?", help="case folder to open (default: the last one)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where the model runs (remembered)")
    parser.add_argument("--fast", action="store_true", default=None, help="fast inference mode (remembered)")
    parser.add_argument("--no-restore", action="store_true", help="start on the start screen")
    known, _qt_args = parser.parse_known_args(argv)
    return known


def setup_logging() -> None:
    from declip_desktop.common.paths import logs_dir

    try:
        logs_dir().mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(logs_dir() / "desktop.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    except OSError as exc:  # read-only home: log to stderr only
        print(f"warning: cannot write the log file: {exc}", file=sys.stderr)
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("declip_desktop")
    if not any(isinstance(h, RotatingFileHandler) for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def install_excepthook(window) -> None:
    """An unexpected error in a slot becomes a notification, never a crash or a frozen window."""

    def hook(exc_type, exc, tb):
        detail = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unhandled error:\n%s", detail)
        try:
            window.notifications.error(f"Unexpected error: {exc}", detail)
        except Exception:  # the window itself is gone
            sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = hook


def create_application(argv: list[str]):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        # Fractional scale factors (150 %) as the screen asks, not rounded to 100 %/200 %.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv)
    app.setApplicationName("DeCLIP Desktop")
    app.setOrganizationName("DeCLIP Desktop")
    app.setStyle("Fusion")  # the same look on every platform and under Xvfb
    return app


def main(argv: list[str] | None = None, services=None) -> int:
    """Run the window; `services` (gui.services.EngineServices) connects the engine —
    `declip_desktop.desktop.main` passes the real one."""
    argv = list(sys.argv if argv is None else argv)
    args = _parse(argv[1:])
    if not _has_display():
        print(
            "DeCLIP Desktop needs a display. Start it from a desktop session, or on a "
            "headless machine run: xvfb-run -a make app",
            file=sys.stderr,
        )
        return 2
    setup_logging()
    app = create_application(argv)
    from declip_desktop.gui.main_window import MainWindow

    window = MainWindow(device=args.device, fast=args.fast, services=services)
    install_excepthook(window)
    window.show()
    window.preload_engine_later()
    if args.case:
        if not window.open_case(args.case):
            window.show_start()
    elif not args.no_restore:
        window.restore_last_case()
    else:
        window.show_start()
    return app.exec()


