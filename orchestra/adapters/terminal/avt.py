"""asciinema's avt through pyavt 0.1.2 (Linux, macOS).

It draws screens well but knows few modes and answers nothing: a `ModeTracker`
(orchestra.core.modes) keeps the modes, keyboard flags, title and colours it lacks,
from the sequences the model's scanner reports, and the model answers every query.
"""

from __future__ import annotations

import codecs
import re
from typing import Any, Final

from orchestra.adapters.terminal.engine import OnBell, OnNotify, OnReply, TerminalError, cup
from orchestra.core import modes
from orchestra.core.colors import DEFAULT_BG, DEFAULT_FG, RGB, XTERM_PALETTE
from orchestra.core.modes import ModeTracker
from orchestra.core.queries import TERMINFO
from orchestra.core.sgr import Pen

# The modes avt's dump already sets; the tracker renders the rest.
_AVT_RENDERS: Final = frozenset({1, 6, 7, 25, 47, 1047, 1049, 1048})

_REP = re.compile(r"(.)\x1b\[(\d+)b", re.S)


def _avt_dump_bytes(dump: str) -> bytes:
    """avt's dump as 7-bit bytes: its 8-bit CSI written as ESC [, and REP (`CSI n b`)
    expanded, as not every client terminal knows REP."""
    s = dump.replace("\x9b", "\x1b[")
    s = _REP.sub(lambda m: m[1] * (int(m[2]) + 1), s)
    return s.encode("utf-8", "replace")


class AvtEngine:
    """The avt engine (pyavt), with a `ModeTracker` for what avt does not track."""

    name = "avt"
    ctl = b"\x07"  # avt reports no bell
    osc: tuple[bytes, ...] = ()  # every OSC: titles, colours, notifications
    extra = modes.SEQUENCES
    terminfo = TERMINFO
    reports_notifications: frozenset[bytes] = frozenset()

    def __init__(
        self,
        cols: int,
        rows: int,
        scrollback: int,
        on_reply: OnReply,
        on_bell: OnBell,
        on_notify: OnNotify,
    ):
        try:
            import avt
        except ImportError as e:
            raise TerminalError(f"pyavt is not usable here: {e}") from e
        self.vt: Any = avt.Vt(cols, rows, scrollback)
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        self.m = ModeTracker()
        self._fg, self._bg, self._palette = DEFAULT_FG, DEFAULT_BG, list(XTERM_PALETTE)

    def feed(self, data: bytes) -> None:
        text = self._decode(data)
        if text:
            self.vt.feed_str(text)

    def event(self, seq: bytes) -> None:
        self.m.apply(seq)

    def string(self, body: bytes) -> None:
        self.m.apply_osc(body)

    def modify_other_keys(self) -> int:
        return self.m.modkeys

    def close(self) -> None:
        pass

    def resize(self, cols: int, rows: int) -> None:
        self.vt.resize(cols, rows)
        self.m.region = None

    def rows_text(self) -> list[str]:
        return [line.text.rstrip(" ") for line in self.vt.view()]

    def cursor(self) -> tuple[int, int]:
        c = self.vt.cursor
        cols = self.vt.size[0]
        return min(c.col, cols - 1), c.row

    def size(self) -> tuple[int, int]:
        cols, rows = self.vt.size
        return cols, rows

    def alt_screen(self) -> bool:
        return self.m.alt()

    def title(self) -> str:
        return self.m.title

    def mode(self, n: int, ansi: bool) -> int:
        table = self.m.ansi if ansi else self.m.dec
        if n not in table:
            return 0
        if not ansi and n == 25:
            return 1 if self.vt.cursor.visible else 2
        return 1 if table[n] else 2

    def kitty_flags(self) -> int:
        return self.m.kitty_flags()

    def origin_top(self) -> int | None:
        if not self.m.dec[6]:
            return None
        return self.m.region[0] if self.m.region else 0

    def cursor_style(self) -> int | None:
        return self.m.shape or 2  # avt draws a steady block

    def scroll_region(self) -> tuple[int, int] | None:
        return self.m.region

    def colors(self) -> tuple[RGB, RGB, RGB, list[RGB]]:
        fg = self.m.fg or self._fg
        bg = self.m.bg or self._bg
        pal = list(self._palette)
        for i, c in self.m.palette.items():
            pal[i] = c
        return fg, bg, self.m.cursor_color or fg, pal

    def set_colors(self, fg: RGB, bg: RGB, palette: list[RGB]) -> None:
        self._fg, self._bg, self._palette = fg, bg, palette

    def snapshot(self, primary: bool) -> bytes:
        dump = self.vt.dump()
        alt = self.m.alt()
        marker = "\x1b[m\x9b?1047h"
        cut = dump.rfind(marker)
        if primary and alt:
            if cut >= 0:
                dump = dump[:cut]
            body = _avt_dump_bytes(dump)
        else:
            if cut >= 0:
                mode = next(m for m in modes.ALT_SCREEN_MODES if self.m.dec[m]) if alt else 1047
                dump = dump[:cut] + f"\x1b[m\x1b[?{mode}h" + dump[cut + len(marker) :]
            body = _avt_dump_bytes(dump)
        return body + self.m.render(_AVT_RENDERS)

    def cells(self, x: int, y: int, cols: int, rows: int) -> bytes:
        out = []
        lines = self.vt.view()
        for r in range(rows):
            cells = lines[y + r].cells
            row, pen, seen = [cup(r, 0), b"\x1b[0m"], Pen(), None
            for i in range(x, x + cols):
                cell = cells[i]
                if cell.width == 0:  # the tail of a wide character
                    if i > x:
                        continue  # drawn with its head
                    text, now = " ", Pen()  # its head is cut off by the left edge
                elif cell.width == 2 and i == x + cols - 1:
                    text, now = " ", Pen()  # its tail is cut off by the right edge
                else:
                    text = cell.char
                    if seen is None or cell.pen != seen:  # pyavt's pens compare by value
                        seen, converted = cell.pen, _avt_pen(cell.pen)
                    now = converted
                if now != pen:
                    row.append(now.sgr())
                    pen = now
                row.append(text.encode("utf-8", "replace"))
            out.append(b"".join(row) + b"\x1b[0m")
        return b"".join(out)

    def decor(self) -> bytes:
        return self.m.decor()


def _avt_color(c: Any) -> tuple[str, Any] | None:
    if c is None:
        return None
    if hasattr(c, "_1"):
        return ("rgb", (int(c._0), int(c._1), int(c._2)))
    return ("palette", int(c._0))


def _avt_pen(p: Any) -> Pen:
    """pyavt's pen as ours."""
    return Pen(
        fg=_avt_color(p.foreground), bg=_avt_color(p.background), bold=bool(p.bold),
        faint=bool(p.faint), italic=bool(p.italic), underline=int(bool(p.underline)),
        blink=bool(p.blink), inverse=bool(p.inverse), strikethrough=bool(p.strikethrough),
    )  # fmt: skip
