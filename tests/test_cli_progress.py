"""Progress output of long commands: lines when redirected, a tqdm bar on a terminal."""

from __future__ import annotations

import io

from declip_desktop.cli.progress_output import ProgressOutput


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_redirected_output_gets_one_flushed_line_per_item_with_the_time_left():
    stream = io.StringIO()
    out = ProgressOutput(12, "image", "Analysing", stream=stream)
    assert not out.is_bar
    out.item(1, "a.jpg: done, score 0.100", 30)
    out.item(12, "b.jpg: failed: not an image", 4000)
    out.close()
    assert stream.getvalue().splitlines() == ["[ 1/12] a.jpg: done, score 0.100 (about 30 s left)",
                                              "[12/12] b.jpg: failed: not an image (about 1 h 06 min left)"]


def test_a_terminal_gets_a_bar_and_no_lines():
    stream = FakeTerminal()
    out = ProgressOutput(4, "image", "Analysing", stream=stream)
    assert out.is_bar
    out.item(2, "a.jpg: done")
    out.close()
    text = stream.getvalue()
    assert "Analysing" in text and "2/4" in text and "[2/4]" not in text and "a.jpg" not in text
