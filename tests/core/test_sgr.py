"""SGR: a pen written as one `CSI 0;...m`, and palette colours kept in their 16-colour codes."""

from __future__ import annotations

import pytest

from orchestra.core.sgr import Pen, sixteen_colors


@pytest.mark.parametrize(
    ("pen", "sgr"),
    [
        (Pen(), b"\x1b[0m"),
        (Pen(bold=True, italic=True), b"\x1b[0;1;3m"),
        (Pen(faint=True, blink=True, inverse=True, invisible=True), b"\x1b[0;2;5;7;8m"),
        (Pen(strikethrough=True, overline=True), b"\x1b[0;9;53m"),
        (Pen(underline=1), b"\x1b[0;4m"),
        (Pen(underline=3), b"\x1b[0;4:3m"),  # curly
        (Pen(fg=("palette", 1)), b"\x1b[0;31m"),
        (Pen(fg=("palette", 9), bg=("palette", 4)), b"\x1b[0;91;44m"),
        (Pen(bg=("palette", 15)), b"\x1b[0;107m"),
        (Pen(fg=("palette", 16)), b"\x1b[0;38;5;16m"),
        (Pen(fg=("rgb", (1, 2, 3)), bg=("rgb", (4, 5, 6))), b"\x1b[0;38;2;1;2;3;48;2;4;5;6m"),
        (Pen(underline=1, underline_color=("palette", 1)), b"\x1b[0;4;58;5;1m"),  # no 16-code
        (Pen(underline_color=("rgb", (9, 8, 7))), b"\x1b[0;58;2;9;8;7m"),
    ],
)
def test_pen_sgr(pen: Pen, sgr: bytes) -> None:
    """A pen is one SGR from a reset: attributes, then colours in their shortest codes."""
    assert pen.sgr() == sgr


def test_sixteen_colors_rewrites_only_the_first_sixteen() -> None:
    """`38;5;n`/`48;5;n` below 16 become `3x`/`9x`/`4x`/`10x`; others and text are kept."""
    vt = b"a\x1b[38;5;1mb\x1b[48;5;12mc\x1b[38;5;16md\x1b[48;5;255me\x1b[38;5;7m"
    assert sixteen_colors(vt) == b"a\x1b[31mb\x1b[104mc\x1b[38;5;16md\x1b[48;5;255me\x1b[37m"
    assert sixteen_colors(b"\x1b[38;5;8m\x1b[48;5;0m") == b"\x1b[90m\x1b[40m"
    assert sixteen_colors(b"\x1b[1;38;5;1m") == b"\x1b[1;38;5;1m"  # only a lone colour SGR
