"""Which task changes tell the person, and what the notifiers are given (`[notify]`).

Theory of operation: the daemon's notifier (daemon/notify.py) hands every
`events.task_changed` to one `Tracker`, which keeps each task's last *state*: its
lifecycle status when the task ended (`completed`, `failed`), else its run's activity
(`working`, `waiting`, `idle`, `exited`; core/activity.py decides it, after its dwell).
A change of state into `waiting`, `completed` or `failed` is one `Notice`; any other
event (a title edit, a reason that changes while the task still waits, the same state
published again) is none. So there is one notification per transition, however many
events carry it. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

NOTIFY_ON: Final = ("waiting", "completed", "failed")
ENDED: Final = ("completed", "failed")
# Changes after which a task is gone from the project (its next life starts afresh).
GONE: Final = ("removed", "deleted", "archived")
BELL: Final = b"\x07"


@attrs.frozen(kw_only=True)
class Notice:
    """One transition the person is told of."""

    task_id: int
    slug: str
    project: str  # its root
    activity: str  # one of NOTIFY_ON
    previous: str  # the state before ("" when the notifier never saw the task)
    reason: str  # e.g. "permission", "turn-done", "question"; "" for an end

    def env(self) -> dict[str, str]:
        """The variables `[notify].command` gets (docs/config.md)."""
        return {
            "ORCHESTRA_TASK": str(self.task_id),
            "ORCHESTRA_SLUG": self.slug,
            "ORCHESTRA_PROJECT": self.project,
            "ORCHESTRA_ACTIVITY": self.activity,
            "ORCHESTRA_PREVIOUS": self.previous,
            "ORCHESTRA_REASON": self.reason,
        }

    @property
    def title(self) -> str:
        return f"Orchestra: task {self.task_id}-{self.slug}"

    @property
    def body(self) -> str:
        if self.activity == "waiting":
            why = {
                "permission": "asks for a permission",
                "question": "asks you a question",
                "turn-done": "finished its turn",
            }.get(self.reason, "waits for you")
            return f"{why} ({_name(self.project)})"
        return f"{self.activity} ({_name(self.project)})"


def _name(root: str) -> str:
    return root.rstrip("/").rsplit("/", 1)[-1] or root


def state_of(task: Mapping[str, Any]) -> tuple[str, str] | None:
    """(state, reason) of a task as the wire shows it, or None if it shows neither a
    status nor an activity (a partial event, e.g. an attention mark)."""
    status = task.get("status")
    if status in ENDED:
        return str(status), ""
    run = task.get("run")
    activity = run.get("activity") if isinstance(run, Mapping) else None
    if isinstance(activity, Mapping) and isinstance(activity.get("activity"), str):
        reason = activity.get("reason")
        return activity["activity"], reason if isinstance(reason, str) else ""
    if isinstance(status, str):
        return status, ""  # no run (or none described yet): the lifecycle alone
    return None


@attrs.define
class Tracker:
    """Each task's last state, by (project, task id). Mutated by `observe` only."""

    _last: dict[tuple[str, int], str] = attrs.field(factory=dict)

    def observe(self, params: Mapping[str, Any]) -> Notice | None:
        """The notice one `events.task_changed` gives, if any."""
        task = params.get("task")
        project = params.get("project")
        if not isinstance(task, Mapping) or not isinstance(project, str):
            return None
        task_id = task.get("id")
        if not isinstance(task_id, int) or isinstance(task_id, bool):
            return None
        key = (project, task_id)
        if params.get("change") in GONE:
            self._last.pop(key, None)
            return None
        seen = state_of(task)
        if seen is None:
            return None
        state, reason = seen
        previous = self._last.get(key, "")
        self._last[key] = state
        if state == previous or state not in NOTIFY_ON:
            return None
        slug = task.get("slug")
        return Notice(
            task_id=task_id,
            slug=slug if isinstance(slug, str) else "",
            project=project,
            activity=state,
            previous=previous,
            reason=reason,
        )


def desktop_argv(system: str, notice: Notice) -> list[str] | None:
    """The desktop notifier's argv on `system` (`sys.platform`), or None where there is
    none we know. The caller still checks the program exists."""
    if system.startswith("linux") or "bsd" in system:
        return ["notify-send", "--app-name=Orchestra", notice.title, notice.body]
    if system == "darwin":
        script = (
            f"display notification {_applescript(notice.body)}"
            f" with title {_applescript(notice.title)}"
        )
        return ["osascript", "-e", script]
    return None


def _applescript(text: str) -> str:
    """`text` as an AppleScript string literal (backslashes and quotes escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
