"""SGR (Select Graphic Rendition): a cell's or the cursor's pen, written as escape sequences.

Stdlib and attrs only, no I/O.
"""

from __future__ import annotations

import re
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class Pen:
    """SGR state: colours are None, ("palette", n) or ("rgb", (r, g, b))."""

    fg: tuple[str, Any] | None = None
    bg: tuple[str, Any] | None = None
    underline_color: tuple[str, Any] | None = None
    bold: bool = False
    faint: bool = False
    italic: bool = False
    underline: int = 0
    blink: bool = False
    inverse: bool = False
    invisible: bool = False
    strikethrough: bool = False
    overline: bool = False

    def sgr(self) -> bytes:
        """`CSI 0;...m` setting exactly this pen."""
        p = ["0"]
        for flag, code in (
            (self.bold, "1"), (self.faint, "2"), (self.italic, "3"), (self.blink, "5"),
            (self.inverse, "7"), (self.invisible, "8"), (self.strikethrough, "9"),
            (self.overline, "53"),
        ):  # fmt: skip
            if flag:
                p.append(code)
        if self.underline:
            p.append("4" if self.underline == 1 else f"4:{self.underline}")
        for color, base in ((self.fg, 30), (self.bg, 40), (self.underline_color, 50)):
            if color is None:
                continue
            tag, v = color
            if tag == "rgb":
                p.append(f"{base + 8};2;{v[0]};{v[1]};{v[2]}")
            elif base != 50 and v < 8:
                p.append(str(base + v))
            elif base != 50 and v < 16:
                p.append(str(base + 60 + v - 8))
            else:
                p.append(f"{base + 8};5;{v}")
        return ("\x1b[" + ";".join(p) + "m").encode()


# libghostty-vt keeps a palette colour as its index alone, and its formatter writes every
# one as `38;5;n`; but a terminal may show `38;5;1` unlike `31` (bold brightens only
# 30-37 in some, themes recolour only the 16-colour codes). Programs set colours 0-15
# with the 16-colour codes, so a redraw writes them so, as avt's dump and `Pen.sgr` do.
_INDEXED_SGR = re.compile(rb"\x1b\[([34])8;5;(\d{1,2})m")


def sixteen_colors(vt: bytes) -> bytes:
    """`vt` with each `38;5;n`/`48;5;n` SGR for n < 16 written as `3x`/`9x`/`4x`/`10x`."""

    def one(m: re.Match[bytes]) -> bytes:
        n = int(m[2])
        if n >= 16:
            return m[0]
        base = int(m[1]) * 10 + (60 if n >= 8 else 0)
        return b"\x1b[%dm" % (base + n % 8)

    return _INDEXED_SGR.sub(one, vt)
