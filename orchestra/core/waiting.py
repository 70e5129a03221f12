"""Which tasks wait for the person, the one that has waited longest first: read from the
wire form of tasks (task.list's `tasks`, each with `run.activity`, docs/api.md).

Shared by the front ends (`orchestra status --waiting`, `attach --next`, the MCP tools).
Stdlib only: the CLI's fast path uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def activity_of(task: dict[str, Any]) -> dict[str, Any] | None:
    """The activity of the task's live run (`run.activity`), if it has one."""
    run = task.get("run")
    shown = run.get("activity") if isinstance(run, dict) else None
    return shown if isinstance(shown, dict) else None


def is_waiting(task: dict[str, Any]) -> bool:
    return (activity_of(task) or {}).get("activity") == "waiting"


def longest_first(tasks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The waiting tasks among `tasks`, by the time they started waiting (then by id)."""

    def since(task: dict[str, Any]) -> tuple[float, int]:
        value = (activity_of(task) or {}).get("since")
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
        return (float(number), int(task.get("id") or 0))

    return sorted((t for t in tasks if is_waiting(t)), key=since)
