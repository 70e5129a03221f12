"""Which task changes notify the person (one per transition), and what notifiers get."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra.core.notify import Notice, Tracker, desktop_argv, state_of

ROOT = "/src/app"


def event(
    task_id: int = 1,
    status: str = "running",
    activity: str | None = "working",
    reason: str = "",
    change: str = "updated",
) -> dict[str, Any]:
    """An events.task_changed params with a run's activity as the daemon describes it."""
    run = None if activity is None else {"activity": {"activity": activity, "reason": reason}}
    return {
        "project": ROOT,
        "change": change,
        "task": {"id": task_id, "slug": f"t{task_id}", "status": status, "run": run},
    }


def test_working_to_waiting_is_one_notice_with_its_reason() -> None:
    """A change into waiting gives one notice with the previous state and the reason."""
    t = Tracker()
    assert t.observe(event(activity="working")) is None
    notice = t.observe(event(activity="waiting", reason="permission"))
    assert notice == Notice(
        task_id=1,
        slug="t1",
        project=ROOT,
        activity="waiting",
        previous="working",
        reason="permission",
    )


def test_the_same_state_again_and_a_new_reason_while_waiting_are_no_notice() -> None:
    """Events that repeat the state (a title edit, another reason while still waiting)
    notify nothing: one notification per transition."""
    t = Tracker()
    assert t.observe(event(activity="waiting", reason="permission")) is not None
    assert t.observe(event(activity="waiting", reason="permission")) is None
    assert t.observe(event(activity="waiting", reason="turn-done")) is None
    assert t.observe(event(activity="working")) is None
    again = t.observe(event(activity="waiting", reason="turn-done"))
    assert again is not None and again.previous == "working"


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_an_end_notifies_once_whatever_the_run_shows(status: str) -> None:
    """A task completed or failed notifies, with its status as the activity, once."""
    t = Tracker()
    t.observe(event(activity="working"))
    notice = t.observe(event(status=status, activity="exited"))
    assert notice is not None and (notice.activity, notice.previous) == (status, "working")
    assert t.observe(event(status=status, activity=None)) is None


@pytest.mark.parametrize("state", ["working", "idle", "exited"])
def test_other_states_notify_nothing(state: str) -> None:
    """Changes into working, idle or exited are not for the person."""
    t = Tracker()
    t.observe(event(activity="waiting"))
    assert t.observe(event(activity=state)) is None


def test_tasks_are_tracked_apart_and_forgotten_when_removed() -> None:
    """Each task (of each project) has its own last state; a removed task starts afresh."""
    t = Tracker()
    assert t.observe(event(1, activity="waiting")) is not None
    assert t.observe(event(2, activity="waiting")) is not None
    other = {**event(1, activity="waiting"), "project": "/src/other"}
    assert t.observe(other) is not None
    assert t.observe(event(1, change="removed")) is None
    first = t.observe(event(1, activity="waiting"))
    assert first is not None and first.previous == ""


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"project": ROOT},
        {"project": ROOT, "task": "x"},
        {"project": ROOT, "task": {"id": "1", "status": "running"}},
        {"project": ROOT, "task": {"id": True, "status": "completed"}},
        {"project": 3, "task": {"id": 1, "status": "completed"}},
        {"project": ROOT, "change": "attention", "task": {"id": 1, "attention": True}},
    ],
)
def test_events_without_a_task_state_are_ignored(params: dict[str, Any]) -> None:
    """Partial or malformed events (an attention mark, no id) change nothing."""
    t = Tracker()
    assert t.observe(params) is None
    assert t.observe(event(activity="waiting")) is not None  # still first-seen afterwards


def test_the_state_is_the_status_without_an_activity() -> None:
    """Before the run describes an activity the lifecycle status stands for it."""
    assert state_of({"status": "queued", "run": None}) == ("queued", "")
    assert state_of({"status": "running", "run": {"pid": 3}}) == ("running", "")
    assert state_of({"status": "failed", "run": {"activity": {"activity": "working"}}}) == (
        "failed",
        "",
    )
    assert state_of({"id": 1}) is None


def test_the_commands_environment_names_the_transition() -> None:
    """[notify].command gets the six documented variables, all strings."""
    notice = Notice(
        task_id=7,
        slug="fix-login",
        project=ROOT,
        activity="waiting",
        previous="working",
        reason="question",
    )
    assert notice.env() == {
        "ORCHESTRA_TASK": "7",
        "ORCHESTRA_SLUG": "fix-login",
        "ORCHESTRA_PROJECT": ROOT,
        "ORCHESTRA_ACTIVITY": "waiting",
        "ORCHESTRA_PREVIOUS": "working",
        "ORCHESTRA_REASON": "question",
    }
    assert notice.title == "Orchestra: task 7-fix-login"
    assert notice.body == "asks you a question (app)"


def test_desktop_notifiers_per_system_quote_their_text() -> None:
    """notify-send on Linux gets the texts as arguments; osascript's script escapes
    quotes and backslashes; elsewhere there is none."""
    notice = Notice(
        task_id=1, slug='say-"hi"', project="/a\\b", activity="failed", previous="", reason=""
    )
    linux = desktop_argv("linux", notice)
    assert linux == ["notify-send", "--app-name=Orchestra", notice.title, notice.body]
    mac = desktop_argv("darwin", notice)
    assert mac is not None and mac[:2] == ["osascript", "-e"]
    assert 'with title "Orchestra: task 1-say-\\"hi\\""' in mac[2]
    assert desktop_argv("win32", notice) is None
