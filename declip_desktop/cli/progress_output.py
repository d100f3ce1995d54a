"""Progress of a long command on stderr: a tqdm bar on a terminal, one line per item otherwise.

Redirected to a file or a pipe (a CI log, `2>&1 | tee`), a bar would print nothing useful for
minutes (or a heap of carriage returns); there each finished item gets its own plain line,
flushed at once: `[3/66] photo.jpg: done, score 0.812 (about 1 min 20 s left)`.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from declip_desktop.common.text import format_duration


def _eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    return f" (about {format_duration(seconds)} left)"


class ProgressOutput:
    """`item(done, text, eta)` after each item; `note(text)` for a message between items."""

    def __init__(self, total: int, unit: str, desc: str, *, stream: TextIO | None = None,
                 bar: bool | None = None, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.total = total
        self.quiet = quiet
        self.is_bar = (self.stream.isatty() if bar is None else bar) and not quiet
        self._bar: Any = None
        if self.is_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit, desc=desc, file=self.stream, dynamic_ncols=True)

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def item(self, done: int, text: str, eta_seconds: float | None = None) -> None:
        if self._bar is not None:
            self._bar.n = done
            self._bar.refresh()
        elif not self.quiet:
            width = len(str(self.total))
            print(f"[{done:>{width}}/{self.total}] {text}{_eta(eta_seconds)}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def clear(self) -> None:
        """Before writing to stdout on the same terminal (the bar is redrawn on the next item)."""
        if self._bar is not None:
            self._bar.clear()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


__all__ = ["ProgressOutput"]
