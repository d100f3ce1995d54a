import sys

from declip_desktop.cli import main

sys.exit(main())
