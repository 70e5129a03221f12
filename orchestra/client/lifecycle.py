"""The daemon's life as a client sees it: is it running, start it, stop it, autostart.

A started daemon runs `python -m orchestra daemon run` detached, in / with a clean
environment (`daemon_environ`); the client polls its socket until it answers.
Stdlib only, and subprocess only when a daemon is started.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from orchestra.adapters import paths
from orchestra.client.connection import Client
from orchestra.core.errors import DaemonUnreachable, RemoteError

RUN_ID_VAR = "ORCHESTRA_RUN_ID"  # adapters.procs.RUN_ID_VAR (that module imports trio)

# What a started daemon keeps of the starter's environment; its agents inherit it. Who the
# user is, where their files, settings and ssh agent are, how this Python finds orchestra,
# and the daemon's own settings. Everything else stays behind: a one-off variable, a git
# hook's GIT_DIR, a task's ORCHESTRA_* and its run marker (the supervisor would take the
# daemon for that run's leftover). Agents' own variables go in their profile's `env`.
DAEMON_ENV = frozenset(
    {
        *("HOME", "USER", "LOGNAME", "PATH", "SHELL", "TMPDIR", "TZ", "LANG", "LANGUAGE"),
        "SSH_AUTH_SOCK",  # agents push and fetch over ssh
        "PYTHONPATH",
        *("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"),
        *("GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM"),
        *("ORCHESTRA_LOG", "ORCHESTRA_DETACH_KEYS"),  # config_files.ENV_KEYS but the socket
        "ORCHESTRA_PURE_PYTHON_RELAY",  # daemon.forward.NO_NATIVE_ENV
        "ORCHESTRA_NO_CGROUPS",  # adapters.cgroups.NO_CGROUPS_ENV
        "ORCHESTRA_CRASH_AT",  # adapters.faults, for the fault tests
    }
)
DAEMON_ENV_PREFIXES = ("LC_", "XDG_")


def inside_agent(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether we run inside a task: the daemon marks every agent's process tree, and an
    MCP client that passes on only some variables (Codex, Gemini) passes the task's id."""
    return RUN_ID_VAR in environ or "ORCHESTRA_TASK_ID" in environ


def refuse_autostart(path: Path, autostart: bool) -> None:
    """Raise DaemonUnreachable unless a daemon may be started here for `path`: autostart is
    on, and we are not inside an agent (its environment and cwd are no daemon's to have)."""
    if inside_agent():
        raise DaemonUnreachable(
            f"the daemon on {path} is gone, and a task's agent does not start one:"
            " ask the user to run `orchestra daemon start`",
            socket=str(path),
        )
    if not autostart:
        raise DaemonUnreachable(
            f"the daemon is not running on {path} (autostart is off): run `orchestra daemon start`",
            socket=str(path),
        )


def is_running(path: Path) -> bool:
    try:
        with Client(path, timeout=5.0) as c:
            c.call("daemon.ping")
        return True
    except (DaemonUnreachable, RemoteError):
        return False


def lock_held(path: Path) -> bool:
    """Whether a daemon still holds the one-per-user lock beside the socket `path`: it lets
    go only as its process ends, after it has removed the socket. (Probed with a shared
    lock, let go at once: a daemon starting in that instant would find it taken.)"""
    try:
        fd = os.open(paths.lock_file(path), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and the probe's lock with it
    return False


def daemon_environ(socket: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment a started daemon gets: DAEMON_ENV out of `environ`, and its socket."""
    env = {k: v for k, v in environ.items() if k in DAEMON_ENV or k.startswith(DAEMON_ENV_PREFIXES)}
    env["ORCHESTRA_SOCKET"] = str(socket.absolute())  # it runs in /
    return env


def open_private_log(path: Path) -> int:
    """Open the log `path` for appending, 0600 (tightened if an older one was wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, 0o600)
    return fd


def spawn_daemon(path: Path, log_dir: Path, *, timeout: float = 10.0) -> int:
    """Start `orchestra daemon run` detached, in / with a clean environment (daemon_environ),
    and wait until the socket answers; return its pid."""
    import subprocess

    out_path = log_dir / "daemon.out"
    try:
        paths.private_dir(log_dir)
        out = open_private_log(out_path)
    except OSError as exc:
        raise DaemonUnreachable(
            f"cannot start the daemon: {exc.strerror or exc} ({out_path})", socket=str(path)
        ) from None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestra", "daemon", "run"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # outlive this terminal and its signals
            close_fds=True,
            env=daemon_environ(path),
            cwd="/",  # not the caller's checkout, which it would keep busy
        )
    finally:
        os.close(out)
    deadline = time.monotonic() + timeout
    delay = 0.002
    while time.monotonic() < deadline:
        if is_running(path):
            return proc.pid
        code = proc.poll()
        if code is not None:
            if is_running(path):  # another start won the race: that daemon serves us
                return proc.pid
            tail = out_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise DaemonUnreachable(
                f"the daemon failed to start (exit {code}): {tail[0]}", socket=str(path)
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    raise DaemonUnreachable(
        f"the daemon did not answer on {path} within {timeout:.0f} s", socket=str(path)
    )


def connect(path: Path, *, autostart: bool, log_dir: Path) -> Client:
    """A connected client, starting the daemon first when it is not running and allowed to
    (refuse_autostart). An untrusted socket is refused, never started over."""
    client = Client(path)
    try:
        return client.connect()
    except DaemonUnreachable:
        refuse_autostart(path, autostart)
    spawn_daemon(path, log_dir)
    return client.connect()


def status(path: Path) -> dict[str, object]:
    """`daemon.status` of the daemon on `path` (DaemonUnreachable when none answers)."""
    with Client(path, timeout=10.0) as c:
        result: dict[str, object] = c.call("daemon.status")
    return result


def start(path: Path, log_dir: Path) -> tuple[dict[str, object], bool]:
    """The status of the daemon on `path`, started first if none runs; and whether it was."""
    if is_running(path):
        return status(path), False
    spawn_daemon(path, log_dir)
    return status(path), True


def stop(path: Path, *, timeout: float = 60.0) -> int | None:
    """Ask the daemon on `path` to stop and wait until it is gone: its pid, or None when
    none was running. Gone means the socket no longer answers, the lock beside it is let go
    (a start right after succeeds) and its process has ended."""
    try:
        with Client(path, timeout=10.0) as c:
            pid: int = c.call("daemon.shutdown")["pid"]
    except DaemonUnreachable:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not path.exists() and not is_running(path) and not lock_held(path) and not _alive(pid):
            return pid
        time.sleep(0.01)
    raise DaemonUnreachable(f"the daemon (pid {pid}) did not stop within {timeout:.0f} s")


def _alive(pid: int) -> bool:
    """Running or stopped; a zombie counts as gone (it only waits to be reaped)."""
    if Path("/proc/self/stat").exists():
        try:
            state = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[:1]
        except FileNotFoundError:
            return False
        return state not in ([b"Z"], [b"X"])
    try:  # no /proc (macOS)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
