"""Query answers: what the model says to each terminal query, from the terminal's state."""

from __future__ import annotations

import attrs
import pytest

from orchestra.core.colors import RGB, XTERM_PALETTE
from orchestra.core.queries import DA1, DA2, DA3, TERMINFO, QueryAnswerer
from orchestra.core.vtscan import find_queries

ANSWERER = QueryAnswerer(xtversion="Orchestra 9.9", terminfo=TERMINFO)


@attrs.define
class State:
    """A terminal's state as plain data (what an engine reads from its screen)."""

    cols: int = 80
    rows: int = 24
    x: int = 4
    y: int = 9
    top: int | None = None
    fg: RGB = (0xE5, 0xE5, 0xE5)
    bg: RGB = (0, 0, 0)
    cursor_rgb: RGB = (0xFF, 0x80, 0)
    palette: list[RGB] = attrs.Factory(lambda: list(XTERM_PALETTE))
    modes: dict[tuple[int, bool], int] = attrs.Factory(dict)
    kitty: int = 0
    modkeys: int = 0
    style: int | None = None
    region: tuple[int, int] | None = None

    def size(self) -> tuple[int, int]:
        return self.cols, self.rows

    def cursor(self) -> tuple[int, int]:
        return self.x, self.y

    def origin_top(self) -> int | None:
        return self.top

    def colors(self) -> tuple[RGB, RGB, RGB, list[RGB]]:
        return self.fg, self.bg, self.cursor_rgb, self.palette

    def mode(self, n: int, ansi: bool) -> int:
        return self.modes.get((n, ansi), 0)

    def kitty_flags(self) -> int:
        return self.kitty

    def modify_other_keys(self) -> int:
        return self.modkeys

    def cursor_style(self) -> int | None:
        return self.style

    def scroll_region(self) -> tuple[int, int] | None:
        return self.region


def answer(query: bytes, **state: object) -> bytes | None:
    return ANSWERER.answer(query, State(**state))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "reply"),
    [
        (b"\x1bZ", DA1),  # DECID
        (b"\x1b[c", DA1),
        (b"\x1b[0c", DA1),
        (b"\x1b[>c", DA2),
        (b"\x1b[>0c", DA2),
        (b"\x1b[=c", DA3),
        (b"\x1b[>q", b"\x1bP>|Orchestra 9.9\x1b\\"),  # XTVERSION
        (b"\x1b[>0q", b"\x1bP>|Orchestra 9.9\x1b\\"),
    ],
)
def test_identity(query: bytes, reply: bytes) -> None:
    """Device attributes say VT220 with colour (DA2, DA3 fixed); XTVERSION gives our name."""
    assert DA1 == b"\x1b[?62;22c"
    assert answer(query) == reply


def test_status_and_cursor_reports() -> None:
    """DSR 5 says OK; DSR 6 and DECXCPR give the 1-based cursor, relative to the
    scrolling region's top in origin mode."""
    assert answer(b"\x1b[5n") == b"\x1b[0n"
    assert answer(b"\x1b[6n", x=4, y=9) == b"\x1b[10;5R"
    assert answer(b"\x1b[?6n", x=4, y=9) == b"\x1b[?10;5;1R"
    assert answer(b"\x1b[6n", x=0, y=9, top=3) == b"\x1b[7;1R"
    assert answer(b"\x1b[?6n", x=0, y=9, top=0) == b"\x1b[?10;1;1R"


@pytest.mark.parametrize(
    ("query", "reply"),
    [
        (b"\x1b[?15n", b"\x1b[?13n"),  # printer: none
        (b"\x1b[?25n", b"\x1b[?20n"),  # user-defined keys: unlocked
        (b"\x1b[?26n", b"\x1b[?27;1;0;0n"),  # keyboard: North American
        (b"\x1b[?53n", None),  # locator: not answered
        (b"\x1b[?n", None),
    ],
)
def test_dec_status_reports(query: bytes, reply: bytes | None) -> None:
    """The DEC DSRs we answer get their fixed reply; the others get none."""
    assert answer(query) == reply


def test_colour_scheme_report_follows_the_background() -> None:
    """DSR 996 says dark (1) on a dark background and light (2) on a light one."""
    assert answer(b"\x1b[?996n", bg=(0, 0, 0)) == b"\x1b[?997;1n"
    assert answer(b"\x1b[?996n", bg=(250, 250, 240)) == b"\x1b[?997;2n"


def test_mode_reports() -> None:
    """DECRQM answers a DEC or ANSI mode with the state's value: set, reset or unknown."""
    modes = {(2004, False): 1, (1049, False): 2, (4, True): 2}
    assert answer(b"\x1b[?2004$p", modes=modes) == b"\x1b[?2004;1$y"
    assert answer(b"\x1b[?1049$p", modes=modes) == b"\x1b[?1049;2$y"
    assert answer(b"\x1b[?9999$p", modes=modes) == b"\x1b[?9999;0$y"
    assert answer(b"\x1b[4$p", modes=modes) == b"\x1b[4;2$y"
    assert answer(b"\x1b[2004$p", modes=modes) == b"\x1b[2004;0$y"  # ANSI 2004: no such mode


def test_keyboard_reports() -> None:
    """Kitty flags and modifyOtherKeys are the state's; other XTQMODKEYS resources are 0."""
    assert answer(b"\x1b[?u", kitty=5) == b"\x1b[?5u"
    assert answer(b"\x1b[?4m", modkeys=2) == b"\x1b[>4;2m"
    assert answer(b"\x1b[>4;?m", modkeys=1) == b"\x1b[>4;1m"  # Gemini CLI's form
    assert answer(b"\x1b[?m", modkeys=2) == b"\x1b[>4;2m"
    assert answer(b"\x1b[?1m", modkeys=2) == b"\x1b[>1;0m"


@pytest.mark.parametrize(
    ("query", "reply"),
    [
        (b"\x1b[11t", b"\x1b[1t"),  # not iconified
        (b"\x1b[13t", b"\x1b[3;0;0t"),
        (b"\x1b[14t", b"\x1b[4;384;800t"),  # text area in pixels: 24x16, 100x8
        (b"\x1b[15t", b"\x1b[5;384;800t"),
        (b"\x1b[16t", b"\x1b[6;16;8t"),  # a cell
        (b"\x1b[18t", b"\x1b[8;24;100t"),  # in cells
        (b"\x1b[19t", b"\x1b[9;24;100t"),
        (b"\x1b[20t", b"\x1b]L\x1b\\"),  # labels are never read back
        (b"\x1b[21t", b"\x1b]l\x1b\\"),
        (b"\x1b[14;2t", b"\x1b[4;384;800t"),
    ],
)
def test_window_reports_follow_the_size(query: bytes, reply: bytes) -> None:
    """XTWINOPS reports give the size in cells and in 8x16 pixel cells, and empty titles."""
    assert answer(query, cols=100, rows=24) == reply


def test_dynamic_colour_queries() -> None:
    """OSC 10/11/12 ask foreground, background and cursor colour, in the query's own
    terminator; one OSC may ask successive colours."""
    fg, bg, cur = (255, 255, 255), (0, 0, 0x80), (0x10, 0x20, 0x30)
    state = {"fg": fg, "bg": bg, "cursor_rgb": cur}
    assert answer(b"\x1b]10;?\x07", **state) == b"\x1b]10;rgb:ffff/ffff/ffff\x07"
    assert answer(b"\x1b]11;?\x1b\\", **state) == b"\x1b]11;rgb:0000/0000/8080\x1b\\"
    assert answer(b"\x1b]12;?\x07", **state) == b"\x1b]12;rgb:1010/2020/3030\x07"
    assert answer(b"\x1b]10;?;?\x07", **state) == (
        b"\x1b]10;rgb:ffff/ffff/ffff\x07\x1b]11;rgb:0000/0000/8080\x07"
    )
    # A setting among the questions is not answered.
    assert answer(b"\x1b]10;#000000;?\x07", **state) == b"\x1b]11;rgb:0000/0000/8080\x07"
    assert answer(b"\x1b]17;?\x07", **state) == b"\x1b]17;rgb:ffff/ffff/ffff\x07"  # highlight


def test_palette_queries() -> None:
    """OSC 4 answers each palette index asked, from the state's palette; none past 255."""
    pal = list(XTERM_PALETTE)
    pal[1] = (0x12, 0x34, 0x56)
    assert answer(b"\x1b]4;1;?\x07", palette=pal) == b"\x1b]4;1;rgb:1212/3434/5656\x07"
    assert answer(b"\x1b]4;1;?;12;?\x1b\\", palette=pal) == (
        b"\x1b]4;1;rgb:1212/3434/5656\x1b\\\x1b]4;12;rgb:5c5c/5c5c/ffff\x1b\\"
    )
    assert answer(b"\x1b]4;2;#ffffff;1;?\x07", palette=pal) == b"\x1b]4;1;rgb:1212/3434/5656\x07"
    assert answer(b"\x1b]4;256;?\x07", palette=pal) is None


def test_kitty_colour_queries() -> None:
    """OSC 21 answers each of foreground, background and cursor asked, and nothing else."""
    got = answer(b"\x1b]21;foreground=?;selection_background=?;cursor=?\x1b\\", fg=(1, 2, 3))
    assert got == b"\x1b]21;foreground=rgb:0101/0202/0303;cursor=rgb:ffff/8080/0000\x1b\\"
    assert answer(b"\x1b]21;selection_background=?\x1b\\") is None


def test_notification_and_iterm_queries() -> None:
    """OSC 99 `p=?` gets the kitty notification capabilities for its id; OSC 1337 reports
    get the cell size and empty capabilities and variables."""
    assert answer(b"\x1b]99;i=7:p=?;\x1b\\") == (
        b"\x1b]99;i=7:p=?;a=focus:o=always:p=title,body:u=0,1,2\x1b\\"
    )
    assert answer(b"\x1b]99;p=?;\x07").startswith(b"\x1b]99;i=0:p=?;")  # type: ignore[union-attr]
    assert answer(b"\x1b]1337;ReportCellSize\x07") == b"\x1b]1337;ReportCellSize=16.0;8.0;1.0\x1b\\"
    assert answer(b"\x1b]1337;Capabilities\x07") == b"\x1b]1337;Capabilities=\x1b\\"
    assert answer(b"\x1b]1337;ReportVariable=dXNlcg==\x07") == b"\x1b]1337;ReportVariable=\x1b\\"


def test_setting_strings() -> None:
    """DECRQSS reports the pen as reset, the cursor style and scrolling region the state
    knows (the whole screen without one), and says invalid to anything else."""
    assert answer(b"\x1bP$qm\x1b\\") == b"\x1bP1$r0m\x1b\\"
    assert answer(b"\x1bP$q q\x1b\\", style=5) == b"\x1bP1$r5 q\x1b\\"
    assert answer(b"\x1bP$q q\x1b\\", style=None) == b"\x1bP0$r\x1b\\"
    assert answer(b"\x1bP$qr\x1b\\", rows=24) == b"\x1bP1$r1;24r\x1b\\"
    assert answer(b"\x1bP$qr\x1b\\", region=(2, 9)) == b"\x1bP1$r3;10r\x1b\\"
    assert answer(b'\x1bP$q"p\x1b\\') == b"\x1bP0$r\x1b\\"


def test_kitty_graphics_query_is_refused() -> None:
    """A kitty graphics query is told graphics are not supported, with its id; a quiet
    one (`q=2`) gets nothing."""
    assert answer(b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\") == (
        b"\x1b_Gi=31;ENOTSUPPORTED:no graphics in this model\x1b\\"
    )
    assert answer(b"\x1b_Ga=q\x1b\\") == b"\x1b_Gi=0;ENOTSUPPORTED:no graphics in this model\x1b\\"
    assert answer(b"\x1b_Ga=q,q=2\x1b\\") is None


@pytest.mark.parametrize(
    "query",
    [
        b"\x05",  # ENQ: an empty answerback
        b"\x1b]52;c;?\x07",  # clipboard read: private
        b"\x1b]22;?__current__\x07",
        b"\x1b[1;1;1;1;1;1*y",  # DECRQCRA
        b"\x1b[1$w",  # DECRQPSR
        b"\x1b[1$u",  # DECRQTSR
        b"\x1b[&u",  # DECRQUPSS
        b'\x1b["v',  # DECRQDE
        b"\x1b[x",  # DECREQTPARM
        b"\x1b[#|",  # XTREPORTSGR
        b"\x1b[?1;1S",  # XTSMGRAPHICS
    ],
)
def test_queries_left_unanswered(query: bytes) -> None:
    """Queries for features we lack get no answer, as in terminals that lack them."""
    assert find_queries(query) == [query]  # the scanner calls it a query
    assert answer(query) is None


def test_termcap_answers() -> None:
    """XTGETTCAP answers each capability the engine did not: its terminfo value hex-encoded,
    or unknown; the engine's answers count whatever their case."""
    tn, co, xx = b"TN".hex().encode(), b"colors".hex().encode(), b"xx".hex().encode()
    query = b"\x1bP+q" + tn + b";" + co + b";" + xx + b";zz\x1b\\"
    assert ANSWERER.tcap_answers(query, b"") == (
        b"\x1bP1+r" + tn + b"=" + b"xterm-256color".hex().encode() + b"\x1b\\"
        b"\x1bP1+r" + co + b"=" + b"256".hex().encode() + b"\x1b\\"
        b"\x1bP0+r" + xx + b"\x1b\\"
        b"\x1bP0+rzz\x1b\\"
    )
    engine = b"\x1bP1+r" + tn.upper() + b"=41\x1b\\"
    assert ANSWERER.tcap_answers(b"\x1bP+q" + tn + b"\x1b\\", engine) == b""
    bare = QueryAnswerer(xtversion="x")  # no terminfo: everything is unknown
    assert bare.tcap_answers(b"\x1bP+q" + tn + b"\x1b\\", b"") == b"\x1bP0+r" + tn + b"\x1b\\"


def test_every_query_in_a_stream_is_answered_in_order() -> None:
    """The queries the scanner finds in a stream of output get their answers in order."""
    stream = b"hi\x1b[1mX\x1b[6n\x1b]11;?\x07\x1b[0m\x1b[c text \x1b[18t"
    got = [ANSWERER.answer(q, State(x=2, y=0)) for q in find_queries(stream)]
    assert got == [b"\x1b[1;3R", b"\x1b]11;rgb:0000/0000/0000\x07", DA1, b"\x1b[8;24;80t"]
