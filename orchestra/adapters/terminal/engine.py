"""What `Terminal` needs from a VT engine, and the pieces both engines share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

import attrs

from orchestra import __version__
from orchestra.core.colors import RGB
from orchestra.core.queries import ScreenState

XTVERSION: Final = f"Orchestra {__version__}"

# What an engine reports: an answer it wrote, the bell, a desktop notification.
OnReply = Callable[[bytes], None]
OnBell = Callable[[], None]
OnNotify = Callable[[str, str], None]


class TerminalError(RuntimeError):
    """The terminal engine is missing or behaves unlike the version we pinned."""


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


def osc(body: bytes) -> bytes:
    """An OSC sequence with this body, ST-terminated."""
    return b"\x1b]" + body + b"\x1b\\"


def cup(y: int, x: int) -> bytes:
    """CUP to 0-based (row, column)."""
    return f"\x1b[{y + 1};{x + 1}H".encode()


class Engine(ScreenState, Protocol):
    """What `Terminal` needs from a VT engine (beyond what answering reads)."""

    name: str
    extra: bytes  # scanner alternatives for the sequences the engine wants to see
    ctl: bytes  # C0 controls the scanner reports (BEL, where the engine cannot)
    osc: tuple[bytes, ...]  # OSC bodies (by prefix) the engine wants; () for all
    terminfo: dict[str, str]  # what we answer XTGETTCAP with where the engine does not
    reports_notifications: frozenset[bytes]  # OSC numbers it reports through on_notify

    def feed(self, data: bytes) -> None: ...
    def event(self, seq: bytes) -> None: ...
    def string(self, body: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> None: ...
    def rows_text(self) -> list[str]: ...
    def alt_screen(self) -> bool: ...
    def title(self) -> str: ...
    def set_colors(self, fg: RGB, bg: RGB, palette: list[RGB]) -> None: ...
    def snapshot(self, primary: bool) -> bytes: ...
    def cells(self, x: int, y: int, cols: int, rows: int) -> bytes: ...
    def decor(self) -> bytes: ...
    def close(self) -> None: ...
