"""The MCP tools: their schemas, descriptions and annotations, and what each asks the daemon.

SDK-free: `server.py` turns each `ToolSpec` into an MCP `Tool` and each `Reply` (or error)
into a `CallToolResult`. A handler takes the validated arguments and returns a `Reply`:
`data`, the structured result (a JSON object), and `text`, what the model reads (by default
`data` as JSON). Errors are raised as `OrchestraError`s (the daemon's come back as
`RemoteError` with its code, message and data) and become tool errors in one place.

Which project and task a call is about: the `project` argument, else the bridge's default
(`orchestra -C PATH mcp`, or `$ORCHESTRA_PROJECT`, which the daemon sets inside a task), else
the project around the bridge's working directory. `task` defaults to the calling task
(`$ORCHESTRA_TASK_ID`) when the project is the calling task's own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from orchestra.client.local import find_project
from orchestra.core.errors import InvalidParams, NotAProject, RemoteError
from orchestra.core.hints import REPORTED
from orchestra.core.states import Status
from orchestra.core.waiting import longest_first

METHOD_NOT_FOUND = -32601
GET_TASK_SCREEN_LINES = 20
TAIL_BYTES = 65536  # what the task.tail fallback reads to rebuild a screen


class Daemon(Protocol):
    """What the tools need of the daemon connection (`link.DaemonLink`)."""

    generation: int

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any: ...


@attrs.frozen(kw_only=True)
class Reply:
    data: dict[str, Any]
    text: str | None = None  # None: `data` as JSON

    def rendered(self) -> str:
        if self.text is not None:
            return self.text
        return json.dumps(self.data, indent=2, ensure_ascii=False)


class NotAvailable(RemoteError):
    """The daemon has no method for this tool (an older daemon): -32601, with a better message."""


@attrs.define
class Bridge:
    """What every tool call shares: the daemon, and the defaults for `project` and `task`."""

    daemon: Daemon
    environ: Mapping[str, str]
    cwd: Path
    default_project: Path | None = None  # -C, or $ORCHESTRA_PROJECT
    # The daemon connection generation that answered -32601 to pty.screen (older daemon).
    _no_screen: int | None = None

    def project(self, args: Mapping[str, Any]) -> str:
        raw = args.get("project")
        if raw:
            return str(find_project(self.cwd / Path(raw).expanduser()))
        start = self.default_project or self.cwd
        try:
            return str(find_project(self.cwd / start))
        except NotAProject as exc:
            raise NotAProject(
                f"{exc.message}; or pass `project`, the path of an Orchestra project", **exc.data
            ) from None

    def task(self, args: Mapping[str, Any], project: str) -> str:
        """The `task` argument, or the calling task when the bridge runs inside one of `project`."""
        if args.get("task") is not None:
            return str(args["task"])
        own_id = self.environ.get("ORCHESTRA_TASK_ID")
        own_project = self.environ.get("ORCHESTRA_PROJECT")
        if own_id and own_project and Path(own_project).resolve() == Path(project):
            return own_id
        raise InvalidParams(
            "no task given: pass `task` (its id or slug); it defaults to the calling task only"
            " inside a task's agent ($ORCHESTRA_TASK_ID)",
            field="task",
        )

    async def call(self, method: str, project: str, **params: Any) -> Any:
        return await self.daemon.call(method, {"project": project, **params})

    def target(self, args: Mapping[str, Any]) -> tuple[str, str]:
        project = self.project(args)
        return project, self.task(args, project)

    async def screen(self, project: str, task: str, lines: int | None) -> dict[str, Any]:
        """The agent's screen as text, from `pty.screen`; from the end of `task.tail` without
        its escape sequences when the daemon has no `pty.screen` (an older daemon) or its
        screen is blank (a daemon built without a terminal model). `source` says which."""
        if self._no_screen != self.daemon.generation:
            params: dict[str, Any] = {"task": task}
            if lines is not None:
                params["lines"] = lines
            try:
                result = await self.call("pty.screen", project, **params)
            except RemoteError as exc:
                if exc.remote_code != METHOD_NOT_FOUND:
                    raise
                self._no_screen = self.daemon.generation
            else:
                result.pop("lines", None)  # the same as `text`, split
                if str(result.get("text", "")).strip():
                    return {**result, "source": "pty.screen"}
        tail = await self.call("task.tail", project, task=task, bytes=TAIL_BYTES)
        if not tail.get("running"):
            raise RemoteError(
                -32002,
                f"task {task} has no running agent, so no screen (get_task says its status)",
                {"kind": "invalid_transition", "task": task},
            )
        return {"text": plain_text(tail["text"], lines), "source": "task.tail"}


# -- hints: the moves an error suggests (core/hints.py), as calls of these tools ----------

HINT_TOOLS = {
    "start": "start_task",
    "stop": "stop_task",
    "merge": "merge_task",
    **{word: "set_task_status" for word in REPORTED},
}
# A hint's arguments that are a tool's arguments too (the same names and values).
HINT_ARGS = ("force", "include_uncommitted", "into")


def tool_hint(hint: Mapping[str, Any]) -> str | None:
    """One hinted move as the call of a tool: `call merge_task(task="x", force=true)`."""
    tool_name = HINT_TOOLS.get(hint["move"])
    if tool_name is None:
        return None
    args: dict[str, Any] = {"task": hint["task"]} if "task" in hint else {}
    if hint["move"] in REPORTED:
        args["status"] = hint["move"]
    args.update({k: hint[k] for k in HINT_ARGS if k in hint})
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in args.items())
    return f"call {tool_name}({shown}){' first' if hint.get('first') else ''}"


# -- the fallback screen: terminal output without its escape sequences -------------------

# Cursor positioning and screen switches start a new line of the rebuilt text.
_NEWLINE_ESCAPES = re.compile(r"\x1b\[[0-9;]*[Hf]|\x1b\[\?(?:1049|47|1047)[hl]")
_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL/ST
    r"|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"  # DCS, PM, APC, SOS ... ST
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[ -/]*[0-~]?"  # everything else (charsets, keypad modes, ...)
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


_HOME = re.compile(r"\x1b\[(?:1;1)?H|\x1b\[[23]J")


def plain_text(raw: str, lines: int | None = None) -> str:
    """Terminal output as readable text: from the last full redraw (cursor home or clear
    screen, with something drawn after it), escapes out, carriage returns applied, runs of
    blank lines squeezed; the last `lines` lines."""
    homes = [m.start() for m in _HOME.finditer(raw)][-5:]
    for start in reversed(homes):
        out = _plain_lines(raw[start:])
        if out:
            break
    else:
        out = _plain_lines(raw)
    return "\n".join(out[-lines:] if lines else out)


def _plain_lines(raw: str) -> list[str]:
    text = _ESCAPES.sub("", _NEWLINE_ESCAPES.sub("\n", raw)).replace("\r\n", "\n")
    out: list[str] = []
    for line in text.split("\n"):
        line = _CONTROLS.sub("", line.rsplit("\r", 1)[-1] if "\r" in line else line).rstrip()
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


# -- schemas --------------------------------------------------------------------------

PROJECT: dict[str, Any] = {
    "type": "string",
    "description": "The project: the path of a git repository with .orchestra/ (a path inside"
    " it works too). Default: the calling task's project, else the bridge's.",
}
TASK: dict[str, Any] = {
    "type": "string",
    "description": 'The task: its id ("3") or its slug ("fix-login"). Default: the calling'
    " task, when you are an agent running inside one.",
}
LINES: dict[str, Any] = {
    "type": "integer",
    "minimum": 1,
    "maximum": 1000,
    "description": "Only the last LINES lines of the screen.",
}
NAME_RULE = "1-63 of a-z, 0-9 and -, starting with a letter or digit"


def _schema(required: tuple[str, ...] = (), **properties: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"project": PROJECT, **properties},
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


Handler = Callable[[Bridge, dict[str, Any]], Awaitable[Reply]]


@attrs.frozen(kw_only=True)
class ToolSpec:
    name: str
    title: str
    description: str
    schema: dict[str, Any]
    read_only: bool
    destructive: bool
    idempotent: bool
    handler: Handler


TOOLS: dict[str, ToolSpec] = {}


def tool(
    name: str,
    title: str,
    description: str,
    schema: dict[str, Any],
    *,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        TOOLS[name] = ToolSpec(
            name=name,
            title=title,
            description=description,
            schema=schema,
            read_only=read_only,
            destructive=destructive,
            idempotent=idempotent,
            handler=fn,
        )
        return fn

    return register


def normalise(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Forgive a model's usual slips before validation: a task id as a number, one state
    given to list_tasks as a string instead of a list."""
    out = dict(args)
    if isinstance(out.get("task"), int) and not isinstance(out["task"], bool):
        out["task"] = str(out["task"])
    if name == "list_tasks" and isinstance(out.get("status"), str):
        out["status"] = [out["status"]]
    return out


# -- the tools ------------------------------------------------------------------------

STATES = [str(s) for s in Status]


@tool(
    "list_tasks",
    "List tasks",
    "List the project's Orchestra tasks: each with its id, slug, status, agent, branch,"
    " worktree, labels, commits ahead of its base (`ahead`) and, while its agent runs, `run`"
    " with `run.activity`: what the agent does (`activity`: working, waiting for a person,"
    " idle or exited; `reason`, e.g. permission, question, turn-done; `since`, Unix time;"
    " `source`: hook, osc, screen or silence). Filter by `status` (one or more states) and"
    " `label`; waiting=true lists only the tasks whose agent waits for a person, the one"
    " that has waited longest first. Use it to find a task's id or slug, or to see what is"
    " running, who needs an answer, or what is done.",
    _schema(
        status={
            "type": "array",
            "items": {"type": "string", "enum": STATES},
            "description": "Only tasks in one of these states.",
        },
        label={"type": "string", "description": "Only tasks with this label."},
        description={
            "type": "boolean",
            "description": "Include each task's description (its prompt). Default false.",
        },
        waiting={
            "type": "boolean",
            "description": "Only tasks whose agent waits for a person (run.activity is"
            " waiting), the longest waiting first. Default false.",
        },
    ),
    read_only=True,
    idempotent=True,
)
async def list_tasks(b: Bridge, args: dict[str, Any]) -> Reply:
    params = {k: args[k] for k in ("status", "label", "description") if k in args}
    data: dict[str, Any] = await b.call("task.list", b.project(args), **params)
    if args.get("waiting"):
        data = {**data, "tasks": longest_first(data.get("tasks", []))}
    return Reply(data=data)


@tool(
    "get_task",
    "Show a task",
    "Show one task: its front matter (title, status, agent, base_branch, labels, created_at,"
    " session_id), its description (the agent's prompt), its branch and worktree path, how"
    " many commits it is ahead of its base (`ahead`), and, while its agent runs, `run` (pid,"
    " idle time, `activity`: working, waiting for a person and why, idle) and `screen`, the"
    " last lines of the agent's terminal.",
    _schema(
        task=TASK,
        screen_lines={**LINES, "description": "How many screen lines to include (default 20)."},
    ),
    read_only=True,
    idempotent=True,
)
async def get_task(b: Bridge, args: dict[str, Any]) -> Reply:
    project, task = b.target(args)
    data: dict[str, Any] = await b.call("task.get", project, task=task)
    data["screen"] = None
    if data.get("run") is not None:
        try:
            screen = await b.screen(project, task, args.get("screen_lines", GET_TASK_SCREEN_LINES))
            data["screen"] = _trimmed(str(screen.get("text", "")))
        except RemoteError:
            pass  # the agent exited in between: no screen to show
    return Reply(data=data)


@tool(
    "create_task",
    "Create a task",
    "Create a task for a coding agent. `slug` names it; `description` is the prompt its agent"
    " gets. When it starts it gets its own branch `orchestra/{id}-{slug}` and git worktree,"
    " made from `base` (default: the project's base branch, else the current branch). With"
    " start=true its agent starts at once (or it is queued when max_running agents already"
    " run). Returns the new task; start it later with start_task.",
    _schema(
        ("slug",),
        slug={"type": "string", "description": f"The task's short name: {NAME_RULE}."},
        description={
            "type": "string",
            "description": "The task's description in Markdown: the agent's prompt.",
        },
        title={"type": "string", "description": "An optional one-line title."},
        agent={
            "type": "string",
            "description": "The agent profile (claude, codex, opencode, gemini, aider, shell,"
            " demo, or one from the config). Default: the project's default_agent.",
        },
        base={"type": "string", "description": "The branch its worktree starts from."},
        labels={
            "type": "array",
            "items": {"type": "string"},
            "description": "Labels (letters, digits, . _ : -) to group and filter tasks.",
        },
        start={"type": "boolean", "description": "Start its agent now. Default false."},
    ),
)
async def create_task(b: Bridge, args: dict[str, Any]) -> Reply:
    project = b.project(args)
    keys = ("slug", "description", "title", "agent", "labels")
    params: dict[str, Any] = {k: args[k] for k in keys if k in args}
    if "base" in args:
        params["base_branch"] = args["base"]
    created: dict[str, Any] = await b.call("task.new", project, **params)
    if not args.get("start"):
        return Reply(data=created)
    try:
        return Reply(data=await b.call("task.start", project, task=created["id"]))
    except RemoteError as exc:
        raise RemoteError(
            exc.remote_code,
            f"task {created['ref']} was created, but it did not start: {exc.message}",
            {**exc.data, "task": created["ref"]},
        ) from None


@tool(
    "start_task",
    "Start a task",
    "Start a task's agent in its worktree: draft → running (queued when max_running agents"
    " already run; it then starts by itself when a slot frees). A stopped, failed, completed"
    " or reviewed task runs again, resuming its agent's session where the agent can.",
    _schema(task=TASK),
)
async def start_task(b: Bridge, args: dict[str, Any]) -> Reply:
    project, task = b.target(args)
    return Reply(data=await b.call("task.start", project, task=task))


@tool(
    "stop_task",
    "Stop a task",
    "Stop a task's agent: running or idle → stopped. The agent and every process it started"
    " are ended (work it has not written to disk is lost); the worktree, the branch and its"
    " commits stay, and start_task resumes it. A queued task goes back to draft.",
    _schema(task=TASK),
    destructive=True,
    idempotent=True,
)
async def stop_task(b: Bridge, args: dict[str, Any]) -> Reply:
    project, task = b.target(args)
    return Reply(data=await b.call("task.stop", project, task=task))


@tool(
    "set_task_status",
    "Report a task's status",
    "Report how a task stands: `complete` (the work is done and committed), `fail` (it cannot"
    " be done: say why in the summary), `idle` (waiting for a person's input), or `reviewed`"
    " (a person reviewed the completed work). The summary goes to the project's log. An agent"
    " running inside a task reports on itself by leaving out `task`:"
    ' set_task_status(status="complete", summary="Fixed the login form; tests pass").',
    _schema(
        ("status",),
        task=TASK,
        status={
            "type": "string",
            "enum": ["complete", "fail", "idle", "reviewed"],
            "description": "The new status.",
        },
        summary={"type": "string", "description": "A short note on the work, for the log."},
    ),
    idempotent=True,
)
async def set_task_status(b: Bridge, args: dict[str, Any]) -> Reply:
    project, task = b.target(args)
    params = {k: args[k] for k in ("status", "summary") if k in args}
    return Reply(data=await b.call("task.set_status", project, task=task, **params))


@tool(
    "task_screen",
    "Read an agent's screen",
    "The running agent's terminal screen as plain text: what a person attached to it would"
    " see. Use it to follow an agent's progress or to read a question it is waiting on.",
    _schema(task=TASK, lines=LINES),
    read_only=True,
    idempotent=True,
)
async def task_screen(b: Bridge, args: dict[str, Any]) -> Reply:
    project, task = b.target(args)
    screen = await b.screen(project, task, args.get("lines"))
    return Reply(data=screen, text=_trimmed(str(screen.get("text", ""))))


def _trimmed(text: str) -> str:
    """A screen without trailing spaces and trailing blank rows."""
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")


@tool(
    "send_input",
    "Type into an agent",
    "Type text into a running agent's terminal, as if at its keyboard, then press Enter"
    " (enter=false to leave the line unsent). Use it to answer an agent's question or to give"
    " it more instructions; read its screen with task_screen first.",
    _schema(
        ("text",),
        task=TASK,
        text={"type": "string", "maxLength": 65536, "description": "What to type."},
        enter={"type": "boolean", "description": "Press Enter after the text. Default true."},
        timeout={
            "type": "number",
            "minimum": 0.1,
            "maximum": 3600,
            "description": "Give up once the agent has read none of the text for this many"
            " seconds (an agent that reads nothing would otherwise hold the call). Default 10.",
        },
    ),
)
async def send_input(b: Bridge, args: dict[str, Any]) -> Reply:
    project, task = b.target(args)
    text = args["text"] + ("\r" if args.get("enter", True) else "")
    extra = {"timeout": args["timeout"]} if "timeout" in args else {}
    return Reply(data=await b.call("task.send_input", project, task=task, text=text, **extra))


async def _optional(b: Bridge, tool_name: str, method: str, project: str, **params: Any) -> Any:
    """A call to a daemon method that older daemons lack: -32601 becomes a clear tool error."""
    try:
        return await b.call(method, project, **params)
    except RemoteError as exc:
        if exc.remote_code != METHOD_NOT_FOUND:
            raise
        raise NotAvailable(
            METHOD_NOT_FOUND,
            f"{tool_name} is not available in this daemon (it has no {method} method):"
            " upgrade Orchestra and restart the daemon (`orchestra daemon restart`)",
            {"kind": "not_available", "method": method},
        ) from None


@tool(
    "task_diff",
    "Show a task's changes",
    "What a task changed: the diff of its branch since it started from its base, then the"
    " uncommitted changes and untracked files in its worktree. stat=true or name_only=true"
    " for a summary. Read-only; use it to review a task before merge_task.",
    _schema(
        task=TASK,
        stat={"type": "boolean", "description": "A diffstat instead of the full diff."},
        name_only={"type": "boolean", "description": "Only the names of the changed files."},
    ),
    read_only=True,
    idempotent=True,
)
async def task_diff(b: Bridge, args: dict[str, Any]) -> Reply:
    project, task = b.target(args)
    params = {k: args[k] for k in ("stat", "name_only") if k in args}
    data = await _optional(b, "task_diff", "task.diff", project, task=task, **params)
    return Reply(data=data, text=render_diff(data))


def render_diff(data: dict[str, Any]) -> str:
    parts = [str(data.get("committed") or "").rstrip("\n") or "(no committed changes)"]
    if data.get("uncommitted"):
        where = data.get("checkout") or "its worktree"
        parts.append(f"# uncommitted changes in {where}:\n{str(data['uncommitted']).rstrip()}")
    if data.get("untracked"):
        parts.append("# untracked files:\n" + "\n".join(map(str, data["untracked"])))
    if data.get("truncated"):
        parts.append("# (the diff was cut short: ask for stat=true or name_only=true)")
    return "\n\n".join(parts)


@tool(
    "merge_task",
    "Merge a task",
    "Merge a completed or reviewed task's branch into its base branch (or `into`); the task"
    " becomes merged and, unless cleanup=false (config merge.cleanup), its worktree and branch"
    " are removed. Squash and rebase carry only the task's own changes; strategy=merge brings"
    " its history (base commits the target lacks too). Its agent, if still running, is"
    " stopped first. A merge that conflicts is refused and changes nothing (the agent is"
    " left running). Review with task_diff first; dry_run=true says what would land"
    " (commits, files) and changes nothing.",
    _schema(
        task=TASK,
        into={"type": "string", "description": "The branch to merge into (default: its base)."},
        strategy={
            "type": "string",
            "description": "squash, merge or rebase (default: config merge.strategy).",
        },
        message={"type": "string", "description": "The commit message (not for rebase)."},
        force={
            "type": "boolean",
            "description": "Merge even if the task is not completed or reviewed.",
        },
        include_uncommitted={
            "type": "boolean",
            "description": "Commit the worktree's uncommitted changes into the merge.",
        },
        cleanup={
            "type": "boolean",
            "description": "Remove the worktree and branch after the merge (default: config).",
        },
        dry_run={"type": "boolean", "description": "Only say what the merge would do."},
    ),
    destructive=True,
)
async def merge_task(b: Bridge, args: dict[str, Any]) -> Reply:
    project, task = b.target(args)
    keys = ("into", "strategy", "message", "force", "include_uncommitted", "cleanup", "dry_run")
    params = {k: args[k] for k in keys if k in args}
    return Reply(data=await _optional(b, "merge_task", "task.merge", project, task=task, **params))
