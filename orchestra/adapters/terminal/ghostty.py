"""libghostty-vt through pyghostty 0.1.3 (wheels: Linux x86_64 and aarch64).

It matches tmux on every recorded agent stream, tracks every mode, answers most
queries itself, and its formatter renders cells, cursor and modes; we add the DECSC
saved cursor (read from a clone), origin-mode cursor placement, cursor shape, colours
the program set, and the title. Its cffi layer is private to pyghostty: every use of it
is in `Ghostty` below, so an upgrade that moves it fails there.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Callable
from typing import Any

import attrs

from orchestra.adapters.terminal.engine import (
    XTVERSION,
    OnBell,
    OnNotify,
    OnReply,
    TerminalError,
    cup,
)
from orchestra.core.colors import DEFAULT_BG, DEFAULT_FG, RGB, color_spec, is_dark
from orchestra.core.queries import CELL_H, CELL_W, TERM_NAME
from orchestra.core.sgr import Pen, sixteen_colors
from orchestra.core.vtscan import osc


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


class Ghostty:
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
        on_reply: OnReply,
        on_bell: OnBell,
        on_notify: OnNotify,
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
        self._dark = is_dark(bg)

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
        and pen (done by `GhosttyEngine`, which gets origin mode right) and without the
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
            return sixteen_colors(bytes(ffi.buffer(buf, n[0])))
        finally:
            lib.ghostty_formatter_free(f[0])

    def clone(self) -> Ghostty:
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
        c = object.__new__(Ghostty)
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


_TRAILING_CHARSETS = re.compile(
    rb"(?:\x1b[()*+\-./][\x20-\x2f]*[\x30-\x7e]|[\x0e\x0f]|\x1b[no|}~])+\Z"
)
_REGION = re.compile(rb"\x1b\[(\d+);(\d+)r")


class GhosttyEngine:
    """The libghostty-vt engine. It tracks every mode itself; what it does not expose
    (the DECSC saved cursor, modifyOtherKeys) is read from a clone or the formatter."""

    name = "ghostty"
    ctl = b""  # libghostty-vt reports BEL itself
    extra = b""
    # Kitty notifications (OSC 99); libghostty-vt reports OSC 9 and 777 itself.
    osc: tuple[bytes, ...] = (b"99;",)
    terminfo: dict[str, str] = {}  # libghostty-vt answers XTGETTCAP from its own terminfo
    reports_notifications = frozenset({b"9", b"777"})

    def __init__(
        self,
        cols: int,
        rows: int,
        scrollback: int,
        on_reply: OnReply,
        on_bell: OnBell,
        on_notify: OnNotify,
    ):
        self.g = Ghostty(cols, rows, scrollback, on_reply, on_bell, on_notify)

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

    def cursor_style(self) -> int | None:
        return None  # libghostty-vt answers DECRQSS itself

    def scroll_region(self) -> tuple[int, int] | None:
        return None

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
            out.append(cup(r, 0) + b"\x1b[0m" + lead + body + b"\x1b[0m" + trail)
        return b"".join(out)

    def decor(self) -> bytes:
        return _ghostty_decor(self.g)


def _ghostty_decor(g: Ghostty) -> bytes:
    """Colours the program set (OSC 10/11/12, OSC 4; the client keeps its defaults),
    the cursor's shape and the title."""
    out = []
    for key, num in (("COLOR_FOREGROUND", 10), ("COLOR_BACKGROUND", 11), ("COLOR_CURSOR", 12)):
        cur, default = g.rgb(key), g.rgb(key + "_DEFAULT")
        if cur is not None and cur != default:
            out.append(osc(b"%d;" % num + color_spec(cur)))
    pal, pal_default = g.palette(), g.palette("COLOR_PALETTE_DEFAULT")
    for i, (c, d) in enumerate(zip(pal, pal_default, strict=True)):
        if c != d:
            out.append(osc(b"4;%d;" % i + color_spec(c)))
    shape = g.cursor_shape()
    if shape != ("block", False):
        out.append(b"\x1b[%d q" % _DECSCUSR[shape])
    title = g.title()
    if title:
        out.append(osc(b"2;" + title.encode()))
    return b"".join(out)


def _ghostty_snapshot(g: Ghostty, saved: SavedCursor | None) -> bytes:
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
            out.append(b"\x1b[?6h" + cup(max(saved.y - top, 0), saved.x))
        else:
            out.append(b"\x1b[?6l" + cup(saved.y, saved.x))
        out.append(saved.pen.sgr() + b"\x1b7")
    out.append(b"\x1b[?6h" if origin else b"\x1b[?6l")
    x, y = g.cursor()
    row = y - top if origin else y
    if g.get("CURSOR_PENDING_WRAP", "bool"):
        # Print the last cell again so that the next character wraps, as it would.
        head = x - 1 if x and g.cell_wide(x, y) == g.lib.GHOSTTY_CELL_WIDE_SPACER_TAIL else x
        text = g.cell_text(head, y) or " "
        out.append(cup(row, head) + g.cell_pen(head, y).sgr() + text.encode())
    else:
        out.append(cup(row, x))
    out.append(g.pen().sgr())
    out.append(charsets)
    out.append(_ghostty_decor(g))
    return b"".join(out)
