"""The fast path: the hottest one-shot commands, served without importing Typer.

`import typer` alone costs ~5x a bare `python -c pass` here, more than the whole
start-up budget of a one-shot command (bench/cli_latency.py). Agents and shell
prompts call `status`, `path` and `complete` all the time, so their plainest
forms are recognised here and answered with the same Session, client and
renderers the Typer commands use. Any other argv (an option we do not know
here, --help, a typo) returns None and the Typer app handles it, so Typer stays
the single definition of the CLI's grammar and help. tests/cli/test_fast.py
checks both paths print the same bytes for every form below.

Forms: `status [--json]`, `status --waiting [--json]`, `path|start TASK [--json]`,
`show [TASK] [--json]`, `idle|complete|fail [TASK] [-m|--summary TEXT] [--json]`,
`reviewed TASK [-m|--summary TEXT] [--json]`, `shell-hook --slugs`, `ui [--all]` and
`orchestra` alone on a terminal in a project (the dashboard: cli/dashboard.py). A TASK left
out is the calling task (Session.task_or_own), as on the Typer path. Each may follow the
root options `-C/--project PATH` and `-H/--host HOST` (a command over SSH pays its
round trip, not Typer too).

`hook EVENT` is the hottest of all (agents run it on every tool call): `orchestra.cli.main`
serves it first, before even this module is imported (cli/hook.py: stdlib only), since
these renderers alone would cost it more than its budget (bench/hook_latency.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from orchestra.cli import dashboard
from orchestra.cli.output import (
    emit_json,
    fail,
    last_line_of_defence,
    printable,
    render_move,
    render_slugs,
    render_status,
    render_task,
    render_waiting,
    waiting_only,
    warn_config,
)
from orchestra.cli.session import Session
from orchestra.core.errors import OrchestraError

NO_TASK, TASK, OWN_TASK = "none", "required", "optional"  # how a form takes a TASK


class Form:
    def __init__(
        self,
        method: str,
        render: Callable[[Any], str],
        task: str = NO_TASK,
        params: dict[str, Any] | None = None,
        summary: bool = False,
        shape: Callable[[Any], Any] | None = None,
    ) -> None:
        self.method, self.render, self.task = method, render, task
        self.params = params or {}
        self.summary = summary  # takes -m/--summary TEXT
        self.shape = shape  # what --json prints of the result (default: all of it)


FORMS: dict[str, Form] = {
    "status": Form("task.list", render_status),
    # `status --waiting` (the option anywhere after the word, once).
    "status --waiting": Form("task.list", render_waiting, shape=waiting_only),
    "path": Form("task.path", lambda d: printable(d["worktree"]), TASK),
    "show": Form("task.get", render_task, OWN_TASK),
    "start": Form("task.start", render_move, TASK),
    **{
        word: Form(
            "task.set_status",
            render_move,
            TASK if word == "reviewed" else OWN_TASK,
            {"status": word},
            summary=True,
        )
        for word in ("idle", "complete", "fail", "reviewed")
    },
    # `shell-hook --slugs`, which shell completion runs at every Tab (argv matched whole).
    "shell-hook --slugs": Form("task.list", render_slugs),
}
SUMMARY = ("-m", "--summary")


def parse(form: Form, args: Sequence[str]) -> tuple[list[str], str | None, bool] | None:
    """(positional words, summary, --json) of a form's arguments; None for anything the
    fast path leaves to Typer (an unknown option, a repeated one, a value like an option)."""
    words: list[str] = []
    summary: str | None = None
    as_json = False
    rest = iter(args)
    for arg in rest:
        if arg == "--json" and not as_json:
            as_json = True
        elif form.summary and summary is None and (arg in SUMMARY or arg.startswith("--summary=")):
            value = arg.partition("=")[2] if "=" in arg else next(rest, None)
            if value is None or value.startswith("-"):
                return None
            summary = value
        elif arg.startswith("-"):
            return None
        else:
            words.append(arg)
    allowed = {NO_TASK: (0,), TASK: (1,), OWN_TASK: (0, 1)}[form.task]
    return (words, summary, as_json) if len(words) in allowed else None


PROJECT_OPTIONS, HOST_OPTIONS = ("-C", "--project"), ("-H", "--host")


def root_options(argv: Sequence[str]) -> tuple[str | None, str | None, list[str]] | None:
    """(project, host, the rest) of argv's leading root options, as Typer takes them (the
    last of each wins); None for a form left to Typer (an option without its value)."""
    project, host = os.environ.get("ORCHESTRA_PROJECT"), None
    args = list(argv)
    while args[:1] and args[0] in (*PROJECT_OPTIONS, *HOST_OPTIONS):
        if len(args) < 2 or args[1].startswith("-"):
            return None
        if args[0] in PROJECT_OPTIONS:
            project = args[1]
        else:
            host = args[1]
        args = args[2:]
    return project, host, args


def run(argv: Sequence[str]) -> int | None:
    """Serve argv if it is one of FORMS and return the exit code; else None. An error
    nobody meant ends it as on the Typer path: one line, exit 1 (`last_line_of_defence`)."""
    with last_line_of_defence():
        return _run(argv)


def _run(argv: Sequence[str]) -> int | None:
    if os.environ.get("ORCHESTRA_NO_FAST"):
        return None
    if list(argv) in dashboard.FORMS or dashboard.by_default(argv):
        given = (
            argv[1] if argv[:1] in (["-C"], ["--project"]) else os.environ.get("ORCHESTRA_PROJECT")
        )
        return dashboard.open_dashboard(
            Path(given) if given else None, all_projects=list(argv)[1:] in (["--all"], ["-a"])
        )
    roots = root_options(argv)
    if roots is None:
        return None
    project, host, argv = roots
    if argv == ["shell-hook", "--slugs"]:
        argv = ["shell-hook --slugs"]
    elif argv[:1] == ["status"] and list(argv).count("--waiting") == 1:
        argv = ["status --waiting", *(a for a in argv[1:] if a != "--waiting")]
    if not argv or argv[0] not in FORMS:
        return None
    form = FORMS[argv[0]]
    parsed = parse(form, argv[1:])
    if parsed is None:
        return None
    words, summary, as_json = parsed
    params = dict(form.params)
    if form.summary:
        params["summary"] = summary
    session = Session(Path(project) if project else None, host)
    try:
        if form.task != NO_TASK:
            own = session.task_or_own(
                words[0] if words else None, f"{argv[0]} TASK", as_json=as_json
            )
            params["task"] = own
        result = session.call(form.method, **params)
    except OrchestraError as exc:
        fail(exc, as_json=as_json)
    finally:
        session.close()
    warn_config(result)
    if as_json:
        emit_json(result if form.shape is None else form.shape(result))
    else:
        print(form.render(result))
    return 0
