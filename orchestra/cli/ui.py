"""`orchestra ui`: the dashboard. Textual is imported only when it runs (no other command
pays for it)."""

from __future__ import annotations

import os

import typer

from orchestra.cli.common import errors, session
from orchestra.cli.output import abort
from orchestra.core.config import UiConfig
from orchestra.core.errors import EXIT_USAGE


def ui(
    ctx: typer.Context,
    all_projects: bool = typer.Option(
        False, "--all", "-a", help="Every project the daemon serves, grouped, not only this one."
    ),
) -> None:
    """Open the dashboard: every task of the project, the selected agent's screen live.

    Keys (also under ?): arrows or j/k move, Enter attaches to the selected agent (the
    detach keys come back), n new task, s start, x stop, c complete, f fail, r reviewed,
    i type a line into the agent, m merge, g gc, e edit the title, / filter, o order,
    q quit (the agents keep running). `orchestra` alone, on a terminal inside a project,
    opens it too.

    Example: orchestra ui --all
    """
    s = session(ctx)
    if not (os.isatty(0) and os.isatty(1)):
        abort("the dashboard needs a terminal on stdin and stdout", EXIT_USAGE)
    with errors():
        project = None if all_projects else str(s.project)
        socket, state_dir, autostart = s.local.socket, s.local.state_dir, s.local.autostart
        keys = s.local.setting("ui.keys", dict, {})
        try:
            UiConfig(keys=keys)  # what the daemon would say of it, before the screen is taken
        except (ValueError, TypeError) as exc:
            abort(f"config: ui.{exc}", EXIT_USAGE)
    from orchestra.ui.app import run

    run(project, socket, state_dir, autostart=autostart, keys=keys)
