"""The relay's inner loop: wait for ready fds, read the routed ones, forward clean chunks.

A keystroke crosses the relay twice (the key from a person's terminal to the agent's
PTY, the echo back), and what runs between the wakeup and the write is its latency.
So for the fds that carry terminal bytes the forwarder itself reads a chunk and, when
the chunk needs no look (it holds none of the route's stop bytes: no escape sequence
in output, no detach key in keys), writes it to the route's destinations at once;
only then does Python see it, for the bookkeeping. In C (`_forward.c`, built where
there is a compiler and epoll) that runs without the GIL and without a line of Python
(keystrokes through `attach` went from 1.00-1.02x tmux's latency to 0.82-0.86x);
`PyForwarder` is its twin in Python, for everywhere else, and the tests hold both to
the same behaviour.

`wait()` returns one (fd, data, tag, sent) per ready fd:
- an fd without a route: (fd, None, None, None); its handler reads it;
- a routed fd: data is the chunk read (b"" at EOF or on a read error), tag what
  `route` was given, and sent None when the chunk was not forwarded (a stop byte, or
  no destination), else one figure per destination, in order: the bytes its single
  non-blocking write took (0 when it was full, -1 on an error);
- a spurious wakeup of a routed fd (nothing to read) reports nothing.

Routes are changed only in the thread that calls `wait()` (C reads them without the
GIL), and a destination fd must stay open until the route no longer names it.
"""

from __future__ import annotations

import os
import re
import select
import selectors
from collections.abc import Callable
from typing import Any, Protocol

import attrs

CHUNK = 4096  # what one read of a terminal hands over at most
MAX_EVENTS = 64  # events taken per wait (more wait for the next one)
MAX_DSTS = 16
MAX_STOP = 16
INT_MAX = 2**31 - 1  # what an fd number can be (a C int)
# Set (non-empty) in the daemon's environment: its relay runs the Python loop, not C's.
NO_NATIVE_ENV = "ORCHESTRA_PURE_PYTHON_RELAY"

Event = tuple[int, bytes | None, Any, tuple[int, ...] | None]

_Native: type[_forward.Forwarder] | None
try:
    from orchestra.daemon import _forward

    _Native = _forward.Forwarder
except ImportError:  # not built here (no compiler, or not Linux)
    _Native = None

HAVE_NATIVE = _Native is not None


class Forwarder(Protocol):
    def route(self, fd: int, dsts: tuple[int, ...], stop: bytes, tag: Any) -> None: ...
    def unroute(self, fd: int) -> None: ...
    def wait(self, timeout_ms: int = -1) -> list[Event]: ...


def forwarder(
    poll: select.epoll | selectors.BaseSelector, *, native: bool | None = None
) -> Forwarder:
    """The forwarder for fds registered with `poll`: the C one where it is built and
    `poll` is an epoll (unless `native` is False), else Python's."""
    if native is not False and _Native is not None and isinstance(poll, select.epoll):
        return _Native(poll.fileno(), CHUNK, MAX_EVENTS)
    return PyForwarder(poll)


@attrs.frozen
class _Route:
    dsts: tuple[int, ...]
    stops: Callable[[bytes], object]  # finds a stop byte: not None when the chunk has one
    tag: Any


def _check_fd(n: int) -> None:
    if not 0 <= n <= INT_MAX:
        raise ValueError("an fd is an int from 0 to 2**31 - 1")


def _never(_data: bytes) -> None:
    return None


def write_some(fd: int, data: bytes | memoryview) -> int:
    """One non-blocking write: bytes taken, 0 when full, -1 on an error."""
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError:
        return -1


class PyForwarder:
    """`_forward.c`'s `Forwarder`, in Python (over an epoll or a selector)."""

    def __init__(self, poll: select.epoll | selectors.BaseSelector) -> None:
        self._poll = poll
        self._routes: dict[int, _Route] = {}

    def route(self, fd: int, dsts: tuple[int, ...], stop: bytes, tag: Any) -> None:
        if len(dsts) > MAX_DSTS or len(stop) > MAX_STOP:
            raise ValueError(
                f"a route takes at most {MAX_DSTS} destinations and {MAX_STOP} stop bytes"
            )
        for n in (fd, *dsts):
            _check_fd(n)
        stops = re.compile(b"[" + re.escape(stop) + b"]").search if stop else _never
        self._routes[fd] = _Route(dsts, stops, tag)

    def unroute(self, fd: int) -> None:
        _check_fd(fd)
        self._routes.pop(fd, None)

    def _ready(self, timeout_ms: int) -> list[int]:
        timeout = None if timeout_ms < 0 else timeout_ms / 1000
        if isinstance(self._poll, select.epoll):
            return [fd for fd, _ in self._poll.poll(-1 if timeout is None else timeout, MAX_EVENTS)]
        return [key.fd for key, _ in self._poll.select(timeout)]

    def wait(self, timeout_ms: int = -1) -> list[Event]:
        out: list[Event] = []
        for fd in self._ready(timeout_ms):
            route = self._routes.get(fd)
            if route is None:
                out.append((fd, None, None, None))
                continue
            try:
                data = os.read(fd, CHUNK)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:  # EIO: the other side is gone
                data = b""
            sent = None
            if data and route.dsts and route.stops(data) is None:
                sent = tuple(write_some(dst, data) for dst in route.dsts)
            out.append((fd, data, route.tag, sent))
        return out
