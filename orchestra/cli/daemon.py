"""`orchestra daemon ...`: start, stop, status, restart, run, install, uninstall.

The daemon's life as the client sees it is `orchestra.client.lifecycle` (and the service
`orchestra.client.service`); only `daemon run` imports the daemon itself (lazily), to
run it in this process, in the foreground.
"""

from __future__ import annotations

from typing import Any

import typer

from orchestra.cli.common import JSON, Session, errors, session
from orchestra.cli.output import abort, emit_json
from orchestra.client import lifecycle
from orchestra.core.errors import EXIT_USAGE, DaemonUnreachable

app = typer.Typer(
    help="Manage the per-user daemon that owns every task's agent.\n\n"
    "Example: orchestra daemon status",
    no_args_is_help=True,
)


# On another host (--host) the daemon is reached through its bridge (docs/remote.md):
# `status` asks a bridge that starts nothing, `start` one that starts it, `stop` asks it to
# shut down. Running it in the foreground or as a service is done on that host itself.


def _status(ctx: typer.Context) -> dict[str, Any]:
    s = session(ctx)
    if s.local.target is not None:
        result: dict[str, Any] = s.client(start=False).call("daemon.status")
        return result
    return lifecycle.status(s.socket)


def _start(ctx: typer.Context) -> tuple[dict[str, Any], bool]:
    s = session(ctx)
    if s.local.target is not None:
        before = _remote_pid(s)
        status: dict[str, Any] = s.client().call("daemon.status")
        return status, status["pid"] != before
    return lifecycle.start(s.socket, s.local.state_dir)


def _stop(ctx: typer.Context) -> int | None:
    s = session(ctx)
    if s.local.target is not None:
        pid = _remote_pid(s)
        if pid is not None:
            s.client(start=False).call("daemon.shutdown")
            s.close()  # the next call, if any (restart), is a new connection
        return pid
    return lifecycle.stop(s.socket)


def _remote_pid(s: Session) -> int | None:
    """The pid of the daemon on the session's host, None when it is not running there."""
    try:
        with s.local.connect(start=False) as client:
            pid: int = client.call("daemon.status")["pid"]
    except DaemonUnreachable as exc:
        if type(exc) is DaemonUnreachable:  # the host answered: no daemon there
            return None
        raise
    return pid


def _here_only(ctx: typer.Context, what: str) -> None:
    """Refuse --host (or ORCHESTRA_HOST) for what runs on the host itself; a default host
    from the config does not count: these commands are about this machine's daemon."""
    local = session(ctx).local
    t = local.target if local.host_named else None
    if t is not None:
        abort(
            f"`orchestra daemon {what}` runs on the host itself: ssh {t.destination}"
            f" orchestra daemon {what}",
            EXIT_USAGE,
        )


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
            if type(exc) is not DaemonUnreachable:
                raise  # the host itself could not be reached: that is the news
            t = session(ctx).local.target
            where = session(ctx).socket if t is None else t.name
            raise DaemonUnreachable(
                f"the daemon is not running on {where}: start it with `orchestra"
                + (f" --host {t.name}" if t is not None else "")
                + " daemon start`",
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
def run(ctx: typer.Context) -> None:
    """Run the daemon in the foreground (for systemd, launchd or a terminal); Ctrl-C stops it.

    Example: orchestra daemon run
    """
    from orchestra.daemon.main import run as run_daemon

    _here_only(ctx, "run")
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

    _here_only(ctx, "install")
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

    _here_only(ctx, "uninstall")
    with errors(as_json):
        done = service.uninstall()
    if as_json:
        emit_json(done)
    else:
        print("\n".join(done["done"]) if done["done"] else "nothing was installed")
