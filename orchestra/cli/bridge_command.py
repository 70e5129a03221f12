"""`orchestra bridge` as Typer knows it (for --help); the command itself is served before
Typer loads (cli/__init__.py, cli/bridge.py)."""

from __future__ import annotations

import typer

from orchestra.cli.bridge import run


def bridge(
    no_start: bool = typer.Option(
        False, "--no-start", help="Do not start the daemon if it is not running."
    ),
) -> None:
    """Join this machine's daemon to stdin and stdout, for a client on another machine.

    Clients run it over SSH (`orchestra --host THIS-HOST ...` runs `ssh -T THIS-HOST
    orchestra bridge`); it says its version first, starts the daemon if it is not running
    (as `autostart` allows), then passes JSON-RPC both ways until either side ends. You do
    not run it yourself. See docs/remote.md.

    Example: ssh -T devbox orchestra bridge
    """
    raise typer.Exit(run(start=not no_start))
