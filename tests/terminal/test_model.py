"""The terminal model: screens equal tmux's, snapshots replay exactly, one answer per query."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from orchestra.adapters.terminal import (
    DA1,
    Terminal,
    TerminalError,
    available_engines,
    default_engine,
)
from orchestra.core.vtscan import QueryFilter, VTScanner, find_queries

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "terminal"
RECORDINGS = sorted(p.name for p in FIXTURES.glob("*.bin"))
NOANSWER = [n for n in RECORDINGS if ".noanswer." in n]
INSTALLED = available_engines()
ENGINES = [
    pytest.param(
        name, marks=pytest.mark.skipif(name not in INSTALLED, reason=f"{name} not installed")
    )
    for name in ("ghostty", "avt")
]
MODES = [1, 6, 7, 12, 25, 66, 1000, 1002, 1003, 1004, 1006, 1049, 2004, 2026, 2031]


def recording(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def feed_chunked(t: Terminal, data: bytes, seed: int) -> None:
    rng = random.Random(seed)
    i = 0
    while i < len(data):
        k = rng.randint(1, 48)
        t.feed(data[i : i + k])
        i += k


def replay(t: Terminal, engine: str) -> Terminal:
    cols, rows = t.size
    u = Terminal(cols, rows, engine=engine)
    u.feed(t.snapshot())
    return u


def assert_same_state(t: Terminal, u: Terminal) -> None:
    assert u.text() == t.text()
    assert u.cursor == t.cursor
    assert u.alt_screen == t.alt_screen
    assert u.title == t.title
    assert u.kitty_flags == t.kitty_flags
    for m in MODES:
        assert u.mode(m) == t.mode(m), m


def replies(data: bytes) -> list[bytes]:
    """Split concatenated replies into single sequences."""
    return re.findall(rb"\x1b\[[^\x40-\x7e]*[\x40-\x7e]|\x1b[\]P_].*?(?:\x07|\x1b\\)", data, re.S)


def expected_replies(query: bytes) -> int:
    """How many reply sequences a query asks for (OSC 4/10-19 may ask several at once)."""
    if query.startswith(b"\x1b]4;"):
        return query.count(b";?")
    if query.startswith(b"\x1b]1") and query[3:4] in b"0123456789" and query[4:5] == b";":
        return query.count(b"?")
    if query.startswith(b"\x1bP+q"):
        return query.count(b";") + 1
    return 1


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", RECORDINGS)
def test_screen_matches_tmux(engine: str, name: str) -> None:
    """A recording fed in random small chunks draws exactly the screen tmux drew."""
    t = Terminal(100, 30, engine=engine)
    feed_chunked(t, recording(name), seed=len(name))
    reference = (FIXTURES / name.replace(".bin", ".tmux.txt")).read_text(encoding="utf-8")
    assert t.text() + "\n" == reference


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", RECORDINGS)
def test_snapshot_replays_the_same_screen(engine: str, name: str) -> None:
    """A snapshot written to a fresh terminal gives the same text, cursor, modes, title,
    keyboard flags, and cells (its own snapshot is identical, colours included)."""
    t = Terminal(100, 30, engine=engine)
    t.feed(recording(name))
    u = replay(t, engine)
    assert_same_state(t, u)
    assert u.snapshot() == t.snapshot()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", RECORDINGS)
def test_filtered_stream_draws_the_same_screen(engine: str, name: str) -> None:
    """What clients get (the stream minus queries) draws what the model shows."""
    data = recording(name)
    t = Terminal(100, 30, engine=engine)
    t.feed(data)
    u = Terminal(100, 30, engine=engine)
    u.feed(QueryFilter().feed(data))
    assert_same_state(t, u)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", RECORDINGS)
def test_feed_filtered_matches_query_filter(engine: str, name: str) -> None:
    """Terminal.feed_filtered returns, chunk by chunk, what a QueryFilter would."""
    data = recording(name)
    t, f = Terminal(100, 30, engine=engine), QueryFilter()
    rng = random.Random(1)
    i = 0
    while i < len(data):
        k = rng.randint(1, 64)
        assert t.feed_filtered(data[i : i + k]) == f.feed(data[i : i + k])
        assert t.pending() == f.pending()
        i += k


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", NOANSWER)
def test_every_query_gets_exactly_one_answer(engine: str, name: str) -> None:
    """Fed up to the end of each query, the model has answered it, once."""
    data = recording(name)
    scan = VTScanner()
    scan.feed(data)
    queries = [(end, seq) for end, kind, seq in scan.events if kind == "q"]  # none for htop
    t = Terminal(100, 30, engine=engine)
    pos = 0
    for end, query in queries:
        t.feed(data[pos:end])
        pos = end
        answer = t.take_answers()
        assert len(replies(answer)) == expected_replies(query), (query, answer)
        assert b"".join(replies(answer)) == answer
        if query in (b"\x1b[c", b"\x1b[0c"):
            assert answer == DA1 == b"\x1b[?62;22c"
    t.feed(data[pos:])
    assert t.take_answers() == b""


@pytest.mark.parametrize("engine", ENGINES)
def test_interactive_recordings_get_one_answer_per_query(engine: str) -> None:
    """The richer streams too: every query is answered, once, in order."""
    for name in RECORDINGS:
        data = recording(name)
        t = Terminal(100, 30, engine=engine)
        answers = []
        for chunk in (data[i : i + 100] for i in range(0, len(data), 100)):
            t.feed(chunk)
            answers.append(t.take_answers())
        assert len(replies(b"".join(answers))) == sum(map(expected_replies, find_queries(data)))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", ["opencode.noanswer.100x30.bin", "vim.interactive.100x30.bin"])
def test_answers_do_not_depend_on_read_boundaries(engine: str, name: str) -> None:
    """Fed one byte at a time, the model gives the same answers and screen as fed whole."""
    data = recording(name)
    whole = Terminal(100, 30, engine=engine)
    whole.feed(data)
    with Terminal(100, 30, engine=engine) as bytewise:
        answers = []
        for i in range(len(data)):
            bytewise.feed(data[i : i + 1])
            answers.append(bytewise.take_answers())
        assert b"".join(answers) == whole.take_answers()
        assert_same_state(whole, bytewise)


@pytest.mark.parametrize("engine", ENGINES)
def test_identity_answers(engine: str) -> None:
    """DA1 is VT220 with colour, DA2/DA3 fixed; XTVERSION says Orchestra, never tmux."""
    t = Terminal(80, 24, engine=engine)
    t.feed(b"\x1b[c\x1b[>c\x1b[=c\x1bZ")
    assert t.take_answers() == DA1 + b"\x1b[>1;0;0c\x1bP!|00000000\x1b\\" + DA1
    t.feed(b"\x1b[>0q")
    answer = t.take_answers()
    assert answer.startswith(b"\x1bP>|Orchestra ") and b"tmux" not in answer.lower()


@pytest.mark.parametrize("engine", ENGINES)
def test_cursor_and_size_reports_follow_the_model(engine: str) -> None:
    """CPR comes from the model's cursor, size reports from its size, after a resize too."""
    t = Terminal(80, 24, engine=engine)
    t.feed(b"\x1b[5;7H\x1b[6n\x1b[?6n\x1b[18t")
    assert t.take_answers() == b"\x1b[5;7R\x1b[?5;7;1R\x1b[8;24;80t"
    t.resize(100, 30)
    t.feed(b"\x1b[18t\x1b[14t\x1b[16t\x1b[19t")
    assert t.take_answers() == b"\x1b[8;30;100t\x1b[4;480;800t\x1b[6;16;8t\x1b[9;30;100t"
    assert t.size == (100, 30)


@pytest.mark.parametrize("engine", ENGINES)
def test_mode_reports(engine: str) -> None:
    """DECRQM says 2026 is supported (so Claude Code synchronizes), and tracks changes."""
    t = Terminal(80, 24, engine=engine)
    t.feed(b"\x1b[?2026$p\x1b[?2026h\x1b[?2026$p\x1b[?2004h\x1b[?2004$p\x1b[?9999$p")
    assert t.take_answers() == b"\x1b[?2026;2$y\x1b[?2026;1$y\x1b[?2004;1$y\x1b[?9999;0$y"


@pytest.mark.parametrize("engine", ENGINES)
def test_keyboard_queries(engine: str) -> None:
    """Kitty flags and modifyOtherKeys are reported as the program set them."""
    t = Terminal(80, 24, engine=engine)
    t.feed(b"\x1b[?u\x1b[>5u\x1b[?u\x1b[<u\x1b[?u\x1b[?4m\x1b[>4;2m\x1b[?4m\x1b[>4;?m")
    assert t.take_answers() == (b"\x1b[?0u\x1b[?5u\x1b[?0u\x1b[>4;0m\x1b[>4;2m\x1b[>4;2m")


@pytest.mark.parametrize("engine", ENGINES)
def test_colour_queries_use_the_clients_colours(engine: str) -> None:
    """OSC 10/11/4 answer a dark scheme until set_colors gives the client's own."""
    t = Terminal(80, 24, engine=engine)
    t.feed(b"\x1b]11;?\x07\x1b[?996n")
    assert t.take_answers() == b"\x1b]11;rgb:0000/0000/0000\x07\x1b[?997;1n"
    t.set_colors(fg="#202020", bg="rgb:ffff/ffff/ffff", palette={1: "#ff0000"})
    t.feed(b"\x1b]10;?\x1b\\\x1b]11;?\x07\x1b]4;1;?\x07\x1b[?996n")
    assert t.take_answers() == (
        b"\x1b]10;rgb:2020/2020/2020\x1b\\\x1b]11;rgb:ffff/ffff/ffff\x07"
        b"\x1b]4;1;rgb:ffff/0000/0000\x07\x1b[?997;2n"
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_answers_keep_stream_order(engine: str) -> None:
    """Answers leave in the order the queries came, whoever produced them."""
    t = Terminal(80, 24, engine=engine)
    t.feed(b"\x1b[?4m\x1b[c\x1b[?6n\x1b[5n\x1b]99;i=n:p=?;\x1b\\\x1b[>q")
    out = t.take_answers()
    assert replies(out)[:4] == [b"\x1b[>4;0m", DA1, b"\x1b[?1;1;1R", b"\x1b[0n"]
    assert replies(out)[4].startswith(b"\x1b]99;i=n:p=?;")
    assert replies(out)[5].startswith(b"\x1bP>|Orchestra")


@pytest.mark.parametrize("engine", ENGINES)
def test_saved_cursor_survives_snapshot(engine: str) -> None:
    """DECSC state (position and pen) is carried: ESC 8 after replay restores the same."""
    t = Terminal(40, 10, engine=engine)
    t.feed(b"hello\x1b[4;6H\x1b[1;31m\x1b7\x1b[0m\x1b[9;1Hbottom")
    u = replay(t, engine)
    for term in (t, u):
        term.feed(b"\x1b8X")
    assert_same_state(t, u)
    assert u.snapshot() == t.snapshot()


@pytest.mark.parametrize("engine", ENGINES)
def test_saved_cursor_on_the_alternate_screen(engine: str) -> None:
    """On the alternate screen its own DECSC state is carried, and 1049 still leaves well."""
    t = Terminal(40, 10, engine=engine)
    t.feed(b"shell$ \x1b[?1049h\x1b[3;3H\x1b[32m\x1b7\x1b[0m\x1b[1;1Htop")
    u = replay(t, engine)
    for term in (t, u):
        term.feed(b"\x1b8Y")
    assert_same_state(t, u)


@pytest.mark.parametrize("engine", ENGINES)
def test_alt_screen_follows_sequences_split_anywhere(engine: str) -> None:
    """`alt_screen` is asked of the engine only after chunks with a sequence in them: it
    still follows 1049, 47, 1047 and a full reset split at every byte, between chunks of
    plain text."""
    # (a sequence, the screen it shows, how to be on the other screen before it)
    switches = [
        (b"\x1b[?1049h", True, b"\x1bc"),
        (b"\x1b[?1049l", False, b"\x1b[?1049h"),
        (b"\x1b[?47h", True, b"\x1bc"),
        (b"\x1bc", False, b"\x1b[?1049h"),
        (b"\x1b[?1047h", True, b"\x1bc"),
        (b"\x1b[?1047l", False, b"\x1b[?1047h"),
    ]
    t = Terminal(40, 10, engine=engine)
    assert t.alt_screen is False
    for seq, alt, other in switches:
        for i in range(1, len(seq)):
            t.feed(other)
            t.feed(b"text")
            assert t.alt_screen is not alt
            t.feed(seq[:i])
            t.feed(seq[i:])
            assert t.alt_screen is alt, (seq, i)
            t.feed(b"more")
            assert t.alt_screen is alt


@pytest.mark.parametrize("engine", ENGINES)
def test_origin_mode_cursor_survives_snapshot(engine: str) -> None:
    """With a scrolling region and origin mode, the cursor lands on the same cell."""
    t = Terminal(20, 8, engine=engine)
    t.feed(b"\x1b[3;6r\x1b[?6h\x1b[2;4Hab")
    u = replay(t, engine)
    assert_same_state(t, u)
    for term in (t, u):
        term.feed(b"\x1b[1;1HZ\x1b[6n\x1b[?6n")
    assert_same_state(t, u)
    assert u.take_answers() == t.take_answers() == b"\x1b[1;2R\x1b[?1;2;1R"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("row", [b"0123456789", b"012345678 ", "01234567\u65e5".encode()])
def test_pending_wrap_survives_snapshot(engine: str, row: bytes) -> None:
    """A cursor parked past the last column (after a letter, a space or a wide
    character) still wraps the next character after a replay."""
    t = Terminal(10, 4, engine=engine)
    t.feed(b"\x1b[2;1H\x1b[1;32m" + row)
    u = replay(t, engine)
    for term in (t, u):
        term.feed(b"Z")
    assert_same_state(t, u)
    assert u.snapshot() == t.snapshot()
    assert t.text().split("\n")[2] == "Z"


@pytest.mark.parametrize("engine", ENGINES)
def test_modes_shape_and_flags_survive_snapshot(engine: str) -> None:
    """Mouse, paste, focus, keypad, cursor keys, sync, wrap, visibility, shape and
    kitty keyboard flags all come back after a replay."""
    t = Terminal(30, 8, engine=engine)
    t.feed(
        b"\x1b]2;my title\x07\x1b[?1049h\x1b[?1000h\x1b[?1002h\x1b[?1006h\x1b[?2004h"
        b"\x1b[?1004h\x1b[?1h\x1b=\x1b[>5u\x1b[?2026h\x1b[?7l\x1b[?25l\x1b[5 q\x1b[?2031h"
        b"\x1b[38;2;10;20;30mcolour\x1b]12;#ff0000\x07"
    )
    u = replay(t, engine)
    assert_same_state(t, u)
    assert u.snapshot() == t.snapshot()
    assert b"\x1b[5 q" in t.snapshot()
    assert t.title == "my title" and t.kitty_flags == 5 and t.mode(66)


@pytest.mark.parametrize("engine", ENGINES)
def test_primary_snapshot_while_on_the_alternate_screen(engine: str) -> None:
    """primary_snapshot shows the primary screen and its cursor, alternate screen or not."""
    t = Terminal(30, 6, engine=engine)
    t.feed(b"$ vim\r\nline two\x1b[?1049h\x1b[2J\x1b[Hfull screen app")
    assert t.alt_screen
    u = Terminal(30, 6, engine=engine)
    u.feed(t.primary_snapshot())
    assert not u.alt_screen
    t.feed(b"\x1b[?1049l")
    assert u.text() == t.text()
    assert u.cursor == t.cursor
    assert t.primary_snapshot() == t.snapshot()


@pytest.mark.parametrize("engine", ENGINES)
def test_attention_from_bell_and_notifications(engine: str) -> None:
    """BEL, OSC 9, OSC 777 and OSC 99 raise attention; progress reports and the BEL that
    ends an OSC do not."""
    t = Terminal(40, 5, engine=engine)
    t.feed(b"\x1b]0;title\x07\x1b]9;4;1;50\x07")
    assert not t.attention and t.notification is None
    t.feed(b"\x07")
    assert t.attention and t.notification is None
    t.clear_attention()
    assert not t.attention
    t.feed(b"\x1b]9;Build done\x07")
    assert t.attention and t.notification == "Build done"
    t.clear_attention()
    t.feed(b"\x1b]777;notify;Claude;Needs input\x1b\\")
    assert t.notification == "Claude: Needs input"
    t.clear_attention()
    t.feed(b"\x1b]99;i=7:d=0:p=title;Opencode\x1b\\\x1b]99;i=7:p=body;Waiting\x1b\\")
    assert t.attention and t.notification == "Opencode: Waiting"


@pytest.mark.parametrize("engine", ENGINES)
def test_text_and_lines(engine: str) -> None:
    """text() has one line per row, trimmed; lines(n) the last n rows above the blank tail."""
    t = Terminal(20, 6, engine=engine)
    t.feed(b"one  \r\ntwo\r\n\r\nfour\x1b[1;31m!\x1b[0m")
    assert t.text() == "one\ntwo\n\nfour!\n\n"
    assert t.lines(2) == ["", "four!"]
    assert t.lines(10) == ["one", "two", "", "four!"]
    assert t.lines(0) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_resize_keeps_the_screen_coherent(engine: str) -> None:
    """After a resize the size, text and snapshot agree with the new geometry."""
    t = Terminal(20, 5, engine=engine)
    t.feed(b"hello\r\nworld")
    t.resize(30, 8)
    assert t.size == (30, 8)
    assert t.text().split("\n")[:2] == ["hello", "world"]
    assert len(t.text().split("\n")) == 8
    assert_same_state(t, replay(t, engine))


def test_bad_sizes_and_engines_are_refused() -> None:
    """A zero size or an unknown engine name is an error that says what was wrong."""
    with pytest.raises(ValueError, match="at least 1x1, not 0x5"):
        Terminal(0, 5)
    with pytest.raises(ValueError, match="unknown terminal engine 'vt100'"):
        Terminal(10, 5, engine="vt100")


def test_default_engine_is_ghostty_where_it_loads() -> None:
    """pyghostty is preferred; pyavt is the fallback."""
    assert default_engine() == INSTALLED[0]
    if "ghostty" in INSTALLED:
        assert default_engine() == "ghostty"
    assert issubclass(TerminalError, RuntimeError)


SGR = re.compile(rb"\x1b\[([0-9;:]*)m")


@pytest.mark.parametrize("engine", ENGINES)
def test_snapshot_keeps_the_sixteen_colour_codes(engine: str) -> None:
    """A snapshot writes palette colours 0-15 with the 16-colour codes the program used
    (`94`, bold `90`, `31;42`), not as 256-colour ones (`38;5;12`)."""
    t = Terminal(20, 3, engine=engine)
    t.feed(b"\x1b[94mX\x1b[1;90mY\x1b[0;31;42mZ\x1b[0;38;5;100mW\x1b[0m")
    snap = t.snapshot()
    params = [p for m in SGR.finditer(snap) for p in m[1].split(b";")]
    assert {b"94", b"90", b"1", b"31", b"42"} <= set(params), snap
    assert re.search(rb"[34]8[;:]5[;:](?:[0-9]|1[0-5])(?![0-9])", snap) is None, snap
    assert re.search(rb"38[;:]5[;:]100", snap), snap  # the 256-colour one stays one
    assert_same_state(t, replay(t, engine))


REGIONS = [(0, 0, 100, 30), (10, 5, 60, 20), (37, 3, 41, 9), (1, 0, 99, 30)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", [n for n in RECORDINGS if ".interactive." in n])
def test_region_snapshot_shows_that_part_of_the_screen(engine: str, name: str) -> None:
    """A terminal of a region's size shown the region's snapshot holds exactly those cells
    of the screen, styles included, and the cursor at its place among them."""
    t = Terminal(100, 30, engine=engine)
    t.feed(recording(name))
    full = t.text().split("\n")
    cx, cy = t.cursor
    for x, y, cols, rows in REGIONS:
        region = t.snapshot_region(x, y, cols, rows)
        u = Terminal(cols, rows, engine=engine)
        u.feed(region)
        assert u.text().split("\n") == [row[x : x + cols].rstrip() for row in full[y : y + rows]]
        # Drawn again from the copy, the cells come out the same, byte for byte.
        cells = re.sub(rb"\x1b\[\?25l", b"", region)
        assert re.sub(rb"\x1b\[\?25l", b"", u.snapshot_region(0, 0, cols, rows)) == cells
        if x <= cx < x + cols and y <= cy < y + rows:
            assert u.cursor == (cx - x, cy - y)
            assert u.mode(25) == t.mode(25)
        else:
            assert not u.mode(25)


@pytest.mark.parametrize("engine", ENGINES)
def test_region_snapshot_blanks_wide_characters_cut_by_its_edges(engine: str) -> None:
    """A wide character half inside the region shows as a blank, and the rest of its row
    stays in its columns."""
    t = Terminal(10, 2, engine=engine)
    t.feed("a中b文c\r\n".encode())
    u = Terminal(4, 1, engine=engine)
    u.feed(t.snapshot_region(2, 0, 4, 1))  # the tail of 中, b, then 文 whole, then c
    assert u.text() == " b文"
    u = Terminal(3, 1, engine=engine)
    u.feed(t.snapshot_region(0, 0, 3, 1))  # a, 中 whole
    assert u.text() == "a中"
    u = Terminal(2, 1, engine=engine)
    u.feed(t.snapshot_region(0, 0, 2, 1))  # a, then the head of 中 alone
    assert u.text() == "a"


@pytest.mark.parametrize("engine", ENGINES)
def test_region_snapshot_sets_the_input_modes(engine: str) -> None:
    """The region snapshot turns on the modes that decide what the client's terminal
    sends (mouse, paste, focus, cursor keys, keypad, kitty keyboard), and hides the
    cursor the program hid."""
    t = Terminal(40, 10, engine=engine)
    t.feed(b"\x1b[?1000h\x1b[?1006h\x1b[?2004h\x1b[?1004h\x1b[?1h\x1b=\x1b[>1u\x1b[?25lok")
    u = Terminal(20, 5, engine=engine)
    u.feed(t.snapshot_region(0, 0, 20, 5))
    for m in (1, 1000, 1006, 2004, 1004, 66):
        assert u.mode(m), m
    assert not u.mode(25)
    assert u.kitty_flags == 1
