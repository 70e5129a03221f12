"""The task state machine: one table, the single source of truth.

Theory of operation: a task is born `draft`. `start` runs its agent (or queues
it when `max_running` agents already run). While the agent runs, the idle
watchdog moves it between `running` and `idle`. The agent's exit, `stop` or a
daemon restart leave it `stopped`; the agent (or a person) reports `completed`
or `failed`; a person marks a completed task `reviewed`, sends it back to work,
or merges it (`merge --force` also takes a stopped or failed one). Every move
not in TRANSITIONS is refused, naming the current state and the moves it
allows. docs/states.md quotes the table (a test keeps it in step) and nothing
else restates it.
"""

from __future__ import annotations

import enum
from typing import Final

from orchestra.core.errors import InvalidTransition


class Status(enum.StrEnum):
    DRAFT = "draft"
    QUEUED = "queued"
    RUNNING = "running"
    IDLE = "idle"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"
    REVIEWED = "reviewed"
    MERGED = "merged"


S = Status

# (from, to, what causes the move)
TRANSITIONS: Final[tuple[tuple[Status, Status, str], ...]] = (
    (S.DRAFT, S.QUEUED, "start, while max_running agents already run"),
    (S.DRAFT, S.RUNNING, "start"),
    (S.QUEUED, S.RUNNING, "a running slot frees"),
    (S.QUEUED, S.DRAFT, "stop"),
    (S.RUNNING, S.IDLE, "no output for idle_timeout, or `idle`"),
    (S.IDLE, S.RUNNING, "output again"),
    (S.RUNNING, S.STOPPED, "stop, agent exit, daemon restart"),
    (S.IDLE, S.STOPPED, "stop, agent exit, daemon restart"),
    (S.STOPPED, S.RUNNING, "start again (resumes the agent session when it can)"),
    (S.FAILED, S.RUNNING, "start again (resumes the agent session when it can)"),
    (S.RUNNING, S.COMPLETED, "complete"),
    (S.IDLE, S.COMPLETED, "complete"),
    (S.STOPPED, S.COMPLETED, "complete"),
    (S.RUNNING, S.FAILED, "fail"),
    (S.IDLE, S.FAILED, "fail"),
    (S.STOPPED, S.FAILED, "fail"),
    (S.COMPLETED, S.REVIEWED, "reviewed"),
    (S.COMPLETED, S.RUNNING, "start (more work after review)"),
    (S.REVIEWED, S.RUNNING, "start (more work after review)"),
    (S.COMPLETED, S.MERGED, "merge"),
    (S.REVIEWED, S.MERGED, "merge"),
    (S.STOPPED, S.MERGED, "merge --force"),
    (S.FAILED, S.MERGED, "merge --force"),
)

ALLOWED: Final[dict[Status, frozenset[Status]]] = {
    state: frozenset(dst for src, dst, _ in TRANSITIONS if src is state) for state in Status
}

# The states `merge` takes a task from without --force (the table also allows the others
# `merge --force` may take it from).
MERGEABLE: Final = frozenset({S.COMPLETED, S.REVIEWED})

# States whose agent is at work: they, and only they, hold a running slot (the agent of a
# completed or failed task may live on, holding none).
ACTIVE: Final = frozenset({S.RUNNING, S.IDLE})

# What `task.set_status` accepts, and the state each word means.
REPORTABLE: Final[dict[str, Status]] = {
    "idle": S.IDLE,
    "complete": S.COMPLETED,
    "fail": S.FAILED,
    "reviewed": S.REVIEWED,
}


def allowed_moves(current: Status) -> list[Status]:
    """The states `current` may move to, in table order."""
    return [dst for src, dst, _ in TRANSITIONS if src is current]


def check_transition(current: Status, target: Status, *, task: str = "the task") -> None:
    """Raise InvalidTransition unless the table allows current -> target."""
    if target in ALLOWED[current]:
        return
    moves = ", ".join(allowed_moves(current)) or "none (final state)"
    raise InvalidTransition(
        f"{task} is {current}; it cannot become {target} (allowed from {current}: {moves})",
        current=str(current),
        target=str(target),
        allowed=[str(s) for s in allowed_moves(current)],
    )


def transition_table_markdown() -> str:
    """The table as docs/states.md shows it."""
    rows = ["| from | to | when |", "| --- | --- | --- |"]
    rows += [f"| {src} | {dst} | {why} |" for src, dst, why in TRANSITIONS]
    return "\n".join(rows) + "\n"
