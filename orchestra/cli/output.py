"""Everything the CLI prints: results (human or `--json`) and the one failure path.

Typer-free on purpose: the fast path (cli/fast.py) renders with it too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from orchestra.core.errors import EXIT_ERROR, OrchestraError, RemoteError


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def abort(
    message: str,
    code: int = EXIT_ERROR,
    *,
    as_json: bool = False,
    data: Any = None,
    rpc_code: int | None = None,
) -> NoReturn:
    """Print one line (stderr, or a JSON object on stdout with --json) and exit with `code`.

    The JSON form: {"error": {"message", "exit_code", "code" (JSON-RPC, or null), "data"}}.
    """
    if as_json:
        error = {"message": message, "exit_code": code, "code": rpc_code, "data": data or {}}
        emit_json({"error": error})
    else:
        sys.stderr.write(f"orchestra: {message}\n")
    raise SystemExit(code)


def fail(exc: OrchestraError, *, as_json: bool = False) -> NoReturn:
    code = exc.cli_exit_code if isinstance(exc, RemoteError) else exc.exit_code
    wire = exc.to_wire()
    abort(exc.message, code, as_json=as_json, data=wire.get("data"), rpc_code=wire["code"])


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """45s, 12m, 3h, 2d: the one unit that matters at a glance."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _age(created_at: str, now: float) -> str:
    import datetime as dt  # only here: keeps it off other commands' start-up

    try:
        stamp = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "?"
    return duration(max(0.0, now - stamp))


def _state(task: dict[str, Any]) -> str:
    if (task.get("run") or {}).get("attention"):
        return f"{task['status']} (!)"  # the agent rang the bell or sent a notification
    if task.get("queue_position"):
        return f"queued #{task['queue_position']}"
    if task.get("exit_code") is not None and task["status"] == "stopped":
        return f"stopped ({task['exit_code']})"
    return str(task["status"])


def render_status(result: dict[str, Any]) -> str:
    """`orchestra status`: one row per task, then the files that could not be read."""
    import time

    now = time.time()
    rows = []
    for t in result["tasks"]:
        run = t.get("run")
        rows.append(
            [
                str(t["id"]),
                t["slug"],
                _state(t),
                t["agent"],
                t.get("branch", ""),
                _age(t["created_at"], now),
                duration(run["idle_for"]) if run else "-",
                "-" if t.get("ahead") is None else str(t["ahead"]),
                ",".join(t["labels"]),
                t.get("title") or "",
            ]
        )
    headers = ["id", "slug", "status", "agent", "branch", "age", "idle", "ahead", "labels", "title"]
    text = table(headers, rows) if rows else "no tasks"
    for err in result.get("errors", []):
        text += f"\nbroken: {err['message']}"
    return text


SHOW_FIELDS = (
    "ref",
    "title",
    "status",
    "agent",
    "base_branch",
    "labels",
    "created_at",
    "session_id",
    "branch",
    "worktree",
    "file",
)


def render_task(data: dict[str, Any]) -> str:
    """`orchestra show`: the fields, a blank line, the description."""
    lines = []
    for key in SHOW_FIELDS:
        value = data.get(key)
        if isinstance(value, list):
            value = ", ".join(value)
        lines.append(f"{key + ':':13} {'' if value is None else value}".rstrip())
    description = str(data.get("description", ""))
    return "\n".join(lines) + "\n\n" + description.rstrip()


def render_slugs(result: dict[str, Any]) -> str:
    """`shell-hook --slugs` (for completion): the slugs of unmerged tasks, one per line."""
    return "\n".join(t["slug"] for t in result["tasks"] if t["status"] != "merged")


def render_move(data: dict[str, Any]) -> str:
    return f"task {data['ref']} is {data['status']}"
