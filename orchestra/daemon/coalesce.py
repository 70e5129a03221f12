"""One run of an async function, shared by every caller who asks while it is queued."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import attrs
import trio

T = TypeVar("T")


@attrs.define
class _Round(Generic[T]):
    done: trio.Event = attrs.field(factory=trio.Event)
    ok: bool = False
    value: T | None = None


class Coalesced(Generic[T]):
    """Call `fn` for every caller, but share the calls: a caller gets the result of a call
    that began after it asked (so it reflects whatever happened before), the one queued
    to begin next, which everyone asking meanwhile shares. Calls never overlap.

    Why: when a daemon stops 200 agents at once, each teardown scans the process table
    and saves the list of live runs; shared, that is a few scans and saves, not 200
    of each.

    If the call fails (or its caller is cancelled), that caller sees the error and the
    others who shared it try again with a call of their own.
    """

    def __init__(self, fn: Callable[[], Awaitable[T]]) -> None:
        self._fn = fn
        self._running: _Round[T] | None = None
        self._next: _Round[T] | None = None

    async def __call__(self) -> T:
        while True:
            if self._next is not None:  # queued, not begun: share it
                rnd = self._next
                await rnd.done.wait()
            else:
                rnd = self._next = _Round()
                try:
                    while self._running is not None:  # it began before we asked
                        await self._running.done.wait()
                    self._next, self._running = None, rnd
                    rnd.value = await self._fn()
                    rnd.ok = True
                finally:
                    if self._next is rnd:
                        self._next = None
                    if self._running is rnd:
                        self._running = None
                    rnd.done.set()
            if rnd.ok:
                return rnd.value  # type: ignore[return-value]
