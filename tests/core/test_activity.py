"""The activity machine (core/activity.py) as plain functions of times and claims."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestra.core import activity
from orchestra.core.activity import Claim, Shown, Step, Tracker, lifecycle, look
from orchestra.core.states import Status

TIMEOUT, IDLE_DWELL, DWELL = 30.0, 3.0, 1.0


def at(
    tracker: Tracker,
    now: float,
    *,
    out: float = 0.0,
    inp: float = -math.inf,
    status: Status | None = Status.RUNNING,
) -> Step:
    return look(
        tracker,
        now=now,
        status=status,
        last_output=out,
        last_input=inp,
        idle_timeout=TIMEOUT,
        idle_dwell=IDLE_DWELL,
        dwell=DWELL,
    )


def hook(t: Tracker, what: str, reason: str, when: float) -> Tracker:
    return activity.claim(t, Claim("hook", what, reason, when))


def test_a_run_starts_working_as_silence_judges_it() -> None:
    """A new run is working (reason start, source silence) and looks again at the end of
    the idle timeout, without waking on output."""
    step = at(activity.start(0.0), 1.0)
    assert step.tracker.shown == Shown("working", "start", 0.0, "silence")
    assert (step.changed, step.wake, step.wake_on_activity) == (False, TIMEOUT, False)


def test_silence_makes_it_idle_at_once_when_the_timeout_passes() -> None:
    """No output nor input for idle_timeout: idle, reason silence, with no further dwell."""
    step = at(activity.start(0.0), TIMEOUT)
    assert step.changed and step.tracker.shown == Shown("idle", "silence", TIMEOUT, "silence")
    assert step.previous.activity == "working" and step.wake_on_activity


def test_a_hook_waiting_is_shown_after_the_dwell_and_says_when() -> None:
    """A hook's waiting is not reported before it held for the dwell; the look says to come
    back at its end, and then it is shown since the hook spoke."""
    t = hook(activity.start(0.0), "waiting", "permission", 5.0)
    early = at(t, 5.2, out=5.0)
    assert not early.changed and early.tracker.shown.activity == "working"
    assert early.wake == 6.0
    due = at(early.tracker, 6.0, out=5.0)
    assert due.changed and due.tracker.shown == Shown("waiting", "permission", 5.0, "hook")


def test_a_flicker_within_the_dwell_is_never_reported() -> None:
    """Waiting then working again within the dwell: nothing changes, before or after."""
    t = hook(activity.start(0.0), "waiting", "turn-done", 5.0)
    t = at(t, 5.1, out=5.0).tracker
    t = hook(t, "working", "prompt", 5.5)
    for now in (5.6, 6.0, 9.0):
        step = at(t, now, out=5.0)
        assert not step.changed and step.tracker.shown.activity == "working"
        t = step.tracker


def test_a_hook_working_outranks_silence() -> None:
    """An agent a hook says works, silent far beyond the idle timeout, is still working."""
    t = hook(activity.start(0.0), "working", "tool", 1.0)
    step = at(t, 10 * TIMEOUT, out=1.0)
    assert step.tracker.shown.activity == "working" and step.tracker.shown.source == "hook"


def test_a_hook_waiting_outranks_output() -> None:
    """Output (a redraw) of an agent a hook says waits does not make it working."""
    t = at(hook(activity.start(0.0), "waiting", "turn-done", 1.0), 2.0, out=1.0).tracker
    for now in (3.0, 10.0, 50.0):
        t = at(t, now, out=now - 0.01).tracker
        assert t.shown.activity == "waiting"


def test_input_answers_a_waiting_claim_and_the_agent_works_from_then() -> None:
    """The person's input after a waiting claim ends it: working at once, since the input,
    and the claim is gone."""
    t = at(hook(activity.start(0.0), "waiting", "permission", 1.0), 2.0, out=1.0).tracker
    assert at(t, 2.5, out=1.0).wake_on_activity  # input must wake the watchdog
    step = at(t, 3.0, out=1.0, inp=2.8)
    assert step.changed and step.tracker.shown == Shown("working", "input", 2.8, "silence")
    assert step.tracker.claims == ()


def test_a_newer_screen_prompt_beats_an_older_hook_working() -> None:
    """A prompt on screen the hooks did not announce wins over their older working; a
    hook speaking after it wins back."""
    t = hook(activity.start(0.0), "working", "tool", 1.0)
    t = activity.claim(t, Claim("screen", "waiting", "permission", 2.0))
    t = at(t, 3.0, out=2.0).tracker
    assert (t.shown.activity, t.shown.source) == ("waiting", "screen")
    t = hook(t, "working", "tool", 4.0)
    t = at(t, 5.0, out=4.0).tracker
    assert (t.shown.activity, t.shown.source) == ("working", "hook")


def test_a_screen_prompt_keeps_the_time_it_was_first_seen() -> None:
    """The screen repeating the same prompt keeps its first time; a new one replaces it."""
    t = activity.claim(activity.start(0.0), Claim("screen", "waiting", "permission", 2.0))
    again = activity.claim(t, Claim("screen", "waiting", "permission", 3.0))
    assert again.claims == (Claim("screen", "waiting", "permission", 2.0),)
    other = activity.claim(t, Claim("screen", "waiting", "question", 3.0))
    assert other.claims == (Claim("screen", "waiting", "question", 3.0),)
    assert activity.forget(other, "screen").claims == ()


def test_a_notification_waits_until_a_hook_speaks_after_it() -> None:
    """The bell makes an agent without hooks waiting; a later hook ends the bell's claim."""
    t = activity.claim(activity.start(0.0), Claim("osc", "waiting", "bell", 1.0))
    t = at(t, 2.0, out=1.0).tracker
    assert t.shown == Shown("waiting", "bell", 1.0, "osc")
    t = hook(t, "working", "tool", 3.0)
    t = at(t, 4.5, out=3.0).tracker
    assert t.shown.activity == "working" and all(c.source != "osc" for c in t.claims)


def test_an_exit_is_final() -> None:
    """After the agent exited nothing changes the activity, and nothing is waited for."""
    t = activity.exited(hook(activity.start(0.0), "waiting", "question", 1.0), 2.0)
    t = hook(t, "working", "tool", 3.0)
    step = at(t, 100.0, out=99.0, inp=99.0)
    assert step.tracker.shown == Shown("exited", "exit", 2.0, "hook")
    assert (step.changed, step.wake, step.wake_on_activity) == (False, math.inf, False)


def test_a_finished_task_sets_no_silence_timer() -> None:
    """Silence judges only an active task: a completed one's run sets no deadline."""
    step = at(activity.start(0.0), 1000.0, status=Status.COMPLETED)
    assert step.tracker.shown.activity == "working"
    assert (step.wake, step.wake_on_activity) == (math.inf, False)


def test_silence_claims_cannot_be_made() -> None:
    """Silence is the machine's own judgement: claiming it is a programming error."""
    with pytest.raises(ValueError):
        activity.claim(activity.start(0.0), Claim("silence", "idle", "", 1.0))
    with pytest.raises(ValueError):
        Claim("hook", "asleep", "", 1.0)


@pytest.mark.parametrize("status", [*Status, None])
@pytest.mark.parametrize("shown", activity.ACTIVITIES)
@pytest.mark.parametrize("sticky", [False, True])
def test_the_lifecycle_follows_the_activity(
    status: Status | None, shown: str, sticky: bool
) -> None:
    """Running goes idle when the agent waits or is idle, idle goes running when it works
    unless an `idle` report stands; nothing else moves, and every move is in the table."""
    move = lifecycle(status, Shown(shown, "", 0.0, "hook"), sticky=sticky)
    if status is Status.RUNNING and shown in ("waiting", "idle"):
        assert move is Status.IDLE
    elif status is Status.IDLE and shown == "working" and not sticky:
        assert move is Status.RUNNING
    else:
        assert move is None


def test_the_reasons_of_lifecycle_moves() -> None:
    """Silence's moves keep the words the log always had; others name activity and source."""
    assert activity.why(Shown("idle", "silence", 0, "silence"), 5.0) == "no output for 5 s"
    assert activity.why(Shown("working", "output", 0, "silence"), 5.0) == "output again"
    assert activity.why(Shown("working", "input", 0, "silence"), 5.0) == "input"
    shown = Shown("waiting", "permission", 0, "hook")
    assert activity.why(shown, 5.0) == "waiting: permission (hook)"


# -- every sequence of signals -------------------------------------------------------

SIGNAL = st.one_of(
    st.tuples(
        st.just("claim"),
        st.sampled_from(("hook", "osc", "screen")),
        st.sampled_from(activity.CLAIMED),
        st.sampled_from(("permission", "turn-done", "question", "bell", "tool")),
    ),
    st.tuples(st.just("forget"), st.sampled_from(("hook", "osc", "screen"))),
    st.tuples(st.just("output")),
    st.tuples(st.just("input")),
    st.tuples(st.just("status"), st.sampled_from((Status.RUNNING, Status.IDLE, Status.COMPLETED))),
    st.tuples(st.just("exit")),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 5.0), SIGNAL), max_size=40))
def test_every_sequence_keeps_the_invariants(events: list[tuple[float, tuple[Any, ...]]]) -> None:
    """Whatever the signals and their times: the shown activity is one of the four; a
    change to another source's activity is shown only once its evidence held for the
    dwell; looking again at once changes nothing; an exit is final; the deadline given
    is in the future; and the machine is a function (the same inputs, the same step)."""
    t = activity.start(0.0)
    now, out, inp, status = 0.0, 0.0, -math.inf, Status.RUNNING
    gone = False
    for gap, signal in events:
        now += gap
        kind = signal[0]
        if kind == "claim":
            t = activity.claim(t, Claim(signal[1], signal[2], signal[3], now))
        elif kind == "forget":
            t = activity.forget(t, signal[1])
        elif kind == "output":
            out = now
        elif kind == "input":
            inp = now
        elif kind == "status":
            status = signal[1]
        else:
            t, gone = activity.exited(t, now), True
        step = at(t, now, out=out, inp=inp, status=status)
        assert step == at(t, now, out=out, inp=inp, status=status)
        shown = step.tracker.shown
        assert shown.activity in activity.ACTIVITIES
        if step.changed and shown.source != "silence" and shown.activity != "exited":
            assert now >= shown.since + DWELL
        if gone:
            assert shown.activity == "exited"
        assert step.wake > now
        again = at(step.tracker, now, out=out, inp=inp, status=status)
        assert not again.changed and again.tracker.shown == shown
        t = step.tracker
