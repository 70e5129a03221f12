"""The `orchestra` command: a thin client of the daemon.

Import cost matters here (every shell call pays it): only typer and the stdlib
load on the way to a one-shot command; trio, attrs and cattrs stay out.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

import orchestra
from orchestra.cli import config as config_cmd
from orchestra.cli import daemon as daemon_cmd
from orchestra.cli import init as init_cmd
from orchestra.cli import tasks
from orchestra.cli.common import Session
from orchestra.core.errors import EXIT_ERROR

app = typer.Typer(
    name="orchestra",
    help=(
        "Run several AI coding agents at once, each on its own branch in its own git worktree,"
        " under one per-user daemon.\n\nStart with `orchestra init` in a git repository, then"
        " `orchestra new SLUG -m PROMPT` and `orchestra start SLUG`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"orchestra {orchestra.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    project: Path | None = typer.Option(
        None,
        "--project",
        "-C",
        envvar="ORCHESTRA_PROJECT",
        help="The project (a git repository with .orchestra/); default: the one around the"
        " current directory.",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Orchestra."""
    ctx.obj = Session(project)
    ctx.call_on_close(ctx.obj.close)


app.command("init")(init_cmd.init)
app.command("config")(config_cmd.config)
app.registered_commands += tasks.app.registered_commands
app.add_typer(tasks.session_app, name="session")
app.add_typer(daemon_cmd.app, name="daemon")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("orchestra: interrupted\n")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        sys.stderr.write(f"orchestra: internal error: {type(exc).__name__}: {exc}\n")
        sys.exit(EXIT_ERROR)
