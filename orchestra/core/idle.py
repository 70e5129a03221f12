"""When output and input say a live agent went idle, and when it works again: a pure
function of times and state.

This is the *silence* source of a run's activity (core/activity.py): the activity machine
calls `look` on a state of its own (running or idle, as silence last judged it), and the
task's lifecycle follows the activity, not this verdict directly: a hook saying the agent
works outranks silence, one saying it waits outranks output. The rules:

- running -> idle after `idle_timeout` seconds with neither output nor input;
- idle -> running on input (which also undoes an explicit `idle` report), or on output
  that lasts: a first output starts a dwell of `idle_dwell` seconds, and only more
  output within it counts (one redraw of a clock or a spinner's blip does not);
- an explicit `idle` report (`sticky`) is undone by input only.

Times are one clock's seconds (the run's monotonic clock; a test's mock clock).
"""

from __future__ import annotations

import math

import attrs

from orchestra.core.states import Status


@attrs.frozen
class Watch:
    """What the watchdog remembers between looks: the state it last saw and, from when it
    first saw it, the input and output clocks, and the first output of a dwell."""

    status: Status | None = None
    mark_input: float = -math.inf
    mark_output: float = -math.inf
    burst: float | None = None  # the output that started the dwell, if one runs


@attrs.frozen
class Verdict:
    move: Status | None  # the state to move the task to, if any
    why: str  # the move's reason, as logged
    wake: float  # look again at this time at the latest (inf: only when woken)
    wake_on_activity: bool  # wake on the agent's input and output too
    unstick: bool  # input undid an explicit `idle` report
    watch: Watch


def look(
    status: Status | None,
    *,
    now: float,
    last_output: float,
    last_input: float,
    sticky: bool,
    idle_timeout: float,
    idle_dwell: float,
    watch: Watch,
) -> Verdict:
    """The watchdog's decision at `now` for a task in `status` (None: not known)."""
    if watch.status is not status:  # the state moved since the last look: start afresh
        watch = Watch(status, last_input, last_output)
    if status is Status.RUNNING:
        deadline = max(last_output, last_input) + idle_timeout
        if now >= deadline:
            return _move(Status.IDLE, f"no output for {idle_timeout:g} s", watch)
        return Verdict(None, "", deadline, False, False, watch)
    if status is not Status.IDLE:
        return Verdict(None, "", math.inf, False, False, watch)
    if last_input > watch.mark_input:
        return _move(Status.RUNNING, "input", watch, unstick=sticky)
    if sticky:  # output alone never undoes a report
        return _rest(attrs.evolve(watch, mark_output=last_output, burst=None))
    if watch.burst is None:
        if last_output <= watch.mark_output:
            return _rest(watch)
        watch = attrs.evolve(watch, burst=last_output)
    assert watch.burst is not None
    if now < watch.burst + idle_dwell:
        return Verdict(None, "", watch.burst + idle_dwell, True, False, watch)
    if last_output > watch.burst:
        return _move(Status.RUNNING, "output again", watch)
    return _rest(attrs.evolve(watch, mark_output=last_output, burst=None))  # one blip


def _move(to: Status, why: str, watch: Watch, *, unstick: bool = False) -> Verdict:
    return Verdict(to, why, math.inf, False, unstick, watch)


def _rest(watch: Watch) -> Verdict:
    return Verdict(None, "", math.inf, True, False, watch)
