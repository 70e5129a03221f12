"""`orchestra mcp` driven by the MCP SDK's own stdio client, against a real daemon."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import trio
from jsonschema import Draft202012Validator
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from tests.conftest import Env, git

# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = pytest.mark.shared_daemon

TOOLS = {
    "list_tasks",
    "get_task",
    "create_task",
    "start_task",
    "stop_task",
    "set_task_status",
    "task_screen",
    "send_input",
    "task_diff",
    "merge_task",
}
READ_ONLY = {"list_tasks", "get_task", "task_screen", "task_diff"}
DEMO_FAST = 'agents.demo.env = {ORCHESTRA_DEMO_STEP_DELAY = "0"}\n'
WAITING = "type `done` to finish"
CLI = ("-m", "orchestra", "mcp")


@contextlib.asynccontextmanager
async def bridge(
    env: Env,
    cwd: Path,
    extra: dict[str, str] | None = None,
    argv: tuple[str, ...] = CLI,
) -> AsyncIterator[ClientSession]:
    """A bridge process spawned by the SDK's stdio client, initialised."""
    params = StdioServerParameters(
        command=sys.executable, args=list(argv), env={**env.vars, **(extra or {})}, cwd=cwd
    )
    err_path = env.base / "bridge.err"
    with err_path.open("a") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            try:
                with trio.fail_after(30):
                    await session.initialize()
            except (MCPError, trio.TooSlowError) as exc:
                stderr = err_path.read_text(errors="replace")
                raise AssertionError(f"the bridge did not initialise ({exc}):\n{stderr}") from None
            yield session


async def call(session: ClientSession, tool: str, **args: Any) -> types.CallToolResult:
    with trio.fail_after(30):
        return await session.call_tool(tool, args)


async def ok(session: ClientSession, tool: str, **args: Any) -> dict[str, Any]:
    """Call a tool that must succeed; return its structured result."""
    result = await call(session, tool, **args)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    assert not result.is_error, text
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def error(session: ClientSession, tool: str, **args: Any) -> tuple[str, dict[str, Any]]:
    """Call a tool that must fail; return its message and its structured error."""
    result = await call(session, tool, **args)
    assert result.is_error, result
    [content] = result.content
    assert isinstance(content, types.TextContent)
    assert isinstance(result.structured_content, dict)
    err: dict[str, Any] = result.structured_content["error"]
    assert err["message"] == content.text
    return content.text, err


async def wait_screen(session: ClientSession, task: str, text: str) -> str:
    """Read the agent's screen until it shows `text` (20 s at most)."""
    screen: dict[str, Any] = {}
    with trio.move_on_after(20):
        while True:
            screen = await ok(session, "task_screen", task=task)
            if text in screen["text"]:
                return str(screen["text"])
            await trio.sleep(0.05)
    raise AssertionError(f"{text!r} not on the screen of {task} in 20 s:\n{screen.get('text')}")


def demo_project(project: Path) -> Path:
    with (project / ".orchestra" / "config.toml").open("a") as f:
        f.write(DEMO_FAST)
    return project


async def test_initialize_lists_tools_with_valid_schemas(env: Env, project: Path) -> None:
    """The bridge initialises as `orchestra`, and lists the ten tools, each with a valid JSON
    schema for an object, a description and all three behaviour hints."""
    async with bridge(env, project) as session:
        info = session.initialize_result
        assert info is not None and info.server_info.name == "orchestra"
        assert info.capabilities.tools is not None and info.capabilities.resources is not None
        assert info.capabilities.prompts is not None
        assert info.instructions and "set_task_status" in info.instructions
        tools = (await session.list_tools()).tools
    assert {t.name for t in tools} == TOOLS
    for t in tools:
        Draft202012Validator.check_schema(t.input_schema)
        assert t.input_schema["type"] == "object", t.name
        assert t.input_schema["additionalProperties"] is False, t.name
        assert t.description and len(t.description) > 40, t.name
        a = t.annotations
        assert a is not None, t.name
        assert a.read_only_hint is (t.name in READ_ONLY), t.name
        assert a.destructive_hint is not None and a.idempotent_hint is not None, t.name
    by_name = {t.name: t for t in tools}
    assert by_name["stop_task"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert by_name["merge_task"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert by_name["create_task"].input_schema["required"] == ["slug"]


@pytest.mark.own_daemon  # the bridge autostarts it
@pytest.mark.parametrize(
    "argv",
    [("-m", "orchestra.mcp", "-C", "{project}"), ("-m", "orchestra", "-C", "{project}", "mcp")],
)
async def test_both_entry_points_serve_the_given_project(
    env: Env, project: Path, argv: tuple[str, ...]
) -> None:
    """`python -m orchestra.mcp -C P` and `orchestra -C P mcp`, started outside any project,
    serve project P, and the first tool call autostarts the daemon."""
    assert env.daemon_pid() is None
    argv = tuple(a.format(project=project) for a in argv)
    async with bridge(env, env.base, argv=argv) as session:
        listed = await ok(session, "list_tasks")
    assert listed == {"project": str(project), "tasks": [], "errors": []}
    assert env.daemon_pid() is not None


async def test_demo_task_driven_end_to_end(env: Env, project: Path) -> None:
    """Create and start a demo task, read its screen, type into it, see the commits it made,
    then complete it from inside (the task's own env) with nothing but a status."""
    demo_project(project)
    async with bridge(env, project) as session:
        created = await ok(
            session,
            "create_task",
            slug="hello",
            description="Say hello",
            agent="demo",
            labels=["mcp"],
            start=True,
        )
        assert created["status"] == "running" and created["agent"] == "demo"
        screen = await wait_screen(session, "hello", WAITING)
        assert "Task: Say hello" in screen

        sent = await ok(session, "send_input", task="hello", text="add a test", timeout=30)
        assert sent == {"sent": len("add a test\r")}
        await wait_screen(session, "hello", "“add a test” is in DEMO_NOTES.md")

        shown = await ok(session, "get_task", task=str(created["id"]), screen_lines=5)
        assert shown["description"].strip() == "Say hello"
        assert shown["branch"] == "orchestra/1-hello"
        assert shown["worktree"] == str(project / ".orchestra" / "worktrees" / "1-hello")
        assert shown["ahead"] == 2 and shown["labels"] == ["mcp"]
        assert shown["run"]["pid"] > 0
        assert shown["screen"] is not None and len(shown["screen"].split("\n")) == 5

        lines = await ok(session, "task_screen", task="hello", lines=3)
        assert len(lines["text"].split("\n")) == 3
        running = await ok(session, "list_tasks", status=["running", "idle"], label="mcp")
        assert [t["slug"] for t in running["tasks"]] == ["hello"]
        assert (await ok(session, "list_tasks", label="other"))["tasks"] == []

    inside = {"ORCHESTRA_TASK_ID": str(created["id"]), "ORCHESTRA_PROJECT": str(project)}
    async with bridge(env, Path(shown["worktree"]), extra=inside) as agent:
        done = await ok(agent, "set_task_status", status="complete", summary="said hello")
        assert done["status"] == "completed" and done["slug"] == "hello"
        screen = (await ok(agent, "task_screen"))["text"]
        assert "demo agent" in screen
        stopped = await ok(agent, "stop_task")
        assert stopped["status"] == "completed" and stopped["run"] is None
    log = (project / ".orchestra" / "logs.jsonl").read_text()
    assert "said hello" in log


async def test_errors_are_tool_errors_with_the_daemons_message(env: Env, project: Path) -> None:
    """A bad task id, a bad slug, a refused move and bad arguments come back as tool errors
    (isError) carrying the daemon's message and code, and the bridge keeps serving."""
    async with bridge(env, project) as session:
        message, err = await error(session, "get_task", task="999")
        assert message == f"no task 999 in {project}"
        assert err["code"] == -32001 and err["data"]["kind"] == "not_found"

        message, err = await error(session, "create_task", slug="Not A Slug")
        assert err["code"] == -32602 and "slug" in message

        await ok(session, "create_task", slug="draft-one")
        message, err = await error(session, "set_task_status", task="draft-one", status="complete")
        assert err["code"] == -32002 and "draft" in message

        message, err = await error(session, "set_task_status", status="complete")
        assert message.startswith("no task given: pass `task`")

        message, err = await error(session, "get_task", task="1", colour="red")
        assert message == (
            "get_task: there is no argument 'colour' (its arguments: project, task, screen_lines)"
        )
        assert err["code"] == -32602
        message, err = await error(session, "send_input", task="1")
        assert message == "send_input: the argument 'text' is required"
        message, err = await error(session, "send_input", task="1", text="x", timeout=0)
        assert message == "send_input: argument 'timeout' must be at least 0.1, not 0"
        assert err["code"] == -32602 and err["data"]["argument"] == "timeout"

        message, err = await error(session, "send_input", task="draft-one", text="hi")
        assert "has no running agent" in message and err["code"] == -32002
        message, err = await error(session, "task_screen", task="draft-one")
        assert "has no running agent" in message

        message, _ = await error(session, "list_tasks", project=str(env.base))
        assert "not inside an Orchestra project" in message

        with pytest.raises(MCPError, match="unknown tool 'nope'"):
            await session.call_tool("nope", {})
        assert (await ok(session, "get_task", task=1))["slug"] == "draft-one"  # an int id works


@pytest.mark.own_daemon  # no daemon at first, then one started
async def test_daemon_unreachable_is_a_tool_error(env: Env, project: Path) -> None:
    """With autostart off and no daemon, a tool call says so as a tool error, and once the
    daemon is started the same bridge serves."""
    config = env.base / "config" / "orchestra" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("autostart = false\n")
    async with bridge(env, project) as session:
        message, err = await error(session, "list_tasks")
        assert "the daemon is not running" in message and "autostart is off" in message
        assert err["code"] == -32010 and err["data"]["kind"] == "unreachable"
        await trio.to_thread.run_sync(lambda: env.run("daemon", "start", check=True))
        assert (await ok(session, "list_tasks"))["tasks"] == []


@pytest.mark.own_daemon  # restarts it
async def test_bridge_reconnects_after_a_daemon_restart(env: Env, project: Path) -> None:
    """After the daemon restarts under it, the bridge's next call reconnects and succeeds."""
    async with bridge(env, project) as session:
        await ok(session, "create_task", slug="kept")
        first = env.daemon_pid()
        await trio.to_thread.run_sync(lambda: env.run("daemon", "restart", check=True))
        assert env.daemon_pid() != first
        assert [t["slug"] for t in (await ok(session, "list_tasks"))["tasks"]] == ["kept"]


async def test_task_files_are_resources(env: Env, project: Path) -> None:
    """Task files are readable as orchestra://task/{id} (by id or slug), listed as resources,
    and an unknown task is a resource-not-found error."""
    async with bridge(env, project) as session:
        await ok(session, "create_task", slug="readme", description="Write the README.")
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["orchestra://task/{id}"]
        listed = (await session.list_resources()).resources
        assert [(str(r.uri), r.name) for r in listed] == [("orchestra://task/1", "1-readme")]
        for uri in ("orchestra://task/1", "orchestra://task/readme"):
            [content] = (await session.read_resource(uri)).contents
            assert isinstance(content, types.TextResourceContents)
            assert content.text.startswith("+++") and "Write the README." in content.text
        with pytest.raises(MCPError, match="no task 42") as info:
            await session.read_resource("orchestra://task/42")
        assert info.value.code == -32002


async def test_task_prompts_are_prompts(env: Env, project: Path) -> None:
    """The bridge advertises prompts and offers each task's prompt (its description) by
    slug; an unknown one is an invalid-params error naming it."""
    async with bridge(env, project) as session:
        await ok(session, "create_task", slug="readme", description="Write the README.")
        listed = (await session.list_prompts()).prompts
        assert [(p.name, p.arguments) for p in listed] == [("readme", None)]
        got = await session.get_prompt("readme")
        [message] = got.messages
        assert message.role == "user"
        assert isinstance(message.content, types.TextContent)
        assert message.content.text.strip() == "Write the README."
        with pytest.raises(MCPError, match="no task 'nope'") as info:
            await session.get_prompt("nope")
        assert info.value.code == types.INVALID_PARAMS


async def test_task_diff_and_merge(env: Env, project: Path) -> None:
    """task_diff shows the change a task committed, and merge_task brings it into the base
    branch and marks the task merged."""
    async with bridge(env, project) as session:
        task = await ok(session, "create_task", slug="change", start=True)
        worktree = Path(task["worktree"])
        await trio.to_thread.run_sync(commit_file, worktree, "NEW.md")
        await ok(session, "stop_task", task="change")

        diff = await call(session, "task_diff", task="change")
        [content] = diff.content
        assert not diff.is_error and isinstance(content, types.TextContent)
        assert "+++ b/NEW.md" in content.text and "+new file" in content.text
        names = await ok(session, "task_diff", task="change", name_only=True)
        assert names["committed"].split() == ["NEW.md"]

        message, err = await error(session, "merge_task", task="change")
        assert err["code"] == -32002 and "only a completed or reviewed task" in message
        await ok(session, "set_task_status", task="change", status="complete")
        merged = await ok(session, "merge_task", task="change")
        assert merged["task"]["status"] == "merged"
    assert "NEW.md" in git("ls-files", cwd=project).split()


def commit_file(worktree: Path, name: str) -> None:
    (worktree / name).write_text("new file\n")
    git("add", name, cwd=worktree)
    git("commit", "-q", "-m", f"add {name}", cwd=worktree)


def test_cli_start_does_not_import_the_sdk(env: Env) -> None:
    """Building the `mcp` command (what every `orchestra` start may do) imports no MCP SDK,
    anyio or pydantic: only running it does."""
    code = (
        "import sys; from orchestra.cli.main import register; register(['mcp']);"
        " print(sorted(m for m in ('mcp', 'mcp.server', 'orchestra.mcp.server', 'anyio',"
        " 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env.vars, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
