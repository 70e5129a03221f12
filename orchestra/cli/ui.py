"""`orchestra ui`: the dashboard. Textual is imported only when it runs (no other command
pays for it)."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestra.cli.dashboard import open_dashboard


def ui(
    ctx: typer.Context,
    all_projects: bool = typer.Option(
        False, "--all", "-a", help="Every project the daemon serves, grouped, not only this one."
    ),
    hosts: list[str] = typer.Option(
        [],
        "--host",
        "-H",
        help="Show the tasks of this host's daemon (repeat for several: each row names its"
        " host; `local` is this machine). Default: `ui.hosts` in the config, else the root"
        " --host, else this machine. See docs/remote.md.",
        show_default=False,
    ),
) -> None:
    """Open the dashboard: every task of the project, the selected agent's screen live.

    Keys (also under ?): arrows or j/k move, Enter attaches to the selected agent (the
    detach keys come back), n new task, s start, x stop, c complete, f fail, r reviewed,
    i type a line into the agent, m merge, g gc, e edit the task in $EDITOR, / filter, o order,
    q quit (the agents keep running). `orchestra` alone, on a terminal inside a project,
    opens it too.

    Example: orchestra ui --all; orchestra ui --host local --host devbox
    """
    params = ctx.find_root().params
    project = params.get("project")
    raise typer.Exit(
        open_dashboard(
            Path(project) if project else None,
            all_projects=all_projects,
            host=params.get("host"),
            hosts=hosts,
        )
    )
