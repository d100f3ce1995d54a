"""Two tiny installed models (different weights), built once per test session and copied into each
test's own DECLIP_HOME: agreement needs two models, and building them is the slow part."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def _two_tiny_model_files(tmp_path_factory):
    from tests.factories import install_tiny_model

    home = tmp_path_factory.mktemp("two_tiny_models")
    old = os.environ.get("DECLIP_HOME")
    os.environ["DECLIP_HOME"] = str(home)
    try:
        cards = (install_tiny_model(name="tiny-a", seed=0), install_tiny_model(name="tiny-b", seed=5))
    finally:
        if old is None:
            del os.environ["DECLIP_HOME"]
        else:
            os.environ["DECLIP_HOME"] = old
    return home / "models", cards


@pytest.fixture
def two_tiny_models(_two_tiny_model_files):
    """(card of tiny-a, card of tiny-b), installed in this test's DECLIP_HOME."""
    from declip_desktop.common.paths import models_dir

    source, cards = _two_tiny_model_files
    target = models_dir()
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)
    return cards
