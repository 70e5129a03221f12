"""What `Terminal` needs from a VT engine, and the pieces both engines share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

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
