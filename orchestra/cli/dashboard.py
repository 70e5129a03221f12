"""Opening the dashboard, without Typer: `orchestra ui` is served from the fast path too
(cli/fast.py), since Textual's own import is most of its start-up budget."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestra.cli.output import abort
from orchestra.cli.session import Session
from orchestra.core.errors import EXIT_USAGE, OrchestraError

FORMS = (["ui"], ["ui", "--all"], ["ui", "-a"])  # what the fast path serves


def by_default(argv: Sequence[str]) -> bool:
    """`orchestra` alone (or with only -C) on a terminal, inside a project, opens the
    dashboard; anywhere else it prints the help, as it always did."""
    words = list(argv)
    if words[:1] in (["-C"], ["--project"]) and len(words) == 2:
        return _on_a_terminal()
    if words or not _on_a_terminal():
        return False
    from orchestra.client.local import find_project

    try:
        find_project(Path.cwd())
    except OrchestraError:
        return False
    return True


def _on_a_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def open_dashboard(project: Path | None, *, all_projects: bool) -> int:
    """Run the dashboard until the person quits; 0, or a one-line error and its code."""
    if not (os.isatty(0) and os.isatty(1)):
        abort("the dashboard needs a terminal on stdin and stdout", EXIT_USAGE)
    session = Session(project)
    try:
        local = session.local
        root = None if all_projects else str(session.project)
        keys = local.setting("ui.keys", dict, {})
        detach_keys = local.detach_keys()
        socket, state_dir, autostart = local.socket, local.state_dir, local.autostart
    except OrchestraError as exc:
        from orchestra.cli.output import fail

        fail(exc)
    from orchestra.core.config import UiConfig

    try:
        UiConfig(keys=keys)  # what the daemon would say of it, before the screen is taken
    except (ValueError, TypeError) as exc:
        abort(f"config: ui.{exc}", EXIT_USAGE)
    from orchestra.client.attach import relay_asked
    from orchestra.ui.app import run

    run(
        root,
        socket,
        state_dir,
        autostart=autostart,
        keys=keys,
        detach_keys=detach_keys,
        relay=relay_asked(os.environ),
    )
    return 0
