"""`orchestra daemon ...`: start, stop, status, restart, run, install, uninstall.

The daemon's life as the client sees it is `orchestra.client.lifecycle` (and the service
`orchestra.client.service`); only `daemon run` imports the daemon itself (lazily), to
run it in this process, in the foreground.
"""

from __future__ import annotations

from typing import Any

import typer

from orchestra.cli.common import JSON, errors, session
from orchestra.cli.output import emit_json
from orchestra.client import lifecycle
from orchestra.core.errors import DaemonUnreachable

app = typer.Typer(
    help="Manage the per-user daemon that owns every task's agent.\n\n"
    "Example: orchestra daemon status",
    no_args_is_help=True,
)


def _status(ctx: typer.Context) -> dict[str, Any]:
    return lifecycle.status(session(ctx).socket)


def _start(ctx: typer.Context) -> tuple[dict[str, Any], bool]:
    s = session(ctx)
    return lifecycle.start(s.socket, s.local.state_dir)


def _stop(ctx: typer.Context) -> int | None:
    return lifecycle.stop(session(ctx).socket)


@app.command()
def start(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Start the daemon in the background; returns once its socket answers.

    Example: orchestra daemon start
    """
    with errors(as_json):
        status, started = _start(ctx)
    if as_json:
        emit_json({**status, "started": started})
    elif started:
        print(f"daemon started: pid {status['pid']}, socket {status['socket']}")
    else:
        print(f"daemon already running: pid {status['pid']}, socket {status['socket']}")


@app.command()
def stop(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Stop the daemon gracefully (it stops its tasks' agents first).

    Example: orchestra daemon stop
    """
    with errors(as_json):
        pid = _stop(ctx)
    if as_json:
        emit_json({"stopped": pid is not None, "pid": pid})
    elif pid is None:
        print("daemon not running")
    else:
        print(f"daemon stopped (pid {pid})")


@app.command()
def status(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Show the daemon's pid, version, uptime, socket, relay loop (c or python), and task
    counts per project.

    Exits 5 when the daemon is not running (it does not start it).

    Example: orchestra daemon status --json
    """
    with errors(as_json):
        try:
            data = _status(ctx)
        except DaemonUnreachable as exc:
            raise DaemonUnreachable(
                f"the daemon is not running on {session(ctx).socket}:"
                " start it with `orchestra daemon start`",
                **exc.data,
            ) from None
    if as_json:
        emit_json(data)
        return
    print(f"pid      {data['pid']}\nversion  {data['version']}\nuptime   {data['uptime']:.0f} s")
    print(f"socket   {data['socket']}\nrelay    {data.get('relay', '?')}")
    print(f"projects {len(data['projects'])}")
    for project in data["projects"]:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(project["tasks"].items()))
        print(f"  {project['root']}: {counts or 'no tasks'}")


@app.command()
def restart(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Stop the daemon if it runs, then start it again.

    Example: orchestra daemon restart
    """
    with errors(as_json):
        _stop(ctx)
        status, _ = _start(ctx)
    if as_json:
        emit_json(status)
    else:
        print(f"daemon restarted: pid {status['pid']}, socket {status['socket']}")


@app.command()
def run() -> None:
    """Run the daemon in the foreground (for systemd, launchd or a terminal); Ctrl-C stops it.

    Example: orchestra daemon run
    """
    from orchestra.daemon.main import run as run_daemon

    raise typer.Exit(run_daemon())


@app.command()
def install(
    ctx: typer.Context,
    no_start: bool = typer.Option(False, "--no-start", help="Only write the service file."),
    as_json: bool = JSON,
) -> None:
    """Run the daemon as a user service: a systemd user unit (Linux) or a launchd agent (macOS).

    Writes the file, enables and starts it (unless --no-start), and prints what it did.
    A daemon already running outside the service is stopped first so the service owns it.
    It first checks that the user's service manager answers (systemctl --user needs a user
    bus); if enabling fails all the same, the file is put back as it was and the daemon it
    stopped is started again: a failed install changes nothing.

    Example: orchestra daemon install
    """
    from orchestra.client import service

    s = session(ctx)
    with errors(as_json):
        done = service.install(s.socket, s.local.state_dir, start=not no_start)
    if as_json:
        emit_json(done)
    else:
        print("\n".join(done["done"]))


@app.command()
def uninstall(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Undo `daemon install`: stop and disable the service, remove its file.

    Example: orchestra daemon uninstall
    """
    from orchestra.client import service

    with errors(as_json):
        done = service.uninstall()
    if as_json:
        emit_json(done)
    else:
        print("\n".join(done["done"]) if done["done"] else "nothing was installed")
