"""The relay's inner loop (forward.py): wait, read the routed fds, forward clean chunks.

There are two implementations of one contract: the C `Forwarder` (`_forward.c`, built
on Linux) runs in production, and `PyForwarder` runs everywhere else, over an epoll or
a selector. Each test here runs against all three variants (C over epoll, Python over
epoll, Python over a selector), so that a difference between them shows up as a failing
test and not as a relay that behaves differently from one machine to the next. The
tests use real pipes, sockets and PTYs, the kinds of fd the relay uses, and every wait
has a timeout so that a broken forwarder fails instead of hanging.
"""

from __future__ import annotations

import gc
import os
import select
import selectors
import signal
import socket
import sys
import threading
import time
import tty
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from orchestra.daemon import forward
from orchestra.daemon.forward import Event

HAVE_EPOLL = hasattr(select, "epoll")
ON_LINUX = sys.platform.startswith("linux")
TIMEOUT_MS = 1000  # for a wait that should return at once: long enough never to be hit
NOT_AN_INT = 2**31  # a number that does not fit in a C int, so it is no fd


class Tag:
    """A route's tag that a weak reference can point to."""


class Rig:
    """One forwarder over its own poll, and every fd a test opens (closed afterwards)."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.native = variant == "epoll-c"
        self.poll: select.epoll | selectors.BaseSelector = (
            select.epoll() if variant.startswith("epoll") else selectors.DefaultSelector()
        )
        self._open: set[int] = set()
        self._watched: set[int] = set()
        self._sockets: list[socket.socket] = []
        self.fwd = self.new_forwarder()

    def new_forwarder(self) -> forward.Forwarder:
        if not self.native:
            return forward.PyForwarder(self.poll)
        fwd = forward.forwarder(self.poll, native=True)
        assert forward._Native is not None and isinstance(fwd, forward._Native)
        return fwd

    def adopt(self, *fds: int) -> None:
        """Have these fds closed at the end, and make them non-blocking."""
        for fd in fds:
            self._open.add(fd)
            os.set_blocking(fd, False)

    def pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        self.adopt(r, w)
        return r, w

    def socketpair(self) -> tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        self._sockets += [a, b]
        return a, b

    def openpty(self) -> tuple[int, int]:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing, no output processing
        self.adopt(master, slave)
        return master, slave

    def watch(self, fd: int, *, writable: bool = False) -> None:
        if isinstance(self.poll, selectors.BaseSelector):
            self.poll.register(fd, selectors.EVENT_WRITE if writable else selectors.EVENT_READ)
        else:
            self.poll.register(fd, select.EPOLLOUT if writable else select.EPOLLIN)
        self._watched.add(fd)

    def close(self, fd: int) -> None:
        """Close one of this rig's fds now."""
        if fd in self._watched:
            self._watched.remove(fd)
            self.poll.unregister(fd)
        self._open.remove(fd)
        os.close(fd)

    def closed_fd(self) -> int:
        """An fd number that is not open (EBADF), for as long as the test opens nothing."""
        fd = os.dup(0)
        os.close(fd)
        with pytest.raises(OSError):
            os.fstat(fd)
        return fd

    def teardown(self) -> None:
        for fd in list(self._watched):
            self.poll.unregister(fd)
        for sock in self._sockets:
            sock.close()
        for fd in self._open:
            os.close(fd)
        self.poll.close()


@pytest.fixture(params=["epoll-c", "epoll-python", "selector-python"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    variant: str = request.param
    if variant.startswith("epoll") and not HAVE_EPOLL:
        pytest.skip("no epoll on this system")
    if variant == "epoll-c" and not forward.HAVE_NATIVE:
        if os.environ.get("CI") and ON_LINUX:
            pytest.fail(
                "the C extension orchestra.daemon._forward was not built:"
                " CI on Linux must build it (and test it)"
            )
        pytest.skip("the C forwarder (orchestra.daemon._forward) is not built here")
    r = Rig(variant)
    try:
        yield r
    finally:
        r.teardown()


def wait_for(rig: Rig, fd: int) -> Event:
    """The one event of the next wait, which must be about `fd` alone."""
    events = rig.fwd.wait(TIMEOUT_MS)
    assert [e[0] for e in events] == [fd], events
    return events[0]


def source(
    rig: Rig, dsts: tuple[int, ...] = (), stop: bytes = b"", tag: Any = None
) -> tuple[int, int]:
    """A routed pipe: the forwarder reads its read end; the test writes to the other."""
    r, w = rig.pipe()
    rig.watch(r)
    rig.fwd.route(r, dsts, stop, tag)
    return r, w


def drain(fd: int) -> bytes:
    """Everything readable from a non-blocking fd now."""
    out = b""
    while True:
        try:
            got = os.read(fd, 65536)
        except BlockingIOError:
            return out
        if not got:
            return out
        out += got


def read_exactly(fd: int, n: int, timeout: float = 2.0) -> bytes:
    """n bytes from a non-blocking fd whose data may arrive a little later (a PTY)."""
    out = b""
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            out += os.read(fd, n - len(out))
    return out


def fill(fd: int) -> int:
    """Write to a non-blocking pipe until it takes nothing more; how much it took."""
    total = 0
    for size in (65536, 1):  # big writes first, then single bytes into what room is left
        while True:
            try:
                total += os.write(fd, b"f" * size)
            except BlockingIOError:
                break
    return total


# --- waiting ---------------------------------------------------------------------------


def test_nothing_ready_returns_nothing_after_the_timeout(rig: Rig) -> None:
    source(rig, tag="t")
    assert rig.fwd.wait(0) == []
    began = time.monotonic()
    assert rig.fwd.wait(50) == []
    assert time.monotonic() - began >= 0.04


def test_wait_blocks_until_an_fd_is_ready_and_lets_other_threads_run(rig: Rig) -> None:
    # The writer is a Python thread: it can write only if the wait lets go of the GIL.
    tag = Tag()
    r, w = source(rig, tag=tag)
    writer = threading.Timer(0.05, os.write, (w, b"late"))
    writer.start()
    try:
        began = time.monotonic()
        event = rig.fwd.wait(5000)
        elapsed = time.monotonic() - began
    finally:
        writer.join()
    assert event == [(r, b"late", tag, None)]
    assert 0.03 <= elapsed < 4


# --- unrouted fds ----------------------------------------------------------------------


def test_an_unrouted_fd_is_reported_unread(rig: Rig) -> None:
    r, w = rig.pipe()
    rig.watch(r)
    os.write(w, b"for the handler")
    assert rig.fwd.wait(TIMEOUT_MS) == [(r, None, None, None)]
    assert rig.fwd.wait(TIMEOUT_MS) == [(r, None, None, None)]  # still ready: nobody read
    assert drain(r) == b"for the handler"


# --- forwarding ------------------------------------------------------------------------


def test_a_clean_chunk_goes_to_every_destination_and_is_reported(rig: Rig) -> None:
    (r1, w1), (r2, w2), (r3, w3) = rig.pipe(), rig.pipe(), rig.pipe()
    tag = Tag()
    r, w = source(rig, (w1, w2, w3), b"\x1b", tag)
    os.write(w, b"hello")
    fd, data, got_tag, sent = wait_for(rig, r)
    assert (fd, data, sent) == (r, b"hello", (5, 5, 5))
    assert type(data) is bytes
    assert got_tag is tag
    assert [drain(r1), drain(r2), drain(r3)] == [b"hello"] * 3
    assert drain(r) == b""  # the forwarder read it all


def test_destinations_are_written_in_order_one_figure_each(rig: Rig) -> None:
    (full_r, full_w), (r1, w1) = rig.pipe(), rig.pipe()
    filled = fill(full_w)
    r, w = source(rig, (full_w, w1, w1), b"", "tag")
    os.write(w, b"abc")
    assert wait_for(rig, r) == (r, b"abc", "tag", (0, 3, 3))
    assert drain(r1) == b"abcabc"
    assert drain(full_r) == b"f" * filled


def test_a_pty_as_destination(rig: Rig) -> None:
    master, slave = rig.openpty()
    r, w = source(rig, (master,), b"\x1d", "keys")
    os.write(w, b"ls -l")
    assert wait_for(rig, r) == (r, b"ls -l", "keys", (5,))
    assert read_exactly(slave, 5) == b"ls -l"


def test_a_pty_as_source(rig: Rig) -> None:
    master, slave = rig.openpty()
    dst_r, dst_w = rig.pipe()
    rig.watch(master)
    rig.fwd.route(master, (dst_w,), b"\x1b", "output")
    os.write(slave, b"hello")
    fd, data, tag, sent = wait_for(rig, master)
    assert (fd, tag) == (master, "output")
    assert data is not None and b"hello".startswith(data) and data
    assert sent == (len(data),)
    assert drain(dst_r) == data


def test_a_route_without_destinations_forwards_nothing(rig: Rig) -> None:
    tag = Tag()
    r, w = source(rig, (), b"", tag)
    os.write(w, b"data")
    fd, data, got_tag, sent = wait_for(rig, r)
    assert (fd, data, sent) == (r, b"data", None)
    assert got_tag is tag


# --- stop bytes ------------------------------------------------------------------------


def test_a_chunk_with_a_stop_byte_is_read_and_reported_but_not_forwarded(rig: Rig) -> None:
    dst_r, dst_w = rig.pipe()
    r, w = source(rig, (dst_w,), b"\x1b\x02", "t")
    os.write(w, b"\x1b[1mbold")
    assert wait_for(rig, r) == (r, b"\x1b[1mbold", "t", None)
    os.write(w, b"key \x02")
    assert wait_for(rig, r) == (r, b"key \x02", "t", None)
    assert drain(dst_r) == b""
    assert drain(r) == b""  # read all the same
    os.write(w, b"plain")  # and a clean chunk after them still goes
    assert wait_for(rig, r) == (r, b"plain", "t", (5,))
    assert drain(dst_r) == b"plain"


def test_every_byte_value_alone_is_a_stop_byte(rig: Rig) -> None:
    dst_r, dst_w = rig.pipe()
    r, w = source(rig)
    for value in range(256):
        other = (value + 1) % 256
        rig.fwd.route(r, (dst_w,), bytes([value]), value)
        chunk = bytes([other, other, value, other])
        os.write(w, chunk)
        assert wait_for(rig, r) == (r, chunk, value, None), f"stop byte {value:#04x}"
        os.write(w, bytes([other]) * 3)
        assert wait_for(rig, r) == (r, bytes([other]) * 3, value, (3,)), f"{value:#04x}"
    assert drain(dst_r) == b"".join(bytes([(v + 1) % 256]) * 3 for v in range(256))


def test_each_of_the_full_set_of_stop_bytes_stops(rig: Rig) -> None:
    stop = bytes(range(1, forward.MAX_STOP + 1))  # as many as a route takes
    dst_r, dst_w = rig.pipe()
    r, w = source(rig, (dst_w,), stop, "t")
    for value in stop:
        os.write(w, b"ab" + bytes([value]))
        assert wait_for(rig, r) == (r, b"ab" + bytes([value]), "t", None), value
    clean = bytes([0, forward.MAX_STOP + 1, 255])
    os.write(w, clean)
    assert wait_for(rig, r) == (r, clean, "t", (3,))
    assert drain(dst_r) == clean


@pytest.mark.parametrize(
    ("stop", "clean", "stopped"),
    [
        (b"a-z", b"m", b"-"),  # a range in a regex class, not here
        (b"^a", b"b", b"^"),  # a negated class in a regex, not here
        (b"]", b"x", b"]"),
        (b"\\", b"x", b"\\"),
        (b"[.", b"x", b"."),
    ],
)
def test_stop_bytes_are_bytes_not_a_pattern(
    rig: Rig, stop: bytes, clean: bytes, stopped: bytes
) -> None:
    dst_r, dst_w = rig.pipe()
    r, w = source(rig, (dst_w,), stop, "t")
    os.write(w, clean)
    assert wait_for(rig, r) == (r, clean, "t", (1,))
    os.write(w, stopped)
    assert wait_for(rig, r) == (r, stopped, "t", None)
    assert drain(dst_r) == clean


def test_an_empty_stop_set_forwards_everything(rig: Rig) -> None:
    dst_r, dst_w = rig.pipe()
    r, w = source(rig, (dst_w,), b"", "t")
    every_byte = bytes(range(256))
    os.write(w, every_byte)
    assert wait_for(rig, r) == (r, every_byte, "t", (256,))
    assert drain(dst_r) == every_byte


# --- the end of a source ---------------------------------------------------------------


def test_eof_reports_empty_data_and_forwards_nothing(rig: Rig) -> None:
    dst_r, dst_w = rig.pipe()
    r, w = source(rig, (dst_w,), b"", "t")
    os.write(w, b"last")
    rig.close(w)
    assert wait_for(rig, r) == (r, b"last", "t", (4,))
    assert wait_for(rig, r) == (r, b"", "t", None)
    assert drain(dst_r) == b"last"


@pytest.mark.skipif(not ON_LINUX, reason="a PTY master reads EIO after its slave closes on Linux")
def test_a_read_error_reports_empty_data(rig: Rig) -> None:
    master, slave = rig.openpty()
    dst_r, dst_w = rig.pipe()
    rig.watch(master)
    rig.fwd.route(master, (dst_w,), b"", "t")
    rig.close(slave)
    with pytest.raises(OSError) as raised:  # what the forwarder meets: EIO
        os.read(master, 1)
    assert raised.value.errno == 5
    assert wait_for(rig, master) == (master, b"", "t", None)
    assert drain(dst_r) == b""


def test_a_spurious_wakeup_reports_nothing(rig: Rig) -> None:
    # A socket watched for writing is always ready; with nothing to read, its read
    # gets EAGAIN: the same as a wakeup whose data someone else took.
    a, b = rig.socketpair()
    rig.watch(a.fileno(), writable=True)
    assert rig.fwd.wait(TIMEOUT_MS) == [(a.fileno(), None, None, None)]  # it wakes
    rig.fwd.route(a.fileno(), (), b"", "t")
    assert rig.fwd.wait(0) == []
    b.send(b"now")
    assert wait_for(rig, a.fileno()) == (a.fileno(), b"now", "t", None)
    assert rig.fwd.wait(0) == []


# --- destinations that do not take it all ----------------------------------------------


def test_a_full_destination_takes_nothing(rig: Rig) -> None:
    dst_r, dst_w = rig.pipe()
    filled = fill(dst_w)
    r, w = source(rig, (dst_w,), b"", "t")
    os.write(w, b"hi")
    assert wait_for(rig, r) == (r, b"hi", "t", (0,))
    assert drain(dst_r) == b"f" * filled


@pytest.mark.skipif(not ON_LINUX, reason="relies on how Linux splits a unix socket's writes")
def test_a_partly_full_destination_takes_part(rig: Rig) -> None:
    # A unix stream socket with the smallest send buffer: with a byte already queued,
    # a CHUNK-sized write goes in part (a pipe never does that: up to PIPE_BUF bytes,
    # a write goes whole or not at all).
    a, b = rig.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)
    assert os.write(a.fileno(), b".") == 1
    r, w = source(rig, (a.fileno(),), b"", "t")
    payload = bytes(i % 251 for i in range(forward.CHUNK))
    os.write(w, payload)
    fd, data, tag, sent = wait_for(rig, r)
    assert (fd, data, tag) == (r, payload, "t")
    assert sent is not None and len(sent) == 1
    assert 0 < sent[0] < len(payload)
    assert drain(b.fileno()) == b"." + payload[: sent[0]]


def test_a_destination_nobody_reads_is_an_error(rig: Rig) -> None:
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # Python's: EPIPE, no signal
    dst_r, dst_w = rig.pipe()
    rig.close(dst_r)
    r, w = source(rig, (dst_w,), b"", "t")
    os.write(w, b"lost")
    assert wait_for(rig, r) == (r, b"lost", "t", (-1,))


def test_a_closed_destination_is_an_error_and_the_others_still_get_it(rig: Rig) -> None:
    (r1, w1), (r2, w2) = rig.pipe(), rig.pipe()
    gone = rig.closed_fd()
    r, w = source(rig, (w1, gone, w2), b"", "t")
    os.write(w, b"abc")
    assert wait_for(rig, r) == (r, b"abc", "t", (3, -1, 3))
    assert (drain(r1), drain(r2)) == (b"abc", b"abc")


# --- how much, and how many ------------------------------------------------------------


def test_one_wait_reads_one_chunk_at_most(rig: Rig) -> None:
    dst_r, dst_w = rig.pipe()
    r, w = source(rig, (dst_w,), b"", "t")
    payload = bytes(i % 253 for i in range(forward.CHUNK + 904))
    assert os.write(w, payload) == len(payload)
    assert wait_for(rig, r) == (r, payload[: forward.CHUNK], "t", (forward.CHUNK,))
    assert wait_for(rig, r) == (r, payload[forward.CHUNK :], "t", (904,))
    assert drain(dst_r) == payload


def test_every_ready_fd_is_reported_by_one_wait(rig: Rig) -> None:
    dst_r, dst_w = rig.pipe()
    routed = {}
    for name in ("one", "two", "three"):
        r, w = source(rig, (dst_w,), b"", name)
        os.write(w, name.encode())
        routed[r] = name
    unrouted = []
    for _ in range(2):
        r, w = rig.pipe()
        rig.watch(r)
        os.write(w, b"x")
        unrouted.append(r)
    events = rig.fwd.wait(TIMEOUT_MS)
    expected: list[Event] = [(r, name.encode(), name, (len(name),)) for r, name in routed.items()]
    expected += [(r, None, None, None) for r in unrouted]
    assert sorted(events) == sorted(expected)
    assert sorted(drain(dst_r)) == sorted(b"onetwothree")


def test_more_ready_fds_than_one_wait_takes_are_reported_by_the_next(rig: Rig) -> None:
    sources = {}
    for i in range(forward.MAX_EVENTS + 1):
        r, w = source(rig, (), b"", i)
        os.write(w, b"%d" % i)
        sources[r] = i
    events = rig.fwd.wait(TIMEOUT_MS)
    if rig.variant.startswith("epoll"):  # a selector hands over every ready fd at once
        assert len(events) == forward.MAX_EVENTS
        events += rig.fwd.wait(TIMEOUT_MS)
    assert sorted(events) == sorted((r, b"%d" % i, i, None) for r, i in sources.items())
    assert rig.fwd.wait(0) == []


# --- changing routes -------------------------------------------------------------------


def test_an_unrouted_fd_is_reported_unread_again(rig: Rig) -> None:
    dst_r, dst_w = rig.pipe()
    r, w = source(rig, (dst_w,), b"", "t")
    rig.fwd.unroute(r)
    os.write(w, b"mine")
    assert wait_for(rig, r) == (r, None, None, None)
    assert drain(r) == b"mine"
    assert drain(dst_r) == b""


def test_unrouting_what_has_no_route_does_nothing(rig: Rig) -> None:
    r, w = rig.pipe()
    rig.watch(r)
    for fd in (r, 0, 100_000):
        rig.fwd.unroute(fd)
    with pytest.raises(ValueError, match="an fd is an int"):
        rig.fwd.unroute(-1)
    os.write(w, b"x")
    assert wait_for(rig, r) == (r, None, None, None)


def test_a_new_route_replaces_the_old(rig: Rig) -> None:
    (r1, w1), (r2, w2) = rig.pipe(), rig.pipe()
    old, new = Tag(), Tag()
    r, w = source(rig, (w1,), b"", old)
    rig.fwd.route(r, (w2,), b"!", new)
    os.write(w, b"hello")
    fd, data, tag, sent = wait_for(rig, r)
    assert (fd, data, sent) == (r, b"hello", (5,))
    assert tag is new
    os.write(w, b"stop!")  # the new stop bytes
    assert wait_for(rig, r)[3] is None
    assert (drain(r1), drain(r2)) == (b"", b"hello")


def test_the_most_destinations_a_route_takes(rig: Rig) -> None:
    dst_r, dst_w = rig.pipe()
    r, w = source(rig, (dst_w,) * forward.MAX_DSTS, b"", "t")
    os.write(w, b"ab")
    assert wait_for(rig, r) == (r, b"ab", "t", (2,) * forward.MAX_DSTS)
    assert drain(dst_r) == b"ab" * forward.MAX_DSTS


BAD_ROUTES = {  # fd None: the test's source
    "too many destinations": (None, (1,) * (forward.MAX_DSTS + 1), b""),
    "too many stop bytes": (None, (), bytes(range(forward.MAX_STOP + 1))),
    "a negative fd": (-1, (), b""),
    "a negative destination": (None, (1, -1), b""),
    "a negative first destination": (None, (-2,), b""),
}


@pytest.mark.parametrize("case", list(BAD_ROUTES))
def test_a_bad_route_is_refused_and_changes_nothing(rig: Rig, case: str) -> None:
    dst_r, dst_w = rig.pipe()
    r, w = source(rig, (dst_w,), b"", "old")
    fd, dsts, stop = BAD_ROUTES[case]
    with pytest.raises(ValueError, match=r"at most|an fd is an int"):
        rig.fwd.route(r if fd is None else fd, dsts, stop, "new")
    os.write(w, b"still")
    assert wait_for(rig, r) == (r, b"still", "old", (5,))
    assert drain(dst_r) == b"still"


OUT_OF_RANGE = {  # fd None: the test's source
    "an fd beyond a C int": (NOT_AN_INT, ()),
    "a destination beyond a C int": (None, (NOT_AN_INT,)),
    "a destination beyond a C long": (None, (2**63,)),
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_a_number_too_big_for_an_fd_is_refused(rig: Rig, case: str) -> None:
    r, _w = source(rig, (), b"", "old")
    fd, dsts = OUT_OF_RANGE[case]
    with pytest.raises(ValueError, match="an fd is an int"):
        rig.fwd.route(r if fd is None else fd, dsts, b"", "new")
    if fd is not None:
        with pytest.raises(ValueError, match="an fd is an int"):
            rig.fwd.unroute(fd)


# --- tags ------------------------------------------------------------------------------


def test_a_route_keeps_its_tag_alive_until_unrouted(rig: Rig) -> None:
    tag = Tag()
    ref = weakref.ref(tag)
    r, w = source(rig, (), b"", tag)
    del tag
    gc.collect()
    assert ref() is not None
    os.write(w, b"x")
    assert wait_for(rig, r)[2] is ref()
    rig.fwd.unroute(r)
    gc.collect()
    assert ref() is None


def test_a_new_route_lets_go_of_the_old_tag(rig: Rig) -> None:
    old, new = Tag(), Tag()
    old_ref, new_ref = weakref.ref(old), weakref.ref(new)
    r, _w = source(rig, (), b"", old)
    rig.fwd.route(r, (), b"", new)
    del old, new
    gc.collect()
    assert old_ref() is None
    assert new_ref() is not None


def test_a_forwarder_lets_go_of_its_tags_when_it_goes_even_in_a_cycle(rig: Rig) -> None:
    plain, cyclic = Tag(), Tag()
    refs = weakref.ref(plain), weakref.ref(cyclic)
    fwd = rig.new_forwarder()
    cyclic.fwd = fwd  # type: ignore[attr-defined]  # the tag refers back to the forwarder
    fwd.route(100, (), b"", plain)
    fwd.route(101, (), b"", cyclic)
    del plain, cyclic, fwd
    gc.collect()
    assert [ref() for ref in refs] == [None, None]


# --- which forwarder -------------------------------------------------------------------


def test_over_a_selector_the_forwarder_is_pythons() -> None:
    with selectors.DefaultSelector() as sel:
        assert type(forward.forwarder(sel)) is forward.PyForwarder
        assert type(forward.forwarder(sel, native=True)) is forward.PyForwarder


@pytest.mark.skipif(not HAVE_EPOLL, reason="no epoll on this system")
def test_over_epoll_the_forwarder_is_cs_where_built_unless_asked_not_to() -> None:
    # (NO_NATIVE_ENV is read by the daemon, which passes native=False: see main.py.)
    native = forward._Native or forward.PyForwarder
    ep = select.epoll()
    try:
        assert type(forward.forwarder(ep)) is native
        assert type(forward.forwarder(ep, native=True)) is native
        assert type(forward.forwarder(ep, native=False)) is forward.PyForwarder
    finally:
        ep.close()
    assert (native is not forward.PyForwarder) == forward.HAVE_NATIVE
