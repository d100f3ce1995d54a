"""Importing any GUI module (and the analysis layer) imports no torch: the window opens fast and
torch loads later, off the UI thread. The import-linter contract checks the import graph; this
checks what actually happens at run time, module by module."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys

import declip_desktop.gui

GUI_MODULES = sorted(f"declip_desktop.gui.{m.name}" for m in pkgutil.iter_modules(declip_desktop.gui.__path__))
HEAVY = ("torch", "open_clip", "torchvision")

_PROBE = """
import importlib, json, sys
heavy = {heavy!r}
for name in {modules!r}:
    importlib.import_module(name)
    loaded = sorted(m for m in heavy if m in sys.modules)
    if loaded:
        print(json.dumps({{"module": name, "loaded": loaded}}))
        break
else:
    print(json.dumps({{"module": None, "loaded": []}}))
"""


def _probe(modules: list[str]) -> dict:
    code = _PROBE.format(heavy=HEAVY, modules=modules)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_list_of_gui_modules_is_complete():
    assert {"declip_desktop.gui.main_window", "declip_desktop.gui.worker", "declip_desktop.gui.inspector",
            "declip_desktop.gui.inspector_model"} <= set(GUI_MODULES)


def test_no_gui_module_imports_torch():
    modules = ["declip_desktop", "declip_desktop.analysis", "declip_desktop.reports"] + GUI_MODULES
    result = _probe(modules)
    assert result == {"module": None, "loaded": []}, f"importing {result['module']} imported {result['loaded']}"


def test_the_probe_would_notice_torch():
    """The check itself can fail: a module that imports torch is caught and named."""
    result = _probe(["declip_desktop.gui.settings", "declip_desktop.engine.networks"])
    assert result["module"] == "declip_desktop.engine.networks" and "torch" in result["loaded"]
