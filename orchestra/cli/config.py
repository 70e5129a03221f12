"""`orchestra config`: the effective config and where each value came from."""

from __future__ import annotations

import contextlib
import json

import typer

from orchestra.adapters import config_files
from orchestra.cli.common import JSON, errors, session
from orchestra.cli.output import emit_json, table
from orchestra.core.errors import OrchestraError


def config(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Print the effective config: every key, its value, and the file (or variable) it came from.

    Works inside or outside a project (outside, only the global file and environment apply).

    Example: orchestra config --json
    """
    from orchestra.core.config import describe

    s = session(ctx)
    with errors(as_json):
        project = None
        with contextlib.suppress(OrchestraError):
            project = s.project
        rows = describe(config_files.load(project, s.environ))
    if as_json:
        emit_json({"project": None if project is None else str(project), "config": rows})
    else:
        print(
            table(
                ["key", "value", "source"],
                [[r["key"], json.dumps(r["value"]), r["source"]] for r in rows],
            )
        )
