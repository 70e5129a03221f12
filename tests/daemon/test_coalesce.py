"""Coalesced: callers at once share one call, never one that began before they asked."""

from __future__ import annotations

import trio
import trio.testing

from orchestra.daemon.coalesce import Coalesced


async def test_callers_at_once_share_a_call_that_began_after_they_asked() -> None:
    began: list[int] = []
    first_began, gate = trio.Event(), trio.Event()

    async def fn() -> int:
        began.append(len(began) + 1)
        if len(began) == 1:  # the first call is slow: everyone else asks meanwhile
            first_began.set()
            await gate.wait()
        return len(began)

    shared = Coalesced(fn)
    got: dict[str, int] = {}

    async def ask(name: str) -> None:
        got[name] = await shared()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "first")
        await first_began.wait()
        for i in range(50):
            nursery.start_soon(ask, f"later-{i}")
        await trio.testing.wait_all_tasks_blocked()
        assert began == [1]  # the next call waits for the one in progress: never two at once
        gate.set()
    assert began == [1, 2]  # one for the first caller, one for the 50 who came later
    assert got.pop("first") == 1
    assert set(got.values()) == {2}  # not the call that began before they asked


async def test_calls_in_sequence_each_get_their_own() -> None:
    calls = 0

    async def fn() -> int:
        nonlocal calls
        calls += 1
        return calls

    shared = Coalesced(fn)
    assert [await shared() for _ in range(3)] == [1, 2, 3]


async def test_a_failed_call_fails_its_caller_and_the_sharers_call_again() -> None:
    calls = 0
    gate = trio.Event()

    async def fn() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate.wait()  # the first call is in progress while others queue
        if calls == 2:
            raise OSError("disk full")
        return "ok"

    shared = Coalesced(fn)
    results: list[object] = []

    async def ask() -> None:
        try:
            results.append(await shared())
        except OSError as exc:
            results.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    # Call 1 served the first caller; call 2 (shared by three) failed for the one who made
    # it; the two sharers called again.
    assert calls in (3, 4)
    assert sum(isinstance(r, OSError) for r in results) == 1
    assert results.count("ok") == 3


async def test_a_cancelled_caller_does_not_strand_those_sharing_its_call() -> None:
    gate = trio.Event()
    calls = 0

    async def fn() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return calls

    shared = Coalesced(fn)
    got: dict[str, int] = {}
    b_scope = trio.CancelScope()

    async def ask(name: str, scope: trio.CancelScope | None = None) -> None:
        with scope or trio.CancelScope():
            got[name] = await shared()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, "a")  # call 1, in progress
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(ask, "b", b_scope)  # queues call 2
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(ask, "c")  # shares call 2
        await trio.testing.wait_all_tasks_blocked()
        b_scope.cancel()  # call 2 never begins: c queues one of its own
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    assert got == {"a": 1, "c": 2}
    assert calls == 2
