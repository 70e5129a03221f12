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
    # Here, not at the top: the fast path imports this module for every command it serves.
    from orchestra.client.attach import DEFAULT_DETACH, relay_asked
    from orchestra.ui.first import FirstList

    session = Session(project)
    try:
        local = session.local
        root = None if all_projects else str(session.project)
        keys = local.setting("ui.keys", dict, {})
        socket, state_dir, autostart = local.socket, local.state_dir, local.autostart
        # The list is asked for now, while Textual is imported (most of the start-up).
        first = FirstList(socket, root)
        # The default's bytes are known: the config module is imported only to parse others.
        spec = local.setting("detach_keys", str, DEFAULT_DETACH[0])
        detach_keys = DEFAULT_DETACH if spec == DEFAULT_DETACH[0] else local.detach_keys()
    except OrchestraError as exc:
        from orchestra.cli.output import fail

        fail(exc)
    if keys:
        from orchestra.core.config import UiConfig

        try:
            UiConfig(keys=keys)  # what the daemon would say of it, before the screen is taken
        except (ValueError, TypeError) as exc:
            abort(f"config: ui.{exc}", EXIT_USAGE)
    from orchestra.ui.app import run

    run(
        root,
        socket,
        state_dir,
        autostart=autostart,
        keys=keys,
        detach_keys=detach_keys,
        relay=relay_asked(os.environ),
        first=first,
    )
    return 0
