"""The relay thread on its own: real pipes, a real thread, the real event loop."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from orchestra.daemon import forward
from orchestra.daemon.relay import HAVE_EPOLL, Relay

TIMEOUT = 5.0


# Every inner loop: the C one (Linux), Python's over epoll, and over the selector other
# systems get.
@pytest.fixture(
    params=[
        pytest.param((True, True), id="epoll-c"),
        pytest.param((True, False), id="epoll-python"),
        pytest.param((False, False), id="selector"),
    ]
)
async def relay(request: pytest.FixtureRequest) -> AsyncIterator[Relay]:
    epoll, native = request.param
    if epoll and not HAVE_EPOLL:
        pytest.skip("no epoll here")
    if native and not forward.HAVE_NATIVE:
        pytest.skip("the C forwarder is not built here")
    r = Relay(epoll=epoll, native=native)
    assert r.native == native
    async with trio.open_nursery() as nursery:
        await nursery.start(r.serve)
        yield r
        nursery.cancel_scope.cancel()


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    yield r, w
    for fd in (r, w):
        os.close(fd)


async def test_handlers_run_in_the_relays_thread_until_unwatched(
    relay: Relay, pipe: tuple[int, int]
) -> None:
    r, w = pipe
    got: list[tuple[bytes, int]] = []
    arrived = trio.Event()

    def on_readable() -> None:
        got.append((os.read(r, 100), threading.get_ident()))
        relay.soon(arrived.set)

    await relay.watch(r, on_readable)
    os.write(w, b"one")
    with trio.fail_after(TIMEOUT):
        await arrived.wait()
    [(data, thread)] = got
    assert data == b"one"
    assert thread != threading.get_ident()  # not the event loop's thread

    await relay.unwatch(r)
    os.write(w, b"two")  # nobody reads it now: once unwatch returns, the relay lets go
    assert await relay.call(lambda: len(got)) == 1  # a round of the relay has passed
    assert os.read(r, 100) == b"two"


async def test_call_returns_the_value_or_raises_the_error_of_the_function(relay: Relay) -> None:
    assert await relay.call(threading.get_ident) != threading.get_ident()

    def broken() -> None:
        raise ValueError("from the relay")

    with pytest.raises(ValueError, match="from the relay"):
        await relay.call(broken)


async def test_a_failing_handler_costs_its_fd_only(relay: Relay, pipe: tuple[int, int]) -> None:
    """The relay logs it, stops watching that fd, tells its owner, and serves the rest."""
    r, w = pipe
    told: list[Exception] = []
    failed = trio.Event()

    def explode() -> None:
        raise RuntimeError("bug")

    def on_failed(exc: Exception) -> None:
        told.append(exc)
        relay.soon(failed.set)

    await relay.watch(r, explode, failed=on_failed)
    os.write(w, b"x")
    with trio.fail_after(TIMEOUT):
        await failed.wait()
    assert [str(e) for e in told] == ["bug"]

    r2, w2 = os.pipe()
    try:
        arrived = trio.Event()

        def on_readable() -> None:
            os.read(r2, 10)
            relay.soon(arrived.set)

        await relay.watch(r2, on_readable)
        os.write(w2, b"y")
        with trio.fail_after(TIMEOUT):
            await arrived.wait()  # still serving
        await relay.unwatch(r2)
    finally:
        os.close(r2)
        os.close(w2)


async def test_after_it_stops_calls_run_in_the_caller() -> None:
    """A teardown that comes after the relay stopped still gets its unwatch done."""
    r = Relay()
    async with trio.open_nursery() as nursery:
        await nursery.start(r.serve)
        nursery.cancel_scope.cancel()
    assert await r.call(threading.get_ident) == threading.get_ident()


async def test_a_write_watch_fires_when_the_fd_drains(relay: Relay) -> None:
    """What a paste into a full PTY waits for: the fd becoming writable again."""
    r, w = os.pipe()
    try:
        os.set_blocking(w, False)
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(w, b"x" * 65536)  # full
        writable = trio.Event()

        def on_writable() -> None:
            relay.unwatch_now(w)
            relay.soon(writable.set)

        await relay.watch(w, on_writable, write=True)
        assert not writable.is_set()
        os.set_blocking(r, False)
        with contextlib.suppress(BlockingIOError):
            while os.read(r, 65536):
                pass
        with trio.fail_after(TIMEOUT):
            await writable.wait()
    finally:
        os.close(r)
        os.close(w)


async def test_a_received_fd_is_read_by_the_relay_and_forwarded_on_its_route(
    relay: Relay, pipe: tuple[int, int]
) -> None:
    """Clean chunks go to the route's destinations before the receiver is told (with the
    tag and what each write took); a chunk with a stop byte only to the receiver."""
    r, w = pipe
    out_r, out_w = os.pipe()
    os.set_blocking(out_r, False)
    tag = object()
    got: list[tuple[bytes, object, tuple[int, ...] | None, bytes]] = []
    arrived = trio.Event()

    def receiver(data: bytes, got_tag: object, sent: tuple[int, ...] | None) -> None:
        already = b""
        with contextlib.suppress(BlockingIOError):
            already = os.read(out_r, 100)  # forwarded before this ran
        got.append((data, got_tag, sent, already if sent else b""))
        relay.soon(arrived.set)

    try:
        await relay.receive(r, receiver)
        await relay.call(lambda: relay.route_now(r, (out_w,), b"\x1b", tag))
        for chunk, want in [
            (b"plain", (b"plain", tag, (5,), b"plain")),
            (b"\x1b[H", (b"\x1b[H", tag, None, b"")),
        ]:
            arrived = trio.Event()
            os.write(w, chunk)
            with trio.fail_after(TIMEOUT):
                await arrived.wait()
            assert got.pop() == want
        await relay.call(lambda: relay.route_now(r, (), b"", None))  # no destination
        arrived = trio.Event()
        os.write(w, b"again")
        with trio.fail_after(TIMEOUT):
            await arrived.wait()
        assert got.pop() == (b"again", None, None, b"")
        with pytest.raises(BlockingIOError):
            os.read(out_r, 100)  # nothing forwarded
        await relay.unwatch(r)
    finally:
        os.close(out_r)
        os.close(out_w)


async def test_end_of_file_reaches_the_receiver_as_empty_data(relay: Relay) -> None:
    r, w = os.pipe()
    ended = trio.Event()
    got: list[bytes] = []

    def receiver(data: bytes, _tag: object, _sent: tuple[int, ...] | None) -> None:
        got.append(data)
        relay.unwatch_now(r)
        relay.soon(ended.set)

    try:
        await relay.receive(r, receiver)
        os.close(w)
        with trio.fail_after(TIMEOUT):
            await ended.wait()
        assert got == [b""]
    finally:
        os.close(r)
