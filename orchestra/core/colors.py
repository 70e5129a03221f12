"""Terminal colours: X11 colour specs as terminals report them, the xterm palette.

Programs ask their terminal for its colours (OSC 10/11/12 foreground, background and
cursor, OSC 4 palette entries) and set them, in X11 spec form: `rgb:RRRR/GGGG/BBBB`
with 1 to 4 hex digits per channel, or `#RGB` with 1 to 4 per channel. The model
keeps colours as 8-bit (r, g, b) tuples and answers in the form xterm and Ghostty use.

Stdlib only, no I/O.
"""

from __future__ import annotations

import re
from typing import Final

RGB = tuple[int, int, int]

DEFAULT_FG: Final[RGB] = (0xE5, 0xE5, 0xE5)  # a dark scheme until a client says otherwise
DEFAULT_BG: Final[RGB] = (0x00, 0x00, 0x00)


def _xterm_palette() -> list[RGB]:
    base = [
        (0x00, 0x00, 0x00), (0xCD, 0x00, 0x00), (0x00, 0xCD, 0x00), (0xCD, 0xCD, 0x00),
        (0x00, 0x00, 0xEE), (0xCD, 0x00, 0xCD), (0x00, 0xCD, 0xCD), (0xE5, 0xE5, 0xE5),
        (0x7F, 0x7F, 0x7F), (0xFF, 0x00, 0x00), (0x00, 0xFF, 0x00), (0xFF, 0xFF, 0x00),
        (0x5C, 0x5C, 0xFF), (0xFF, 0x00, 0xFF), (0x00, 0xFF, 0xFF), (0xFF, 0xFF, 0xFF),
    ]  # fmt: skip
    steps = (0, 0x5F, 0x87, 0xAF, 0xD7, 0xFF)
    cube = [(steps[i // 36], steps[(i // 6) % 6], steps[i % 6]) for i in range(216)]
    grays = [(8 + 10 * i,) * 3 for i in range(24)]
    return base + cube + [(g[0], g[1], g[2]) for g in grays]


XTERM_PALETTE: Final = tuple(_xterm_palette())
"""xterm's 256 colours: 16 base colours, the 6x6x6 cube, 24 greys."""

_HEX_SPEC = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{9}|[0-9a-fA-F]{12})")
_RGB_SPEC = re.compile(r"rgb:([0-9a-fA-F]{1,4})/([0-9a-fA-F]{1,4})/([0-9a-fA-F]{1,4})")


def parse_color(spec: str) -> RGB:
    """An X11 colour spec as terminals report it (`rgb:ffff/8080/0000`, `#ff8000`)."""
    s = spec.strip()
    if m := _RGB_SPEC.fullmatch(s):
        return (_scale(m[1]), _scale(m[2]), _scale(m[3]))
    if m := _HEX_SPEC.fullmatch(s):
        h = m[1]
        k = len(h) // 3
        return (_scale(h[:k]), _scale(h[k : 2 * k]), _scale(h[2 * k :]))
    raise ValueError(f"not a colour: {spec!r}; expected rgb:RRRR/GGGG/BBBB or #RRGGBB")


def _scale(h: str) -> int:
    return round(int(h, 16) * 255 / ((1 << (4 * len(h))) - 1))


def color_spec(rgb: RGB) -> bytes:
    """The `rgb:rrrr/gggg/bbbb` form xterm and Ghostty answer colour queries with."""
    r, g, b = rgb
    return f"rgb:{r:02x}{r:02x}/{g:02x}{g:02x}/{b:02x}{b:02x}".encode()


def is_dark(rgb: RGB) -> bool:
    """Whether a background is dark (Rec. 709 luma below half), for colour-scheme reports."""
    r, g, b = rgb
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128
