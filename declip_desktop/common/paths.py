"""Where the application keeps its data.

`DECLIP_HOME` (environment) overrides the platform's user data directory, which lets
tests, CI and portable installs keep everything in one chosen folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "declip-desktop"

#: Models that ship with the source tree (the starter model lives here).
BUNDLED_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"

#: Fonts, icons and other resources that ship with the source tree.
RESOURCES_DIR = Path(__file__).resolve().parents[2] / "resources"


def declip_home() -> Path:
    """The root of the user's DeCLIP data (models, settings, logs)."""
    override = os.environ.get("DECLIP_HOME")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """Directory holding installed models (safetensors + JSON model card)."""
    return declip_home() / "models"


def logs_dir() -> Path:
    return declip_home() / "logs"
