"""The terminal state an engine may not track, rebuilt from the sequences that set it.

`ModeTracker` keeps DEC private and ANSI modes, the kitty keyboard flag stacks,
modifyOtherKeys, the cursor's shape, the scrolling region, the title (and its stack)
and the colours a program set, and writes them back as escape sequences. It reads
nothing itself: the model's one scanner (`orchestra.core.vtscan.VTScanner`, given
`SEQUENCES` as its `extra`) reports each complete sequence wherever reads cut it, and
the tracker takes them (`apply` for ESC and CSI ones, `apply_osc` for OSC bodies).

Stdlib and attrs only, no I/O.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import Final

import attrs

from orchestra.core.colors import RGB, color_spec, parse_color
from orchestra.core.vtscan import osc, parse_csi

SEQUENCES: Final = (
    rb"\x1b(?:[c=>]|\[(?:>[0-9;]*+[mnu]|[=<][0-9;]*+u|\??[0-9;]*+[hl]|[0-9]*+ q"
    rb"|[0-9;]*+r|!p|2[23](?:;[0-9]*+)*+t))"
)
"""The sequences the tracker reads, as a `VTScanner` `extra` alternative: RIS,
DECKPAM/DECKPNM; XTMODKEYS, kitty keyboard push/pop/set, DECSET/DECRST and SM/RM,
DECSCUSR, DECSTBM, DECSTR, the title stack (one group, for the regex's sake)."""

RIS: Final = b"\x1bc"
DECKPAM: Final = b"\x1b="  # application keypad (mode 66, as Ghostty keeps it)
DECKPNM: Final = b"\x1b>"

# DEC private modes we track, with their reset values (the same as libghostty-vt's,
# 1007 alternate scroll and 1036 included).
DEC_DEFAULTS: Final = {
    1: False, 5: False, 6: False, 7: True, 9: False, 12: False, 25: True, 45: False,
    47: False, 66: False, 69: False, 1000: False, 1002: False, 1003: False,
    1004: False, 1005: False, 1006: False, 1007: True, 1015: False, 1016: False,
    1036: True, 1047: False, 1048: False, 1049: False, 2004: False, 2026: False,
    2027: False, 2031: False, 2048: False,
}  # fmt: skip
ANSI_DEFAULTS: Final = {4: False, 20: False}
ALT_SCREEN_MODES: Final = (1049, 1047, 47)

INPUT_MODES: Final = (
    1, 5, 12, 25, 1000, 1002, 1003, 1004, 1005, 1006, 1007, 1015, 1016, 1036, 2004, 2031,
    2048,
)  # fmt: skip
"""The DEC modes that decide what a terminal sends (cursor keys, mouse, focus, paste,
theme and size reports) and how the cursor and screen look; not the layout ones
(origin, margins, wrap, scrolling region)."""


# What `reset` leaves alone: the screens (the redraw picks one itself), the synchronized
# update it opens, the cursor save/restore pair, and what is the person's terminal's own
# preference (the cursor's blink, alternate scroll, meta sends escape: terminals differ on
# their defaults, and the person set theirs).
_NOT_RESET: Final = frozenset({*ALT_SCREEN_MODES, 1048, 2026, 12, 1007, 1036})


def reset() -> bytes:
    """Escape sequences that put a terminal in the state `ModeTracker.render` starts from:
    every tracked mode at its default, the whole screen as the scrolling region, the default
    pen, charset, keyboard flags, cursor shape and colours. Each is set one by one: DECSTR
    alone is not enough (tmux 3.3 ignores it), and a redraw after a cut stream would
    otherwise leave the client with whatever the lost bytes set (a hidden cursor, mouse
    reporting, origin mode)."""
    out = [b"\x1b[!p\x1b[0m\x1b(B\x0f\x1b[r\x1b>\x1b[0 q\x1b[>4m\x1b[=0;1u"]
    for k, on in sorted(DEC_DEFAULTS.items()):
        if k not in _NOT_RESET:
            out.append(b"\x1b[?%d%s" % (k, b"h" if on else b"l"))
    for k, on in sorted(ANSI_DEFAULTS.items()):
        out.append(b"\x1b[%d%s" % (k, b"h" if on else b"l"))
    out += [osc(b"104"), osc(b"110"), osc(b"111"), osc(b"112")]
    return b"".join(out)


@attrs.define
class ModeTracker:
    """Modes, keyboard flags, cursor shape, region, title and colours, as sequences set them.

    Invariants: `dec`/`ansi` hold every tracked mode (defaults from the tables above);
    `kitty` has one flag stack per screen (index 0 primary, 1 alternate), the current
    flags being the top (0 when empty) and at most 16 deep; `region` is None for the
    whole screen; `titles` holds at most 10 titles.
    """

    dec: dict[int, bool] = attrs.Factory(lambda: dict(DEC_DEFAULTS))
    ansi: dict[int, bool] = attrs.Factory(lambda: dict(ANSI_DEFAULTS))
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
        """Whether the alternate screen is active."""
        return any(self.dec[m] for m in ALT_SCREEN_MODES)

    def kitty_flags(self) -> int:
        """The kitty keyboard flags in effect on the active screen."""
        stack = self.kitty[int(self.alt())]
        return stack[-1] if stack else 0

    def apply(self, seq: bytes) -> None:
        """Take one complete ESC or CSI sequence (others change nothing)."""
        csi = parse_csi(seq)
        if csi is None:
            if seq in (DECKPAM, DECKPNM):
                self.dec[66] = seq == DECKPAM
            elif seq == RIS:
                fresh = ModeTracker()
                for a in attrs.fields(ModeTracker):
                    setattr(self, a.name, getattr(fresh, a.name))
            return
        prefix, params, inter, final = csi
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
            self._kitty(prefix, params)
        elif final == b"r" and not prefix and not inter:
            t = params[0] if params else 0
            b = params[1] if len(params) > 1 else 0
            self.region = (t - 1, b - 1) if t > 1 or b else None
        elif final == b"p" and inter == b"!":  # DECSTR, a soft reset
            for k in (1, 6, 66, 25):
                self.dec[k] = DEC_DEFAULTS[k]
            self.dec[7] = True
            self.ansi[4] = False
            self.region = None
        elif final == b"t" and not prefix and params and params[0] in (22, 23):
            if params[0] == 22:
                self.titles.append(self.title)
                del self.titles[:-10]
            elif self.titles:
                self.title = self.titles.pop()

    def _kitty(self, prefix: bytes, params: list[int]) -> None:
        """Kitty keyboard flags: `CSI > f u` pushes, `CSI < n u` pops, `CSI = f ; how u`
        sets (1), adds (2) or removes (3) flags."""
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

    def apply_osc(self, body: bytes) -> None:
        """Take one OSC body (between `ESC ]` and its terminator): titles and colours."""
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

    def render(self, drawn: Collection[int] = ()) -> bytes:
        """Escape sequences that set this state on a fresh terminal: every DEC mode off
        its default but those in `drawn` (which a screen dump already sets), keyboard
        flags, and `decor`."""
        out = []
        on = [k for k, v in self.dec.items() if v != DEC_DEFAULTS[k] and k not in drawn]
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
                out.append(osc(b"%d;" % n + color_spec(c)))
        for i, c in sorted(self.palette.items()):
            out.append(osc(b"4;%d;" % i + color_spec(c)))
        if self.title:
            out.append(osc(b"2;" + self.title.encode()))
        return b"".join(out)
