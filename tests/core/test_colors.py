"""Colours: X11 specs in and out, the xterm palette, dark or light."""

from __future__ import annotations

import re

import pytest

from orchestra.core.colors import XTERM_PALETTE, color_spec, is_dark, parse_color


@pytest.mark.parametrize(
    ("spec", "rgb"),
    [
        ("rgb:ffff/8080/0000", (255, 128, 0)),  # 4 digits a channel
        ("rgb:fff/808/000", (255, 128, 0)),  # 3
        ("rgb:ff/80/00", (255, 128, 0)),  # 2
        ("rgb:f/8/0", (255, 136, 0)),  # 1: 8 scales to 0x88
        ("rgb:f/80/0000", (255, 128, 0)),  # channels of different widths
        ("rgb:FFFF/8080/0000", (255, 128, 0)),  # upper-case digits
        ("#ff8000", (255, 128, 0)),
        ("#fff", (255, 255, 255)),
        ("#f80", (255, 136, 0)),
        ("#fff888000", (255, 136, 0)),  # 3 digits a channel
        ("#ffff88880000", (255, 136, 0)),  # 4
        ("  rgb:0/0/0\n", (0, 0, 0)),  # surrounding space is ignored
    ],
)
def test_parse_color_accepts_every_x11_form(spec: str, rgb: tuple[int, int, int]) -> None:
    """`rgb:` with 1 to 4 hex digits a channel and `#` with 3, 6, 9 or 12 parse to 8-bit RGB."""
    assert parse_color(spec) == rgb


@pytest.mark.parametrize(
    "spec",
    ["red", "", "RGB:ffff/8080/0000", "#ff80", "#ff80000", "rgb:ffff/8080", "rgb:fffff/0/0",
     "rgb:g/0/0", "ff8000", "rgba:ffff/ffff/ffff/ffff", "#ff8000 x"],
)  # fmt: skip
def test_parse_color_refuses_what_is_not_a_colour(spec: str) -> None:
    """Names, wrong digit counts, a missing channel and junk are refused, the spec quoted."""
    with pytest.raises(ValueError, match=re.escape(f"not a colour: {spec!r}")):
        parse_color(spec)


def test_color_spec_is_the_16_bit_form_and_parses_back() -> None:
    """A colour is answered as `rgb:rrrr/gggg/bbbb`, which parses back to the same colour."""
    assert color_spec((255, 128, 0)) == b"rgb:ffff/8080/0000"
    assert color_spec((0, 1, 0x0A)) == b"rgb:0000/0101/0a0a"
    for rgb in XTERM_PALETTE:
        assert parse_color(color_spec(rgb).decode()) == rgb


def test_xterm_palette() -> None:
    """The palette has xterm's 16 base colours, its 6x6x6 cube and 24 greys."""
    assert len(XTERM_PALETTE) == 256
    assert XTERM_PALETTE[1] == (0xCD, 0, 0)
    assert XTERM_PALETTE[12] == (0x5C, 0x5C, 0xFF)
    assert XTERM_PALETTE[16] == (0, 0, 0)
    assert XTERM_PALETTE[196] == (0xFF, 0, 0)
    assert XTERM_PALETTE[231] == (0xFF, 0xFF, 0xFF)
    assert XTERM_PALETTE[232] == (8, 8, 8)
    assert XTERM_PALETTE[255] == (238, 238, 238)


@pytest.mark.parametrize(
    ("rgb", "dark"),
    [((0, 0, 0), True), ((255, 255, 255), False), ((0, 0, 255), True), ((0, 255, 0), False),
     ((127, 127, 127), True), ((128, 128, 128), False)],
)  # fmt: skip
def test_is_dark_by_luma(rgb: tuple[int, int, int], dark: bool) -> None:
    """A background is dark when its luma is below half: pure blue is, pure green is not."""
    assert is_dark(rgb) is dark
