"""After the engine split (engine / modelstore / training), every source path the package, the
docs and the scripts name (`declip_desktop/x/y.py`) must still exist: a stale one misleads a
reader, and some are written into data (a synthetic set's mask definition)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"declip_desktop/[A-Za-z0-9_/]+\.py")


def test_every_named_source_path_exists():
    files = [*ROOT.glob("declip_desktop/**/*.py"), *ROOT.glob("docs/*.md"), ROOT / "README.md",
             *ROOT.glob("scripts/*.py"), *ROOT.glob("benchmarks/*.py")]
    stale = sorted({(str(f.relative_to(ROOT)), m) for f in files
                    for m in PATH.findall(f.read_text(encoding="utf-8")) if not (ROOT / m).exists()})
    assert stale == []
