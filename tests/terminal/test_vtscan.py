"""The query filter: what clients see of an agent's output (no queries, nothing else lost)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestra.core.vtscan import (
    HOLD_MAX,
    PENDING_MAX,
    Csi,
    QueryFilter,
    VTScanner,
    find_queries,
    osc_body,
    parse_csi,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "terminal"
RECORDINGS = sorted(p.name for p in FIXTURES.glob("*.bin"))


def recording(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def chunked(data: bytes, seed: int, most: int = 32) -> list[bytes]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        k = rng.randint(1, most)
        out.append(data[i : i + k])
        i += k
    return out


def strip(chunks: list[bytes]) -> bytes:
    f = QueryFilter()
    return b"".join(f.feed(c) for c in chunks)


def remove_in_order(data: bytes, queries: list[bytes]) -> bytes:
    """`data` with each query cut out at its next occurrence (an independent oracle)."""
    out, pos = [], 0
    for q in queries:
        i = data.index(q, pos)
        out.append(data[pos:i])
        pos = i + len(q)
    out.append(data[pos:])
    return b"".join(out)


# Every query form the filter knows, each as a program would send it.
QUERIES = [
    b"\x1b[c", b"\x1b[0c", b"\x1b[>c", b"\x1b[>0c", b"\x1b[=c", b"\x1b[=0c", b"\x1bZ",
    b"\x1b[5n", b"\x1b[6n", b"\x1b[?6n", b"\x1b[?996n", b"\x1b[?15n",
    b"\x1b[?2026$p", b"\x1b[?1$p", b"\x1b[4$p", b"\x1b[>0q", b"\x1b[>q", b"\x1b[?u",
    b"\x1b[14t", b"\x1b[14;2t", b"\x1b[16t", b"\x1b[18t", b"\x1b[19t", b"\x1b[20t", b"\x1b[21t",
    b"\x1b[11t", b"\x1b[13t", b"\x1b[?4m", b"\x1b[>4;?m", b"\x1b[?1;1;0S", b"\x1b[1$w",
    b"\x1b[1$u", b"\x1b[&u", b"\x1b[1;1;1;1;1;1*y", b"\x1b[1;1;2;2#|", b"\x1b[x", b"\x1b[1x",
    b'\x1b["v', b"\x05",
    b"\x1bP+q544e\x1b\\", b"\x1bP+q544e;436f\x1b\\", b"\x1bP$q q\x1b\\", b"\x1bP$qm\x1b\\",
    b"\x1bP+Qfoo\x1b\\",
    b"\x1b]11;?\x07", b"\x1b]11;?\x1b\\", b"\x1b]10;?\x07", b"\x1b]12;?\x07", b"\x1b]17;?\x07",
    b"\x1b]19;?\x07", b"\x1b]10;?;?\x07", b"\x1b]4;1;?\x07", b"\x1b]4;1;?;2;?\x1b\\",
    b"\x1b]5;0;?\x07", b"\x1b]52;c;?\x07", b"\x1b]22;?__current__\x07",
    b"\x1b]21;foreground=?;background=?\x1b\\", b"\x1b]99;i=1:p=?;\x1b\\",
    b"\x1b]1337;Capabilities\x1b\\", b"\x1b]1337;ReportCellSize\x07",
    b"\x1b_Gi=31337,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\",
]  # fmt: skip

# Sequences that look like queries but are not: they must pass byte for byte.
NOT_QUERIES = [
    b"\x1b[1c", b"\x1b[2 q", b"\x1b[0 q", b"\x1b[>1u", b"\x1b[<u", b"\x1b[=5;1u", b"\x1b[u",
    b"\x1b[s", b"\x1b[22;0t", b"\x1b[23;0t", b"\x1b[0%m", b"\x1b[>4;2m",
    b"\x1b[>4m", b"\x1b[?2026h", b"\x1b[?25l", b"\x1b[38;2;1;2;3m", b"\x1b[2J", b"\x1b[6 q",
    b"\x1b[!p", b"\x1b[?1049h", b"\x1b7", b"\x1b8", b"\x1bc", b"\x1b(B", b"\x1b=",
    b"\x1b]0;title?\x07", b"\x1b]2;what ;? is\x1b\\", b"\x1b]4;1;#ff0000\x07",
    b"\x1b]11;#000000\x1b\\", b"\x1b]10;rgb:ffff/ffff/ffff\x07", b"\x1b]52;c;YWJj\x07",
    b"\x1b]8;;https://example.com/?q=1\x1b\\", b"\x1b]104\x07", b"\x1b]112\x07",
    b"\x1b]99;i=1:p=title;Done\x1b\\", b"\x1b]9;hello\x07", b"\x1b]777;notify;a;b\x07",
    b"\x1b]1337;SetMark\x07", b"\x1b]66;w=1; \x1b\\", b"\x1bPzz\x1b\\",
    b"\x1bP0;0;0q#0;2;0;0;0#0!10~-\x1b\\", b"\x1bP1$r0m\x1b\\", b"\x1b_Gi=1,q=2,a=T;AAAA\x1b\\",
    b"\x1b^private\x1b\\", b"\x1bXsos\x1b\\", b"\x1b]4;1;?\x18", "é─✳ →\u009b6n".encode(),
]  # fmt: skip


@pytest.mark.parametrize("query", QUERIES)
def test_every_query_form_is_stripped(query: bytes) -> None:
    """Each query form, between text, leaves only the text."""
    assert QueryFilter().feed(b"ab" + query + b"cd") == b"abcd"
    assert find_queries(b"ab" + query + b"cd") == [query]


@pytest.mark.parametrize("seq", NOT_QUERIES)
def test_lookalikes_pass_byte_exact(seq: bytes) -> None:
    """A sequence that asks nothing reaches clients unchanged, and is not counted."""
    assert QueryFilter().feed(b"ab" + seq + b"cd") == b"ab" + seq + b"cd"
    assert find_queries(seq) == []


# Window operations ask nothing, but would move or resize the person's window: dropped,
# and not counted as queries (nobody answers them).
WINDOW_OPS = [
    b"\x1b[8;30;100t", b"\x1b[8;;100t", b"\x1b[4;600;800t", b"\x1b[3;0;0t", b"\x1b[2t",
    b"\x1b[1t", b"\x1b[5t", b"\x1b[9;1t", b"\x1b[10;2t", b"\x1b[24t", b"\x1b[48t",
]  # fmt: skip


@pytest.mark.parametrize("seq", WINDOW_OPS)
def test_window_operations_are_dropped_and_not_counted(seq: bytes) -> None:
    assert QueryFilter().feed(b"ab" + seq + b"cd") == b"abcd"
    assert find_queries(b"ab" + seq + b"cd") == []


def test_a_window_operation_split_anywhere_is_still_dropped() -> None:
    data = b"ab\x1b[8;30;100tcd"
    for cut in range(1, len(data)):
        f = QueryFilter()
        assert f.feed(data[:cut]) + f.feed(data[cut:]) == b"abcd", cut


@pytest.mark.parametrize("name", RECORDINGS)
def test_filtered_recording_has_no_query(name: str) -> None:
    """A recording filtered in random small chunks holds no query any more."""
    data = recording(name)
    for seed in range(3):
        assert find_queries(strip(chunked(data, seed))) == []


@pytest.mark.parametrize("name", RECORDINGS)
def test_filter_only_removes_the_queries(name: str) -> None:
    """Filtered in chunks, a recording equals itself with exactly its queries cut out."""
    data = recording(name)
    assert strip(chunked(data, 11)) == remove_in_order(data, find_queries(data))


def test_recordings_contain_the_queries_measured() -> None:
    """The startup queries the issue lists are found where they were recorded."""
    assert find_queries(recording("claude-main.noanswer.100x30.bin")) == [b"\x1b[>0q", b"\x1b[c"]
    assert find_queries(recording("gemini.noanswer.100x30.bin")) == [
        b"\x1b[?u",
        b"\x1b]11;?\x1b\\",
        b"\x1b[>q",
        b"\x1b[>4;?m",
        b"\x1b[c",
    ]
    assert find_queries(recording("vim.noanswer.100x30.bin")) == [
        b"\x1b[6n",
        b"\x1b[6n",
        b"\x1b[>c",
        b"\x1b]10;?\x07",
        b"\x1b]11;?\x07",
        b"\x1b[?4m",
    ]
    opencode = find_queries(recording("opencode.noanswer.100x30.bin"))
    assert len(opencode) == 18
    assert b"\x1bP+q4d73\x1b\\" in opencode and b"\x1b[14t" in opencode


MIXED = (
    b"hello\x1b[1;31mred\x1b[0m\x1b]0;title\x07\x1b[6n\x1b]11;?\x1b\\\x1b]4;1;?;2;#ff0000\x07"
    b"\x1bP+q544e\x1b\\\x1bP$q q\x1b\\\x1b_Gi=1,a=q;AAAA\x1b\\\x1b_Gi=2,a=T,f=100;QUJD\x1b\\"
    b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1b]2;abc\x1b[c\x1b[?25l\x1b[>4;2m\x1b[>4;?m"
    b"\x1bZ\x05\x1b7\x1b8\x1b[?2026$p\x1b]10;?;#123456\x07\x1b]99;i=1:p=?;\x1b\\"
    b"\x1b]52;c;?\x07\x1b]52;c;YWJj\x07\xe2\x94\x80\xc2\x9b6ntail"
)
MIXED_OUT = (
    b"hello\x1b[1;31mred\x1b[0m\x1b]0;title\x07\x1b]4;2;#ff0000\x07"
    b"\x1b_Gi=2,a=T,f=100,q=2;QUJD\x1b\\"
    b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\x1b]2;abc\x1b\\\x1b[?25l\x1b[>4;2m"
    b"\x1b7\x1b8\x1b]11;#123456\x07\x1b]52;c;YWJj\x07\xe2\x94\x80\xc2\x9b6ntail"
)


def test_mixed_stream_exact_output() -> None:
    """Queries go; settings mixed into a query stay; kitty graphics go quiet; a query
    that ends an open string closes it with ST; UTF-8 (0x9b inside) is text."""
    assert QueryFilter().feed(MIXED) == MIXED_OUT


def test_split_at_every_byte_boundary() -> None:
    """Fed in two pieces cut at any byte, or one byte at a time, the output is the same."""
    for k in range(len(MIXED) + 1):
        f = QueryFilter()
        assert f.feed(MIXED[:k]) + f.feed(MIXED[k:]) == MIXED_OUT, k
    f = QueryFilter()
    assert b"".join(f.feed(MIXED[i : i + 1]) for i in range(len(MIXED))) == MIXED_OUT


def test_split_in_three_at_many_boundaries() -> None:
    """Three pieces cut anywhere (sampled) give the same output."""
    rng = random.Random(5)
    for _ in range(2000):
        a, b = sorted(rng.sample(range(len(MIXED) + 1), 2))
        f = QueryFilter()
        assert f.feed(MIXED[:a]) + f.feed(MIXED[a:b]) + f.feed(MIXED[b:]) == MIXED_OUT


PIECES = [
    b"a", b"\xe2\x94\x80", b"\r\n", b"\x1b", b"[", b"6", b"n", b"?", b";", b"0", b"c", b"\x07",
    b"\x1b\\", b"]", b"11", b"P", b"+q", b"_G", b"a=q", b"\x1b[6n", b"\x1b]11;?\x07",
    b"\x1b]0;t\x07", b"\x1b[1;2H", b"\x1b[?2026h", b"\x18", b"\x05", b"$p", b">", b"u", b"m",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(PIECES), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_any_chunking_gives_the_same_output(parts: list[bytes], cuts: list[int]) -> None:
    """For arbitrary streams, the filter's output does not depend on where reads end."""
    data = b"".join(parts)
    whole = QueryFilter().feed(data)
    f = QueryFilter()
    points = sorted({min(c, len(data)) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(data)]:
        out.append(f.feed(data[prev:p]))
        prev = p
    assert b"".join(out) == whole
    assert find_queries(whole) == []


def test_pending_is_the_forwarded_start_of_an_open_string() -> None:
    """A title still arriving was forwarded as it came: pending() gives its start."""
    f = QueryFilter()
    assert f.feed(b"ab\x1b]0;tit") == b"ab\x1b]0;tit"
    assert f.pending() == b"\x1b]0;tit"
    assert f.feed(b"le") == b"le"
    assert f.pending() == b"\x1b]0;title"
    assert f.feed(b"\x07x") == b"\x07x"
    assert f.pending() == b""


def test_possible_query_is_held_not_pending() -> None:
    """An unfinished sequence that may be a query is held back, and is not pending."""
    f = QueryFilter()
    assert f.feed(b"ab\x1b]11;") == b"ab"
    assert (f.held(), f.pending()) == (b"\x1b]11;", b"")
    assert f.feed(b"?\x07") == b""
    f = QueryFilter()
    assert f.feed(b"\x1b[3") == b""
    assert (f.held(), f.pending()) == (b"\x1b[3", b"")
    assert f.feed(b"8;5;1m") == b"\x1b[38;5;1m"


def test_query_ending_an_open_string_closes_it() -> None:
    """When a dropped query's ESC was what ended a forwarded string, an ST replaces it."""
    f = QueryFilter()
    assert f.feed(b"\x1b]2;abc") == b"\x1b]2;abc"
    assert f.feed(b"\x1b") == b""
    assert f.pending() == b"\x1b]2;abc"  # clients are still inside the title
    assert f.feed(b"[6n!") == b"\x1b\\!"
    assert f.pending() == b""


@pytest.mark.parametrize(
    ("data", "out"),
    [
        (b"\x1b\x1b]11;?\x07P+q", b"P+q"),  # a bare ESC aborted by a query goes with it
        (b"\x1b[1\x1b\x1bZ[6n", b"[6n"),
        (b"\x1b[\x05c", b"\x1b[\x05c"),  # ENQ inside a CSI stays (dropped, ESC[c is DA1)
    ],
)
def test_removing_a_query_never_makes_one(data: bytes, out: bytes) -> None:
    """Cutting a query out never joins what was around it into a new sequence."""
    for k in range(len(data) + 1):
        f = QueryFilter()
        assert f.feed(data[:k]) + f.feed(data[k:]) == out, k
    assert find_queries(out) == []


def test_long_strings_are_bounded() -> None:
    """A huge candidate is forwarded once past HOLD_MAX; pending keeps PENDING_MAX bytes."""
    f = QueryFilter()
    big = b"\x1b]52;c;" + b"A" * (HOLD_MAX + 10)
    assert f.feed(big) == big
    f.feed(b"B" * (PENDING_MAX * 2))
    assert len(f.pending()) == PENDING_MAX
    assert f.feed(b"\x07") == b"\x07"
    assert f.pending() == b""


def test_scanner_reports_end_offsets() -> None:
    """Events carry the offset in the chunk where each sequence completes."""
    s = VTScanner(extra=rb"\x1b7", ctl=b"\x07", strings=True)
    s.feed(b"xx\x1b[")
    s.feed(b"6nab\x1b7\x07\x1b]0;t\x07")
    assert s.events == [(2, "q", b"\x1b[6n"), (6, "x", b"\x1b7"), (7, "x", b"\x07"),
                        (13, "s", b"\x1b]0;t\x07")]  # fmt: skip


@pytest.mark.parametrize(
    ("seq", "parts"),
    [
        (b"\x1b[?1;2$p", (b"?", [1, 2], b"$", b"p")),
        (b"\x1b[m", (b"", [], b"", b"m")),
        (b"\x1b[;5H", (b"", [0, 5], b"", b"H")),  # an empty parameter is 0
        (b"\x1b[>4;?m", (b">", [4, 0], b"", b"m")),  # so is a `?` among them
        (b"\x1b[4:3m", (b"", [0], b"", b"m")),  # and a sub-parameter list
        (b"\x1b[5 q", (b"", [5], b" ", b"q")),
        (b"\x1b[=1;2u", (b"=", [1, 2], b"", b"u")),
        (b"\x1b[<u", (b"<", [], b"", b"u")),
        (b'\x1b["v', (b"", [], b'"', b"v")),
    ],
)
def test_parse_csi_splits_a_sequence(seq: bytes, parts: Csi) -> None:
    """A CSI sequence splits into private marker, numeric parameters, intermediates, final."""
    assert parse_csi(seq) == parts


@pytest.mark.parametrize(
    "seq", [b"\x1b[1", b"\x1b[1mx", b"x\x1b[1m", b"\x1b]2;t\x07", b"\x1b=", b""]
)
def test_parse_csi_refuses_what_is_not_one_csi(seq: bytes) -> None:
    """Unfinished sequences, extra bytes around one, and other kinds parse to None."""
    assert parse_csi(seq) is None


@pytest.mark.parametrize(
    ("seq", "body"),
    [
        (b"\x1b]2;title\x07", b"2;title"),
        (b"\x1b]2;title\x1b\\", b"2;title"),
        (b"\x1b]2;tit", b"2;tit"),  # as reported at an ESC, or cut at PENDING_MAX
        (b"\x1b]2;t\x18", None),  # aborted by CAN
        (b"\x1b]2;t\x1a", None),  # or SUB
        (b"\x1bP+q544e\x1b\\", None),  # not an OSC
    ],
)
def test_osc_body(seq: bytes, body: bytes | None) -> None:
    """The body of a reported OSC lies between `ESC ]` and its terminator."""
    assert osc_body(seq) == body


def test_scanner_reports_each_osc_for_its_body() -> None:
    """With `strings`, each OSC is reported once, wherever reads cut it, for `osc_body`."""
    data = b"a\x1b]0;one\x07b\x1b]2;two\x1b\\c"
    for i in range(1, len(data)):
        scan, got = VTScanner(strings=True), []
        for part in (data[:i], data[i:]):
            scan.feed(part)
            got += [osc_body(seq) for _, kind, seq in scan.events if kind == "s"]
        assert got == [b"0;one", b"2;two"], i
