"""Per-invocation CLI state: the project, the settings, the daemon connection.

Typer-free, so the fast path (cli/fast.py) shares it with the Typer commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from orchestra.cli.output import abort
from orchestra.client import Client
from orchestra.client.local import Local
from orchestra.core.errors import EXIT_USAGE


class Session:
    """Per-invocation state, kept on the Typer context (no module globals): the client
    layer's view of the user's side (`local`), and one connection, made when first needed."""

    def __init__(self, project: Path | None, host: str | None = None) -> None:
        self.environ = os.environ
        self.local = Local(project, self.environ, host)
        self._client: Client | None = None

    @property
    def project(self) -> Path:
        return self.local.project

    @property
    def socket(self) -> Path:
        return self.local.socket

    def client(self, *, start: bool = True) -> Client:
        """The session's connection (`start`: the daemon may be started, as autostart
        allows; without it, a daemon that is not running is DaemonUnreachable)."""
        if self._client is None:
            self._client = self.local.connect(start=start)
        return self._client

    def call(self, method: str, **params: Any) -> Any:
        """A task-scoped call: the project root goes with every request."""
        return self.client().call(method, {"project": str(self.project), **params})

    def task_or_own(self, task: str | None, usage: str, *, as_json: bool = False) -> str:
        """`task`, else the calling task: inside a task's agent the daemon sets
        ORCHESTRA_TASK_ID and ORCHESTRA_PROJECT, and a command run there means that task
        when it is about that project (a variable left over from another project's task
        must not act on this project's task of the same id). `usage` is the command's
        form, for the error without one ("complete TASK")."""
        if task is not None:
            return task
        own, where = self.environ.get("ORCHESTRA_TASK_ID"), self.environ.get("ORCHESTRA_PROJECT")
        usage = f"name the task (its id or slug): `orchestra {usage}`"
        if not own:
            abort(
                f"no task given: {usage}; it defaults to the calling task only inside a task",
                EXIT_USAGE,
                as_json=as_json,
            )
        if not (own.isascii() and own.isdigit()):
            abort(
                f"ORCHESTRA_TASK_ID={own!r} is not a task id: {usage}", EXIT_USAGE, as_json=as_json
            )
        if not where or Path(where).resolve() != self.project.resolve():
            abort(
                f"no task given, and ORCHESTRA_TASK_ID={own} is a task of {where or 'no project'},"
                f" not of {self.project}: {usage}",
                EXIT_USAGE,
                as_json=as_json,
            )
        return own

    def confirm(self, question: str, yes: bool, *, as_json: bool = False) -> None:
        """Go on if -y, `confirm = "yes"`, or the person says so; otherwise stop here."""
        if yes:
            return
        policy = self.local.setting("confirm", str, "ask")
        if policy == "yes":
            return
        if policy == "ask" and sys.stdin.isatty() and not as_json:
            import typer

            if typer.confirm(question, default=False):
                return
            abort("cancelled", 1)
        abort(f"{question} Refusing without confirmation: pass -y", EXIT_USAGE, as_json=as_json)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
