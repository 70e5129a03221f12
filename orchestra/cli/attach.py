"""`orchestra attach`: your terminal shows an agent's terminal, live, until you detach.

The command picks the task and how keys and screen travel (the terminal handed to the
daemon, or relayed where it cannot be opened again by its name or with
ORCHESTRA_ATTACH_RELAY=1); the session itself, shared with the dashboard, is
`orchestra.client.attach.attach_session`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from orchestra.cli.common import errors, session
from orchestra.cli.output import abort, fail, printable, waiting_only
from orchestra.client.attach import attach_session, own_terminal, relay_asked
from orchestra.core.errors import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE

TASK = typer.Argument(
    None,
    metavar="[TASK]",
    help="The task: its id (3) or its slug (fix-login); with --next, none.",
    show_default=False,
)


def attach(
    ctx: typer.Context,
    task: str | None = TASK,
    read_only: bool = typer.Option(
        False, "--read-only", "-r", help="Watch only: never type or resize."
    ),
    next_: bool = typer.Option(
        False, "--next", "-n", help="The task whose agent has waited for you the longest."
    ),
) -> None:
    """Attach your terminal to a running agent's terminal; detach with the detach keys.

    The detach keys come from `detach_keys` in config or ORCHESTRA_DETACH_KEYS (default
    ctrl-q; a sequence such as ctrl-b,d works too). Ctrl-C goes to the agent.

    With --next, attach to the task whose agent has waited for you the longest (`orchestra
    status --waiting` lists them).

    Example: orchestra attach fix-login
    """
    s = session(ctx)
    if (task is None) == (not next_):
        abort("give a task to attach to, or --next (not both)", EXIT_USAGE)
    if task is None:
        with errors():
            task = _longest_waiting(s)
    if not (os.isatty(0) and os.isatty(1)):
        abort("attach needs a terminal on stdin and stdout", EXIT_USAGE)
    with errors():
        detach_keys = s.local.detach_keys()
        client = s.client()
        # A terminal is handed over on a local socket only: to another host, frames carry it.
        terminal = None if client.remote or relay_asked(os.environ) else own_terminal()
        ending = attach_session(
            client,
            str(s.project),
            task,
            detach_keys=detach_keys,
            terminal=terminal,
            read_only=read_only,
        )
    if ending.code == EXIT_UNREACHABLE and client.link is not None:
        fail(client.link.lost())  # the link to the host, not its daemon: ssh says why
    if ending.code != EXIT_OK:
        abort(f"{ending.why}: {task}", ending.code)
    sys.stderr.write(f"[{ending.why}: {task}]\n")


def _longest_waiting(s: Any) -> str:
    """The id of the task that has waited for the person the longest (`--next`)."""
    waiting = waiting_only(s.call("task.list"))["tasks"]
    if not waiting:
        abort("no task is waiting for you (`orchestra status` shows what each agent does)", 1)
    sys.stderr.write(printable(f"[{waiting[0]['ref']} has waited the longest]") + "\n")
    return str(waiting[0]["id"])
