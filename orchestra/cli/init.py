"""`orchestra init`: make a git repository an Orchestra project (no daemon needed)."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestra.cli.common import JSON, errors, session
from orchestra.cli.output import abort, emit_json
from orchestra.client.local import init_project
from orchestra.core.errors import EXIT_USAGE


def init(
    ctx: typer.Context,
    gitignore: bool = typer.Option(
        False,
        "--gitignore",
        help="Ignore Orchestra's local files in .gitignore (shared) instead of .git/info/exclude.",
    ),
    as_json: bool = JSON,
) -> None:
    """Make the current git repository an Orchestra project.

    Creates .orchestra/ (config.toml with commented defaults, tasks/, worktrees/) at the
    repository root and keeps worktrees and logs out of `git status`. Safe to run again.

    Example: cd ~/src/myapp && orchestra init
    """
    local = session(ctx).local
    with errors(as_json):
        t = local.target if local.host_named else None  # a default host is not meant here
    if t is not None:
        abort(
            f"`orchestra init` runs on the host itself: ssh {t.destination}"
            " 'cd /path/to/repo && orchestra init'",
            EXIT_USAGE,
            as_json=as_json,
        )
    with errors(as_json):
        done = init_project(Path.cwd(), gitignore=gitignore)
    dot = done.pop("dot")
    if as_json:
        emit_json(done)
    elif done["created"] or done["ignore_added"]:
        print(f"initialised Orchestra in {dot}")
    else:
        print(f"already initialised: {dot}")
