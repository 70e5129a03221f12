"""The idle decision (core/idle.py) as a plain function of times and state."""

from __future__ import annotations

import math

from orchestra.core.idle import Verdict, Watch, look
from orchestra.core.states import Status

TIMEOUT, DWELL = 5.0, 1.0


def at(
    status: Status | None,
    now: float,
    *,
    out: float = 0.0,
    inp: float = -math.inf,
    sticky: bool = False,
    watch: Watch | None = None,
) -> Verdict:
    return look(
        status,
        now=now,
        last_output=out,
        last_input=inp,
        sticky=sticky,
        idle_timeout=TIMEOUT,
        idle_dwell=DWELL,
        watch=watch or Watch(status, inp, out),
    )


def test_running_looks_again_at_the_deadline_of_the_latest_activity() -> None:
    """A running task with recent output is not moved; the watchdog is told to look at
    the end of the timeout counted from the later of output and input, and not on
    every chunk of output."""
    verdict = at(Status.RUNNING, 3.0, out=1.0, inp=2.0)
    assert (verdict.move, verdict.wake, verdict.wake_on_activity) == (None, 7.0, False)


def test_running_goes_idle_after_the_timeout_without_activity() -> None:
    """At the deadline with nothing new, a running task goes idle, saying why."""
    verdict = at(Status.RUNNING, 6.0, out=1.0)
    assert (verdict.move, verdict.why) == (Status.IDLE, "no output for 5 s")


def test_idle_goes_running_on_input_and_input_undoes_a_report() -> None:
    """Input since the task went idle moves it to running at once, and undoes an explicit
    `idle` report (sticky)."""
    watch = Watch(Status.IDLE, mark_input=1.0, mark_output=1.0)
    plain = at(Status.IDLE, 2.0, inp=1.5, watch=watch)
    assert (plain.move, plain.why, plain.unstick) == (Status.RUNNING, "input", False)
    reported = at(Status.IDLE, 2.0, inp=1.5, sticky=True, watch=watch)
    assert (reported.move, reported.unstick) == (Status.RUNNING, True)


def test_one_blip_of_output_does_not_wake_an_idle_task() -> None:
    """A first output starts a dwell; if nothing more comes within it the task stays idle
    and the blip is forgotten."""
    watch = Watch(Status.IDLE, mark_input=0.0, mark_output=1.0)
    first = at(Status.IDLE, 3.0, out=3.0, watch=watch)
    assert (first.move, first.wake, first.wake_on_activity) == (None, 4.0, True)
    after = at(Status.IDLE, 4.0, out=3.0, watch=first.watch)
    assert after.move is None and after.watch.burst is None
    assert after.watch.mark_output == 3.0 and after.wake == math.inf


def test_output_that_lasts_through_the_dwell_moves_idle_to_running() -> None:
    """More output after the first, by the dwell's end, means the agent works again."""
    watch = Watch(Status.IDLE, mark_input=0.0, mark_output=1.0)
    first = at(Status.IDLE, 3.0, out=3.0, watch=watch)
    during = at(Status.IDLE, 3.5, out=3.4, watch=first.watch)
    assert (during.move, during.wake) == (None, 4.0)
    end = at(Status.IDLE, 4.0, out=3.9, watch=during.watch)
    assert (end.move, end.why) == (Status.RUNNING, "output again")


def test_input_during_the_dwell_wins_at_once() -> None:
    """Input in the middle of a dwell moves the task to running without waiting for it."""
    watch = Watch(Status.IDLE, mark_input=0.0, mark_output=1.0)
    first = at(Status.IDLE, 3.0, out=3.0, watch=watch)
    verdict = at(Status.IDLE, 3.2, out=3.0, inp=3.1, watch=first.watch)
    assert (verdict.move, verdict.why) == (Status.RUNNING, "input")


def test_an_explicit_idle_report_is_not_undone_by_output() -> None:
    """Output of a task reported idle moves nothing, however long it lasts."""
    watch = Watch(Status.IDLE, mark_input=0.0, mark_output=1.0)
    verdict = at(Status.IDLE, 50.0, out=49.9, sticky=True, watch=watch)
    assert (verdict.move, verdict.wake_on_activity) == (None, True)
    assert verdict.watch.mark_output == 49.9


def test_a_state_change_starts_from_the_clocks_as_they_are() -> None:
    """Output from before the task became idle (seen while it was running) does not count
    as output since it went idle."""
    running = Watch(Status.RUNNING, mark_input=0.0, mark_output=0.0)
    verdict = at(Status.IDLE, 10.0, out=9.0, watch=running)
    assert verdict.move is None and verdict.watch == Watch(Status.IDLE, -math.inf, 9.0)


def test_other_states_wait_to_be_woken() -> None:
    """A completed task (its agent alive) or one whose file cannot be read is not moved
    and sets no deadline."""
    for status in (Status.COMPLETED, Status.STOPPED, None):
        verdict = at(status, 100.0)
        assert (verdict.move, verdict.wake, verdict.wake_on_activity) == (None, math.inf, False)
