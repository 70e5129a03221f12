"""The fast path: the hottest one-shot commands, served without importing Typer.

`import typer` alone costs ~5x a bare `python -c pass` here, more than the whole
start-up budget of a one-shot command (bench/cli_latency.py). Agents and shell
prompts call `status`, `path` and `complete` all the time, so their plainest
forms are recognised here and answered with the same Session, client and
renderers the Typer commands use. Any other argv (an option we do not know
here, --help, a typo) returns None and the Typer app handles it, so Typer stays
the single definition of the CLI's grammar and help. tests/cli/test_fast.py
checks both paths print the same bytes for every form below.

Forms: `status [--json]`, `path|show|start TASK [--json]`,
`idle|complete|fail|reviewed TASK [--json]`, `shell-hook --slugs`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orchestra.cli.output import (
    emit_json,
    fail,
    printable,
    render_move,
    render_slugs,
    render_status,
    render_task,
    warn_config,
)
from orchestra.cli.session import Session
from orchestra.core.errors import OrchestraError

# command -> (method, extra params, takes a TASK argument, human renderer)
FORMS: dict[str, tuple[str, dict[str, Any], bool, Callable[[Any], str]]] = {
    "status": ("task.list", {}, False, render_status),
    "path": ("task.path", {}, True, lambda d: printable(d["worktree"])),
    "show": ("task.get", {}, True, render_task),
    "start": ("task.start", {}, True, render_move),
    **{
        word: ("task.set_status", {"status": word}, True, render_move)
        for word in ("idle", "complete", "fail", "reviewed")
    },
    # `shell-hook --slugs`, which shell completion runs at every Tab (argv matched whole).
    "shell-hook --slugs": ("task.list", {}, False, render_slugs),
}


def run(argv: Sequence[str]) -> int | None:
    """Serve argv if it is one of FORMS and return the exit code; else None."""
    if list(argv) == ["shell-hook", "--slugs"]:
        argv = ["shell-hook --slugs"]
    if os.environ.get("ORCHESTRA_NO_FAST") or not argv or argv[0] not in FORMS:
        return None
    method, params, takes_task, render = FORMS[argv[0]]
    rest = list(argv[1:])
    as_json = "--json" in rest
    if as_json:
        rest.remove("--json")
    if len(rest) != int(takes_task) or any(arg.startswith("-") for arg in rest):
        return None
    if takes_task:
        params = {**params, "task": rest[0]}
    project = os.environ.get("ORCHESTRA_PROJECT")
    session = Session(Path(project) if project else None)
    try:
        result = session.call(method, **params)
    except OrchestraError as exc:
        fail(exc, as_json=as_json)
    finally:
        session.close()
    warn_config(result)
    if as_json:
        emit_json(result)
    else:
        print(render(result))
    return 0
