"""Our answers to a program's terminal queries, from the terminal's state.

`orchestra.core.vtscan.VTScanner` finds each query in the stream (its "q" events);
`QueryAnswerer.answer` says what a terminal answers to one, reading the state it needs
(`ScreenState`, the engine's) only when it needs it. The model asks us only for the
queries its engine left unanswered (avt answers none, Ghostty most).

A few queries stay unanswered on purpose, as in terminals that lack the feature:
OSC 52 clipboard reads (private), DECRQCRA, DECRQPSR, DECRQTSR, DECRQUPSS, DECRQDE,
DECREQTPARM, XTREPORTSGR, XTSMGRAPHICS, XTGETXRES, OSC 22, ENQ (empty answerback), and
DEC DSRs other than 6, 15, 25, 26 and 996.

Stdlib and attrs only, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

import attrs

from orchestra.core.colors import RGB, color_spec, is_dark
from orchestra.core.vtscan import osc, parse_csi

DA1: Final = b"\x1b[?62;22c"  # VT220 with ANSI colour, as Ghostty and xterm say
DA2: Final = b"\x1b[>1;0;0c"
DA3: Final = b"\x1bP!|00000000\x1b\\"
TERM_NAME: Final = "xterm-256color"  # the TERM agents run with
CELL_W: Final = 8  # pixel size of a cell, for size reports (nobody draws them)
CELL_H: Final = 16
TERMINFO: Final = {"TN": TERM_NAME, "Co": "256", "colors": "256", "RGB": "8/8/8"}
"""XTGETTCAP answers for an engine without a terminfo of its own."""

_DSR_DEC: Final = {15: b"\x1b[?13n", 25: b"\x1b[?20n", 26: b"\x1b[?27;1;0;0n"}


class ScreenState(Protocol):
    """What answering reads of the terminal (an engine provides it)."""

    def size(self) -> tuple[int, int]:
        """(columns, rows)."""
        ...

    def cursor(self) -> tuple[int, int]:
        """(column, row), 0-based."""
        ...

    def origin_top(self) -> int | None:
        """The scrolling region's top row in origin mode (DECOM); None when it is off."""
        ...

    def colors(self) -> tuple[RGB, RGB, RGB, list[RGB]]:
        """Foreground, background, cursor colour and the 256-colour palette in effect."""
        ...

    def mode(self, n: int, ansi: bool) -> int:
        """DECRQM's value for a mode: 0 not recognised, 1 set, 2 reset."""
        ...

    def kitty_flags(self) -> int: ...

    def modify_other_keys(self) -> int: ...

    def cursor_style(self) -> int | None:
        """The DECSCUSR parameter in effect; None when not known here."""
        ...

    def scroll_region(self) -> tuple[int, int] | None:
        """DECSTBM's (top, bottom) rows, 0-based inclusive; None for the whole screen
        (or when not known here)."""
        ...


@attrs.frozen(kw_only=True)
class QueryAnswerer:
    """Answers queries as one terminal: `xtversion` is the name it reports (XTVERSION),
    `terminfo` the capabilities it reports to XTGETTCAP (hex-encoded on the wire)."""

    xtversion: str
    terminfo: Mapping[str, str] = attrs.field(factory=dict)

    def answer(self, query: bytes, state: ScreenState) -> bytes | None:
        """Our answer to one complete query, as the scanner reports it (None: stay
        silent). XTGETTCAP is `tcap_answers`'s."""
        if query == b"\x1bZ":
            return DA1
        if query.startswith(b"\x1b]"):
            return _osc_answer(query, state)
        if query.startswith(b"\x1bP$q"):
            return _decrqss(query[4:].split(b"\x1b")[0], state)
        if query.startswith(b"\x1b_G"):
            keys = query[3:].split(b";")[0].split(b"\x1b")[0].split(b",")
            if b"q=2" in keys:
                return None
            ident = next((k for k in keys if k.startswith(b"i=")), b"i=0")
            return b"\x1b_G" + ident + b";ENOTSUPPORTED:no graphics in this model\x1b\\"
        csi = parse_csi(query)
        if csi is None:
            return None
        prefix, params, inter, final = csi
        cols, rows = state.size()
        if final == b"c":
            return {b"": DA1, b">": DA2, b"=": DA3}.get(prefix)
        if final == b"n":
            if prefix == b"" and params == [5]:
                return b"\x1b[0n"
            x, y = state.cursor()
            top = state.origin_top()
            row = y - top if top is not None else y
            if prefix == b"" and params == [6]:
                return b"\x1b[%d;%dR" % (row + 1, x + 1)
            if prefix == b"?" and params == [6]:
                return b"\x1b[?%d;%d;1R" % (row + 1, x + 1)
            if prefix == b"?" and params == [996]:
                return b"\x1b[?997;%dn" % (1 if is_dark(state.colors()[1]) else 2)
            return _DSR_DEC.get(params[0]) if prefix == b"?" and params else None
        if final == b"p" and inter == b"$":
            n = params[0] if params else 0
            ansi = prefix != b"?"
            return b"\x1b[%s%d;%d$y" % (b"" if ansi else b"?", n, state.mode(n, ansi))
        if final == b"q" and prefix == b">":
            return b"\x1bP>|" + self.xtversion.encode() + b"\x1b\\"
        if final == b"u" and prefix == b"?":
            return b"\x1b[?%du" % state.kitty_flags()
        if final == b"m":  # XTQMODKEYS, and Gemini's `CSI > 4 ; ? m`
            which = params[0] if params else 4
            return b"\x1b[>%d;%dm" % (which, state.modify_other_keys() if which == 4 else 0)
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

    def tcap_answers(self, query: bytes, replied: bytes) -> bytes:
        """XTGETTCAP (`DCS + q hex;hex ST`): an answer for each capability asked that is
        not in `replied` (what the engine answered): its value from `terminfo`, or
        "unknown" (`DCS 0 + r hex ST`)."""
        body = query[4:].split(b"\x1b")[0]
        answered = replied.upper()
        out = []
        for cap in body.split(b";"):
            if not cap:
                continue
            if b"+R" + cap.upper() in answered:
                continue
            try:
                name = bytes.fromhex(cap.decode("ascii")).decode("ascii")
            except ValueError:
                name = ""
            value = self.terminfo.get(name)
            if value is not None:
                out.append(b"\x1bP1+r" + cap + b"=" + value.encode().hex().encode() + b"\x1b\\")
            else:
                out.append(b"\x1bP0+r" + cap + b"\x1b\\")
        return b"".join(out)


def _osc_answer(query: bytes, state: ScreenState) -> bytes | None:
    term = b"\x07" if query.endswith(b"\x07") else b"\x1b\\"
    body = query[2 : -len(term)] if query.endswith(term) else query[2:]
    num, _, rest = body.partition(b";")
    if num == b"4":
        pal = state.colors()[3]
        items = rest.split(b";")
        out = []
        for i, spec in zip(items[0::2], items[1::2], strict=False):
            if spec == b"?" and i.isdigit() and int(i) < 256:
                out.append(b"\x1b]4;" + i + b";" + color_spec(pal[int(i)]) + term)
        return b"".join(out) or None
    if num.isdigit() and 10 <= int(num) <= 19:
        fg, bg, cur, _ = state.colors()
        # OSC 10..19 name successive dynamic colours; we keep three of them.
        dynamic = {10: fg, 11: bg, 12: cur, 13: fg, 14: bg, 15: fg, 16: bg, 17: fg, 18: cur, 19: bg}
        out = []
        for k, v in enumerate(rest.split(b";")):
            which = int(num) + k
            if v == b"?" and which in dynamic:
                out.append(b"\x1b]%d;" % which + color_spec(dynamic[which]) + term)
        return b"".join(out) or None
    if num == b"99":
        meta = rest.split(b";", 1)[0]
        ident = next((k for k in meta.split(b":") if k.startswith(b"i=")), b"i=0")
        return osc(b"99;" + ident + b":p=?;a=focus:o=always:p=title,body:u=0,1,2")
    if num == b"1337":
        if rest == b"ReportCellSize":
            return osc(b"1337;ReportCellSize=%d.0;%d.0;1.0" % (CELL_H, CELL_W))
        if rest == b"Capabilities":
            return osc(b"1337;Capabilities=")
        if rest.startswith(b"ReportVariable="):
            return osc(b"1337;ReportVariable=")
    if num == b"21":
        fg, bg, cur, _ = state.colors()
        colours = {b"foreground": fg, b"background": bg, b"cursor": cur}
        out = []
        for item in rest.split(b";"):
            key = item[:-2]
            if item.endswith(b"=?") and key in colours:
                out.append(key + b"=" + color_spec(colours[key]))
        return osc(b"21;" + b";".join(out)) if out else None
    return None


def _decrqss(what: bytes, state: ScreenState) -> bytes:
    """DECRQSS (`DCS $ q Pt ST`) for SGR, DECSCUSR and DECSTBM; anything else is invalid."""
    if what == b"m":
        return b"\x1bP1$r0m\x1b\\"
    if what == b" q":
        style = state.cursor_style()
        if style is not None:
            return b"\x1bP1$r%d q\x1b\\" % style
    if what == b"r":
        region = state.scroll_region()
        t, b = region if region else (0, state.size()[1] - 1)
        return b"\x1bP1$r%d;%dr\x1b\\" % (t + 1, b + 1)
    return b"\x1bP0$r\x1b\\"
