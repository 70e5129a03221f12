"""What every Typer command shares: options, the Session on the context, error handling."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import typer

from orchestra.cli.output import fail
from orchestra.cli.session import Session
from orchestra.core.errors import OrchestraError

__all__ = ["JSON", "YES", "Session", "errors", "session"]

JSON = typer.Option(False, "--json", help="Print the result (or the error) as JSON on stdout.")
YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")


def own_task_argument(**extra: Any) -> Any:
    """The optional TASK of the commands an agent runs about itself (`Session.task_or_own`)."""
    return typer.Argument(
        None,
        metavar="[TASK]",
        help="The task: its id (3) or its slug (fix-login). Default: inside a task (its"
        " agent's shell), that task.",
        show_default=False,
        **extra,
    )


def session(ctx: typer.Context) -> Session:
    root = ctx.find_root()
    if not isinstance(root.obj, Session):
        root.obj = Session(None)
        root.call_on_close(root.obj.close)
    return root.obj


@contextlib.contextmanager
def errors(as_json: bool = False) -> Iterator[None]:
    """Turn an OrchestraError into one line (or JSON) and its exit code."""
    try:
        yield
    except OrchestraError as exc:
        fail(exc, as_json=as_json)
