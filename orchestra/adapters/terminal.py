"""The terminal model of one agent's screen: the daemon *is* the agent's terminal.

`Terminal` is our interface over a VT engine. It parses everything the agent writes,
answers the agent's terminal queries (whether or not a client is attached: the daemon
is the one answerer), and renders its screen back as escape sequences for a client
that attaches (`snapshot`), or as text (`text`, `lines`).

Engines (`default_engine()`, decided once; `Terminal(engine=...)` overrides for tests):
- "ghostty": pyghostty 0.1.3, Ghostty's libghostty-vt (wheels: Linux x86_64 and
  aarch64). Matches tmux on every recorded agent stream, tracks every mode, answers
  most queries itself, and its formatter renders cells, cursor and modes; we add the
  DECSC saved cursor (read from a clone), origin-mode cursor placement, cursor shape,
  colours the program set, and the title. Its cffi layer is private to pyghostty:
  every use of it is in `_Ghostty` below, so an upgrade that moves it fails there.
- "avt": pyavt 0.1.2, asciinema's avt (Linux, macOS). It draws screens well but
  knows few modes and answers nothing: `_Modes` tracks the modes, keyboard flags,
  title and colours it lacks, from our own scanner's events.

Query answers. The scanner (`orchestra.core.vtscan.VTScanner`) finds each query in
the stream; the engine is fed up to the end of it, and if the engine wrote no
answer, `Terminal._answer` answers from the model. Answers leave in stream order
through `take_answers`. A few queries stay unanswered on purpose, as in terminals
that lack the feature: OSC 52 clipboard reads (private), DECRQCRA, DECRQPSR,
DECRQTSR, DECRQUPSS, DECRQDE, DECREQTPARM, XTREPORTSGR, XTSMGRAPHICS, XTGETXRES,
OSC 22, ENQ (empty answerback), and DEC DSRs other than 6, 15, 25, 26 and 996.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import functools
import re
import weakref
from collections.abc import Callable
from typing import Any, Final, Protocol

import attrs

from orchestra import __version__
from orchestra.core.vtscan import VTScanner

RGB = tuple[int, int, int]

XTVERSION: Final = f"Orchestra {__version__}"
DA1: Final = b"\x1b[?62;22c"  # VT220 with ANSI colour, as Ghostty and xterm say
DA2: Final = b"\x1b[>1;0;0c"
DA3: Final = b"\x1bP!|00000000\x1b\\"
TERM_NAME: Final = "xterm-256color"  # the TERM agents run with
CELL_W: Final = 8  # pixel size of a cell, for size reports (nobody draws them)
CELL_H: Final = 16
DEFAULT_FG: Final[RGB] = (0xE5, 0xE5, 0xE5)  # a dark scheme until a client says otherwise
DEFAULT_BG: Final[RGB] = (0x00, 0x00, 0x00)


class TerminalError(RuntimeError):
    """The terminal engine is missing or behaves unlike the version we pinned."""


# ----------------------------------------------------------------------------------
# Colours


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


def _is_dark(rgb: RGB) -> bool:
    r, g, b = rgb
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128


# ----------------------------------------------------------------------------------
# Pieces both engines share


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


@attrs.frozen(kw_only=True)
class SavedCursor:
    """What DECSC (`ESC 7`) saved on one screen, as far as the engine lets us see."""

    x: int
    y: int
    pen: Pen
    origin: bool


_DECSCUSR = {  # (visual style, blinking) -> DECSCUSR parameter
    ("block", True): 1, ("block", False): 2, ("underline", True): 3,
    ("underline", False): 4, ("bar", True): 5, ("bar", False): 6,
}  # fmt: skip


def _osc(body: bytes) -> bytes:
    return b"\x1b]" + body + b"\x1b\\"


def _cup(y: int, x: int) -> bytes:
    return f"\x1b[{y + 1};{x + 1}H".encode()


class _Engine(Protocol):
    """What `Terminal` needs from a VT engine."""

    name: str
    extra: bytes  # scanner alternatives for the sequences the engine wants to see
    ctl: bytes  # C0 controls the scanner reports (BEL, where the engine cannot)
    osc: tuple[bytes, ...]  # OSC bodies (by prefix) the engine wants; () for all

    def feed(self, data: bytes) -> None: ...
    def event(self, seq: bytes) -> None: ...
    def string(self, body: bytes) -> None: ...
    def modify_other_keys(self) -> int: ...
    def resize(self, cols: int, rows: int) -> None: ...
    def rows_text(self) -> list[str]: ...
    def cursor(self) -> tuple[int, int]: ...
    def size(self) -> tuple[int, int]: ...
    def alt_screen(self) -> bool: ...
    def title(self) -> str: ...
    def mode(self, n: int, ansi: bool) -> int: ...
    def kitty_flags(self) -> int: ...
    def origin_top(self) -> int | None: ...
    def colors(self) -> tuple[RGB, RGB, RGB, list[RGB]]: ...
    def set_colors(self, fg: RGB, bg: RGB, palette: list[RGB]) -> None: ...
    def snapshot(self, primary: bool) -> bytes: ...
    def cells(self, x: int, y: int, cols: int, rows: int) -> bytes: ...
    def decor(self) -> bytes: ...
    def close(self) -> None: ...


# ----------------------------------------------------------------------------------
# libghostty-vt, through pyghostty


class _Ghostty:
    """pyghostty's private cffi layer, used here and nowhere else.

    pyghostty 0.1.3 wraps only part of libghostty-vt; callbacks (XTVERSION, device
    attributes, size, colour scheme), colour defaults, the VT formatter, cell styles,
    the render state (cursor shape) and snapshot cloning go through its `ffi`/`lib`.
    """

    def __init__(
        self,
        cols: int,
        rows: int,
        scrollback: int,
        on_reply: Callable[[bytes], None],
        on_bell: Callable[[], None],
        on_notify: Callable[[str, str], None],
    ):
        self._on_bell = on_bell
        self._on_notify = on_notify
        try:
            import pyghostty
            from pyghostty import ffi, lib
            from pyghostty.core import init_sized
        except (ImportError, OSError) as e:  # OSError: the shared library did not load
            raise TerminalError(f"pyghostty is not usable here: {e}") from e
        self.ffi: Any = ffi
        self.lib: Any = lib
        self._init_sized = init_sized
        try:
            self.t: Any = pyghostty.Terminal(cols=cols, rows=rows, scrollback=scrollback)
            self.h: Any = self.t._t[0]  # the raw GhosttyTerminal handle
        except (AttributeError, TypeError) as e:
            raise TerminalError(f"pyghostty's API moved (we pin 0.1.3): {e}") from e
        self.t.on_reply(on_reply)
        self._keep: list[Any] = []  # cffi callbacks and buffers that C holds on to
        self._size_cb: Callable[[], tuple[int, int]] = lambda: self.size()
        self._dark = True
        self._install_callbacks()
        self._set_bytes_opt("GHOSTTY_TERMINAL_OPT_TERMINFO_NAME", TERM_NAME.encode())
        self._set_opt("GHOSTTY_TERMINAL_OPT_GLYPH_PROTOCOL", ffi.new("bool*", False))
        # Images are drawn by the client's terminal; the model keeps little of them.
        self._set_opt(
            "GHOSTTY_TERMINAL_OPT_KITTY_IMAGE_STORAGE_LIMIT", ffi.new("uint64_t*", 16 << 20)
        )
        self._rs: Any = None  # render state, made at the first snapshot

    # -- options and callbacks

    def _check(self, res: int, what: str) -> None:
        if res != 0:
            raise TerminalError(f"libghostty-vt: {what} failed with code {res}")

    def _set_opt(self, name: str, value: Any) -> None:
        self._check(self.lib.ghostty_terminal_set(self.h, getattr(self.lib, name), value), name)

    def _set_bytes_opt(self, name: str, data: bytes) -> None:
        buf = self.ffi.new("uint8_t[]", data)
        s = self.ffi.new("GhosttyString*", {"ptr": buf, "len": len(data)})
        self._set_opt(name, s)

    def _install_callbacks(self) -> None:
        ffi, lib = self.ffi, self.lib
        name = XTVERSION.encode()
        name_buf = ffi.new("uint8_t[]", name)

        def xtversion(_t: Any, _u: Any) -> Any:
            return {"ptr": name_buf, "len": len(name)}

        def device_attributes(_t: Any, _u: Any, a: Any) -> bool:
            a.primary.conformance_level = 62
            a.primary.features[0] = 22
            a.primary.num_features = 1
            a.secondary.device_type = 1
            a.secondary.firmware_version = 0
            a.secondary.rom_cartridge = 0
            a.tertiary.unit_id = 0
            return True

        def size(_t: Any, _u: Any, out: Any) -> bool:
            cols, rows = self._size_cb()
            out.rows, out.columns, out.cell_width, out.cell_height = rows, cols, CELL_W, CELL_H
            return True

        def bell(_t: Any, _u: Any) -> None:
            self._on_bell()

        def text(s: Any) -> str:
            return bytes(ffi.buffer(s.ptr, s.len)).decode("utf-8", "replace") if s.len else ""

        def notification(_t: Any, _u: Any, n: Any) -> None:
            self._on_notify(text(n.title), text(n.body))

        def scheme(_t: Any, _u: Any, out: Any) -> bool:
            dark = self._dark
            out[0] = lib.GHOSTTY_COLOR_SCHEME_DARK if dark else lib.GHOSTTY_COLOR_SCHEME_LIGHT
            return True

        for opt, ctype, fn in (
            ("GHOSTTY_TERMINAL_OPT_XTVERSION", "GhosttyTerminalXtversionFn", xtversion),
            (
                "GHOSTTY_TERMINAL_OPT_DEVICE_ATTRIBUTES",
                "GhosttyTerminalDeviceAttributesFn",
                device_attributes,
            ),
            ("GHOSTTY_TERMINAL_OPT_SIZE", "GhosttyTerminalSizeFn", size),
            ("GHOSTTY_TERMINAL_OPT_COLOR_SCHEME", "GhosttyTerminalColorSchemeFn", scheme),
            ("GHOSTTY_TERMINAL_OPT_BELL", "GhosttyTerminalBellFn", bell),
            (
                "GHOSTTY_TERMINAL_OPT_DESKTOP_NOTIFICATION",
                "GhosttyTerminalDesktopNotificationFn",
                notification,
            ),
        ):
            cb = ffi.callback(ctype, fn)
            self._keep.append(cb)
            self._set_opt(opt, cb)
        self._keep.append(name_buf)

    def set_colors(self, fg: RGB, bg: RGB, palette: list[RGB]) -> None:
        ffi = self.ffi
        for opt, rgb in (
            ("GHOSTTY_TERMINAL_OPT_COLOR_FOREGROUND", fg),
            ("GHOSTTY_TERMINAL_OPT_COLOR_BACKGROUND", bg),
            ("GHOSTTY_TERMINAL_OPT_COLOR_CURSOR", fg),
        ):
            self._set_opt(opt, ffi.new("GhosttyColorRgb*", dict(zip("rgb", rgb, strict=True))))
        pal = ffi.new("GhosttyColorRgb[256]", [dict(zip("rgb", c, strict=True)) for c in palette])
        self._set_opt("GHOSTTY_TERMINAL_OPT_COLOR_PALETTE", pal)
        self._dark = _is_dark(bg)

    # -- reading state

    def get(self, key: str, ctype: str = "uint16_t") -> Any:
        out = self.ffi.new(ctype + "*")
        self._check(
            self.lib.ghostty_terminal_get(
                self.h, getattr(self.lib, "GHOSTTY_TERMINAL_DATA_" + key), out
            ),
            key,
        )
        return out[0]

    def size(self) -> tuple[int, int]:
        return self.get("COLS"), self.get("ROWS")

    def cursor(self) -> tuple[int, int]:
        return self.get("CURSOR_X"), self.get("CURSOR_Y")

    def alt_screen(self) -> bool:
        return bool(
            self.get("ACTIVE_SCREEN", "GhosttyTerminalScreen")
            == self.lib.GHOSTTY_TERMINAL_SCREEN_ALTERNATE
        )

    def mode(self, n: int, ansi: bool = False) -> bool | None:
        """Whether mode `n` is set; None for a mode libghostty-vt does not know."""
        c = self.ffi.new("GhosttyTerminalModeConfig*")
        c.mode = (n & 0x7FFF) | (ansi << 15)  # ghostty_mode_new, a static inline function
        if self.lib.ghostty_terminal_get(self.h, self.lib.GHOSTTY_TERMINAL_DATA_MODE, c) != 0:
            return None
        return bool(c.value)

    def title(self) -> str:
        s = self.ffi.new("GhosttyString*")
        self._check(
            self.lib.ghostty_terminal_get(self.h, self.lib.GHOSTTY_TERMINAL_DATA_TITLE, s), "title"
        )
        return bytes(self.ffi.buffer(s.ptr, s.len)).decode("utf-8", "replace") if s.len else ""

    def text(self) -> str:
        return str(self.t.text())

    def pen(self) -> Pen:
        st = self._init_sized("GhosttyStyle")
        self._check(
            self.lib.ghostty_terminal_get(self.h, self.lib.GHOSTTY_TERMINAL_DATA_CURSOR_STYLE, st),
            "pen",
        )
        return self._pen(st)

    def cell_pen(self, x: int, y: int) -> Pen:
        st = self._init_sized("GhosttyStyle")
        self._check(self.lib.ghostty_grid_ref_style(self.t.ref(x, y), st), "cell style")
        return self._pen(st)

    def _pen(self, st: Any) -> Pen:
        lib = self.lib

        def color(c: Any) -> tuple[str, Any] | None:
            if c.tag == lib.GHOSTTY_STYLE_COLOR_PALETTE:
                return ("palette", int(c.value.palette))
            if c.tag == lib.GHOSTTY_STYLE_COLOR_RGB:
                return ("rgb", (c.value.rgb.r, c.value.rgb.g, c.value.rgb.b))
            return None

        return Pen(
            fg=color(st.fg_color), bg=color(st.bg_color), underline_color=color(st.underline_color),
            bold=bool(st.bold), faint=bool(st.faint), italic=bool(st.italic),
            underline=int(st.underline), blink=bool(st.blink), inverse=bool(st.inverse),
            invisible=bool(st.invisible), strikethrough=bool(st.strikethrough),
            overline=bool(st.overline),
        )  # fmt: skip

    def cell_wide(self, x: int, y: int) -> int:
        """The cell's GHOSTTY_CELL_WIDE_* kind (narrow, wide, spacer tail or head)."""
        ffi, lib = self.ffi, self.lib
        cell = ffi.new("GhosttyCell*")
        self._check(lib.ghostty_grid_ref_cell(self.t.ref(x, y), cell), "cell")
        wide = ffi.new("GhosttyCellWide*")
        self._check(lib.ghostty_cell_get(cell[0], lib.GHOSTTY_CELL_DATA_WIDE, wide), "cell wide")
        return int(wide[0])

    def cell_text(self, x: int, y: int) -> str:
        """The grapheme in one cell ("" for the spacer half of a wide character)."""
        sel = self._init_sized("GhosttySelection")
        sel.start = self.t.ref(x, y)[0]
        sel.end = self.t.ref(x, y)[0]
        return str(self.t._format_sel(sel))

    def rgb(self, key: str) -> RGB | None:
        out = self.ffi.new("GhosttyColorRgb*")
        res = self.lib.ghostty_terminal_get(
            self.h, getattr(self.lib, "GHOSTTY_TERMINAL_DATA_" + key), out
        )
        if res != 0:
            return None
        return (out.r, out.g, out.b)

    def palette(self, key: str = "COLOR_PALETTE") -> list[RGB]:
        out = self.ffi.new("GhosttyColorRgb[256]")
        self._check(
            self.lib.ghostty_terminal_get(
                self.h, getattr(self.lib, "GHOSTTY_TERMINAL_DATA_" + key), out
            ),
            key,
        )
        return [(c.r, c.g, c.b) for c in out]

    def cursor_shape(self) -> tuple[str, bool]:
        """The cursor's visual style and blinking, from a render state."""
        ffi, lib = self.ffi, self.lib
        if self._rs is None:
            rs = ffi.new("GhosttyRenderState*")
            self._check(lib.ghostty_render_state_new(ffi.NULL, rs), "render state")
            self._rs = rs
            weakref.finalize(self, lib.ghostty_render_state_free, rs[0])
        rs = self._rs[0]
        self._check(lib.ghostty_render_state_update(rs, self.h), "render state update")
        st = ffi.new("GhosttyRenderStateCursorVisualStyle*")
        self._check(
            lib.ghostty_render_state_get(rs, lib.GHOSTTY_RENDER_STATE_DATA_CURSOR_VISUAL_STYLE, st),
            "cursor",
        )
        blink = ffi.new("bool*")
        self._check(
            lib.ghostty_render_state_get(rs, lib.GHOSTTY_RENDER_STATE_DATA_CURSOR_BLINKING, blink),
            "blink",
        )
        names = {
            lib.GHOSTTY_RENDER_STATE_CURSOR_VISUAL_STYLE_BAR: "bar",
            lib.GHOSTTY_RENDER_STATE_CURSOR_VISUAL_STYLE_BLOCK: "block",
            lib.GHOSTTY_RENDER_STATE_CURSOR_VISUAL_STYLE_UNDERLINE: "underline",
            lib.GHOSTTY_RENDER_STATE_CURSOR_VISUAL_STYLE_BLOCK_HOLLOW: "block",
        }
        return names.get(st[0], "block"), bool(blink[0])

    def format_vt(self) -> bytes:
        """The formatter's VT rendering of the active area, with modes, scrolling region,
        tab stops, keyboard modes, hyperlinks and charsets; without the cursor position
        and pen (done by `_GhosttyEngine`, which gets origin mode right) and without the
        palette (the client keeps its own)."""
        cols, rows = self.size()
        return self._format((0, 0), (cols - 1, rows - 1), state=True)

    def format_cells(
        self, start: tuple[int, int], end: tuple[int, int], *, rectangle: bool = False
    ) -> bytes:
        """The formatter's VT rendering of the cells from `start` to `end` (x, y), or of
        the rectangle they span (rows joined by CR LF): their text, styles and
        hyperlinks, with no terminal state."""
        return self._format(start, end, state=False, rectangle=rectangle)

    def _format(
        self,
        start: tuple[int, int],
        end: tuple[int, int],
        *,
        state: bool,
        rectangle: bool = False,
    ) -> bytes:
        ffi, lib = self.ffi, self.lib
        sel = self._init_sized("GhosttySelection")
        sel.start = self.t.ref(*start)[0]
        sel.end = self.t.ref(*end)[0]
        sel.rectangle = rectangle
        o = self._init_sized("GhosttyFormatterTerminalOptions")
        o.emit = lib.GHOSTTY_FORMATTER_FORMAT_VT
        o.unwrap = False
        o.trim = False
        e = o.extra
        e.palette, e.pwd = False, False
        e.modes = e.scrolling_region = e.tabstops = e.keyboard = state
        sc = e.screen
        sc.cursor, sc.style, sc.hyperlink = False, False, True
        sc.protection = sc.kitty_keyboard = sc.charsets = state
        o.selection = sel
        f = ffi.new("GhosttyFormatter*")
        self._check(lib.ghostty_formatter_terminal_new(ffi.NULL, f, self.h, o[0]), "formatter")
        try:
            n = ffi.new("size_t*")
            lib.ghostty_formatter_format_buf(f[0], ffi.NULL, 0, n)  # asks for the size
            buf = ffi.new("uint8_t[]", max(n[0], 1))
            self._check(lib.ghostty_formatter_format_buf(f[0], buf, len(buf), n), "format")
            return _sixteen_colors(bytes(ffi.buffer(buf, n[0])))
        finally:
            lib.ghostty_formatter_free(f[0])

    def clone(self) -> _Ghostty:
        """An independent copy of this terminal (through Ghostty's snapshot codec),
        without our callbacks: for rendering what-if states."""
        ffi, lib = self.ffi, self.lib
        n = ffi.new("size_t*")
        lib.ghostty_snapshot_encode_buf(self.h, ffi.NULL, 0, n)
        buf = ffi.new("uint8_t[]", n[0])
        self._check(lib.ghostty_snapshot_encode_buf(self.h, buf, n[0], n), "snapshot encode")
        dec = ffi.new("GhosttySnapshotDecoder*")
        self._check(
            lib.ghostty_snapshot_decoder_new_buf(ffi.NULL, dec, buf, n[0]), "snapshot decoder"
        )
        out = ffi.new("GhosttyTerminal*")
        try:
            self._check(lib.ghostty_snapshot_decoder_decode(dec[0], out), "snapshot decode")
        finally:
            lib.ghostty_snapshot_decoder_free(dec[0])
        c = object.__new__(_Ghostty)
        c.ffi, c.lib, c._init_sized, c._keep, c._rs, c._dark = (
            ffi,
            lib,
            self._init_sized,
            [],
            None,
            self._dark,
        )
        c._on_bell, c._on_notify = self._on_bell, self._on_notify
        t = object.__new__(type(self.t))
        t._t = out
        t._unknown_cb = t._reply_cb = t._cb_err = None
        t._free = weakref.finalize(t, lib.ghostty_terminal_free, out[0])
        c.t, c.h = t, out[0]
        c._size_cb = c.size
        return c

    def feed(self, data: bytes) -> None:
        self.t.feed(data)

    def resize(self, cols: int, rows: int) -> None:
        self.t.resize(cols, rows, CELL_W, CELL_H)

    def close(self) -> None:
        if self.t._t is not None:
            self.t.close()


# libghostty-vt keeps a palette colour as its index alone, and its formatter writes every
# one as `38;5;n`; but a terminal may show `38;5;1` unlike `31` (bold brightens only
# 30-37 in some, themes recolour only the 16-colour codes). Programs set colours 0-15
# with the 16-colour codes, so a redraw writes them so, as avt's dump and `Pen.sgr` do.
_INDEXED_SGR = re.compile(rb"\x1b\[([34])8;5;(\d{1,2})m")


def _sixteen_colors(vt: bytes) -> bytes:
    """`vt` with each `38;5;n`/`48;5;n` SGR for n < 16 written as `3x`/`9x`/`4x`/`10x`."""

    def one(m: re.Match[bytes]) -> bytes:
        n = int(m[2])
        if n >= 16:
            return m[0]
        base = int(m[1]) * 10 + (60 if n >= 8 else 0)
        return b"\x1b[%dm" % (base + n % 8)

    return _INDEXED_SGR.sub(one, vt)


_TRAILING_CHARSETS = re.compile(
    rb"(?:\x1b[()*+\-./][\x20-\x2f]*[\x30-\x7e]|[\x0e\x0f]|\x1b[no|}~])+\Z"
)
_REGION = re.compile(rb"\x1b\[(\d+);(\d+)r")


class _GhosttyEngine:
    """The libghostty-vt engine. It tracks every mode itself; what it does not expose
    (the DECSC saved cursor, modifyOtherKeys) is read from a clone or the formatter."""

    name = "ghostty"
    ctl = b""  # libghostty-vt reports BEL itself
    extra = b""
    # Kitty notifications (OSC 99); libghostty-vt reports OSC 9 and 777 itself.
    osc: tuple[bytes, ...] = (b"99;",)

    def __init__(
        self,
        cols: int,
        rows: int,
        scrollback: int,
        on_reply: Callable[[bytes], None],
        on_bell: Callable[[], None],
        on_notify: Callable[[str, str], None],
    ):
        self.g = _Ghostty(cols, rows, scrollback, on_reply, on_bell, on_notify)

    def feed(self, data: bytes) -> None:
        self.g.feed(data)

    def event(self, seq: bytes) -> None:
        pass

    def string(self, body: bytes) -> None:
        pass

    def close(self) -> None:
        self.g.close()

    def resize(self, cols: int, rows: int) -> None:
        self.g.resize(cols, rows)

    def rows_text(self) -> list[str]:
        return self.g.text().split("\n")

    def cursor(self) -> tuple[int, int]:
        return self.g.cursor()

    def size(self) -> tuple[int, int]:
        return self.g.size()

    def alt_screen(self) -> bool:
        return self.g.alt_screen()

    def title(self) -> str:
        return self.g.title()

    def mode(self, n: int, ansi: bool) -> int:
        v = self.g.mode(n, ansi)
        return 0 if v is None else 1 if v else 2

    def kitty_flags(self) -> int:
        return int(self.g.get("KITTY_KEYBOARD_FLAGS", "uint8_t"))

    def modify_other_keys(self) -> int:
        m = re.search(rb"\x1b\[>4;(\d+)m", self.g.format_vt())
        return int(m[1]) if m else 0

    def origin_top(self) -> int | None:
        if not self.g.mode(6):
            return None
        m = _REGION.search(self.g.format_vt())  # rare (a DECXCPR query): no faster way
        return int(m[1]) - 1 if m else 0

    def colors(self) -> tuple[RGB, RGB, RGB, list[RGB]]:
        fg = self.g.rgb("COLOR_FOREGROUND") or DEFAULT_FG
        bg = self.g.rgb("COLOR_BACKGROUND") or DEFAULT_BG
        cur = self.g.rgb("COLOR_CURSOR") or fg
        return fg, bg, cur, self.g.palette()

    def set_colors(self, fg: RGB, bg: RGB, palette: list[RGB]) -> None:
        self.g.set_colors(fg, bg, palette)

    def snapshot(self, primary: bool) -> bytes:
        g = self.g
        if primary and g.alt_screen():
            g = g.clone()  # a TerminalError here is a broken engine: let it out
            g.feed(b"\x1b[?1049l" if g.mode(1049) else b"\x1b[?1047l\x1b[?47l")
        # libghostty-vt keeps the DECSC state but does not show it: restore it in a
        # clone and look. (Nothing saved restores home and the default pen, which is
        # also what a fresh terminal restores, so saving that is harmless.) Should the
        # codec refuse some state, the snapshot goes without the saved cursor.
        saved = None
        with contextlib.suppress(TerminalError):
            probe = g.clone()
            probe.feed(b"\x1b8")
            x, y = probe.cursor()
            saved = SavedCursor(x=x, y=y, pen=probe.pen(), origin=bool(probe.mode(6)))
        return _ghostty_snapshot(g, saved)

    def cells(self, x: int, y: int, cols: int, rows: int) -> bytes:
        g, lib = self.g, self.g.lib
        if not (cols and rows):
            return b""
        x1 = x + cols - 1
        block = g.format_cells((x, y), (x1, y + rows - 1), rectangle=True).split(b"\r\n")
        out = []
        for r in range(rows):
            row = y + r
            body = block[r] if len(block) == rows else None
            x0, end, lead, trail = x, x1, b"", b""
            # A wide character cut by an edge is a blank, as tmux draws it: it cannot be
            # shown in part, and in full it would push the row out of line.
            if g.cell_wide(x0, row) == lib.GHOSTTY_CELL_WIDE_SPACER_TAIL:
                x0, lead, body = x0 + 1, b" ", None
            if end > x0 and g.cell_wide(end, row) == lib.GHOSTTY_CELL_WIDE_WIDE:
                end, trail, body = end - 1, b" ", None
            if body is None:
                body = g.format_cells((x0, row), (end, row)) if x0 <= end else b""
            out.append(_cup(r, 0) + b"\x1b[0m" + lead + body + b"\x1b[0m" + trail)
        return b"".join(out)

    def decor(self) -> bytes:
        return _ghostty_decor(self.g)


def _ghostty_decor(g: _Ghostty) -> bytes:
    """Colours the program set (OSC 10/11/12, OSC 4; the client keeps its defaults),
    the cursor's shape and the title."""
    out = []
    for key, num in (("COLOR_FOREGROUND", 10), ("COLOR_BACKGROUND", 11), ("COLOR_CURSOR", 12)):
        cur, default = g.rgb(key), g.rgb(key + "_DEFAULT")
        if cur is not None and cur != default:
            out.append(_osc(b"%d;" % num + color_spec(cur)))
    pal, pal_default = g.palette(), g.palette("COLOR_PALETTE_DEFAULT")
    for i, (c, d) in enumerate(zip(pal, pal_default, strict=True)):
        if c != d:
            out.append(_osc(b"4;%d;" % i + color_spec(c)))
    shape = g.cursor_shape()
    if shape != ("block", False):
        out.append(b"\x1b[%d q" % _DECSCUSR[shape])
    title = g.title()
    if title:
        out.append(_osc(b"2;" + title.encode()))
    return b"".join(out)


def _ghostty_snapshot(g: _Ghostty, saved: SavedCursor | None) -> bytes:
    """The formatter's rendering, completed: colours the program set, the DECSC saved
    cursor, the cursor (origin-mode aware, with a pending wrap), pen, charsets, shape."""
    body = g.format_vt()
    m = _TRAILING_CHARSETS.search(body)
    charsets = b""
    if m is not None:
        body, charsets = body[: m.start()], m.group()
    out = [body]
    rm = _REGION.search(body)
    top = int(rm[1]) - 1 if rm else 0
    origin = g.mode(6)
    if saved is not None:
        if saved.origin:
            out.append(b"\x1b[?6h" + _cup(max(saved.y - top, 0), saved.x))
        else:
            out.append(b"\x1b[?6l" + _cup(saved.y, saved.x))
        out.append(saved.pen.sgr() + b"\x1b7")
    out.append(b"\x1b[?6h" if origin else b"\x1b[?6l")
    x, y = g.cursor()
    row = y - top if origin else y
    if g.get("CURSOR_PENDING_WRAP", "bool"):
        # Print the last cell again so that the next character wraps, as it would.
        head = x - 1 if x and g.cell_wide(x, y) == g.lib.GHOSTTY_CELL_WIDE_SPACER_TAIL else x
        text = g.cell_text(head, y) or " "
        out.append(_cup(row, head) + g.cell_pen(head, y).sgr() + text.encode())
    else:
        out.append(_cup(row, x))
    out.append(g.pen().sgr())
    out.append(charsets)
    out.append(_ghostty_decor(g))
    return b"".join(out)


# ----------------------------------------------------------------------------------
# avt, through pyavt, with the modes it does not track


# DEC private modes we track for avt, with their reset values.
# (The same defaults as libghostty-vt, 1007 alternate scroll and 1036 included.)
_DEC_DEFAULTS: Final = {
    1: False, 5: False, 6: False, 7: True, 9: False, 12: False, 25: True, 45: False,
    47: False, 66: False, 69: False, 1000: False, 1002: False, 1003: False,
    1004: False, 1005: False, 1006: False, 1007: True, 1015: False, 1016: False,
    1036: True, 1047: False, 1048: False, 1049: False, 2004: False, 2026: False,
    2027: False, 2031: False, 2048: False,
}  # fmt: skip
_ANSI_DEFAULTS: Final = {4: False, 20: False}
# Modes the avt dump already renders; the rest are added to its snapshot.
_AVT_RENDERS: Final = frozenset({1, 6, 7, 25, 47, 1047, 1049, 1048})
_ALT_MODES: Final = (1049, 1047, 47)

# The modes a region snapshot sets: those that decide what a terminal sends (cursor keys,
# mouse, focus, paste, theme and size reports) and how the cursor and screen look. Not the
# layout ones (origin, margins, wrap, scrolling region): nothing is drawn on the picture
# but the next picture.
_REGION_MODES: Final = (
    1, 5, 12, 25, 1000, 1002, 1003, 1004, 1005, 1006, 1007, 1015, 1016, 1036, 2004, 2031,
    2048,
)  # fmt: skip
DECKPAM: Final = b"\x1b="  # application keypad

_CSI_PARAMS = re.compile(rb"\x1b\[([?>=<]?)([0-9;:]*)([\x20-\x2f]*)([\x40-\x7e])")


def _params(raw: bytes) -> list[int]:
    return [int(p) if p.isdigit() else 0 for p in raw.split(b";")] if raw else []


@attrs.define
class _Modes:
    """Terminal state avt does not track, rebuilt from the sequences the scanner reports.

    Invariants: `dec`/`ansi` hold every tracked mode (defaults from the tables above);
    `kitty` has one flag stack per screen (index 0 primary, 1 alternate), the current
    flags being the top (0 when empty); `region` is None for the whole screen.
    """

    dec: dict[int, bool] = attrs.Factory(lambda: dict(_DEC_DEFAULTS))
    ansi: dict[int, bool] = attrs.Factory(lambda: dict(_ANSI_DEFAULTS))
    kitty: list[list[int]] = attrs.Factory(lambda: [[], []])
    shape: int = 0  # DECSCUSR parameter; 0 = the terminal's default
    modkeys: int = 0  # XTMODKEYS modifyOtherKeys
    region: tuple[int, int] | None = None  # DECSTBM, 0-based inclusive
    title: str = ""
    titles: list[str] = attrs.Factory(list)  # XTWINOPS 22/23 title stack
    fg: RGB | None = None  # colours the program set (OSC 10/11/12/4)
    bg: RGB | None = None
    cursor_color: RGB | None = None
    palette: dict[int, RGB] = attrs.Factory(dict)

    def alt(self) -> bool:
        return any(self.dec[m] for m in _ALT_MODES)

    def apply(self, seq: bytes) -> None:
        if seq in (b"\x1b=", b"\x1b>"):  # DECKPAM / DECKPNM: mode 66, as Ghostty keeps it
            self.dec[66] = seq == b"\x1b="
            return
        m = _CSI_PARAMS.fullmatch(seq)
        if m is None:
            return
        prefix, params, inter, final = m[1], _params(m[2]), m[3], m[4]
        if final in b"hl" and not inter and prefix in (b"?", b""):
            table = self.dec if prefix == b"?" else self.ansi
            for p in params:
                if p in table:
                    table[p] = final == b"h"
        elif final in b"mn" and prefix == b">" and (not params or params[0] == 4):
            self.modkeys = params[1] if final == b"m" and len(params) > 1 else 0
        elif final == b"q" and inter == b" " and not prefix:
            self.shape = params[0] if params else 0
        elif final == b"u" and prefix in (b">", b"<", b"="):
            stack = self.kitty[int(self.alt())]
            if prefix == b">":
                stack.append(params[0] if params else 0)
                del stack[:-16]
            elif prefix == b"<":
                del stack[len(stack) - (params[0] if params else 1) :]
            else:
                flags = params[0] if params else 0
                how = params[1] if len(params) > 1 else 1
                cur = stack[-1] if stack else 0
                new = flags if how == 1 else cur | flags if how == 2 else cur & ~flags
                if stack:
                    stack[-1] = new
                else:
                    stack.append(new)
        elif final == b"r" and not prefix and not inter:
            t = params[0] if params else 0
            b = params[1] if len(params) > 1 else 0
            self.region = (t - 1, b - 1) if t > 1 or b else None
        elif final == b"p" and inter == b"!":
            for k in (1, 6, 66, 25):
                self.dec[k] = _DEC_DEFAULTS[k]
            self.dec[7] = True
            self.ansi[4] = False
            self.region = None
        elif final == b"t" and not prefix and params and params[0] in (22, 23):
            if params[0] == 22:
                self.titles.append(self.title)
                del self.titles[:-10]
            elif self.titles:
                self.title = self.titles.pop()

    def osc(self, body: bytes) -> None:
        num, _, rest = body.partition(b";")
        if num in (b"0", b"2"):
            self.title = rest.decode("utf-8", "replace")
        elif num == b"4":
            items = rest.split(b";")
            for i, spec in zip(items[0::2], items[1::2], strict=False):
                with contextlib.suppress(ValueError):
                    self.palette[int(i)] = parse_color(spec.decode("latin-1"))
        elif num == b"104":
            if rest:
                for i in rest.split(b";"):
                    with contextlib.suppress(ValueError):
                        self.palette.pop(int(i), None)
            else:
                self.palette.clear()
        elif num in (b"10", b"11", b"12"):
            for k, spec in enumerate(rest.split(b";")):
                with contextlib.suppress(ValueError):
                    rgb = parse_color(spec.decode("latin-1"))
                    which = int(num) + k
                    if which == 10:
                        self.fg = rgb
                    elif which == 11:
                        self.bg = rgb
                    elif which == 12:
                        self.cursor_color = rgb
        elif num == b"110":
            self.fg = None
        elif num == b"111":
            self.bg = None
        elif num == b"112":
            self.cursor_color = None

    def render(self) -> bytes:
        """Escape sequences for the state avt's own dump leaves out."""
        out = []
        on = [k for k, v in self.dec.items() if v != _DEC_DEFAULTS[k] and k not in _AVT_RENDERS]
        for k in sorted(on):
            out.append(b"\x1b[?%d%s" % (k, b"h" if self.dec[k] else b"l"))
        flags = self.kitty_flags()
        if flags:
            out.append(b"\x1b[=%d;1u" % flags)
        return b"".join(out) + self.decor()

    def decor(self) -> bytes:
        """The cursor's shape, colours the program set and the title."""
        out = []
        if self.shape:
            out.append(b"\x1b[%d q" % self.shape)
        for n, c in ((10, self.fg), (11, self.bg), (12, self.cursor_color)):
            if c is not None:
                out.append(_osc(b"%d;" % n + color_spec(c)))
        for i, c in sorted(self.palette.items()):
            out.append(_osc(b"4;%d;" % i + color_spec(c)))
        if self.title:
            out.append(_osc(b"2;" + self.title.encode()))
        return b"".join(out)

    def kitty_flags(self) -> int:
        stack = self.kitty[int(self.alt())]
        return stack[-1] if stack else 0


_REP = re.compile(r"(.)\x1b\[(\d+)b", re.S)


def _avt_dump_bytes(dump: str) -> bytes:
    """avt's dump as 7-bit bytes: its 8-bit CSI written as ESC [, and REP (`CSI n b`)
    expanded, as not every client terminal knows REP."""
    s = dump.replace("\x9b", "\x1b[")
    s = _REP.sub(lambda m: m[1] * (int(m[2]) + 1), s)
    return s.encode("utf-8", "replace")


class _AvtEngine:
    """The avt engine (pyavt), with `_Modes` for what avt does not track."""

    name = "avt"
    ctl = b"\x07"
    osc: tuple[bytes, ...] = ()  # every OSC: titles, colours, notifications
    # RIS, DECKPAM/DECKPNM; XTMODKEYS, kitty keyboard push/pop/set, DECSET/DECRST and
    # SM/RM, DECSCUSR, DECSTBM, DECSTR, title stack (one group, for the regex's sake).
    extra = (
        rb"\x1b(?:[c=>]|\[(?:>[0-9;]*+[mnu]|[=<][0-9;]*+u|\??[0-9;]*+[hl]|[0-9]*+ q"
        rb"|[0-9;]*+r|!p|2[23](?:;[0-9]*+)*+t))"
    )

    def __init__(
        self,
        cols: int,
        rows: int,
        scrollback: int,
        on_reply: Callable[[bytes], None],
        on_bell: Callable[[], None],
        on_notify: Callable[[str, str], None],
    ):
        try:
            import avt
        except ImportError as e:
            raise TerminalError(f"pyavt is not usable here: {e}") from e
        self.vt: Any = avt.Vt(cols, rows, scrollback)
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        self.m = _Modes()
        self._fg, self._bg, self._palette = DEFAULT_FG, DEFAULT_BG, list(XTERM_PALETTE)

    def feed(self, data: bytes) -> None:
        text = self._decode(data)
        if text:
            self.vt.feed_str(text)

    def event(self, seq: bytes) -> None:
        if seq == b"\x1bc":  # RIS
            self.m = _Modes()
        else:
            self.m.apply(seq)

    def string(self, body: bytes) -> None:
        self.m.osc(body)

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
                mode = next(m for m in _ALT_MODES if self.m.dec[m]) if alt else 1047
                dump = dump[:cut] + f"\x1b[m\x1b[?{mode}h" + dump[cut + len(marker) :]
            body = _avt_dump_bytes(dump)
        return body + self.m.render()

    def cells(self, x: int, y: int, cols: int, rows: int) -> bytes:
        out = []
        lines = self.vt.view()
        for r in range(rows):
            cells = lines[y + r].cells
            row, pen, seen = [_cup(r, 0), b"\x1b[0m"], Pen(), None
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


# ----------------------------------------------------------------------------------
# Answers we give where the engine gives none


_TCAP_HEX = {  # XTGETTCAP answers for the avt engine (Ghostty has its own terminfo)
    "TN": TERM_NAME, "Co": "256", "colors": "256", "RGB": "8/8/8",
}  # fmt: skip
_DSR_DEC = {15: b"\x1b[?13n", 25: b"\x1b[?20n", 26: b"\x1b[?27;1;0;0n"}
_CSI_Q = re.compile(rb"\x1b\[([?>=&\"]?)([0-9;?]*)([\x20-\x2f]*)([\x40-\x7e])")


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
            self._e: _Engine = _GhosttyEngine(
                cols, rows, scrollback, self._reply, self._bell, self._desktop_notification
            )
        elif name == "avt":
            self._e = _AvtEngine(
                cols, rows, scrollback, self._reply, self._bell, self._desktop_notification
            )
        else:
            raise ValueError(f"unknown terminal engine {name!r}; use 'ghostty' or 'avt'")
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
        self._notes: dict[bytes, dict[str, str]] = {}  # OSC 99 notifications by id
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
        if seq.startswith(b"\x1bP+q"):
            self._tcap_fallback(seq, b"".join(replied))
        elif not replied:
            ans = self._answer(seq)
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
        out.append(_cup(row, col))
        if not (x <= cx < x + cols and y <= cy < y + rows) and self.mode(25):
            out.append(b"\x1b[?25l")  # not in the picture: not shown somewhere else
        out.append(self._e.decor())
        return b"".join(out)

    def _input_modes(self) -> bytes:
        """The modes a terminal must have for a region snapshot (see `_REGION_MODES`)."""
        out = []
        e = self._e
        for n in _REGION_MODES:
            v = e.mode(n, False)
            if v and (v == 1) != _DEC_DEFAULTS[n]:
                out.append(b"\x1b[?%d%s" % (n, b"h" if v == 1 else b"l"))
        if e.mode(20, True) == 1:
            out.append(b"\x1b[20h")  # Return sends CR LF
        if e.mode(66, False) == 1:
            out.append(DECKPAM)  # what every terminal knows, unlike DECNKM
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
        if not seq.startswith(b"\x1b]"):
            return
        body = seq[2:]
        if body.endswith(b"\x07"):
            body = body[:-1]
        elif body.endswith(b"\x1b\\"):
            body = body[:-2]
        elif body[-1:] in (b"\x18", b"\x1a"):
            return  # aborted
        self._e.string(body)
        num, _, rest = body.partition(b";")
        if self._e.name == "ghostty" and num in (b"9", b"777"):
            pass  # libghostty-vt reports these (`_desktop_notification`)
        elif num == b"9" and not re.match(rb"\d+(;|$)", rest):
            self._notify(rest.decode("utf-8", "replace"))
        elif num == b"777":
            parts = rest.split(b";", 2)
            if parts[0] == b"notify":
                text = b": ".join(p for p in parts[1:] if p)
                self._notify(text.decode("utf-8", "replace"))
        elif num == b"99":
            meta, _, payload = rest.partition(b";")
            keys = dict(kv.partition(b"=")[::2] for kv in meta.split(b":") if kv)
            if keys.get(b"p", b"title") not in (b"title", b"body"):
                return
            if keys.get(b"e") == b"1":
                with contextlib.suppress(ValueError):
                    payload = base64.b64decode(payload)
            note = self._notes.setdefault(keys.get(b"i", b""), {})
            note[keys.get(b"p", b"title").decode()] = payload.decode("utf-8", "replace")
            if len(self._notes) > 32:
                self._notes.pop(next(iter(self._notes)))
            self._notify(": ".join(v for v in (note.get("title"), note.get("body")) if v))

    def _desktop_notification(self, title: str, body: str) -> None:
        self._notify(": ".join(v for v in (title, body) if v))

    def _notify(self, text: str) -> None:
        self.attention = True
        self.notification = text[:1000]

    # -- answers

    def _tcap_fallback(self, seq: bytes, replied: bytes) -> None:
        """XTGETTCAP: answer, as "unknown", each capability the engine left unanswered."""
        body = seq[4:].split(b"\x1b")[0]
        answered = replied.upper()
        for cap in body.split(b";"):
            if not cap:
                continue
            if b"+R" + cap.upper() in answered:
                continue
            try:
                name = bytes.fromhex(cap.decode("ascii")).decode("ascii")
            except ValueError:
                name = ""
            value = _TCAP_HEX.get(name) if self._e.name == "avt" else None
            if value is not None:
                self._answers.append(
                    b"\x1bP1+r" + cap + b"=" + value.encode().hex().encode() + b"\x1b\\"
                )
            else:
                self._answers.append(b"\x1bP0+r" + cap + b"\x1b\\")

    def _answer(self, seq: bytes) -> bytes | None:
        """Our answer to a query the engine did not answer (None: stay silent)."""
        e = self._e
        if seq == b"\x1bZ":
            return DA1
        if seq.startswith(b"\x1b]"):
            return self._osc_answer(seq)
        if seq.startswith(b"\x1bP$q"):
            return self._decrqss(seq[4:].split(b"\x1b")[0])
        if seq.startswith(b"\x1b_G"):
            keys = seq[3:].split(b";")[0].split(b"\x1b")[0].split(b",")
            if b"q=2" in keys:
                return None
            ident = next((k for k in keys if k.startswith(b"i=")), b"i=0")
            return b"\x1b_G" + ident + b";ENOTSUPPORTED:no graphics in this model\x1b\\"
        m = _CSI_Q.fullmatch(seq)
        if m is None:
            return None
        prefix, params, inter, final = m[1], _params(m[2]), m[3], m[4]
        cols, rows = e.size()
        if final == b"c":
            return {b"": DA1, b">": DA2, b"=": DA3}.get(prefix)
        if final == b"n":
            if prefix == b"" and params == [5]:
                return b"\x1b[0n"
            x, y = e.cursor()
            top = e.origin_top()
            row = y - top if top is not None else y
            if prefix == b"" and params == [6]:
                return b"\x1b[%d;%dR" % (row + 1, x + 1)
            if prefix == b"?" and params == [6]:
                return b"\x1b[?%d;%d;1R" % (row + 1, x + 1)
            if prefix == b"?" and params == [996]:
                return b"\x1b[?997;%dn" % (1 if _is_dark(e.colors()[1]) else 2)
            return _DSR_DEC.get(params[0]) if prefix == b"?" and params else None
        if final == b"p" and inter == b"$":
            n = params[0] if params else 0
            ansi = prefix != b"?"
            return b"\x1b[%s%d;%d$y" % (b"" if ansi else b"?", n, e.mode(n, ansi))
        if final == b"q" and prefix == b">":
            return b"\x1bP>|" + XTVERSION.encode() + b"\x1b\\"
        if final == b"u" and prefix == b"?":
            return b"\x1b[?%du" % e.kitty_flags()
        if final == b"m":  # XTQMODKEYS, and Gemini's `CSI > 4 ; ? m`
            which = params[0] if params else 4
            return b"\x1b[>%d;%dm" % (which, e.modify_other_keys() if which == 4 else 0)
        if final == b"t" and params:
            return {
                11: b"\x1b[1t",
                13: b"\x1b[3;0;0t",
                14: b"\x1b[4;%d;%dt" % (rows * CELL_H, cols * CELL_W),
                15: b"\x1b[5;%d;%dt" % (rows * CELL_H, cols * CELL_W),
                16: b"\x1b[6;%d;%dt" % (CELL_H, CELL_W),
                18: b"\x1b[8;%d;%dt" % (rows, cols),
                19: b"\x1b[9;%d;%dt" % (rows, cols),
                20: b"\x1b]L\x1b\\",  # icon label and title: empty, as reading them
                21: b"\x1b]l\x1b\\",  # back into the input is an injection risk
            }.get(params[0])
        return None

    def _osc_answer(self, seq: bytes) -> bytes | None:
        term = b"\x07" if seq.endswith(b"\x07") else b"\x1b\\"
        body = seq[2 : -len(term)] if seq.endswith(term) else seq[2:]
        num, _, rest = body.partition(b";")
        fg, bg, cur, pal = self._e.colors()
        if num == b"4":
            items = rest.split(b";")
            out = []
            for i, spec in zip(items[0::2], items[1::2], strict=False):
                if spec == b"?" and i.isdigit() and int(i) < 256:
                    out.append(b"\x1b]4;" + i + b";" + color_spec(pal[int(i)]) + term)
            return b"".join(out) or None
        if num.isdigit() and 10 <= int(num) <= 19:
            dynamic = {
                10: fg,
                11: bg,
                12: cur,
                13: fg,
                14: bg,
                15: fg,
                16: bg,
                17: fg,
                18: cur,
                19: bg,
            }
            out = []
            for k, v in enumerate(rest.split(b";")):
                which = int(num) + k
                if v == b"?" and which in dynamic:
                    out.append(b"\x1b]%d;" % which + color_spec(dynamic[which]) + term)
            return b"".join(out) or None
        if num == b"99":
            meta = rest.split(b";", 1)[0]
            ident = next((k for k in meta.split(b":") if k.startswith(b"i=")), b"i=0")
            return _osc(b"99;" + ident + b":p=?;a=focus:o=always:p=title,body:u=0,1,2")
        if num == b"1337":
            if rest == b"ReportCellSize":
                return _osc(b"1337;ReportCellSize=%d.0;%d.0;1.0" % (CELL_H, CELL_W))
            if rest == b"Capabilities":
                return _osc(b"1337;Capabilities=")
            if rest.startswith(b"ReportVariable="):
                return _osc(b"1337;ReportVariable=")
        if num == b"21":
            colours = {b"foreground": fg, b"background": bg, b"cursor": cur}
            out = []
            for item in rest.split(b";"):
                key = item[:-2]
                if item.endswith(b"=?") and key in colours:
                    out.append(key + b"=" + color_spec(colours[key]))
            return _osc(b"21;" + b";".join(out)) if out else None
        return None

    def _decrqss(self, what: bytes) -> bytes:
        e = self._e
        if what == b"m":
            return b"\x1bP1$r0m\x1b\\"
        if what == b" q" and isinstance(e, _AvtEngine):
            return b"\x1bP1$r%d q\x1b\\" % (e.m.shape or 2)
        if what == b"r":
            rows = e.size()[1]
            region = e.m.region if isinstance(e, _AvtEngine) else None
            t, b = region if region else (0, rows - 1)
            return b"\x1bP1$r%d;%dr\x1b\\" % (t + 1, b + 1)
        return b"\x1bP0$r\x1b\\"


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
