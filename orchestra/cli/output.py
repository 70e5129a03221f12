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


def render_status(result: dict[str, Any]) -> str:
    """`orchestra status`: one row per task, then the files that could not be read."""
    rows = [
        [
            str(t["id"]),
            t["slug"],
            t["status"],
            t["agent"],
            ",".join(t["labels"]),
            t.get("title") or "",
        ]
        for t in result["tasks"]
    ]
    text = table(["id", "slug", "status", "agent", "labels", "title"], rows) if rows else "no tasks"
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


def render_move(data: dict[str, Any]) -> str:
    return f"task {data['ref']} is {data['status']}"
