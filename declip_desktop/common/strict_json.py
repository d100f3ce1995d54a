"""Strict JSON: the one serializer for JSON that leaves the program (CLI output, receipts).

Python's `json.dumps` writes `NaN` and `Infinity` by default, which is not JSON: strict
parsers (`json.loads(..., parse_constant=...)`, JavaScript, jq, most databases) reject the
whole line. Here a value that is not a finite number — an undefined metric, say — is
written as `null`, numpy scalars and arrays become plain numbers and lists, and the result
is serialized with `allow_nan=False` so nothing non-standard can slip through.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(value: Any) -> Any:
    """`value` with every non-finite float (NaN, ±Inf), at any depth, replaced by None."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist) and getattr(value, "ndim", 0):
        return finite_or_none(tolist())
    if callable(item):
        return finite_or_none(item())
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of `value` (non-finite numbers written as null)."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)
