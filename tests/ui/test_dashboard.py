"""The dashboard driven by Textual's pilot against a real daemon with demo agents.

Each test runs the app in its own asyncio loop (`asyncio.run`): the suite's own loop is
trio's, and the dashboard is an asyncio client like any other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static, TabbedContent

from orchestra.ui.app import Dashboard
from orchestra.ui.first import FirstList
from orchestra.ui.screens import Ask, Confirm, Merge, NewTask
from tests.conftest import Env, ProjectApi, git
from tests.daemon.wire import wait_until

pytestmark = [pytest.mark.timeout(90), pytest.mark.shared_daemon]


def shown(app: Dashboard, widget: str) -> str:
    return str(app.main(widget, Static).render())


async def until(pilot: Pilot[None], ok: Callable[[], bool], what: str, within: float = 15) -> None:
    """Let the app run until `ok()` holds (a deadline, no fixed sleep)."""
    deadline = time.monotonic() + within
    while not ok():
        if time.monotonic() > deadline:
            app = pilot.app
            said = ""
            if isinstance(app, Dashboard) and app.is_running:
                said = str(app.main("#status", Static).render())
            raise AssertionError(f"timed out waiting for {what} (screen {app.screen}; {said})")
        await pilot.pause(0.02)


def drive(
    env: Env, project: Path, scenario: Callable[[Dashboard, Pilot[None]], Awaitable[None]]
) -> None:
    async def main() -> None:
        app = Dashboard(project=str(project), socket=env.socket)
        async with app.run_test(size=(160, 40)) as pilot:
            await scenario(app, pilot)

    asyncio.run(main())


def rows_of(app: Dashboard) -> list[str]:
    """The slugs of the list, top to bottom."""
    table = app.main("#tasks", DataTable)
    column = 2 if app.project else 3  # every project's list starts with the project
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


def first_pass_done(api: ProjectApi, task: str) -> bool:
    return "Tell me more" in api("pty.screen", task=task)["text"]


def is_selected(app: Dashboard, slug: str) -> bool:
    row = app.current()
    return row is not None and row.slug == slug


def status_of(api: ProjectApi, task: int) -> Any:
    return api("task.get", task=task)["status"]


def test_list_preview_type_complete_and_merge_by_keys(env: Env, project: Path, daemon: Env) -> None:
    """The list shows every task; the preview shows the selected agent's live screen; `i`
    types into it, `c` completes it, `m` merges it after the plan is confirmed."""
    api = ProjectApi(env, project)
    api("task.new", slug="alpha", agent="demo", description="say hello")
    api("task.new", slug="beta", agent="demo", description="second")
    api("task.start", task="alpha")

    async def scenario(app: Dashboard, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: sorted(rows_of(app)) == ["alpha", "beta"], "the list")
        await until(pilot, lambda: "Orchestra demo agent" in shown(app, "#screen"), "the screen")
        await until(pilot, lambda: "Tell me more" in shown(app, "#screen"), "the first pass")
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, Ask), "the line to type")
        await pilot.press(*"add a test", "enter")
        await until(pilot, lambda: "“add a test”" in shown(app, "#screen"), "typed line's effect")
        await pilot.press("c")
        await until(pilot, lambda: status_of(api, 1) == "completed", "completed")
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, Merge), "the merge dialog")
        await pilot.press("enter")
        await until(pilot, lambda: status_of(api, 1) == "merged", "merged")

    drive(env, project, scenario)
    assert "say hello" in git("log", "--oneline", "-1", cwd=project)  # squashed, by its title
    assert "add a test" in (project / "DEMO_NOTES.md").read_text()


def test_a_refused_action_is_shown_and_changes_nothing(
    env: Env, project: Path, daemon: Env
) -> None:
    """Completing a draft is refused by the daemon: the message is in the dashboard, the
    task unchanged; stopping asks first, and `n` at the question leaves it running."""
    api = ProjectApi(env, project)
    api("task.new", slug="gamma", agent="demo", description="x")
    api("task.new", slug="delta", agent="demo", description="y")
    api("task.start", task="delta")

    async def scenario(app: Dashboard, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: len(rows_of(app)) == 2, "the list")
        table = app.main("#tasks", DataTable)
        gamma = rows_of(app).index("gamma")
        table.move_cursor(row=gamma)
        await until(
            pilot,
            lambda: app.selected is not None and app.selected.startswith("1@"),
            "gamma selected",
        )
        await until(pilot, lambda: "no running agent" in shown(app, "#screen"), "no screen")
        await pilot.press("c")
        await until(pilot, lambda: "draft" in shown(app, "#status"), "the refusal")
        table.move_cursor(row=rows_of(app).index("delta"))
        await until(
            pilot,
            lambda: app.selected is not None and app.selected.startswith("2@"),
            "delta selected",
        )
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the question")
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, Confirm), "answered")

    drive(env, project, scenario)
    assert status_of(api, 1) == "draft"
    assert status_of(api, 2) in ("running", "idle")


@pytest.mark.own_daemon  # it stops and starts the daemon
def test_the_dashboard_says_the_daemon_is_gone_and_comes_back(
    env: Env, project: Path, daemon: Env
) -> None:
    """A daemon restart: the dashboard says it lost the daemon, reconnects by itself and
    shows the list again."""
    api = ProjectApi(env, project)
    api("task.new", slug="eps", agent="demo", description="x")
    api.client.close()

    async def scenario(app: Dashboard, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: rows_of(app) == ["eps"], "the list")
        await asyncio.to_thread(env.run, "daemon", "stop", check=True)
        await until(pilot, lambda: "reconnecting" in shown(app, "#status"), "the loss said")
        await asyncio.to_thread(env.run, "daemon", "start", check=True)
        await until(pilot, lambda: shown(app, "#status").strip() == "", "back", within=20)
        await until(pilot, lambda: rows_of(app) == ["eps"], "the list again")

    drive(env, project, scenario)


def test_new_task_by_keys_and_every_project_grouped(env: Env, project: Path, daemon: Env) -> None:
    """`n` creates a task from the dialog (slug, agent, labels, a multi-line prompt); with
    every project shown (`ui --all`), each row names its project and acts on it."""
    other = project.parent / "other"
    other.mkdir()
    git("init", "-q", "-b", "main", cwd=other)
    git("commit", "-q", "--allow-empty", "-m", "first", cwd=other)
    env.run("init", cwd=other, check=True)
    ProjectApi(env, other)("task.new", slug="elsewhere", agent="demo")
    api = ProjectApi(env, project)
    api("task.new", slug="here", agent="demo")

    async def create(app: Dashboard, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: rows_of(app) == ["here"], "the list")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewTask), "the new-task dialog")
        await pilot.press(*"fresh-one", "tab", *"demo", "tab", "tab", *"ui,fast", "tab")
        await pilot.press(*"first line", "enter", *"second line")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "fresh-one" in rows_of(app), "the new row")

    drive(env, project, create)
    made = api("task.get", task="fresh-one")
    assert made["agent"] == "demo" and made["labels"] == ["ui", "fast"]
    assert made["description"].rstrip("\n") == "first line\nsecond line"

    async def every(app: Dashboard, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: set(rows_of(app)) >= {"here", "elsewhere"}, "both projects")
        table = app.main("#tasks", DataTable)
        index = rows_of(app).index("elsewhere")
        assert str(table.get_row_at(index)[0]) == "other"
        table.move_cursor(row=index)
        await until(pilot, lambda: str(app.selected).endswith(str(other)), "elsewhere selected")
        await pilot.press("s")
        await until(
            pilot,
            lambda: ProjectApi(env, other)("task.get", task="elsewhere")["status"] == "running",
            "started in its own project",
        )

    async def main() -> None:
        app = Dashboard(project=None, socket=env.socket)
        async with app.run_test(size=(160, 40)) as pilot:
            await every(app, pilot)

    asyncio.run(main())


def test_a_conflicting_merge_is_refused_then_gc_cleans_up(
    env: Env, project: Path, daemon: Env
) -> None:
    """Two demo agents write the same file: the first merges, the second's merge is
    refused with its conflict shown and nothing changed; `g` then cleans up the merged one
    (its worktree went with the merge: its task file is archived) after its plan is
    confirmed."""
    api = ProjectApi(env, project)
    for slug in ("first", "second"):
        api("task.new", slug=slug, agent="demo", description=f"write {slug}")
        api("task.start", task=slug)
    for slug in ("first", "second"):
        wait_until(partial(first_pass_done, api, slug), f"{slug}'s first pass", 30)
        api("task.set_status", task=slug, status="complete")
    before = git("rev-parse", "HEAD", cwd=project)

    async def scenario(app: Dashboard, pilot: Pilot[None]) -> None:
        table = app.main("#tasks", DataTable)
        await until(pilot, lambda: sorted(rows_of(app)) == ["first", "second"], "the list")
        for slug in ("first", "second"):
            table.move_cursor(row=rows_of(app).index(slug))
            await until(pilot, partial(is_selected, app, slug), f"{slug} selected")
            await pilot.press("m")
            await until(pilot, lambda: isinstance(app.screen, Merge), "the merge dialog")
            await pilot.press("enter")
            await until(pilot, lambda: not isinstance(app.screen, Merge), "merge answered")
        await until(pilot, lambda: "DEMO_NOTES.md" in shown(app, "#status"), "the conflict")
        assert status_of(api, 2) == "completed"
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the gc plan")
        assert "archive_task" in str(app.screen.query_one(".detail", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: "first" not in rows_of(app), "first archived")

    drive(env, project, scenario)
    assert git("rev-parse", "HEAD~1", cwd=project) == before  # only the first landed
    assert status_of(api, 2) == "completed"
    assert (project / ".orchestra" / "archive" / "1-first.md").exists()


def counting_clears(table: DataTable[Any]) -> list[int]:
    """Each rebuild of `table` (a `clear`) appends to the list returned."""
    clears: list[int] = []
    clear = table.clear

    def counted(columns: bool = False) -> DataTable[Any]:
        clears.append(1)
        return clear(columns)

    table.clear = counted  # type: ignore[method-assign]
    return clears


def test_the_first_list_is_drawn_at_mount_and_an_event_rewrites_only_its_row(
    env: Env, project: Path, daemon: Env
) -> None:
    """The list asked for during start-up (for one project, or every one; none without a
    daemon) is in the table as soon as the app is mounted;
    the subscription's own reload then rebuilds nothing, and a change to one task rewrites
    its cells in place, the cursor where it was."""
    api = ProjectApi(env, project)
    for slug in ("one", "two", "three"):
        api("task.new", slug=slug, agent="demo", description=slug)
    first = FirstList(env.socket, str(project))
    assert first.take(10) is not None
    every = FirstList(env.socket, None).take(10)  # `ui --all`: every project's list
    assert every is not None and str(project) in dict(every)
    assert FirstList(env.socket.with_name("none.sock"), None).take(10) is None  # no daemon

    async def main() -> None:
        app = Dashboard(project=str(project), socket=env.socket, first=first)
        async with app.run_test(size=(160, 40)) as pilot:
            table = app.main("#tasks", DataTable)
            assert sorted(rows_of(app)) == ["one", "three", "two"]  # before any event
            clears = counting_clears(table)
            await pilot.press("o")  # by id: starting a task does not move it
            await until(pilot, lambda: rows_of(app) == ["one", "two", "three"], "by id")
            table.move_cursor(row=2)
            await until(pilot, partial(is_selected, app, "three"), "three selected")
            rebuilt = len(clears)
            api("task.start", task="two")
            await until(pilot, lambda: str(table.get_row_at(1)[3]) != "draft", "two's state")
            assert len(clears) == rebuilt and table.cursor_row == 2
            assert is_selected(app, "three")

    asyncio.run(main())


def test_each_tab_shows_the_selected_task_when_shown(env: Env, project: Path, daemon: Env) -> None:
    """The diff, task and log tabs are read when shown, for the task selected then: its
    changes against its base, its file's fields and description, its log lines."""
    api = ProjectApi(env, project)
    api("task.new", slug="writer", agent="demo", title="Write notes", description="say hello")
    api("task.start", task="writer")
    wait_until(partial(first_pass_done, api, "writer"), "the first pass", 30)

    async def scenario(app: Dashboard, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: rows_of(app) == ["writer"], "the list")
        await until(pilot, partial(is_selected, app, "writer"), "writer selected")
        assert shown(app, "#diff") == shown(app, "#file") == ""  # not read while hidden
        tabs = app.main("#tabs", TabbedContent)
        tabs.active = "tab-diff"
        await until(pilot, lambda: "DEMO_NOTES.md" in shown(app, "#diff"), "the diff")
        tabs.active = "tab-task"
        await until(pilot, lambda: "title: Write notes" in shown(app, "#file"), "the file")
        assert "say hello" in shown(app, "#file")
        tabs.active = "tab-log"
        await until(pilot, lambda: "started" in shown(app, "#log"), "the log")

    drive(env, project, scenario)
