"""The dashboard's list, as data: a row per task, its order, its filter. Pure.

Built from `task.list`'s task objects alone (the dashboard keeps nothing the daemon does
not have), so it is tested as plain functions and two dashboards always agree.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

# What a person should look at first: waiting for them, then finished work to review,
# then what runs, then the rest.
_URGENCY: Final = {
    "waiting": 0,
    "completed": 1,
    "failed": 1,
    "working": 2,
    "running": 2,
    "idle": 3,
    "queued": 4,
    "stopped": 5,
    "draft": 6,
    "reviewed": 7,
    "merged": 8,
}
GLYPHS: Final = {
    "waiting": "●",  # the person is needed
    "working": "◐",
    "running": "◐",
    "idle": "○",
    "completed": "✔",
    "failed": "✘",
    "reviewed": "✔",
    "merged": "⇲",
    "queued": "…",
    "stopped": "■",
    "draft": "·",
}
_SAID: Final = {("running", "working"), ("idle", "idle")}  # the state says the activity
ORDERS: Final = ("attention", "id", "age")  # what the sort key cycles through


# A dataclass, not attrs: Textual brings dataclasses, and attrs' import was 30 ms of the
# dashboard's start-up.
@dataclass(frozen=True)
class Row:
    project: str  # its project's root
    id: int
    ref: str  # id-slug, what every action names
    slug: str
    status: str  # the lifecycle state
    activity: str  # the run's activity (working, waiting, idle, exited), else the status
    reason: str  # why it waits, when it does
    agent: str
    created: float  # epoch seconds
    waiting_since: float | None  # epoch seconds, while it waits for the person
    ahead: int | None
    labels: tuple[str, ...]
    title: str
    running: bool  # it has a live agent: its screen can be shown and attached
    host: str = ""  # the host whose daemon has it ("": this machine's)

    @property
    def key(self) -> str:
        """Unique across projects and hosts (a table row's key)."""
        return f"{self.id}@{self.host}:{self.project}"

    @property
    def glyph(self) -> str:
        return GLYPHS.get(self.activity, GLYPHS.get(self.status, " "))

    @property
    def state(self) -> str:
        """The lifecycle state, with the activity beside it when it tells more (a running
        task that works, or an idle one with no signal, says nothing new)."""
        if self.activity in ("", self.status) or (self.status, self.activity) in _SAID:
            return self.status
        return f"{self.status}/{self.activity}"

    @property
    def waits(self) -> bool:
        return self.activity == "waiting"


def _epoch(stamp: object) -> float:
    if isinstance(stamp, (int, float)):
        return float(stamp)
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            pass
    return 0.0


def row(task: Mapping[str, Any], project: str = "", host: str = "") -> Row:
    """One task object (`task.list`) of `project` (on `host`) as a row."""
    run = task.get("run") or {}
    activity = run.get("activity") if isinstance(run, Mapping) else None
    if isinstance(activity, Mapping):
        name = str(activity.get("activity") or "")
        reason = str(activity.get("reason") or "")
        since = _epoch(activity.get("since")) if name == "waiting" else None
    else:  # a daemon without activities: the lifecycle says what it can
        name, reason, since = "", "", None
    return Row(
        project=project,
        id=int(task["id"]),
        ref=str(task.get("ref") or f"{task['id']}-{task['slug']}"),
        slug=str(task["slug"]),
        status=str(task["status"]),
        activity=name,
        reason=reason,
        agent=str(task.get("agent") or ""),
        created=_epoch(task.get("created_at")),
        waiting_since=since,
        ahead=task.get("ahead") if isinstance(task.get("ahead"), int) else None,
        labels=tuple(str(x) for x in task.get("labels") or ()),
        title=str(task.get("title") or ""),
        running=bool(run),
        host=host,
    )


def rows(tasks: Iterable[Mapping[str, Any]], project: str = "", host: str = "") -> list[Row]:
    return [row(t, project, host) for t in tasks]


def ordered(items: Sequence[Row], order: str) -> list[Row]:
    """Grouped by host and project; within one, `attention`: those waiting for the person first (the
    longest waiting first), then by how much a person is needed; `id`: as created; `age`:
    the newest first."""
    if order == "id":
        found = sorted(items, key=lambda r: r.id)
    elif order == "age":
        found = sorted(items, key=lambda r: (-r.created, -r.id))
    else:
        found = sorted(
            items,
            key=lambda r: (
                _URGENCY.get(r.activity if r.waits else r.status, 9),
                r.waiting_since if r.waiting_since is not None else 0.0,
                r.id,
            ),
        )
    return sorted(found, key=lambda r: (r.host, r.project))  # stable: grouped, in order


def matches(item: Row, query: str) -> bool:
    """Filter as you type: every word of `query` is in the row's id, slug, state, agent,
    labels, title or host (case-insensitive)."""
    hay = " ".join(
        (
            str(item.id),
            item.slug,
            item.state,
            item.agent,
            " ".join(item.labels),
            item.title,
            item.host,
        )
    ).lower()
    return all(word in hay for word in query.lower().split())


def filtered(items: Sequence[Row], query: str) -> list[Row]:
    return [r for r in items if matches(r, query)] if query.strip() else list(items)


def next_order(order: str) -> str:
    return ORDERS[(ORDERS.index(order) + 1) % len(ORDERS)] if order in ORDERS else ORDERS[0]


def ago(then: float | None, now: float | None = None) -> str:
    """`3s`, `4m`, `2h`, `5d`; empty when there is no time."""
    if then is None or then <= 0:
        return ""
    seconds = max(0, int((time.time() if now is None else now) - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
