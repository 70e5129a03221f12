"""Error hints through both front ends (issue 14, item 9): the same refusal, from each
state, worded as a CLI command by `orchestra` and as a tool call through the MCP SDK's own
client, each naming only a move the state table allows from there."""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

import pytest
import trio
from mcp import ClientSession

from orchestra.core import hints
from orchestra.core.states import Status
from tests.conftest import Env, ProjectApi
from tests.mcp.test_bridge import bridge, error

# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = pytest.mark.shared_daemon


async def cli(env: Env, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, in a thread (the bridge's session keeps running meanwhile)."""
    return await trio.to_thread.run_sync(functools.partial(env.run, *args, cwd=project))


def setup(env: Env, project: Path) -> None:
    """One task in each state a refusal is hinted from (the sleeper agent runs them), made
    through the daemon's methods on one connection (what the CLI would call, without a
    process per command: the table's runs are what test the CLI)."""
    api = ProjectApi(env, project)
    with api.client:
        for slug in ("drafted", "stopped", "failed", "running", "merged", "dirty"):
            api("task.new", slug=slug, description=f"Do {slug}.")
        for slug in ("stopped", "failed", "running", "merged", "dirty"):
            api("task.start", task=slug)
        api("task.stop", task="stopped")
        api("task.set_status", task="failed", status="fail")
        api("task.set_status", task="merged", status="complete")
        api("task.merge", task="merged")
        (project / ".orchestra" / "worktrees" / "6-dirty" / "NOTES.md").write_text("wip\n")
        api("task.set_status", task="dirty", status="complete")


# (CLI argv, MCP tool and arguments, the task's state, the CLI's hint, the MCP's hint);
# a hint of None: the message must end at the problem (no move helps from there).
CASES = [
    (
        ("merge", "drafted", "-y"),
        ("merge_task", {"task": "drafted"}),
        "draft",
        "run `orchestra start drafted` first",
        'call start_task(task="drafted") first',
    ),
    (
        ("merge", "stopped", "-y"),
        ("merge_task", {"task": "stopped"}),
        "stopped",
        "run `orchestra complete stopped` first, or run `orchestra merge stopped --force`",
        'call set_task_status(task="stopped", status="complete") first,'
        ' or call merge_task(task="stopped", force=true)',
    ),
    (
        ("merge", "failed", "-y"),
        ("merge_task", {"task": "failed"}),
        "failed",
        "run `orchestra start failed` first, or run `orchestra merge failed --force`",
        'call start_task(task="failed") first, or call merge_task(task="failed", force=true)',
    ),
    (
        ("merge", "running", "-y"),
        ("merge_task", {"task": "running"}),
        "running",
        "run `orchestra complete running` first",
        'call set_task_status(task="running", status="complete") first',
    ),
    (
        ("merge", "dirty", "-y"),
        ("merge_task", {"task": "dirty"}),
        "completed",
        "run `orchestra merge dirty --include-uncommitted`",
        'call merge_task(task="dirty", include_uncommitted=true)',
    ),
    (
        ("peek", "drafted"),
        ("task_screen", {"task": "drafted"}),
        "draft",
        "run `orchestra start drafted` first",
        'call start_task(task="drafted") first',
    ),
    (
        ("peek", "merged"),
        ("task_screen", {"task": "merged"}),
        "merged",
        None,
        None,
    ),
    (
        ("diff", "drafted"),
        ("task_diff", {"task": "drafted"}),
        "draft",
        "run `orchestra start drafted` first",
        'call start_task(task="drafted") first',
    ),
]


async def test_hints_name_allowed_moves_in_each_front_ends_words(env: Env, project: Path) -> None:
    """Each refusal's hint is a command on the CLI and a tool call through MCP, names only
    moves the state table allows from the task's state, and no message holds a CLI flag
    through MCP or a tool call through the CLI."""
    await trio.to_thread.run_sync(setup, env, project)
    api = ProjectApi(env, project)
    with api.client:
        await check_table(env, project, api)


async def check_table(env: Env, project: Path, api: ProjectApi) -> None:
    """The table's rows, through the CLI and one bridge session (the CLI's runs, which
    change nothing, all at once while the bridge starts)."""
    runs: dict[tuple[str, ...], subprocess.CompletedProcess[str]] = {}
    ran = trio.Event()

    async def run_all() -> None:
        async with trio.open_nursery() as nursery:
            for argv, *_ in CASES:
                for full in (argv, (*argv, "--json")):
                    nursery.start_soon(run, full)
        ran.set()

    async def run(argv: tuple[str, ...]) -> None:
        runs[argv] = await cli(env, project, *argv)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_all)
        async with bridge(env, project) as session:
            await ran.wait()
            await check_rows(session, api, runs)


async def check_rows(
    session: ClientSession,
    api: ProjectApi,
    runs: dict[tuple[str, ...], subprocess.CompletedProcess[str]],
) -> None:
    """Each row: the CLI's runs (plain and --json) against the tool's error."""
    for argv, (tool, args), state, cli_hint, mcp_hint in CASES:
        out, as_json = runs[argv], runs[(*argv, "--json")]
        message, err = await error(session, tool, **args)
        wire = json.loads(as_json.stdout)["error"]
        assert err["data"] == wire["data"], argv  # the same error, worded twice
        assert api("task.get", task=args["task"])["status"] == state, argv
        problem = wire["message"].split(": run `")[0]
        assert out.stderr == f"orchestra: {wire['message']}\n", argv
        if cli_hint is None:
            assert "hint" not in wire["data"] or wire["data"]["hint"] == [], argv
            assert message == wire["message"], argv
            continue
        assert wire["message"] == f"{problem}: {cli_hint}", argv
        assert message == f"{problem}: {mcp_hint}", argv
        assert "--" not in message and "orchestra " not in message, message
        assert "_task(" not in wire["message"], wire["message"]
        for hint in wire["data"]["hint"]:
            assert hints.can(hint, Status(state)), (argv, hint)


@pytest.mark.parametrize("state", list(Status))
def test_every_hint_the_table_gives_is_allowed(state: Status) -> None:
    """From every state, the moves hinted for a refused merge or for a missing agent are
    moves the state table allows from it."""
    for hint in hints.to_merge(state, "x") + hints.start_first(state, "x"):
        assert hints.can(hint, state), (state, hint)
    assert not any(h["move"] == "complete" for h in hints.to_merge(Status.DRAFT, "x"))
    assert not any(h.get("force") for h in hints.to_merge(Status.DRAFT, "x"))


async def test_bad_values_are_named_in_user_terms(env: Env, project: Path) -> None:
    """A bad task name or value is reported naming the task or field, never a "@ $" path,
    through the CLI and through MCP."""
    async with bridge(env, project) as session:
        out = await cli(env, project, "show", "Bad Slug")
        assert out.returncode == 2 and out.stderr.startswith(
            "orchestra: invalid task reference 'Bad Slug': give a task id"
        )
        message, err = await error(session, "get_task", task="Bad Slug")
        assert message.startswith("invalid task reference 'Bad Slug'"), message
        assert err["data"]["fields"] == ["task"]
        message, _ = await error(session, "get_task", task="1", screen_lines=0)
        assert message == "get_task: argument 'screen_lines' must be at least 1, not 0"
        message, _ = await error(session, "set_task_status", task="1", status="done")
        assert message == (
            "set_task_status: argument 'status' must be one of complete, fail, idle, reviewed,"
            ' not "done"'
        )
        for text in (out.stderr, message):
            assert "@ $" not in text and "invalid params" not in text
