"""A blocking loop in a thread of its own, owned by a trio task like any other child.

Why threads at all, in a trio daemon: the keystroke path (a person's terminal -> the
agent's PTY, and the agent's echo -> the person's terminal) is two wakeups per key, and a
trio wakeup costs 15-40 µs of scheduler work before our code runs (measured, cold after
the pause between two keys). In the event loop that put `attach` at 1.4x tmux's
keystroke latency; in threads blocked in poll/epoll it is on a par with tmux
(bench/keystroke_latency.py). Everything else stays in the event loop.
"""

from __future__ import annotations

import os
import select
import selectors
import sys
from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")


async def run_stoppable(fn: Callable[[int], T]) -> T:
    """Run `fn(stop)` in a new thread and return what it returns.

    `stop` is a file descriptor that `fn` must wait on beside its own: it turns readable
    when the calling task is cancelled, and then `fn` must return promptly. This call
    returns (or raises Cancelled) only once `fn` has returned: the thread never outlives
    its owner, so nothing it uses can be closed under it.
    """
    stop_r, stop_w = os.pipe()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_on_cancel, stop_w)
            # A limiter of its own: a long-lived loop must not use up the shared pool.
            result = await trio.to_thread.run_sync(fn, stop_r, limiter=trio.CapacityLimiter(1))
            nursery.cancel_scope.cancel()
        return result
    finally:
        os.close(stop_r)
        os.close(stop_w)


async def _stop_on_cancel(stop_w: int) -> None:
    try:
        await trio.sleep_forever()
    finally:
        os.write(stop_w, b"x")


def write_all(fd: int, data: bytes, stop: int) -> bool:
    """Write all of `data` to the non-blocking `fd`, waiting (on `stop` too) only when it
    is full. False if `stop` came first or `fd` failed (EIO: nobody on the other side)."""
    view = memoryview(data)
    waiter = None
    try:
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                if waiter is None:
                    waiter = Waiter(fd, stop, write=True)
                if not waiter.wait():
                    return False
            except OSError:
                return False
        return True
    finally:
        if waiter is not None:
            waiter.close()


class Waiter:
    """Blocks a thread until `fd` is ready or `stop` is readable: poll(2) on Linux (the
    lightest wait there is), a selector elsewhere (macOS's poll does not take terminals)."""

    def __init__(self, fd: int, stop: int, *, write: bool = False) -> None:
        self.stop = stop
        if sys.platform == "linux":
            self._poll: select.poll | None = select.poll()
            self._poll.register(fd, select.POLLOUT if write else select.POLLIN)
            self._poll.register(stop, select.POLLIN)
            self._sel = None
        else:
            self._poll = None
            self._sel = selectors.DefaultSelector()
            self._sel.register(fd, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
            self._sel.register(stop, selectors.EVENT_READ)

    def wait(self) -> bool:
        """True when `fd` is ready; False once `stop` is (the thread must return)."""
        if self._poll is not None:
            for fd, _ in self._poll.poll():  # noqa: SIM110 (a plain loop: this is the keystroke path)
                if fd == self.stop:
                    return False
            return True
        assert self._sel is not None
        return all(key.fd != self.stop for key, _ in self._sel.select())

    def close(self) -> None:
        if self._sel is not None:
            self._sel.close()
