"""The bridge's tools without the SDK or a daemon: defaults, fallbacks, error mapping."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestra.core.errors import InvalidParams, NotAProject, RemoteError
from orchestra.mcp.tools import TOOLS, Bridge, NotAvailable, normalise, plain_text

NO_METHOD = RemoteError(-32601, "Method not found", {"methods": []})


class FakeDaemon:
    """Answers from a table of method -> result (or exception); records the calls."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.generation = 1

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        self.calls.append((method, dict(params or {})))
        answer = self.answers[method]
        if isinstance(answer, Exception):
            raise answer
        return answer


def project_dir(tmp_path: Path) -> Path:
    (tmp_path / "repo" / ".orchestra" / "worktrees" / "3-x" / "src").mkdir(
        parents=True, exist_ok=True
    )
    return tmp_path / "repo"


def make(tmp_path: Path, answers: dict[str, Any], **environ: str) -> tuple[Bridge, FakeDaemon]:
    daemon = FakeDaemon(answers)
    bridge = Bridge(daemon=daemon, environ=environ, cwd=project_dir(tmp_path))
    return bridge, daemon


async def run(bridge: Bridge, tool: str, **args: Any) -> Any:
    return await TOOLS[tool].handler(bridge, normalise(tool, args))


async def test_task_defaults_to_the_calling_task(tmp_path: Path) -> None:
    """Inside a task (its env), set_task_status needs only a status; the project is the
    task's own even from deep inside its worktree."""
    root = project_dir(tmp_path)
    bridge, daemon = make(
        tmp_path,
        {"task.set_status": {"status": "completed"}},
        ORCHESTRA_TASK_ID="3",
        ORCHESTRA_PROJECT=str(root),
    )
    bridge.cwd = root / ".orchestra" / "worktrees" / "3-x" / "src"
    await run(bridge, "set_task_status", status="complete", summary="done")
    assert daemon.calls == [
        (
            "task.set_status",
            {"project": str(root), "task": "3", "status": "complete", "summary": "done"},
        )
    ]


async def test_no_task_outside_a_task_is_a_clear_error(tmp_path: Path) -> None:
    """Without `task` and outside a task, the tool says to pass `task`, calling nothing."""
    bridge, daemon = make(tmp_path, {})
    with pytest.raises(InvalidParams, match="no task given: pass `task`"):
        await run(bridge, "stop_task")
    assert daemon.calls == []


async def test_another_projects_task_needs_its_task(tmp_path: Path) -> None:
    """The calling task is the default only for its own project."""
    other = tmp_path / "other"
    (other / ".orchestra").mkdir(parents=True)
    bridge, _ = make(tmp_path, {}, ORCHESTRA_TASK_ID="3", ORCHESTRA_PROJECT=str(other))
    with pytest.raises(InvalidParams):
        await run(bridge, "start_task")


async def test_not_a_project_says_to_pass_project(tmp_path: Path) -> None:
    """Outside any project, the error names the directory and suggests `project`."""
    bridge, _ = make(tmp_path, {})
    bridge.cwd = tmp_path
    with pytest.raises(NotAProject, match="or pass `project`"):
        await run(bridge, "list_tasks")


async def test_screen_falls_back_to_the_tail_on_an_older_daemon(tmp_path: Path) -> None:
    """A daemon without pty.screen (-32601) gets task.tail, with escapes stripped, and is not
    asked for pty.screen again on that connection."""
    raw = "\x1b[?1049h\x1b[1;1Hold\x1b[1;1H\x1b[1mTitle\x1b[0m\x1b[K\x1b[2;1Hline two\r\n"
    bridge, daemon = make(
        tmp_path, {"pty.screen": NO_METHOD, "task.tail": {"running": True, "text": raw}}
    )
    for _ in range(2):
        reply = await run(bridge, "task_screen", task="x")
        assert reply.data == {"text": "Title\nline two", "source": "task.tail"}
    assert [m for m, _ in daemon.calls] == ["pty.screen", "task.tail", "task.tail"]


async def test_screen_text_comes_from_pty_screen(tmp_path: Path) -> None:
    """pty.screen's text is the screen, trailing blank rows trimmed for the model."""
    screen = {"text": "hello  \n\n\n", "lines": ["hello  ", "", ""], "cursor": [0, 0]}
    bridge, daemon = make(tmp_path, {"pty.screen": screen})
    reply = await run(bridge, "task_screen", task="x", lines=3)
    assert reply.rendered() == "hello"
    assert reply.data["source"] == "pty.screen" and "lines" not in reply.data
    assert daemon.calls[0][1]["lines"] == 3


@pytest.mark.parametrize(
    ("tool", "method"), [("task_diff", "task.diff"), ("merge_task", "task.merge")]
)
async def test_missing_daemon_method_is_not_available(
    tmp_path: Path, tool: str, method: str
) -> None:
    """-32601 from the daemon for task.diff/task.merge reads "not available in this daemon"."""
    bridge, _ = make(tmp_path, {method: NO_METHOD})
    with pytest.raises(NotAvailable, match=f"{tool} is not available in this daemon") as info:
        await run(bridge, tool, task="x")
    assert info.value.to_wire()["code"] == -32601


async def test_diff_renders_committed_uncommitted_and_untracked(tmp_path: Path) -> None:
    """task_diff shows the committed diff, then the worktree's uncommitted changes and files."""
    answer = {
        "committed": "diff --git a/A b/A\n",
        "uncommitted": "diff --git a/B b/B\n",
        "untracked": ["C"],
        "checkout": "/wt",
        "truncated": False,
    }
    bridge, daemon = make(tmp_path, {"task.diff": answer})
    text = (await run(bridge, "task_diff", task="x", stat=True)).rendered()
    assert text == (
        "diff --git a/A b/A\n\n# uncommitted changes in /wt:\ndiff --git a/B b/B"
        "\n\n# untracked files:\nC"
    )
    assert daemon.calls[0][1]["stat"] is True


async def test_create_and_start_failure_names_the_created_task(tmp_path: Path) -> None:
    """When create_task's start fails, the error says the task exists and why it did not start."""
    refused = RemoteError(-32002, "no agent named nope", {"kind": "invalid_transition"})
    bridge, _ = make(tmp_path, {"task.new": {"id": 4, "ref": "4-x"}, "task.start": refused})
    with pytest.raises(RemoteError, match="task 4-x was created, but it did not start: no agent"):
        await run(bridge, "create_task", slug="x", start=True)


def test_normalise_forgives_numbers_and_single_states() -> None:
    """A numeric task id becomes a string; list_tasks takes one state as a string."""
    assert normalise("get_task", {"task": 3}) == {"task": "3"}
    assert normalise("list_tasks", {"status": "running"}) == {"status": ["running"]}
    assert normalise("set_task_status", {"status": "complete"}) == {"status": "complete"}


def test_plain_text_keeps_the_last_redraw() -> None:
    """Terminal output loses its escapes, keeps only the last full redraw, applies carriage
    returns and squeezes blank runs."""
    raw = (
        "\x1b[H\x1b[2Jfirst screen\r\n"
        "\x1b[1;1H\x1b]0;title\x07top\x1b[2;1Hprogress 10%\rprogress 99%"
        "\x1b[5;1H\x1b[7mstatus\x1b[0m"
        "\x1b[H"
    )
    assert plain_text(raw) == "top\nprogress 99%\nstatus"
    assert plain_text(raw, 1) == "status"
    assert plain_text("no escapes\n\n\n\nat all\n") == "no escapes\n\nat all"


def test_unexpanded_env_references_count_as_unset(tmp_path: Path) -> None:
    """A client that passed "$ORCHESTRA_TASK_ID" through literally (it had no such variable)
    leaves the bridge with no calling task and no default project, not a bogus one."""
    from orchestra.mcp.server import make_bridge

    bridge = make_bridge(
        Path("$ORCHESTRA_PROJECT"),
        {
            "ORCHESTRA_TASK_ID": "$ORCHESTRA_TASK_ID",
            "ORCHESTRA_PROJECT": "${ORCHESTRA_PROJECT}",
            "ORCHESTRA_SOCKET": "%ORCHESTRA_SOCKET%",
            "HOME": str(tmp_path),
        },
    )
    assert bridge.default_project is None
    assert dict(bridge.environ) == {"HOME": str(tmp_path)}


def _task(task_id: int, activity: str | None, since: float = 0.0) -> dict[str, Any]:
    run = None if activity is None else {"activity": {"activity": activity, "since": since}}
    return {"id": task_id, "slug": f"t{task_id}", "run": run}


async def test_list_tasks_can_list_only_the_waiting_longest_first(tmp_path: Path) -> None:
    """waiting=true keeps the tasks whose agent waits, the longest waiting first; the
    daemon is asked for the list as without it."""
    tasks = [
        _task(1, "working"),
        _task(2, "waiting", 20.0),
        _task(3, None),
        _task(4, "waiting", 10.0),
    ]
    bridge, daemon = make(tmp_path, {"task.list": {"tasks": tasks, "errors": []}})
    reply = await run(bridge, "list_tasks", waiting=True)
    assert [t["id"] for t in reply.data["tasks"]] == [4, 2]
    assert "waiting" not in daemon.calls[0][1]
    everyone = await run(bridge, "list_tasks")
    assert [t["id"] for t in everyone.data["tasks"]] == [1, 2, 3, 4]
    assert "waiting" in TOOLS["list_tasks"].schema["properties"]
