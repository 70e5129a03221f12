"""`orchestra config`: the effective config and where each value came from."""

from __future__ import annotations

import json

import typer

from orchestra.cli.common import JSON, errors, session
from orchestra.cli.output import emit_json, table


def config(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Print the effective config: every key, its value, and the file (or variable) it came from.

    Works inside or outside a project (outside, only the global file and environment apply).

    Example: orchestra config --json
    """
    s = session(ctx)
    with errors(as_json):
        project, rows = s.local.effective_config()
    if as_json:
        emit_json({"project": None if project is None else str(project), "config": rows})
    else:
        print(
            table(
                ["key", "value", "source"],
                [[r["key"], json.dumps(r["value"]), r["source"]] for r in rows],
            )
        )
