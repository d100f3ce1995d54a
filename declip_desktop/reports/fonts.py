"""Fonts for reports: a main family plus a CJK fallback that ships with the app.

Reports must show case titles, analyst names and notes in any script as text, never as
empty boxes. DejaVu (present on most Linux machines) covers Latin, Greek and Cyrillic; the
bundled Droid Sans Fallback (Apache-2.0, `resources/fonts/`) adds Chinese, Japanese and
Korean. Qt picks glyphs family by family in the order given to `QFont.setFamilies`, so Latin
text stays in the main font and only the characters it lacks come from the fallback.
"""

from __future__ import annotations

import sys
import threading

from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication

from declip_desktop.common.paths import RESOURCES_DIR

FONTS_DIR = RESOURCES_DIR / "fonts"
CJK_FONT_FILE = FONTS_DIR / "DroidSansFallbackFull.ttf"

#: Preferred main families, first available wins; the platform default is the last resort.
MAIN_FAMILIES = ("DejaVu Sans", "Noto Sans", "Segoe UI", "Helvetica Neue", "Arial")
MONO_FAMILIES = ("DejaVu Sans Mono", "Noto Sans Mono", "Consolas", "Menlo", "Courier New")

_lock = threading.Lock()
_families: dict[str, list[str]] | None = None
_app: QGuiApplication | None = None  # an application we created lives as long as the process


class FontError(RuntimeError):
    """The bundled fallback font is missing or Qt refused it."""


def ensure_gui_application() -> QGuiApplication:
    """Return the running Qt application, creating a headless-capable one if there is none.

    Painting text needs a QGuiApplication (font database). The CLI has none; on a machine
    without a display the caller sets QT_QPA_PLATFORM=offscreen (the CLI does it for them).
    """
    global _app
    app = QGuiApplication.instance()
    if app is None:
        app = _app = QGuiApplication(sys.argv[:1] or ["declip"])
    return app  # type: ignore[return-value]


def _first_available(candidates: tuple[str, ...], installed: set[str]) -> list[str]:
    return [name for name in candidates if name in installed][:1]


def report_families() -> dict[str, list[str]]:
    """Family lists for `QFont.setFamilies`: {"sans": [...], "mono": [...]}. Loads fonts once."""
    global _families
    with _lock:
        if _families is not None:
            return _families
        ensure_gui_application()
        if not CJK_FONT_FILE.is_file():
            raise FontError(
                f"bundled font {CJK_FONT_FILE} is missing; reinstall DeCLIP Desktop "
                "(reports need it to print Chinese, Japanese and Korean text)"
            )
        font_id = QFontDatabase.addApplicationFont(str(CJK_FONT_FILE))
        if font_id < 0:
            raise FontError(f"Qt could not load the bundled font {CJK_FONT_FILE}; the file may be damaged")
        fallback = list(QFontDatabase.applicationFontFamilies(font_id))
        installed = set(QFontDatabase.families())
        sans = _first_available(MAIN_FAMILIES, installed)
        mono = _first_available(MONO_FAMILIES, installed)
        _families = {"sans": sans + fallback, "mono": mono + sans + fallback}
        return _families


def cjk_family() -> str:
    """Family name of the bundled CJK fallback (for tests and diagnostics)."""
    return report_families()["sans"][-1]


def make_font(point_size: float, *, bold: bool = False, italic: bool = False, mono: bool = False) -> QFont:
    font = QFont()
    font.setFamilies(report_families()["mono" if mono else "sans"])
    font.setPointSizeF(point_size)
    font.setBold(bold)
    font.setItalic(italic)
    # Kerning and hinting off keep text widths the same on every machine, so the page
    # layout (and page count) of a report does not depend on where it was made.
    font.setKerning(False)
    font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    # No ligatures: text copied out of the PDF (hashes, "diffusion") must be the letters
    # that were printed, not "ﬀ"/"ﬁ" glyphs that break searches and hash comparisons.
    font.setFeature(QFont.Tag("liga"), 0)
    return font
