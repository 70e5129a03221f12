"""Opening the dashboard, without Typer: `orchestra ui` is served from the fast path too
(cli/fast.py), since Textual's own import is most of its start-up budget."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestra.cli.output import abort
from orchestra.cli.session import Session
from orchestra.core.errors import EXIT_USAGE, OrchestraError

if TYPE_CHECKING:
    from orchestra.client.local import Local
    from orchestra.ui.link import Daemon

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


def open_dashboard(
    project: Path | None,
    *,
    all_projects: bool,
    host: str | None = None,
    hosts: Sequence[str] = (),
) -> int:
    """Run the dashboard until the person quits; 0, or a one-line error and its code.
    `host`: the root --host; `hosts`: the daemons to show (default: `ui.hosts` in the
    config, else the one `host` names, else this machine's)."""
    if not (os.isatty(0) and os.isatty(1)):
        abort("the dashboard needs a terminal on stdin and stdout", EXIT_USAGE)
    # Here, not at the top: the fast path imports this module for every command it serves.
    from orchestra.client.attach import relay_asked
    from orchestra.ui.first import FirstList

    session = Session(project, host)
    first = None
    try:
        local = session.local
        keys = local.setting("ui.keys", dict, {})
        names = list(hosts) or (
            [] if host or local.host_named else local.setting("ui.hosts", list, [])
        )
        daemons = _daemons(local, names, project, all_projects)
        if daemons[0].target is None:
            # The list is asked for now, while Textual is imported (most of the start-up).
            first = FirstList(daemons[0].socket, daemons[0].project)
        detach_keys = local.detach_keys()
        state_dir, autostart = local.state_dir, local.autostart
    except OrchestraError as exc:
        from orchestra.cli.output import fail

        fail(exc)
    if keys or names:
        from orchestra.core.config import UiConfig

        try:
            # What the daemon would say of it, before the screen is taken.
            UiConfig(keys=keys, hosts=[n for n in names if isinstance(n, str)])
        except (ValueError, TypeError) as exc:
            abort(f"config: ui.{exc}", EXIT_USAGE)
    from orchestra.ui.app import run

    run(
        daemons[0].project,
        daemons[0].socket,
        state_dir,
        autostart=autostart,
        keys=keys,
        detach_keys=detach_keys,
        relay=relay_asked(os.environ),
        first=first,
        daemons=daemons,
    )
    return 0


def _daemons(
    local: Local, names: Sequence[str], project: Path | None, all_projects: bool
) -> list[Daemon]:
    """The daemons to show: one per host named (`local` is this machine's), else the
    session's own. On one host the project is the one given (or that host's default);
    with several, each host's default project, else every project it serves."""
    from orchestra.client.local import Local as LocalView
    from orchestra.ui.link import Daemon

    views = [LocalView(project if len(names) <= 1 else None, local.environ, str(n)) for n in names]
    daemons = []
    for view in views or [local]:
        t = view.target
        chosen: str | None
        if all_projects:
            chosen = None
        elif t is None or (project is not None and len(names) <= 1) or t.project is not None:
            chosen = str(view.project)
        else:
            chosen = None  # no project named there: every project it serves
        daemons.append(Daemon(view.socket, chosen, t, view.control_dir if t else None))
    hosts = [d.host for d in daemons]
    if len(set(hosts)) != len(hosts):
        from orchestra.core.errors import InvalidParams

        raise InvalidParams(f"a host is named twice: {', '.join(hosts)}")
    return daemons
