"""The software version recorded with every stored result."""

from importlib import metadata

try:
    SOFTWARE_VERSION = metadata.version("declip-desktop")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    SOFTWARE_VERSION = "0.0.0+source"

SOFTWARE_NAME = "DeCLIP Desktop"


def software_id() -> str:
    """Name and version in one string, e.g. for report covers and audit entries."""
    return f"{SOFTWARE_NAME} {SOFTWARE_VERSION}"
