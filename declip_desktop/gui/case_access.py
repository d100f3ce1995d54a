"""A private connection to the window's case for one background job.

The window may close its case while a pool job still runs (the analyst closes the case
during an import, say); closing a `Case` closes the SQLite connections of every thread,
and a query still running on one of them would crash the interpreter. A job that opens
its own `Case` is unaffected: it finishes on its own connection, as another program would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def own_case(case, read_only: bool = True, analyst: str | None = None) -> Iterator:  # noqa: ANN001 - a Case
    """`Case.open(case.path, read_only=...)` for the duration of a `with` block."""
    from declip_desktop.cases import Case

    private = Case.open(case.path, analyst=analyst, read_only=read_only)
    try:
        yield private
    finally:
        private.close()
