"""Hints: the moves an error suggests, as data each front end words in its own terms.

The daemon speaks to every front end, so an error's message says only what is wrong, and
what would help travels in `data.hint`: a list of alternatives, each a move and its
arguments, e.g. `{"move": "complete", "task": "fix-login", "first": true}` (do it, then
try again) or `{"move": "merge", "task": "fix-login", "force": true}` (try again so). The
CLI renders them as commands (`orchestra complete fix-login`), the MCP bridge as tool
calls (`set_task_status(task="fix-login", status="complete")`).

A hint only names a move the state table (core/states.py) allows from the task's state:
the helpers here derive them from it. Stdlib-only: the CLI's fast path renders hints.
"""

from __future__ import annotations

from typing import Any

from orchestra.core.errors import OrchestraError
from orchestra.core.states import ACTIVE, ALLOWED, MERGEABLE, Status

Hint = dict[str, Any]

# The move words, and the state each reported one leads to (task.set_status's words).
REPORTED = {
    "idle": Status.IDLE,
    "complete": Status.COMPLETED,
    "fail": Status.FAILED,
    "reviewed": Status.REVIEWED,
}
BRANCH = "BRANCH"  # what stands for a value the person chooses


def move(name: str, task: str | None = None, *, first: bool = False, **args: Any) -> Hint:
    """One alternative: `name` on `task` with `args`; `first`: do it, then try again."""
    hint: Hint = {"move": name}
    if task is not None:
        hint["task"] = task
    if first:
        hint["first"] = True
    return {**hint, **args}


def can_start(status: Status) -> bool:
    """Whether `start` moves a task on from `status` (an agent at work is no start)."""
    return Status.RUNNING in ALLOWED[status] and status not in ACTIVE | {Status.QUEUED}


def can(hint: Hint, status: Status) -> bool:
    """Whether the table allows the hinted move from `status` (what tests check each by)."""
    name = hint["move"]
    if name == "start":
        return can_start(status)
    if name in REPORTED:
        return REPORTED[name] in ALLOWED[status]
    if name == "merge":
        return Status.MERGED in ALLOWED[status] and (status in MERGEABLE or bool(hint.get("force")))
    if name == "stop":
        return bool(ALLOWED[status] & {Status.STOPPED, Status.DRAFT})
    return False


def start_first(status: Status, task: str) -> list[Hint]:
    """For what needs a running agent: start it, if it can start from `status`."""
    return [move("start", task, first=True)] if can_start(status) else []


def to_merge(status: Status, task: str) -> list[Hint]:
    """For a merge refused from `status`: complete it (else start it), or force the merge,
    each where the table allows it."""
    hints = []
    if Status.COMPLETED in ALLOWED[status]:
        hints.append(move("complete", task, first=True))
    elif can_start(status):
        hints.append(move("start", task, first=True))
    if Status.MERGED in ALLOWED[status] and status not in MERGEABLE:
        hints.append(move("merge", task, force=True))
    return hints


def for_task(exc: OrchestraError, task: str) -> OrchestraError:
    """`exc` with `task` filled into the hints that name none (a git-level check knows the
    branch, not the task)."""
    hints = exc.data.get("hint")
    if isinstance(hints, list):
        exc.data["hint"] = [
            {**h, "task": h.get("task", task)} if isinstance(h, dict) else h for h in hints
        ]
    return exc


def hints_of(data: Any) -> list[Hint]:
    """The well-formed hints of an error's data (a newer daemon may send moves we do not
    know: those are left out)."""
    hints = data.get("hint") if isinstance(data, dict) else None
    if not isinstance(hints, list):
        return []
    return [h for h in hints if isinstance(h, dict) and isinstance(h.get("move"), str)]


def worded(message: str, data: Any, render: Any) -> str:
    """`message`, then the hints in `data`, each rendered by `render(hint) -> str | None`
    and joined as alternatives: "...: run `A` first, or `B`"."""
    parts = [text for h in hints_of(data) if (text := render(h))]
    return f"{message}: {', or '.join(parts)}" if parts else message
