"""The relay: one thread that moves the terminal bytes of every run and attached client.

Why a thread in a trio daemon: a keystroke's round trip through `attach` is two
wakeups of the daemon (the key from the person's terminal, the echo from the
agent's), and a trio wakeup costs 15-40 µs of scheduler work before our code runs
(measured, cold after the pause between two keys). With both relays in the event
loop `attach` stayed at 1.4x tmux's keystroke latency; in one plain selector loop
(the shape of tmux's own server) it is close to tmux (bench/keystroke_latency.py).

What it watches: every running agent's PTY (its output goes to `Run.take_output`:
viewers, terminal model, ring) and every terminal a client handed over (keys go to
the agent's PTY). It reads those itself (`receive`), in its inner loop
(daemon/forward.py: C where built), which also writes a chunk that needs no look
straight to where its route says (`route_now`) before any Python runs: a keystroke's
echo, a key without the detach key. Handlers never block: output a viewer's fd does
not take at once is left to that viewer's writer task in the event loop, and keys the
agent's PTY does not take yet wait for it to drain, with the terminal's reading paused.

Everything else stays in the event loop, which adds and removes what the relay
watches with `watch`/`unwatch`. Those run in the relay's thread between two of its
reads and are awaited: once `unwatch` returns, the relay no longer touches that fd,
and it may be closed. Handlers tell the event loop what it must do (wake a task, set
an event) through the trio token. The relay is owned by the daemon's root nursery
and outlives the runs' nursery, so every unwatch of a run's teardown is served.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import selectors
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from orchestra.daemon import forward

T = TypeVar("T")
Handler = Callable[[], None]
Failed = Callable[[Exception], None]  # told (in the relay's thread) when a handler raised
# Given what the relay read from a received fd: (data, tag, sent), see daemon/forward.py.
Receiver = Callable[[bytes, Any, tuple[int, ...] | None], None]

log = logging.getLogger("orchestra.daemon")

HAVE_EPOLL = hasattr(select, "epoll")


class _Poller:
    """fd -> what to call when it is ready, over the forwarder (daemon/forward.py), which
    waits (epoll where there is one, a selector elsewhere) and reads the routed fds."""

    def __init__(self, *, epoll: bool, native: bool | None) -> None:
        self._handlers: dict[int, Handler] = {}
        self._receivers: dict[int, Receiver] = {}
        self._failed: dict[int, Failed] = {}
        self._epoll = select.epoll() if epoll else None
        self._sel = None if self._epoll is not None else selectors.DefaultSelector()
        poll = self._epoll if self._epoll is not None else self._sel
        assert poll is not None
        self._fwd = forward.forwarder(poll, native=native)

    @property
    def native(self) -> bool:
        return not isinstance(self._fwd, forward.PyForwarder)

    def register(
        self,
        fd: int,
        handler: Handler | None,
        *,
        write: bool,
        failed: Failed | None,
        receiver: Receiver | None = None,
    ) -> None:
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLOUT if write else select.EPOLLIN)
        else:
            assert self._sel is not None
            self._sel.register(fd, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
        if receiver is not None:
            self._receivers[fd] = receiver
            self._fwd.route(fd, (), b"", None)
        else:
            assert handler is not None
            self._handlers[fd] = handler
        if failed is not None:
            self._failed[fd] = failed

    def route(self, fd: int, dsts: tuple[int, ...], stop: bytes, tag: Any) -> None:
        if fd in self._receivers:
            self._fwd.route(fd, dsts, stop, tag)

    def unregister(self, fd: int) -> None:
        self._failed.pop(fd, None)
        if self._handlers.pop(fd, None) is None and self._receivers.pop(fd, None) is None:
            return
        self._fwd.unroute(fd)
        with contextlib.suppress(OSError, KeyError, ValueError):  # closed already: gone anyway
            if self._epoll is not None:
                self._epoll.unregister(fd)
            else:
                assert self._sel is not None
                self._sel.unregister(fd)

    def wait(self) -> None:
        """Block until some fd is ready; call the handlers of those still registered (an
        earlier handler of the same round may have unregistered one, whose owner may be
        closing it already)."""
        for fd, data, tag, sent in self._fwd.wait():
            try:
                if data is None:
                    handler = self._handlers.get(fd)
                    if handler is not None:
                        handler()
                else:
                    receiver = self._receivers.get(fd)
                    if receiver is not None:
                        receiver(data, tag, sent)
            except Exception as exc:  # a bug costs what it watched, never the relay
                failed = self._failed.get(fd)
                self.unregister(fd)
                log.exception("relay handler failed", extra={"event": "relay.failed"})
                if failed is not None:
                    failed(exc)

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        else:
            assert self._sel is not None
            self._sel.close()


class Relay:
    """The relay thread (see the module docstring): `serve` runs it; the event loop uses
    `watch`, `unwatch` and `call`; handlers use the `*_now` methods and `soon`."""

    def __init__(self, *, epoll: bool = HAVE_EPOLL, native: bool | None = None) -> None:
        """`epoll=False`: the portable selector (what macOS gets), for tests on Linux.
        `native`: the C forwarder (None: where it is built; see daemon/forward.py)."""
        self._poller = _Poller(epoll=epoll, native=native)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._jobs: deque[Handler] = deque()
        self._jobs_lock = threading.Lock()  # the jobs, and whether the thread still takes them
        self._stopped = False
        self._quitting = False  # set in the thread, by a job: the loop ends
        self._token: trio.lowlevel.TrioToken | None = None

    @property
    def native(self) -> bool:
        """Whether the inner loop runs in C (daemon/_forward.c)."""
        return self._poller.native

    @property
    def token(self) -> trio.lowlevel.TrioToken:
        """For handlers: the way back into the event loop."""
        assert self._token is not None, "the relay is not serving"
        return self._token

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the relay's thread until cancelled; return once it has stopped."""
        self._token = trio.lowlevel.current_trio_token()
        self._poller.register(self._wake_r, self._run_jobs, write=False, failed=None)
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stop_when_cancelled)
                # A limiter of its own: a thread for the daemon's life must not hold a
                # token of the pool that git calls share.
                await trio.to_thread.run_sync(self._loop, limiter=trio.CapacityLimiter(1))
                nursery.cancel_scope.cancel()
        finally:
            with self._jobs_lock:
                self._stopped = True
            self._run_jobs()  # any left: the thread is gone, so they may run here
            self._poller.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    async def _stop_when_cancelled(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self._post(self._quit)

    def _quit(self) -> None:
        self._quitting = True

    def _loop(self) -> None:
        wait = self._poller.wait
        while not self._quitting:
            wait()

    def _run_jobs(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass
        while self._jobs:
            self._jobs.popleft()()

    async def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` in the relay's thread, between two of its reads; return its result.
        Not cancellable: what `fn` changes is done when this returns."""
        done = trio.Event()
        box: list[tuple[bool, Any]] = []
        token = self.token

        def job() -> None:
            try:
                box.append((True, fn()))
            except BaseException as exc:  # handed back to the caller below
                box.append((False, exc))
            token.run_sync_soon(done.set)

        if not self._post(job):
            job()  # the thread is gone: nothing else touches what it watched
        with trio.CancelScope(shield=True):
            await done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _post(self, job: Handler) -> bool:
        """Queue `job` for the relay's thread and wake it; False if it has stopped."""
        with self._jobs_lock:
            if self._stopped:
                return False
            self._jobs.append(job)
            with contextlib.suppress(BlockingIOError):  # full: a wakeup is pending anyway
                os.write(self._wake_w, b"x")
            return True

    # -- from the event loop

    async def watch(
        self, fd: int, handler: Handler, *, write: bool = False, failed: Failed | None = None
    ) -> None:
        """Call `handler()` in the relay's thread whenever `fd` is readable (or writable).
        If it raises, `fd` is no longer watched and `failed(exc)` is told."""
        await self.call(lambda: self.watch_now(fd, handler, write=write, failed=failed))

    async def receive(self, fd: int, receiver: Receiver, *, failed: Failed | None = None) -> None:
        """The relay reads `fd` itself, a chunk at a time, and calls `receiver(data, tag,
        sent)` in its thread (data b"" at EOF); `route_now` has it forward clean chunks
        first. If it raises, `fd` is no longer watched and `failed(exc)` is told."""
        await self.call(lambda: self.receive_now(fd, receiver, failed=failed))

    async def unwatch(self, fd: int) -> None:
        """Stop watching `fd` (if watched); after this the relay does not touch it."""
        await self.call(lambda: self.unwatch_now(fd))

    # -- from the relay's own thread (handlers, jobs)

    def watch_now(
        self, fd: int, handler: Handler, *, write: bool = False, failed: Failed | None = None
    ) -> None:
        self._poller.register(fd, handler, write=write, failed=failed)

    def receive_now(self, fd: int, receiver: Receiver, *, failed: Failed | None = None) -> None:
        self._poller.register(fd, None, write=False, failed=failed, receiver=receiver)

    def route_now(self, fd: int, dsts: tuple[int, ...], stop: bytes, tag: Any) -> None:
        """Chunks read from the received `fd` that hold none of the `stop` bytes are
        written to `dsts` before its receiver is called (with `tag`, and what each write
        took). `dsts` stay open until a later route (or unwatch) drops them."""
        self._poller.route(fd, dsts, stop, tag)

    def unwatch_now(self, fd: int) -> None:
        self._poller.unregister(fd)

    def post(self, fn: Callable[[], None]) -> None:
        """Have the relay's thread call `fn` between two of its reads (not waited for;
        never, once the relay has stopped)."""
        self._post(fn)

    def soon(self, fn: Callable[[], None]) -> None:
        """Have the event loop call `fn` (from a handler)."""
        self.token.run_sync_soon(fn)
