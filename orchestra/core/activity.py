"""What a run's agent is doing: working, waiting for the person, idle, or exited.

A pure state machine (no I/O, no clock of its own): the run's watchdog (daemon/runner.py)
feeds it signals and calls `look` at the deadline it gave, or when woken; times are one
clock's seconds (the run's monotonic clock; a test's own).

Theory of operation. Each source of signals holds at most one *claim* (what it last
said, and since when); sources rank, best first:

    hook     the agent's own hooks (`task.report`, core/hooks.py), and an `idle` report
    osc      a terminal notification (OSC 9/99/777) or the bell: waiting
    screen   a profile's pattern on the terminal model's screen (core/screen.py): waiting
    silence  output and input times, as core/idle.py judges them: working or idle

The best live claim is the *candidate*; with no claim, silence decides. Two rules make
signals meet the cases where one source misses a moment:

- a waiting claim ends at the person's input after it (they answered: vendors' hooks miss
  an approval answered), and a notification ends at a hook that speaks after it;
- a lower source's waiting claim newer than a higher source's working claim wins (hooks
  miss a prompt drawn or an interrupt; no source starts work by claiming waiting).

A candidate of another activity than the one shown is reported only once it has held for
`dwell` seconds since its evidence began (a flicker that went back meanwhile is never
reported): `look` says when to look again. Silence has its own dwells (`idle_timeout`,
`idle_dwell`, core/idle.py) and an exit is a fact, so neither waits out this one.

The lifecycle follows the activity (`lifecycle`): a running task becomes idle when its
agent waits or is idle, an idle one running when it works (not after an explicit `idle`
report until the person types). core/states.py's table stays the one source of moves.
"""

from __future__ import annotations

import math
from typing import Any, Final

import attrs

from orchestra.core import idle
from orchestra.core.states import ACTIVE, Status

ACTIVITIES: Final = ("working", "waiting", "idle", "exited")
SOURCES: Final = ("silence", "screen", "osc", "hook")  # worst first
RANK: Final = {source: rank for rank, source in enumerate(SOURCES)}
CLAIMED: Final = ("working", "waiting", "exited")  # what a claim may say (not idle: silence's)
DWELL: Final = 1.0  # seconds a new activity must hold before it is reported (at most)


def _check(choices: tuple[str, ...]) -> Any:
    def check(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(f"{attr.name} must be one of {', '.join(choices)}, not {value!r}")

    return check


@attrs.frozen
class Claim:
    """What one source says the agent does, from `at` on."""

    source: str = attrs.field(validator=_check(SOURCES))
    activity: str = attrs.field(validator=_check(ACTIVITIES))
    reason: str
    at: float


@attrs.frozen
class Shown:
    """The activity as reported (task.get's `run.activity`), since `since`."""

    activity: str
    reason: str
    since: float
    source: str


@attrs.frozen
class Tracker:
    """What the machine remembers between looks.

    Invariants: `claims` holds at most one claim per source, none of silence's (that is
    `silence`); `silent` is the state core/idle.py's detector judges output and input by
    (RUNNING or IDLE), kept apart from the task's file, which follows `shown`."""

    shown: Shown
    silence: Claim
    claims: tuple[Claim, ...] = ()
    silent: Status = Status.RUNNING
    watch: idle.Watch = attrs.field(factory=idle.Watch)


@attrs.frozen
class Step:
    """One look's outcome: the new tracker, whether the shown activity changed (and what it
    was), when to look again at the latest, and whether output and input should wake the
    watchdog before that."""

    tracker: Tracker
    changed: bool
    previous: Shown
    wake: float
    wake_on_activity: bool


def start(now: float) -> Tracker:
    """A run whose agent was just spawned: working (it starts), as silence judges it."""
    began = Claim("silence", "working", "start", now)
    return Tracker(shown=Shown("working", "start", now, "silence"), silence=began)


def claim(tracker: Tracker, new: Claim) -> Tracker:
    """`new` replaces its source's claim. The screen repeats what it shows at each check:
    the same claim again keeps its first time (a prompt on screen since then)."""
    if new.source == "silence":
        raise ValueError("silence is judged by `look`, not claimed")
    old = _of(tracker, new.source)
    if (
        old is not None
        and new.source == "screen"
        and (old.activity, old.reason) == (new.activity, new.reason)
    ):
        return tracker
    kept = tuple(c for c in tracker.claims if c.source != new.source)
    return attrs.evolve(tracker, claims=(*kept, new))


def forget(tracker: Tracker, source: str) -> Tracker:
    """`source` says nothing any more (the screen no longer shows a prompt)."""
    return attrs.evolve(tracker, claims=tuple(c for c in tracker.claims if c.source != source))


def exited(tracker: Tracker, now: float) -> Tracker:
    """The agent's process is gone: final, whatever was claimed."""
    if tracker.shown.activity == "exited":
        return tracker
    return attrs.evolve(tracker, shown=Shown("exited", "exit", now, "hook"), claims=())


def look(
    tracker: Tracker,
    *,
    now: float,
    status: Status | None,
    last_output: float,
    last_input: float,
    idle_timeout: float,
    idle_dwell: float,
    dwell: float = DWELL,
) -> Step:
    """The activity at `now` of a run whose task is in `status` (None: not known)."""
    previous = tracker.shown
    if previous.activity == "exited":
        return Step(tracker, False, previous, math.inf, False)
    tracker, verdict = _silence(
        tracker, now, status, last_output, last_input, idle_timeout, idle_dwell
    )
    tracker = _prune(tracker, last_input)
    best = _candidate(tracker)
    wake = verdict.wake
    changed = False
    if best.activity == previous.activity:
        if (best.reason, best.source) != (previous.reason, previous.source):
            shown = attrs.evolve(previous, reason=best.reason, source=best.source)
            tracker = attrs.evolve(tracker, shown=shown)
    elif best.source == "silence" or best.activity == "exited" or now >= best.at + dwell:
        shown = Shown(best.activity, best.reason, best.at, best.source)
        tracker, changed = attrs.evolve(tracker, shown=shown), True
    else:
        wake = min(wake, best.at + dwell)
    # Input ends a waiting claim: the watchdog must hear of it while one lives.
    waiting = any(c.activity == "waiting" for c in tracker.claims)
    return Step(tracker, changed, previous, wake, verdict.wake_on_activity or waiting)


def _of(tracker: Tracker, source: str) -> Claim | None:
    return next((c for c in tracker.claims if c.source == source), None)


def _silence(
    tracker: Tracker,
    now: float,
    status: Status | None,
    last_output: float,
    last_input: float,
    idle_timeout: float,
    idle_dwell: float,
) -> tuple[Tracker, idle.Verdict]:
    """core/idle.py's judgement of output and input, on the detector's own state while
    the task is active (else on the task's, which sets no timer)."""
    for _ in range(2):  # a move, then the look at the state moved to (its deadline)
        judged = tracker.silent if status in ACTIVE else status
        verdict = idle.look(
            judged,
            now=now,
            last_output=last_output,
            last_input=last_input,
            sticky=False,
            idle_timeout=idle_timeout,
            idle_dwell=idle_dwell,
            watch=tracker.watch,
        )
        tracker = attrs.evolve(tracker, watch=verdict.watch)
        if verdict.move is None:
            break
        if verdict.move is Status.IDLE:
            said = Claim("silence", "idle", "silence", now)
        else:
            said = Claim("silence", "working", "input" if verdict.why == "input" else "output", now)
        tracker = attrs.evolve(tracker, silent=verdict.move, silence=said)
    return tracker, verdict


def _prune(tracker: Tracker, last_input: float) -> Tracker:
    """Drop the claims that ended: waiting ones the person's input answered, and a
    notification a hook spoke after. An answer is the agent working again, from then."""
    hook = _of(tracker, "hook")
    answered = False
    kept = []
    for c in tracker.claims:
        if c.activity == "waiting" and last_input > c.at:
            answered = True
        elif c.source == "osc" and hook is not None and hook.at > c.at:
            pass
        else:
            kept.append(c)
    if len(kept) == len(tracker.claims):
        return tracker
    tracker = attrs.evolve(tracker, claims=tuple(kept))
    if answered and tracker.silence.activity == "working":
        tracker = attrs.evolve(tracker, silence=Claim("silence", "working", "input", last_input))
    return tracker


def _candidate(tracker: Tracker) -> Claim:
    """The best live claim (see the module docstring), else silence's."""
    ranked = sorted(tracker.claims, key=lambda c: RANK[c.source], reverse=True)
    if not ranked:
        return tracker.silence
    best = ranked[0]
    for lower in ranked[1:]:
        if best.activity == "working" and lower.activity == "waiting" and lower.at > best.at:
            best = lower
    return best


def lifecycle(status: Status | None, shown: Shown, *, sticky: bool) -> Status | None:
    """The move of a task in `status` that its run's activity calls for, if any: running
    -> idle when the agent waits or is idle, idle -> running when it works (not while an
    explicit `idle` report stands, `sticky`). Other states are the person's or the
    agent's to leave (core/states.py)."""
    if status is Status.RUNNING and shown.activity in ("waiting", "idle"):
        return Status.IDLE
    if status is Status.IDLE and shown.activity == "working" and not sticky:
        return Status.RUNNING
    return None


def why(shown: Shown, idle_timeout: float) -> str:
    """A lifecycle move's reason, as logged (task.status's `why`)."""
    if shown.source == "silence":
        if shown.activity == "idle":
            return f"no output for {idle_timeout:g} s"
        return "input" if shown.reason == "input" else "output again"
    return f"{shown.activity}: {shown.reason or 'no reason given'} ({shown.source})"
