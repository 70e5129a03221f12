"""Desktop notifications: OSC 9, 777 and 99 bodies read as one line of text."""

from __future__ import annotations

import base64

import pytest

from orchestra.core.notifications import MAX_PENDING, NotificationReader, join


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"9;Build finished", "Build finished"),
        (b"9;caf\xc3\xa9", "café"),
        (b"9;", ""),
        (b"9;4;1;50", None),  # ConEmu progress, not a notification
        (b"9;4", None),
        (b"9;42 apples", "42 apples"),
        (b"777;notify;Title;Body", "Title: Body"),
        (b"777;notify;;Body only", "Body only"),
        (b"777;notify;Body; with a semicolon", "Body:  with a semicolon"),
        (b"777;preexec", None),
        (b"2;a title", None),
        (b"4;1;?", None),
    ],
)
def test_osc_9_and_777(body: bytes, text: str | None) -> None:
    """iTerm2's OSC 9 and rxvt's OSC 777 notify show their text; other OSCs show nothing."""
    assert NotificationReader().read(body) == text


def test_kitty_notification_in_parts() -> None:
    """OSC 99 title and body join by id; another id is another notification."""
    r = NotificationReader()
    assert r.read(b"99;i=1:d=0;Hello") == "Hello"  # p defaults to title
    assert r.read(b"99;i=2;Other") == "Other"
    assert r.read(b"99;i=1:p=body;World") == "Hello: World"
    assert r.read(b"99;;plain") == "plain"
    assert r.read(b"99") == ""  # empty, and still a notification


def test_kitty_notification_base64_and_other_parts() -> None:
    """`e=1` payloads are base64 (shown as sent when invalid); icons, buttons and
    queries are no notification."""
    r = NotificationReader()
    encoded = base64.b64encode("ça va".encode())
    assert r.read(b"99;i=a:e=1;" + encoded) == "ça va"
    assert r.read(b"99;i=b:e=1;not*base64") == "not*base64"
    assert r.read(b"99;i=c:p=icon;abc") is None
    assert r.read(b"99;i=c:p=?;") is None


def test_kitty_notifications_kept_are_bounded() -> None:
    """Only the newest MAX_PENDING notifications are kept for their later parts."""
    r = NotificationReader()
    for i in range(MAX_PENDING + 1):
        r.read(b"99;i=%d;t%d" % (i, i))
    assert r.read(b"99;i=0:p=body;b") == "b"  # the first was forgotten
    assert r.read(b"99;i=%d:p=body;b" % MAX_PENDING) == f"t{MAX_PENDING}: b"


def test_skipped_numbers_are_left_to_the_engine() -> None:
    """OSC numbers the engine reports itself read as no notification."""
    r = NotificationReader(skip=frozenset({b"9", b"777"}))
    assert r.read(b"9;Build finished") is None
    assert r.read(b"777;notify;T;B") is None
    assert r.read(b"99;;kitty") == "kitty"


def test_join() -> None:
    """Title and body join with a colon; an empty or missing one is left out."""
    assert join("T", "B") == "T: B"
    assert join("T", "") == "T"
    assert join(None, "B") == "B"
    assert join(None, None) == ""
