"""The dashboard's list as data: rows from task objects, their order, the filter."""

from __future__ import annotations

from typing import Any

from orchestra.ui import rows


def task(id: int, status: str, activity: str | None = None, **more: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "id": id,
        "slug": f"t{id}",
        "status": status,
        "agent": "demo",
        "created_at": f"2026-12-07T08:{id:02d}:00+00:00",
        "labels": [],
        **more,
    }
    if activity is not None:
        t["run"] = {
            "activity": {
                "activity": activity,
                "reason": "question",
                "since": more.get("since", f"2026-12-07T09:{id:02d}:00+00:00"),
            }
        }
    return t


def test_those_waiting_for_the_person_come_first_the_longest_waiting_first() -> None:
    """Attention order: waiting (oldest wait first), then finished work, then the rest."""
    items = rows.rows(
        [
            task(1, "draft"),
            task(2, "running", "working"),
            task(3, "running", "waiting", since="2026-12-07T09:30:00+00:00"),
            task(4, "completed"),
            task(5, "idle", "waiting", since="2026-12-07T09:10:00+00:00"),
        ]
    )
    assert [r.id for r in rows.ordered(items, "attention")] == [5, 3, 4, 2, 1]
    assert [r.id for r in rows.ordered(items, "id")] == [1, 2, 3, 4, 5]
    assert [r.id for r in rows.ordered(items, "age")] == [5, 4, 3, 2, 1]


def test_a_row_says_state_activity_and_glyph() -> None:
    """A waiting run shows its activity beside the state, and the glyph that asks for a person."""
    waiting = rows.row(task(3, "running", "waiting"))
    assert waiting.waits and waiting.state == "running/waiting" and waiting.glyph == "●"
    assert waiting.reason == "question" and waiting.running
    draft = rows.row(task(1, "draft"))
    assert not draft.waits and draft.state == "draft" and not draft.running
    assert rows.row({**task(2, "running"), "run": {"pid": 1}}).running  # an older daemon
    assert rows.row(task(4, "running", "working")).state == "running"  # nothing new said
    assert rows.row(task(5, "completed", "waiting")).state == "completed/waiting"


def test_filter_matches_every_word_anywhere() -> None:
    """Filter as you type: each word must appear in the id, slug, state, agent, labels or title."""
    items = rows.rows(
        [task(1, "draft", title="Fix login"), task(2, "running", labels=["ui"], title="Login page")]
    )
    assert [r.id for r in rows.filtered(items, "login")] == [1, 2]
    assert [r.id for r in rows.filtered(items, "login ui")] == [2]
    assert [r.id for r in rows.filtered(items, "  ")] == [1, 2]
    assert rows.filtered(items, "nothing") == []


def test_order_cycles_and_ages_read_short() -> None:
    """The order key cycles through every order; ages are one unit."""
    assert [rows.next_order(o) for o in rows.ORDERS] == ["id", "age", "attention"]
    assert rows.next_order("bogus") == "attention"
    assert rows.ago(100.0, now=103.0) == "3s"
    assert rows.ago(0.0, now=1e9) == "" and rows.ago(None) == ""
    assert rows.ago(1000.0, now=1000.0 + 2 * 3600 + 5) == "2h"
