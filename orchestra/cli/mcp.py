"""`orchestra mcp`: serve Orchestra's tools to AI agents over MCP (stdio).

The MCP SDK is imported only when the command runs: it costs most of a second, which no
other command should pay.
"""

from __future__ import annotations

from pathlib import Path

import typer


def mcp(ctx: typer.Context) -> None:
    """Serve Orchestra's tools to an AI agent over MCP, on stdin and stdout.

    Register it with your agent once (see docs/mcp.md); the agent starts it as needed. Tools:
    list_tasks, get_task, create_task, start_task, stop_task, set_task_status, task_screen,
    send_input, task_diff, merge_task. Inside a task, `task` defaults to the calling task.
    The daemon is started if it is not running (unless autostart = false).

    Example: claude mcp add orchestra -- orchestra mcp
    """
    from orchestra.mcp.server import run

    params = ctx.find_root().params
    project = params.get("project")
    run(Path(project) if project else None, params.get("host"))
