"""Task commands: new, edit, show, status, start, stop, idle, complete, fail, reviewed, path,
and hook (an agent's report; served by cli/hook.py, declared here for --help)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from orchestra.cli.common import JSON, YES, errors, own_task_argument, session
from orchestra.cli.output import (
    abort,
    emit_json,
    json_text,
    printable,
    render_move,
    render_status,
    render_task,
    render_waiting,
    waiting_only,
    warn_config,
)
from orchestra.core.errors import EXIT_OK, EXIT_USAGE
from orchestra.core.jsonrpc import notification

app = typer.Typer()
session_app = typer.Typer(
    help="Record the agent session a task resumes.\n\n"
    "Example: orchestra session set fix-login 3f2a9c1e",
    no_args_is_help=True,
)

TASK = typer.Argument(..., help="The task: its id (3) or its slug (fix-login).", show_default=False)
OWN_TASK = own_task_argument()


def _editor() -> list[str]:
    import shlex

    return shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")


def _edit_file(path: Path) -> None:
    import subprocess

    try:
        code = subprocess.call([*_editor(), str(path)])
    except OSError as exc:
        abort(f"cannot run the editor {_editor()[0]!r} ({exc.strerror}); set $EDITOR", 1)
    if code != 0:
        abort(f"the editor exited with status {code}; nothing changed (your text is in {path})", 1)


@app.command()
def new(
    ctx: typer.Context,
    slug: str = typer.Argument(
        ..., help="Short name: lowercase letters, digits and '-'.", show_default=False
    ),
    message: str | None = typer.Option(
        None, "--message", "-m", help="The description (the agent's prompt)."
    ),
    title: str | None = typer.Option(None, "--title", "-t", help="A one-line title."),
    agent: str | None = typer.Option(
        None, "--agent", "-a", help="Agent profile (default: config default_agent)."
    ),
    base: str | None = typer.Option(
        None, "--base", "-b", help="Branch to start from (default: config, else current)."
    ),
    label: list[str] = typer.Option([], "--label", "-l", help="A label; repeat for more."),
    as_json: bool = JSON,
) -> None:
    """Create a task (a draft) from a description.

    The description comes from -m, else from stdin when it is piped, else from $EDITOR.

    Example: orchestra new fix-login -m "The login form loses the password on error." -l ui
    """
    s = session(ctx)
    with errors(as_json):
        s.project  # noqa: B018 - fail before asking for a description
        if message is None:
            if not sys.stdin.isatty():
                message = sys.stdin.read()
            else:
                import tempfile

                with tempfile.TemporaryDirectory(prefix="orchestra-") as tmp:
                    path = Path(tmp) / f"{slug}.md"
                    path.write_text("")
                    _edit_file(path)
                    message = path.read_text()
        if not message.strip():
            abort("the description is empty; nothing created", EXIT_USAGE, as_json=as_json)
        params: dict[str, Any] = {"slug": slug, "description": message, "labels": label}
        for key, value in (("title", title), ("agent", agent), ("base_branch", base)):
            if value is not None:
                params[key] = value
        task = s.call("task.new", **params)
    if as_json:
        emit_json(task)
    else:
        print(printable(f"created task {task['ref']} ({task['status']}): {task['file']}"))


@app.command()
def edit(ctx: typer.Context, task: str = TASK, as_json: bool = JSON) -> None:
    """Edit a task file (front matter and description) in $EDITOR.

    You edit a copy; the daemon checks it and writes it (it is the only writer of task files).
    The status cannot be edited: use start, stop, idle, complete, fail or reviewed.

    Example: orchestra edit fix-login
    """
    s = session(ctx)
    with errors(as_json):
        current = s.call("task.get", task=task)
        original = Path(current["file"]).read_text(encoding="utf-8")
        import tempfile

        fd, name = tempfile.mkstemp(prefix=f"orchestra-{current['ref']}-", suffix=".md")
        copy = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(original)
        _edit_file(copy)
        text = copy.read_text(encoding="utf-8")
        if text == original:
            copy.unlink()
            if as_json:
                emit_json(current)
            else:
                print(printable(f"task {current['ref']}: no changes"))
            return
        try:
            updated = s.call("task.update", task=task, text=text)
        except Exception:
            sys.stderr.write(f"orchestra: your edited copy is kept in {copy}\n")
            raise
        copy.unlink()
    if as_json:
        emit_json(updated)
    else:
        print(printable(f"task {updated['ref']} updated"))


@app.command()
def show(ctx: typer.Context, task: str | None = OWN_TASK, as_json: bool = JSON) -> None:
    """Show one task: its fields, branch, worktree and description.

    Example: orchestra show 3
    """
    s = session(ctx)
    with errors(as_json):
        data = s.call("task.get", task=s.task_or_own(task, "show TASK", as_json=as_json))
    warn_config(data)
    if as_json:
        emit_json(data)
    else:
        print(render_task(data))


@app.command()
def status(
    ctx: typer.Context,
    state: list[str] = typer.Option(
        [], "--status", "-s", help="Only tasks in this state; repeat for more."
    ),
    label: str | None = typer.Option(None, "--label", "-l", help="Only tasks with this label."),
    watch: bool = typer.Option(False, "--watch", "-w", help="Keep showing changes as they happen."),
    waiting: bool = typer.Option(
        False, "--waiting", help="Only tasks whose agent waits for you, longest first."
    ),
    as_json: bool = JSON,
) -> None:
    """List the project's tasks, their states and what their agents do.

    The ACTIVITY column says what each live agent does: working, idle, or `! waiting` (with
    why: a permission prompt, a question, its turn done) where you should act; --waiting
    lists only those, the one that has waited longest first. With --watch, redraw on every
    change (with --json: one JSON event per line). Broken task files are listed too, with
    the file and line to fix.

    Example: orchestra status --status running --status idle
    """
    s = session(ctx)
    params: dict[str, Any] = {}
    if state:
        params["status"] = state
    if label:
        params["label"] = label
    with errors(as_json):
        result = s.call("task.list", **params)
        warn_config(result)
        if not watch:
            if as_json:
                emit_json(waiting_only(result) if waiting else result)
            else:
                print(render_waiting(result) if waiting else render_status(result))
            return
        _watch(s, params, result, as_json, render_waiting if waiting else render_status)


def _watch(
    s: Any,
    params: dict[str, Any],
    result: dict[str, Any],
    as_json: bool,
    render: Callable[[dict[str, Any]], str],
) -> None:
    client = s.client()
    client.call("events.subscribe", {"project": str(s.project)})
    tty = sys.stdout.isatty()

    def draw(res: dict[str, Any]) -> None:
        if tty:
            sys.stdout.write("\x1b[H\x1b[2J")
        print(render(res), flush=True)

    if as_json:
        print(json_line(result), flush=True)  # one JSON value per line, like the events
    else:
        draw(result)
    with contextlib.suppress(KeyboardInterrupt):
        for note in client.notifications():
            if as_json:
                print(json_line(notification(note.method, note.params)), flush=True)
            elif note.method == "events.task_changed":
                draw(s.call("task.list", **params))
    raise typer.Exit(EXIT_OK)


def json_line(value: Any) -> str:
    return json_text(value)


def _move(ctx: typer.Context, method: str, task: str | None, as_json: bool, **params: Any) -> None:
    s = session(ctx)
    with errors(as_json):
        task = s.task_or_own(task, f"{params.get('status', 'start')} TASK", as_json=as_json)
        data = s.call(method, task=task, **params)
    if as_json:
        emit_json(data)
    else:
        print(render_move(data))


@app.command()
def start(ctx: typer.Context, task: str = TASK, as_json: bool = JSON) -> None:
    """Start a task (or queue it when max_running agents already run).

    Example: orchestra start fix-login
    """
    _move(ctx, "task.start", task, as_json)


@app.command()
def stop(ctx: typer.Context, task: str = TASK, yes: bool = YES, as_json: bool = JSON) -> None:
    """Stop a task's agent. Asks first unless -y.

    A running or idle task becomes stopped; a completed, failed or reviewed one keeps its
    state (only its agent stops); a queued one goes back to draft.

    Example: orchestra stop fix-login -y
    """
    s = session(ctx)
    with errors(as_json):
        s.confirm(f"Stop task {task}?", yes, as_json=as_json)
        data = s.call("task.stop", task=task)
    if as_json:
        emit_json(data)
    elif data.get("stopped_agent") and data["status"] != "stopped":
        print(f"stopped the agent of task {data['ref']}; the task stays {data['status']}")
    else:
        print(render_move(data))


SUMMARY = typer.Option(None, "--summary", "-m", help="A note for the task's log.")


@app.command()
def idle(
    ctx: typer.Context,
    task: str | None = OWN_TASK,
    summary: str | None = SUMMARY,
    as_json: bool = JSON,
) -> None:
    """Mark a running task idle (waiting for input).

    Example: orchestra idle fix-login
    """
    _move(ctx, "task.set_status", task, as_json, status="idle", summary=summary)


@app.command()
def complete(
    ctx: typer.Context,
    task: str | None = OWN_TASK,
    summary: str | None = SUMMARY,
    as_json: bool = JSON,
) -> None:
    """Mark a task completed (its work is ready for review).

    Example: orchestra complete fix-login -m "login keeps the password now"
    """
    _move(ctx, "task.set_status", task, as_json, status="complete", summary=summary)


@app.command()
def fail(
    ctx: typer.Context,
    task: str | None = OWN_TASK,
    summary: str | None = SUMMARY,
    as_json: bool = JSON,
) -> None:
    """Mark a task failed.

    Example: orchestra fail fix-login -m "tests cannot run without the staging DB"
    """
    _move(ctx, "task.set_status", task, as_json, status="fail", summary=summary)


@app.command()
def reviewed(
    ctx: typer.Context, task: str = TASK, summary: str | None = SUMMARY, as_json: bool = JSON
) -> None:
    """Mark a completed task reviewed (ready to merge).

    Example: orchestra reviewed fix-login
    """
    _move(ctx, "task.set_status", task, as_json, status="reviewed", summary=summary)


@app.command()
def path(ctx: typer.Context, task: str = TASK, as_json: bool = JSON) -> None:
    """Print the task's worktree path, alone, for `cd "$(orchestra path fix-login)"`.

    Example: cd "$(orchestra path 3)"
    """
    with errors(as_json):
        data = session(ctx).call("task.path", task=task)
    if as_json:
        emit_json(data)
    else:
        print(printable(data["worktree"]))


@session_app.command("set")
def session_set(
    ctx: typer.Context,
    task: str = typer.Argument(
        ...,
        metavar="[TASK] SESSION_ID",
        help="The task (its id or slug; default: inside a task, that task), then the agent's"
        " session id.",
        show_default=False,
    ),
    session_id: str | None = typer.Argument(None, hidden=True, show_default=False),
    as_json: bool = JSON,
) -> None:
    """Record the agent session id a task resumes on its next start.

    Example: orchestra session set fix-login 3f2a9c1e-8d4b-4c55-9a57-0e1f2d3c4b5a
    """
    s = session(ctx)
    own: str | None = task
    if session_id is None:  # one word: the session id, of the calling task
        own, session_id = None, task
    with errors(as_json):
        task = s.task_or_own(own, "session set TASK SESSION_ID", as_json=as_json)
        data = s.call("task.session_set", task=task, session_id=session_id)
    if as_json:
        emit_json(data)
    else:
        print(printable(f"task {data['ref']} session {data['session_id']}"))


@session_app.command("clear")
def session_clear(ctx: typer.Context, task: str = TASK, as_json: bool = JSON) -> None:
    """Forget the recorded session, so the next start begins a new one.

    Example: orchestra session clear fix-login
    """
    with errors(as_json):
        data = session(ctx).call("task.session_set", task=task, session_id=None)
    if as_json:
        emit_json(data)
    else:
        print(printable(f"task {data['ref']} has no session"))


@app.command()
def send(
    ctx: typer.Context,
    target: str = typer.Argument(
        "", help="The task (id or slug); omit with --all.", show_default=False
    ),
    text: list[str] = typer.Argument(
        None, help="What to type (words are joined by spaces).", show_default=False
    ),
    all_tasks: bool = typer.Option(False, "--all", help="Type into every running agent."),
    enter: bool = typer.Option(False, "--enter", "-e", help="Press Enter after the text."),
    timeout: float = typer.Option(
        10.0,
        "--timeout",
        min=0.1,
        max=3600,
        help="Give up on an agent that reads none of the text for this many seconds.",
    ),
    as_json: bool = JSON,
) -> None:
    """Type text into one running agent's terminal (or every one's, with --all).

    Example: orchestra send fix-login "also update the tests" --enter
    """
    s = session(ctx)
    words = list(text or [])
    if all_tasks and target:
        words.insert(0, target)
    if not words:
        abort("nothing to send: give the text to type", EXIT_USAGE, as_json=as_json)
    payload = " ".join(words) + ("\r" if enter else "")
    with errors(as_json):
        if all_tasks:
            tasks = [t for t in s.call("task.list")["tasks"] if t.get("run")]
            refs = [str(t["id"]) for t in tasks]
        elif target:
            refs = [target]
        else:
            abort("give a task, or --all", EXIT_USAGE, as_json=as_json)
        sent = {
            ref: s.call("task.send_input", task=ref, text=payload, timeout=timeout)["sent"]
            for ref in refs
        }
    if as_json:
        emit_json({"sent": sent})
    elif not sent:
        print("no running agents")
    else:
        for ref, n in sent.items():
            print(printable(f"sent {n} bytes to {ref}"))


@app.command()
def peek(
    ctx: typer.Context,
    task: str | None = OWN_TASK,
    lines: int | None = typer.Option(
        None, "--lines", "-n", min=1, max=1000, help="Only the last N lines."
    ),
    as_json: bool = JSON,
) -> None:
    """Print a running agent's screen as text (what you would see if you attached).

    Example: orchestra peek fix-login --lines 10
    """
    s = session(ctx)
    params: dict[str, Any] = {}
    if lines is not None:
        params["lines"] = lines
    with errors(as_json):
        data = s.call(
            "pty.screen", task=s.task_or_own(task, "peek TASK", as_json=as_json), **params
        )
    if as_json:
        emit_json(data)
    else:
        print(printable(data["text"], block=True))  # the screen as text: no controls expected


@app.command()
def hook(
    event: str = typer.Argument(
        ...,
        metavar="EVENT",
        help="The agent's hook event (e.g. Stop, PreToolUse; for `orchestra` hooks: working,"
        " waiting, exited).",
        show_default=False,
    ),
) -> None:
    """Report an agent's hook to the daemon, its JSON payload on stdin (for agents).

    Run by the hooks Orchestra installs for each agent (docs/agents.md), inside a task: it
    finds its run from ORCHESTRA_SOCKET, ORCHESTRA_TASK_ID and ORCHESTRA_RUN_ID. It prints
    nothing and exits 0 whatever happens (no daemon, a malformed payload, not in a task),
    within a second.

    Example: echo '{"reason": "question"}' | orchestra hook waiting
    """
    from orchestra.cli.hook import run

    raise typer.Exit(run([event]))
