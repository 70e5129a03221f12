"""The `orchestra` command: a thin client of the daemon.

Import cost matters here (every shell call pays it): only typer and the stdlib
load on the way to a one-shot command; trio, attrs and cattrs stay out.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

import typer

import orchestra
from orchestra.cli import dashboard
from orchestra.cli.common import Session
from orchestra.cli.output import last_line_of_defence

# Where each top-level command lives: (module, attribute, is a group). Only the
# invoked command is imported and turned into a click command (Typer builds every
# registered command at each start, ~0.4 ms each); --help and unknown words get all.
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "init": ("orchestra.cli.init", "init", False),
    "config": ("orchestra.cli.config", "config", False),
    "demo": ("orchestra.cli.demo", "demo", False),
    **{
        name: ("orchestra.cli.tasks", name, False)
        for name in (
            "new",
            "edit",
            "show",
            "status",
            "start",
            "stop",
            "idle",
            "complete",
            "fail",
            "reviewed",
            "path",
            "send",
        )
    },
    "attach": ("orchestra.cli.attach", "attach", False),
    "hook": ("orchestra.cli.tasks", "hook", False),
    "peek": ("orchestra.cli.tasks", "peek", False),
    "diff": ("orchestra.cli.review", "diff", False),
    "merge": ("orchestra.cli.review", "merge", False),
    "gc": ("orchestra.cli.review", "gc", False),
    "shell-hook": ("orchestra.cli.review", "shell_hook", False),
    "session": ("orchestra.cli.tasks", "session_app", True),
    "daemon": ("orchestra.cli.daemon", "app", True),
    "mcp": ("orchestra.cli.mcp", "mcp", False),
    "bridge": ("orchestra.cli.bridge_command", "bridge", False),
    "ui": ("orchestra.cli.ui", "ui", False),
}

app = typer.Typer(
    name="orchestra",
    help=(
        "Run several AI coding agents at once, each on its own branch in its own git worktree,"
        " under one per-user daemon.\n\nStart with `orchestra init` in a git repository, then"
        " `orchestra new SLUG -m PROMPT` and `orchestra start SLUG`.\n\n"
        "Example: orchestra new fix-login -m 'Fix the login form' && orchestra status"
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
    host: str | None = typer.Option(
        None,
        "--host",
        "-H",
        help="Talk to the daemon on this host over SSH (user@box, an ssh alias,"
        " ssh://user@box:2222, or a [hosts.NAME] of the config; `local` for this machine);"
        " default: ORCHESTRA_HOST, else the config's `host`. See docs/remote.md.",
        show_default=False,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Orchestra."""
    ctx.obj = Session(project, host)
    ctx.call_on_close(ctx.obj.close)


ROOT_OPTIONS = ("-C", "--project", "-H", "--host")  # the root options that take a value


def _invoked(argv: Sequence[str]) -> str | None:
    """The command word in argv, skipping the root options (and --project's value)."""
    args = iter(argv)
    for arg in args:
        if arg in ROOT_OPTIONS:
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def register(names: Sequence[str]) -> typer.Typer:
    for name in names:
        module_name, attr, group = COMMANDS[name]
        target = getattr(importlib.import_module(module_name), attr)
        if group:
            for info in target.registered_commands:
                info.help = help_text(info.help or info.callback.__doc__)
            app.add_typer(target, name=name)
        else:
            app.command(name, help=help_text(target.__doc__))(target)
    return app


KEEP_LINES = "\b"  # click's mark for a paragraph whose lines are kept as they are


def help_text(doc: str | None) -> str | None:
    """A command's docstring as its --help shows it: each paragraph one line, which rich
    then wraps to the terminal (Typer keeps the source's line breaks inside a paragraph,
    so the lines, wrapped again, came out ragged); a paragraph marked with `\b` on a line
    of its own keeps its lines (and loses the mark)."""
    if doc is None:
        return None
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(
        paragraph.removeprefix(KEEP_LINES + "\n")
        if paragraph.startswith(KEEP_LINES + "\n")
        else " ".join(paragraph.split("\n"))
        for paragraph in paragraphs
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if dashboard.by_default(args):  # where the fast path is off (ORCHESTRA_NO_FAST)
        args = [*args, "ui"]
    word = _invoked(args)
    register([word] if word in COMMANDS else list(COMMANDS))
    with last_line_of_defence():  # one line, never a traceback
        app(args, prog_name="orchestra")
