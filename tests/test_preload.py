"""The app's start-up warm-up (`desktop.preload_engine`) imports open_clip only for a DeCLIP default
model: beside the starter's first analysis that import held the GIL for seconds and doubled it."""

from __future__ import annotations

import json
import subprocess
import sys

from declip_desktop.modelstore.store import ModelStore
from tests.factories import install_tiny_model

PROBE = ("import sys, json; from declip_desktop.desktop import preload_engine, default_model_needs_open_clip; "
         "preload_engine(); print(json.dumps([default_model_needs_open_clip(), 'open_clip' in sys.modules, "
         "'torch' in sys.modules]))")


def _preload() -> list:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_with_the_starter_as_default_open_clip_is_not_imported():
    assert ModelStore().default().card.kind == "starter"
    assert _preload() == [False, False, True]


def test_with_a_declip_default_open_clip_is_warmed():
    install_tiny_model("tiny")
    ModelStore().set_default("tiny")
    assert _preload() == [True, True, True]


def test_an_unreadable_default_still_warms_it(tmp_path):
    install_tiny_model("gone")
    store = ModelStore()
    store.set_default("gone")
    store.remove("gone")
    assert _preload() == [True, True, True]
