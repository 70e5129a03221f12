"""`orchestra mcp`: an MCP server on stdio that bridges to the daemon's JSON-RPC API.

Built on the official SDK's low-level `mcp.server.Server` (handlers passed to its
constructor) so the tool table in `tools.py` stays plain data with hand-written JSON
schemas; run under trio through anyio. Stdout is the wire: logging goes to stderr only
(and the SDK's `stdio_server` points fd 1 at stderr while it serves, so a stray print
cannot corrupt the stream).

`call_tool` below is the one exception-to-result boundary: every failure of a tool (a bad
argument, the daemon's error, the daemon unreachable, a bug here) comes back to the model
as a tool result with `isError` and one sentence saying what was wrong.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

import orchestra
from orchestra.client.local import Local
from orchestra.core import hints
from orchestra.core.errors import InvalidParams, OrchestraError, RemoteError
from orchestra.core.remote import Target
from orchestra.mcp.link import DaemonLink
from orchestra.mcp.tools import TOOLS, Bridge, ToolSpec, normalise, tool_hint

log = logging.getLogger("orchestra.mcp")

RESOURCE_NOT_FOUND = -32002  # the MCP spec's code for resources/read of an unknown URI
TASK_URI = re.compile(r"^orchestra://task/([^/?#]+)$")

INSTRUCTIONS = """\
Orchestra runs AI coding agents side by side, each on its own branch
(orchestra/{id}-{slug}) in its own git worktree, under a per-user daemon. These tools
create, start, watch, steer and stop those tasks. A task is named by its id or slug.
If you are an agent running inside an Orchestra task, `task` defaults to your own:
when your work is done and committed, call set_task_status(status="complete",
summary="what you did"); if it cannot be done, status="fail" with the reason."""


def mcp_tool(spec: ToolSpec) -> types.Tool:
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.schema,
        annotations=types.ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            destructive_hint=spec.destructive,
            idempotent_hint=spec.idempotent,
            open_world_hint=False,
        ),
    )


def tool_error(exc: Exception, name: str) -> types.CallToolResult:
    """The failure of a tool, as the model sees it: the error's own sentence, and its code,
    message and data as structured content."""
    if isinstance(exc, OrchestraError):
        wire = exc.to_wire()
        wire["message"] = hints.worded(wire["message"], wire["data"], tool_hint)
    else:
        log.error("internal error in tool %s", name, exc_info=exc)
        wire = {
            "code": -32603,
            "message": f"internal error in the Orchestra MCP bridge ({type(exc).__name__}:"
            f" {exc}); its stderr has the traceback",
            "data": {"kind": "internal"},
        }
    return types.CallToolResult(
        content=[types.TextContent(text=wire["message"])],
        structured_content={"error": wire},
        is_error=True,
    )


def _argument(problem: ValidationError) -> str | None:
    """The argument a schema problem is about ("colors.fg", "status[0]"), None for the whole."""
    path = ""
    for part in problem.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f"{'.' if path else ''}{part}"
    return path or None


def argument_problem(spec: ToolSpec, problem: ValidationError) -> str:
    """A JSON-schema problem in the tool's terms: "argument 'timeout' must be at least 0.1,
    not 0" rather than the validator's "0 is less than the minimum of 0.1"."""
    where, kind = _argument(problem), problem.validator
    rule: Any = problem.validator_value
    instance: Any = problem.instance
    value = json.dumps(instance, ensure_ascii=False)
    value = value if len(value) <= 60 else value[:57] + "..."
    if kind == "required":
        missing = [k for k in rule if k not in instance]
        return f"the argument {', '.join(map(repr, missing))} is required"
    if kind == "additionalProperties":
        known = list(spec.schema["properties"])
        extra = [k for k in instance if k not in known]
        return (
            f"there is no argument {', '.join(map(repr, extra))}"
            f" (its arguments: {', '.join(known)})"
        )
    what = f"argument {where!r}" if where else "the arguments"
    rules = {
        "type": f"must be {_JSON_TYPE.get(str(rule), rule)}",
        "enum": f"must be one of {', '.join(map(str, rule))}" if isinstance(rule, list) else "",
        "minimum": f"must be at least {rule}",
        "maximum": f"must be at most {rule}",
        "maxLength": f"must be at most {rule} characters long",
    }
    if kind in rules:
        tail = "" if kind == "maxLength" else f", not {value}"
        return f"{what} {rules[kind]}{tail}"
    return f"{what}: {problem.message}"


_JSON_TYPE = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
}


class Handlers:
    """The MCP request handlers, over one Bridge."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.tools = [mcp_tool(spec) for spec in TOOLS.values()]
        self.validators = {name: Draft202012Validator(s.schema) for name, s in TOOLS.items()}

    async def list_tools(
        self, _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools)

    async def call_tool(
        self, _ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        spec = TOOLS.get(params.name)
        if spec is None:  # a protocol error, as the spec asks for unknown tools
            raise MCPError(
                types.INVALID_PARAMS, f"unknown tool {params.name!r}; tools: {', '.join(TOOLS)}"
            )
        try:
            args = normalise(spec.name, params.arguments or {})
            problem = best_match(self.validators[spec.name].iter_errors(args))
            if problem is not None:
                raise InvalidParams(
                    f"{spec.name}: {argument_problem(spec, problem)}",
                    tool=spec.name,
                    argument=_argument(problem),
                )
            reply = await spec.handler(self.bridge, args)
        except Exception as exc:
            return tool_error(exc, spec.name)
        return types.CallToolResult(
            content=[types.TextContent(text=reply.rendered())],
            structured_content=reply.data,
        )

    # -- resources: orchestra://task/{id}, the task files ------------------------------

    async def list_templates(
        self, _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            name="task",
            title="Orchestra task file",
            uri_template="orchestra://task/{id}",
            description="A task's file (TOML front matter, then its Markdown description), by"
            " id or slug, in the bridge's project.",
            mime_type="text/markdown",
        )
        return types.ListResourceTemplatesResult(resource_templates=[template])

    async def _tasks(self) -> list[dict[str, Any]]:
        """The default project's tasks, for the resource and prompt lists."""
        try:
            project = self.bridge.project({})
            tasks: list[dict[str, Any]] = (await self.bridge.call("task.list", project))["tasks"]
        except OrchestraError as exc:
            raise _resource_error(exc) from None
        return tasks

    async def list_resources(
        self, _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        tasks = await self._tasks()
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    name=t["ref"],
                    title=t.get("title") or t["ref"],
                    uri=f"orchestra://task/{t['id']}",
                    description=f"task {t['ref']} ({t['status']}, agent {t['agent']})",
                    mime_type="text/markdown",
                )
                for t in tasks
            ]
        )

    async def read_resource(
        self, _ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        match = TASK_URI.match(params.uri)
        if match is None:
            raise MCPError(
                RESOURCE_NOT_FOUND,
                f"unknown resource {params.uri!r}: task files are orchestra://task/ID",
                {"uri": params.uri},
            )
        try:
            project = self.bridge.project({})
            task = await self.bridge.call("task.get", project, task=match.group(1))
            text = await anyio.Path(task["file"]).read_text(encoding="utf-8")
        except OrchestraError as exc:
            raise _resource_error(exc, params.uri) from None
        except OSError as exc:
            raise MCPError(
                RESOURCE_NOT_FOUND, f"cannot read {params.uri}: {exc}", {"uri": params.uri}
            ) from None
        contents = types.TextResourceContents(uri=params.uri, mime_type="text/markdown", text=text)
        return types.ReadResourceResult(contents=[contents])

    # -- prompts: each task's prompt (its description), to hand to another agent --------

    async def list_prompts(
        self, _ctx: ServerRequestContext[Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        tasks = await self._tasks()
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name=t["slug"],
                    title=t.get("title") or t["ref"],
                    description=f"the prompt of task {t['ref']} ({t['status']}, agent"
                    f" {t['agent']})",
                )
                for t in tasks
            ]
        )

    async def get_prompt(
        self, _ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        try:
            project = self.bridge.project({})
            task = await self.bridge.call("task.get", project, task=params.name)
        except OrchestraError as exc:
            wire = exc.to_wire()
            raise MCPError(types.INVALID_PARAMS, wire["message"], wire["data"]) from None
        return types.GetPromptResult(
            description=f"the prompt of task {task['ref']}",
            messages=[
                types.PromptMessage(
                    role="user", content=types.TextContent(text=task["description"])
                )
            ],
        )


def _resource_error(exc: OrchestraError, uri: str | None = None) -> MCPError:
    wire = exc.to_wire()
    not_found = isinstance(exc, RemoteError) and exc.remote_code == -32001
    code = RESOURCE_NOT_FOUND if not_found else types.INTERNAL_ERROR
    return MCPError(
        code, wire["message"], {**(wire["data"] or {}), **({"uri": uri} if uri else {})}
    )


def build(bridge: Bridge) -> Server[Any]:
    h = Handlers(bridge)
    return Server(
        "orchestra",
        version=orchestra.__version__,
        title="Orchestra",
        instructions=INSTRUCTIONS,
        on_list_tools=h.list_tools,
        on_call_tool=h.call_tool,
        on_list_resources=h.list_resources,
        on_list_resource_templates=h.list_templates,
        on_read_resource=h.read_resource,
        on_list_prompts=h.list_prompts,
        on_get_prompt=h.get_prompt,
    )


# A client that passes `"env": {"X": "$X"}` through may hand over "$X" itself when it has
# no X (Gemini CLI expands these, other clients may not): such a value counts as unset.
UNEXPANDED = re.compile(r"^(?:\$\{?\w+\}?|%\w+%)$")


def make_bridge(
    project: Path | None, environ: Mapping[str, str] = os.environ, host: str | None = None
) -> Bridge:
    """The bridge as `orchestra mcp` runs it: the daemon found and autostarted as the CLI does."""
    environ = {k: v for k, v in environ.items() if not UNEXPANDED.match(v)}
    if project is not None and UNEXPANDED.match(str(project)):
        project = None
    env_project = environ.get("ORCHESTRA_PROJECT")
    default = project or (Path(env_project) if env_project else None)
    far = Local(None, environ, host).target
    if default is None and far is not None and far.project is not None:
        default = Path(far.project)  # the host's default project
    bridge: Bridge

    def where() -> tuple[Path, bool]:
        try:
            root: Path | None = Path(bridge.project({}))
        except OrchestraError:
            root = None
        local = Local(root, environ, host)  # read afresh at each (re)connect
        return local.socket, local.autostart

    def remote() -> tuple[Target, Path] | None:
        local = Local(None, environ, host)
        t = local.target
        return None if t is None else (t, local.control_dir)

    link = DaemonLink(where, log_dir=Local(None, environ).state_dir, remote=remote)
    bridge = Bridge(daemon=link, environ=environ, cwd=Path.cwd(), default_project=default)
    return bridge


async def serve(bridge: Bridge) -> None:
    server = build(bridge)
    try:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        close = getattr(bridge.daemon, "aclose", None)
        if close is not None:
            await close()


def run(project: Path | None = None, host: str | None = None) -> None:
    """Serve MCP on stdin/stdout until the client closes stdin."""
    level = os.environ.get("ORCHESTRA_LOG", "warning").upper()
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level, logging.WARNING),
        format="orchestra mcp: %(levelname)s %(name)s: %(message)s",
    )
    try:
        anyio.run(serve, make_bridge(project, host=host), backend="trio")
    except KeyboardInterrupt:
        sys.exit(130)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m orchestra.mcp",
        description="Orchestra's MCP server on stdio (the same as `orchestra mcp`).",
    )
    parser.add_argument(
        "-C",
        "--project",
        type=Path,
        default=None,
        help="the default project (else $ORCHESTRA_PROJECT, else the one around the cwd)",
    )
    run(parser.parse_args(argv).project)
