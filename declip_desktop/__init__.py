"""DeCLIP Desktop: forensic localization of generative edits with DeCLIP.

Layers (see docs/ARCHITECTURE.md): common → engine / cases → analysis / reports → gui.
"""

from declip_desktop.common.version import SOFTWARE_VERSION as __version__

__all__ = ["__version__"]
