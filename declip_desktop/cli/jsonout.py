"""The command line's JSON output: `common.strict_json` (strict; non-finite numbers as null).

Every `print` of JSON in `cli/` goes through `jsonout.dumps` (or `common.text.terminal_json`,
which uses the same serializer); tests/test_cli_json.py fails on a plain `json.dumps` here.
"""

from __future__ import annotations

from declip_desktop.common.strict_json import dumps, finite_or_none

__all__ = ["dumps", "finite_or_none"]
