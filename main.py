"""Launch the DeCLIP Desktop application (same as the `declip-desktop` entry point)."""

import sys

from declip_desktop.desktop import main

if __name__ == "__main__":
    sys.exit(main())
