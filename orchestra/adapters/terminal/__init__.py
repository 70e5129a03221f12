"""The terminal model of one agent's screen: the daemon *is* the agent's terminal.

`Terminal` is our interface over a VT engine. It parses everything the agent writes,
answers the agent's terminal queries (whether or not a client is attached: the daemon
is the one answerer), and renders its screen back as escape sequences for a client
that attaches (`snapshot`), or as text (`text`, `lines`).

Engines (`default_engine()`, decided once; `Terminal(engine=...)` overrides for tests),
one module each, behind `engine.Engine`:
- "ghostty" (`ghostty.py`): Ghostty's libghostty-vt through pyghostty (Linux x86_64
  and aarch64). Matches tmux on every recorded agent stream, tracks every mode and
  answers most queries itself.
- "avt" (`avt.py`): asciinema's avt through pyavt (Linux, macOS). Draws screens well
  but knows few modes and answers nothing: `orchestra.core.modes.ModeTracker` keeps
  what it lacks.

One scanner reads the stream (`orchestra.core.vtscan.VTScanner`): it strips the queries
for the clients, and reports them, the sequences the mode tracker reads and the OSC
strings the model wants. The engine is fed up to the end of each query, and if the
engine wrote no answer, `orchestra.core.queries.QueryAnswerer` answers from the
engine's state. Answers leave in stream order through `take_answers`. A bell or a
desktop notification (`orchestra.core.notifications`) raises `attention`.
"""

from __future__ import annotations

import functools
import re

from orchestra.adapters.terminal.avt import AvtEngine
from orchestra.adapters.terminal.engine import XTVERSION, Engine, TerminalError, cup
from orchestra.adapters.terminal.ghostty import GhosttyEngine
from orchestra.core import modes, notifications
from orchestra.core.colors import (
    DEFAULT_BG,
    DEFAULT_FG,
    RGB,
    XTERM_PALETTE,
    color_spec,
    parse_color,
)
from orchestra.core.notifications import NotificationReader
from orchestra.core.queries import DA1, DA2, DA3, QueryAnswerer
from orchestra.core.vtscan import VTScanner, osc_body

_CUP = re.compile(r"\x1b\[\d+;\d+H")  # where `cells` puts each row

__all__ = [
    "DA1",
    "DA2",
    "DA3",
    "DEFAULT_BG",
    "DEFAULT_FG",
    "RGB",
    "XTERM_PALETTE",
    "XTVERSION",
    "Terminal",
    "TerminalError",
    "available_engines",
    "color_spec",
    "default_engine",
    "parse_color",
]


class Terminal:
    """One agent's screen, modes and query answers, over `default_engine()`.

    In the output pump, per read: `out = feed_filtered(chunk)` (or `feed(chunk)` and a
    separate `QueryFilter`), write `take_answers()` to the PTY at once, send `out` to
    the clients. For a client attaching between two reads: after its reset and clear,
    `snapshot()` then `pending()`. The snapshot holds `CSI ?2026h` when the program is
    in the middle of a synchronized frame (`mode(2026)`): its own `?2026l` ends it.
    Sans-io and not thread-safe.
    """

    def __init__(
        self, cols: int, rows: int, *, scrollback: int = 2000, engine: str | None = None
    ) -> None:
        if cols < 1 or rows < 1:
            raise ValueError(f"terminal size must be at least 1x1, not {cols}x{rows}")
        name = engine or default_engine()
        if name == "ghostty":
            self._e: Engine = GhosttyEngine(
                cols, rows, scrollback, self._reply, self._bell, self._desktop_notification
            )
        elif name == "avt":
            self._e = AvtEngine(
                cols, rows, scrollback, self._reply, self._bell, self._desktop_notification
            )
        else:
            raise ValueError(f"unknown terminal engine {name!r}; use 'ghostty' or 'avt'")
        self._answerer = QueryAnswerer(xtversion=XTVERSION, terminfo=self._e.terminfo)
        self._answers: list[bytes] = []
        # The engine's answers since the last query the scanner completed. (The engine
        # may answer a query before its last byte: a DCS or OSC at the ESC of its ST.)
        self._engine_replies: list[bytes] = []
        # Stripping too, so that `feed_filtered` can serve the clients from the same scan.
        self._scan = VTScanner(
            strip=True, extra=self._e.extra, ctl=self._e.ctl, strings=self._e.osc or True
        )
        self._fg, self._bg = DEFAULT_FG, DEFAULT_BG
        self._palette = list(XTERM_PALETTE)
        self._e.set_colors(self._fg, self._bg, self._palette)
        self._notices = NotificationReader(skip=self._e.reports_notifications)
        self.attention = False
        self.notification: str | None = None
        # Asked of the engine only after a chunk with a sequence in it (a call into the
        # engine per read costs more than the rest of a keystroke's echo).
        self._alt = self._e.alt_screen()

    @property
    def engine(self) -> str:
        """Which engine draws this terminal: "ghostty" or "avt"."""
        return self._e.name

    # -- input

    def _reply(self, data: bytes) -> None:
        self._answers.append(data)
        self._engine_replies.append(data)

    def _bell(self) -> None:
        self.attention = True

    def feed(self, data: bytes) -> None:
        """Parse output of the program; answers to its queries are collected."""
        self.feed_filtered(data)

    def feed_filtered(self, data: bytes) -> bytes:
        """`feed`, returning what `QueryFilter.feed` would: `data` minus its queries, for
        the clients, from the same scan (cheaper than a separate QueryFilter; then use
        this Terminal's `pending()` for a client that attaches)."""
        out = self.strip(data)
        self.apply(data)
        return out

    @property
    def stop_bytes(self) -> bytes | None:
        """A chunk holding none of these bytes passes `strip` unchanged, and the relay
        may forward it before `strip` sees it; None while a sequence is open, when every
        chunk must be looked at first."""
        return self._scan.special if self._scan.at_rest else None

    def strip(self, data: bytes) -> bytes:
        """The first half of `feed_filtered`: `data` minus its queries, for the clients.
        `apply(data)` must follow, with no other call in between: the clients can be sent
        their bytes before the model has drawn them (a keystroke's echo waits for less)."""
        return self._scan.feed(data) if data else b""

    def apply(self, data: bytes) -> None:
        """The second half of `feed_filtered`: the model takes `data`, which `strip` has
        just scanned, and answers its queries."""
        if not data:
            return
        e = self._e
        pos = 0
        for end, kind, seq in self._scan.events:
            if kind == "s":
                self._string(seq)
            elif kind == "x":
                if seq == b"\x07":
                    self.attention = True
                else:
                    e.event(seq)  # engine state our scanner tracks; no need to split
            else:
                self._query(data, pos, end, seq)
                pos = max(pos, end)
        if pos < len(data):
            e.feed(data[pos:])
        if not self._scan.plain:
            self._alt = e.alt_screen()

    def pending(self) -> bytes:
        """`QueryFilter.pending` for the stream `feed_filtered` returned."""
        return self._scan.pending()

    def _query(self, data: bytes, pos: int, end: int, seq: bytes) -> None:
        """Feed the engine up to the end of a query; answer it if the engine did not."""
        if end > pos:
            self._e.feed(data[pos:end])
        replied, self._engine_replies = self._engine_replies, []
        ans: bytes | None
        if seq.startswith(b"\x1bP+q"):
            ans = self._answerer.tcap_answers(seq, b"".join(replied))
        elif replied:
            return
        else:
            ans = self._answerer.answer(seq, self._e)
        if ans:
            self._answers.append(ans)

    def take_answers(self) -> bytes:
        """The answers produced since the last call, in order, to write to the PTY."""
        if not self._answers:
            return b""
        out = b"".join(self._answers)
        self._answers.clear()
        return out

    def resize(self, cols: int, rows: int) -> None:
        """Change the size (the primary screen reflows)."""
        if cols < 1 or rows < 1:
            raise ValueError(f"terminal size must be at least 1x1, not {cols}x{rows}")
        self._e.resize(cols, rows)

    def set_colors(
        self, fg: str | None = None, bg: str | None = None, palette: dict[int, str] | None = None
    ) -> None:
        """The client's colours (X11 specs such as `rgb:ffff/ffff/ffff` or `#ffffff`),
        used to answer OSC 10/11/4 queries from now on."""
        if fg is not None:
            self._fg = parse_color(fg)
        if bg is not None:
            self._bg = parse_color(bg)
        for i, spec in (palette or {}).items():
            if not 0 <= i < 256:
                raise ValueError(f"palette index must be 0..255, not {i}")
            self._palette[i] = parse_color(spec)
        self._e.set_colors(self._fg, self._bg, self._palette)

    def close(self) -> None:
        """Free the engine now (garbage collection frees it otherwise). Idempotent."""
        self._e.close()

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clear_attention(self) -> None:
        """Forget the bell and notifications seen so far."""
        self.attention = False
        self.notification = None

    # -- output

    def snapshot(self) -> bytes:
        """Escape sequences that, written to a terminal after a full reset and clear,
        reproduce the active screen: cells, cursor (position, visibility, shape), modes,
        keyboard flags, scrolling region, the DECSC saved cursor and the title."""
        return self._e.snapshot(primary=False)

    def snapshot_region(self, x: int, y: int, cols: int, rows: int) -> bytes:
        """Escape sequences that, written to a terminal after a full reset and clear, show
        the `cols` x `rows` cells of the active screen from (x, y) at its top left, the
        cursor where it is among them, the modes that decide what the terminal sends
        (keys, mouse, paste, focus), the cursor's look, colours the program set and the
        title. A picture for a terminal of another size (the region is clipped to the
        screen): the program's stream cannot continue from it, as it can from `snapshot`."""
        width, height = self._e.size()
        x, y = max(0, min(x, width - 1)), max(0, min(y, height - 1))
        cols, rows = max(0, min(cols, width - x)), max(0, min(rows, height - y))
        out = [self._input_modes(), self._e.cells(x, y, cols, rows)]
        cx, cy = self._e.cursor()
        row, col = min(max(cy - y, 0), max(rows - 1, 0)), min(max(cx - x, 0), max(cols - 1, 0))
        out.append(cup(row, col))
        if not (x <= cx < x + cols and y <= cy < y + rows) and self.mode(25):
            out.append(b"\x1b[?25l")  # not in the picture: not shown somewhere else
        out.append(self._e.decor())
        return b"".join(out)

    def _input_modes(self) -> bytes:
        """The modes a terminal must have for a region snapshot (`modes.INPUT_MODES`)."""
        out = []
        e = self._e
        for n in modes.INPUT_MODES:
            v = e.mode(n, False)
            if v and (v == 1) != modes.DEC_DEFAULTS[n]:
                out.append(b"\x1b[?%d%s" % (n, b"h" if v == 1 else b"l"))
        if e.mode(20, True) == 1:
            out.append(b"\x1b[20h")  # Return sends CR LF
        if e.mode(66, False) == 1:
            out.append(modes.DECKPAM)  # what every terminal knows, unlike DECNKM
        flags = e.kitty_flags()
        if flags:
            out.append(b"\x1b[=%d;1u" % flags)
        keys = e.modify_other_keys()
        if keys:
            out.append(b"\x1b[>4;%dm" % keys)
        return b"".join(out)

    def primary_snapshot(self) -> bytes:
        """The primary screen's snapshot, even while the alternate screen is active: for
        a client that attached on the alternate screen when the program leaves it."""
        return self._e.snapshot(primary=True)

    def styled_lines(self) -> list[str]:
        """The visible screen with its colours: one string per row, its cells' SGR
        sequences and text only (no cursor moves), for a client that renders ANSI text
        (the dashboard's preview). Trailing blank cells are left out."""
        width, height = self._e.size()
        rows = _CUP.split(self._e.cells(0, 0, width, height).decode("utf-8", "replace"))
        return (rows[1:] + [""] * height)[:height]  # rows[0]: before the first row's CUP

    def text(self) -> str:
        """The visible screen, one line per row, trailing spaces trimmed."""
        rows = self._e.size()[1]
        lines = self._e.rows_text()[:rows]
        lines += [""] * (rows - len(lines))
        return "\n".join(lines)

    def lines(self, n: int) -> list[str]:
        """The last `n` rows of the screen, after dropping empty rows at the bottom."""
        rows = self.text().split("\n")
        while rows and not rows[-1]:
            rows.pop()
        return rows[-n:] if n > 0 else []

    @property
    def title(self) -> str:
        return self._e.title()

    @property
    def alt_screen(self) -> bool:
        return self._alt

    @property
    def cursor(self) -> tuple[int, int]:
        """(column, row), 0-based, in the active area."""
        return self._e.cursor()

    @property
    def size(self) -> tuple[int, int]:
        """(columns, rows)."""
        return self._e.size()

    def mode(self, n: int, *, ansi: bool = False) -> bool:
        """Whether DEC private mode `n` (or ANSI mode `n`) is set."""
        return self._e.mode(n, ansi) == 1

    @property
    def kitty_flags(self) -> int:
        """The kitty keyboard protocol flags in effect."""
        return self._e.kitty_flags()

    # -- what the scanner reports

    def _string(self, seq: bytes) -> None:
        body = osc_body(seq)
        if body is None:
            return  # not an OSC, or aborted
        self._e.string(body)
        text = self._notices.read(body)
        if text is not None:
            self._notify(text)

    def _desktop_notification(self, title: str, body: str) -> None:
        self._notify(notifications.join(title, body))

    def _notify(self, text: str) -> None:
        self.attention = True
        self.notification = text[:1000]


def available_engines() -> list[str]:
    """The engines that load here, best first."""
    found = []
    try:
        import pyghostty  # noqa: F401

        found.append("ghostty")
    except (ImportError, OSError):  # OSError: libghostty-vt did not load
        pass
    try:
        import avt  # noqa: F401

        found.append("avt")
    except ImportError:
        pass
    return found


@functools.cache
def default_engine() -> str:
    """The engine `Terminal` uses unless told: pyghostty where it loads, else pyavt."""
    found = available_engines()
    if not found:
        raise TerminalError(
            "no terminal engine is installed: Orchestra needs pyghostty (Linux) or pyavt"
        )
    return found[0]
