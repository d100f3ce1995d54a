"""Every character the GUI and the reports print has a glyph in the project's fonts (issue 20: the
alert badge drew as an empty box under Xvfb). The GUI draws with DejaVu Sans (fontconfig's "Sans
Serif" on the CI and development machines, the only family installed there); reports add the
bundled CJK fallback. A new symbol in a string literal that neither font has fails here."""

from __future__ import annotations

import ast
import unicodedata
from pathlib import Path

import pytest
from PySide6.QtGui import QFont, QFontDatabase, QRawFont

PACKAGE = Path(__file__).resolve().parents[1] / "declip_desktop"
#: Text the analyst never sees drawn by Qt (command-line output, logs, the engine's docstrings).
DRAWN = ("gui", "reports", "examination", "forensics", "cases/tags.py")


def _literal_chars(paths) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for ch in node.value:
                    if ord(ch) > 127 and unicodedata.category(ch)[0] != "C" and not ch.isspace():
                        found.setdefault(ch, set()).add(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def _files():
    for part in DRAWN:
        target = PACKAGE / part
        yield from ([target] if target.is_file() else sorted(target.rglob("*.py")))


@pytest.fixture(scope="module")
def fonts(qapp):
    from declip_desktop.reports.fonts import CJK_FONT_FILE

    families = set(QFontDatabase.families())
    assert "DejaVu Sans" in families, "the project's GUI font (DejaVu Sans, fonts-dejavu-core) is not installed"
    QFontDatabase.addApplicationFont(str(CJK_FONT_FILE))
    return [QRawFont.fromFont(QFont(name)) for name in ("DejaVu Sans", "DejaVu Sans Mono")]


def test_every_symbol_in_gui_and_report_text_has_a_glyph(fonts):
    chars = _literal_chars(_files())
    assert "★" in chars and "⚠" in chars  # the scan sees the badges and the bookmark star
    missing = {ch: sorted(where)[:3] for ch, where in chars.items()
               if not any(f.supportsCharacter(ord(ch)) for f in fonts)}
    # CJK text in reports comes from the case (names, notes), never from literals; so the GUI font must do.
    assert not missing, {f"U+{ord(ch):04X} {unicodedata.name(ch, '?')}": where for ch, where in missing.items()}


def test_the_badges_use_glyphs_the_font_has(fonts):
    from declip_desktop.gui.forensics_text import badge_for

    text, _ = badge_for({"warnings": 2, "alerts": 3, "c2pa_state": "invalid", "codes": ["x"], "error": "e"})
    text += badge_for({"alerts": 1, "c2pa_state": "trusted"})[0]
    assert all(fonts[0].supportsCharacter(ord(ch)) for ch in text if not ch.isspace()), text
