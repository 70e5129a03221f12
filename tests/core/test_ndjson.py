"""NDJSON framing: whole lines out of any chunking, over-long lines reported once and dropped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestra.core.ndjson import TOO_LONG, LineSplitter


def drain(lines: LineSplitter) -> list[object]:
    out: list[object] = []
    while (line := lines.next()) is not None:
        out.append(line)
    return out


def test_lines_come_out_whole_and_in_order() -> None:
    """Lines split across chunks come out whole, without their newline; a partial one waits."""
    lines = LineSplitter(100)
    lines.feed(b'{"a":1}\n{"b"')
    assert drain(lines) == [b'{"a":1}']
    assert lines.pending
    lines.feed(b":2}\n\n")
    assert drain(lines) == [b'{"b":2}', b""]
    assert not lines.pending


def test_an_over_long_line_is_reported_once_before_it_ends_and_then_skipped() -> None:
    """Past the limit without a newline: TOO_LONG at once, its bytes dropped up to its
    newline, and the lines after it served."""
    lines = LineSplitter(10)
    lines.feed(b"x" * 11)
    assert drain(lines) == [TOO_LONG]
    lines.feed(b"y" * 1000)
    assert drain(lines) == []
    lines.feed(b"zz\nok\n")
    assert drain(lines) == [b"ok"]


def test_a_whole_line_over_the_limit_in_one_chunk_is_too_long() -> None:
    """A line over the limit that arrives whole is TOO_LONG too; the next is served."""
    lines = LineSplitter(4)
    lines.feed(b"12345\n1234\n")
    assert drain(lines) == [TOO_LONG, b"1234"]


def test_rest_hands_on_what_follows_the_last_line() -> None:
    """What is buffered after the last line taken (an attach stream's first frames) is handed
    on whole, and the splitter is empty after."""
    lines = LineSplitter(100)
    lines.feed(b'{"reply":1}\n\x01\x00\x00\x00\x02hi\n\x02')
    assert lines.next() == b'{"reply":1}'
    assert lines.rest() == b"\x01\x00\x00\x00\x02hi\n\x02"
    assert lines.next() is None and not lines.pending


LINES = st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=20)


@given(LINES, st.data())
def test_any_chunking_gives_the_same_lines(messages: list[bytes], data: st.DataObject) -> None:
    """However a stream of lines is cut into chunks, the same lines come out."""
    stream = b"".join(m + b"\n" for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    lines = LineSplitter(1000)
    out: list[object] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        lines.feed(stream[start:end])
        out += drain(lines)
    assert out == messages


def test_buffered_counts_the_bytes_held() -> None:
    """`buffered` is the bytes held (what the daemon charges to its line budget): a long
    partial line's, then only what follows it once it is taken out."""
    lines = LineSplitter(1 << 20)
    lines.feed(b"x" * 200_000)
    assert lines.buffered == 200_000
    lines.feed(b"\nab")
    assert drain(lines) == [b"x" * 200_000]
    assert lines.buffered == 2
    lines.feed(b"\n")
    assert drain(lines) == [b"ab"] and lines.buffered == 0
