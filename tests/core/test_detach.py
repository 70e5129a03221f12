"""The detach keys found in typed input, however the reads split them."""

from __future__ import annotations

import pytest

from orchestra.core.detach import DetachMatcher


def test_single_key_detaches_and_keeps_what_came_before() -> None:
    m = DetachMatcher(b"\x11")
    assert m.feed(b"abc") == (b"abc", False)
    assert m.feed(b"xy\x11z") == (b"xy", True)


def test_sequence_split_across_reads_is_held_then_decided() -> None:
    m = DetachMatcher(b"\x02d")
    assert m.feed(b"ab\x02") == (b"ab", False)  # the first key is held back
    assert m.feed(b"d") == (b"", True)


def test_held_prefix_that_does_not_continue_is_typed_after_all() -> None:
    m = DetachMatcher(b"\x02d")
    assert m.feed(b"\x02") == (b"", False)
    assert m.feed(b"x") == (b"\x02x", False)  # ctrl-b then x reaches the agent, in order


@pytest.mark.parametrize("split", range(1, 6))
def test_any_split_of_the_stream(split: int) -> None:
    m = DetachMatcher(b"\x02d")
    stream = b"ab\x02c\x02d"
    typed, detached = m.feed(stream[:split])
    rest, detached2 = m.feed(stream[split:])
    assert typed + rest == b"ab\x02c"
    assert detached2 and not detached


def test_no_keys_means_everything_is_typed() -> None:
    assert DetachMatcher(b"").feed(b"\x11abc") == (b"\x11abc", False)
