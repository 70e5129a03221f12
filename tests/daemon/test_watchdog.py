"""The run's idle watchdog (runner.watchdog) in-process under trio's autojump clock: the
run's activity clock is the mock clock, and the task's state and moves are the test's
(its RunEvents), so minutes of an agent's life pass in milliseconds."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from orchestra.adapters import procs
from orchestra.adapters.paths import ProjectPaths
from orchestra.adapters.worktrees import Worktree
from orchestra.core import activity
from orchestra.core.activity import Claim, Shown
from orchestra.core.config import Config
from orchestra.core.states import Status
from orchestra.core.tasks import Task
from orchestra.daemon.coalesce import Coalesced
from orchestra.daemon.relay import Relay
from orchestra.daemon.runner import Run, RunHost, watchdog

TIMEOUT, DWELL = 5.0, 1.0


@attrs.define
class Task1:
    """RunEvents for one task whose state the test holds; the watchdog's moves are kept
    with the (mock) time they were made at."""

    state: Status = Status.RUNNING
    moves: list[tuple[float, Status, str]] = attrs.field(factory=list)
    activities: list[tuple[float, activity.Shown]] = attrs.field(factory=list)
    run: Run | None = None

    async def load(self, task_id: int) -> Task:
        raise AssertionError("not used by the watchdog")

    async def worktree_ready(self, task: Task, wt: Worktree) -> None:
        raise AssertionError("not used by the watchdog")

    async def session_started(self, task_id: int, session_id: str | None) -> None:
        raise AssertionError("not used by the watchdog")

    def status(self, task_id: int) -> Status | None:
        return self.state

    async def auto_move(self, task_id: int, expected: Status, to: Status, why: str) -> None:
        assert expected is self.state
        self.moves.append((trio.current_time(), to, why))
        self.move(to)

    def move(self, to: Status) -> None:
        self.state = to
        assert self.run is not None
        self.run.poke()  # as the project does on every change of a task file

    def attention(self, run: Run) -> None:
        pass

    async def activity_changed(self, run: Run, previous: activity.Shown) -> None:
        self.activities.append((trio.current_time(), run.tracker.shown))

    async def ended(self, run: Run) -> None:
        pass


@pytest.fixture
async def task(tmp_path: Path) -> Task1:
    events = Task1()
    host = RunHost(
        root=str(tmp_path),
        paths=ProjectPaths(tmp_path),
        socket=tmp_path / "sock",
        config=Config(),
        log=logging.getLogger("test.watchdog"),
        relay=Relay(),
        reaper=procs.Reaper(),
        tables=Coalesced(procs.scan_in_thread),
        python=sys.executable,
        worktree_lock=trio.Lock(),
        events=events,
    )
    events.run = Run(host=host, task_id=1, slug="t", clock=trio.current_time)
    return events


def output(run: Run) -> None:
    """The agent wrote something (what the relay's thread does, in short)."""
    run.last_output = run.clock()
    if run.wake_on_activity:
        run.poke()


def typed(run: Run) -> None:
    run.last_input = run.clock()
    if run.wake_on_activity:
        run.poke()


async def test_the_timer_dwell_and_input_move_a_task_at_the_right_times(
    task: Task1, autojump_clock: trio.testing.MockClock
) -> None:
    """Idle 5 s after the last output; a lone blip leaves it idle; output lasting through
    the 1 s dwell makes it running; input makes it running at once."""
    run = task.run
    assert run is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog, run, TIMEOUT, DWELL)
        await trio.sleep(3)
        output(run)  # t=3: the deadline moves to 8
        await trio.sleep(6)  # t=9
        assert task.moves == [(8.0, Status.IDLE, "no output for 5 s")]
        output(run)  # a blip at 9, nothing more
        await trio.sleep(2)  # t=11
        assert len(task.moves) == 1
        output(run)  # t=11, and again at 11.5: it works again at 12
        await trio.sleep(0.5)
        output(run)
        await trio.sleep(1)  # t=12.5
        assert task.moves[1:] == [(12.0, Status.RUNNING, "output again")]
        await trio.sleep(10)  # t=22.5: idle at 16.5 (11.5 + 5)
        assert task.moves[2] == (16.5, Status.IDLE, "no output for 5 s")
        typed(run)
        await trio.testing.wait_all_tasks_blocked()
        assert task.moves[3] == (22.5, Status.RUNNING, "input")
        nursery.cancel_scope.cancel()


async def test_a_reported_idle_task_is_woken_by_input_only(
    task: Task1, autojump_clock: trio.testing.MockClock
) -> None:
    """After an explicit `idle` report, minutes of output leave the task idle and set no
    timer; the first input moves it to running and clears the report."""
    run = task.run
    assert run is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog, run, TIMEOUT, DWELL)
        await trio.sleep(1)
        run.sticky_idle = True
        task.move(Status.IDLE)
        for _ in range(600):
            await trio.sleep(0.1)
            output(run)
        assert task.moves == []
        typed(run)
        await trio.testing.wait_all_tasks_blocked()
        assert [m[1:] for m in task.moves] == [(Status.RUNNING, "input")]
        assert not run.sticky_idle
        nursery.cancel_scope.cancel()


async def test_a_finished_task_is_left_alone(
    task: Task1, autojump_clock: trio.testing.MockClock
) -> None:
    """A completed task whose agent lives on is never moved, and its output does not even
    wake the watchdog (no timer, no activity wakeups)."""
    run = task.run
    assert run is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog, run, TIMEOUT, DWELL)
        await trio.testing.wait_all_tasks_blocked()
        task.move(Status.COMPLETED)
        await trio.testing.wait_all_tasks_blocked()
        assert not run.wake_on_activity
        await trio.sleep(3600)
        output(run)
        assert task.moves == []
        nursery.cancel_scope.cancel()


async def test_hooks_move_the_activity_and_the_lifecycle_follows(
    task: Task1, autojump_clock: trio.testing.MockClock
) -> None:
    """A hook's waiting is reported after the dwell and the task goes idle; output does not
    undo it; a hook's working makes it running again, after the dwell; silence far past
    the timeout leaves a working agent running."""
    run = task.run
    assert run is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog, run, TIMEOUT, DWELL)
        await trio.sleep(1)
        run.report(Claim("hook", "waiting", "question", run.clock()))
        await trio.sleep(0.5)
        assert task.moves == [] and task.activities == []
        await trio.sleep(1)  # t=2.5: the dwell ended at 2
        assert task.activities == [(2.0, Shown("waiting", "question", 1.0, "hook"))]
        assert task.moves == [(2.0, Status.IDLE, "waiting: question (hook)")]
        for _ in range(30):
            await trio.sleep(0.1)
            output(run)
        assert len(task.moves) == 1
        run.report(Claim("hook", "working", "prompt", run.clock()))  # t=5.5
        await trio.sleep(2)
        when, to, why = task.moves[1]
        assert (round(when, 6), to, why) == (6.5, Status.RUNNING, "working: prompt (hook)")
        await trio.sleep(10 * TIMEOUT)
        assert len(task.moves) == 2 and run.tracker.shown.activity == "working"
        nursery.cancel_scope.cancel()


async def test_a_deadline_passed_while_it_looked_does_not_fail_the_run(
    task: Task1, autojump_clock: trio.testing.MockClock
) -> None:
    """Woken just before its deadline on a busy machine, the watchdog may find the
    deadline passed by the time it waits again: it waits 0 s (a negative time failed the
    run) and the task goes idle."""
    run = task.run
    assert run is not None
    busy, late = False, 0.0

    def busy_clock() -> float:
        """Trio's clock; once busy, each reading comes 6 ms after the one before."""
        nonlocal late
        if busy:
            late += 0.006
        return trio.current_time() + late

    run.clock = busy_clock
    run.last_output = run.clock()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watchdog, run, TIMEOUT, DWELL)
        await trio.sleep(TIMEOUT - 0.01)  # the deadline is 10 ms away
        busy = True
        run.poke()  # as the project does on any change of the task file
        await trio.sleep(1)
        assert [m[1:] for m in task.moves] == [(Status.IDLE, "no output for 5 s")]
        nursery.cancel_scope.cancel()
