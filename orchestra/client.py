"""A blocking JSON-RPC client for one-shot commands, and daemon autostart.

Stdlib only (socket, json, subprocess): a CLI call must not pay for trio,
attrs or cattrs at start-up. Scripts may use it too:

    with Client(socket_path) as c:
        c.call("task.list", {"project": "/path/to/repo"})
"""

from __future__ import annotations

import fcntl
import json
import os
import socket as _socket
import struct
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from orchestra.adapters import paths
from orchestra.core.errors import DaemonUnreachable, RemoteError, UntrustedSocket

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
        "ORCHESTRA_CRASH_AT",  # daemon.faults, for the fault tests
    }
)
DAEMON_ENV_PREFIXES = ("LC_", "XDG_")
CONNECT_ERRORS = (FileNotFoundError, ConnectionRefusedError, ConnectionResetError)


class Client:
    def __init__(self, path: Path, *, timeout: float | None = 60.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: _socket.socket | None = None
        self._file: Any = None
        self._next_id = 0

    def connect(self) -> Client:
        """Connect, if the socket's directory and the process listening are the user's own
        (UntrustedSocket otherwise, before a byte is sent)."""
        check_socket_dir(self.path)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            _connect(sock, os.fspath(self.path), self.timeout)
            check_peer(sock, self.path)
        except (TimeoutError, *CONNECT_ERRORS, PermissionError) as exc:
            sock.close()
            raise DaemonUnreachable(
                f"the daemon is not answering on {self.path} ({exc.strerror or exc})",
                socket=str(self.path),
            ) from None
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._file = sock.makefile("rb")
        return self

    @property
    def sock(self) -> _socket.socket | None:
        """The connected socket (for `pty.attach`, which leaves JSON-RPC behind)."""
        return self._sock

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def __enter__(self) -> Client:
        return self if self._sock is not None else self.connect()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its result, or raise RemoteError with its code and data."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        self._next_id += 1
        request_id = self._next_id
        message = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            message["params"] = dict(params)
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
            while True:
                reply = self._read()
                if reply.get("id") == request_id and "method" not in reply:
                    break  # notifications (events) may arrive before our reply
        except (OSError, ValueError) as exc:
            raise DaemonUnreachable(
                f"the daemon closed the connection on {self.path} ({exc})", socket=str(self.path)
            ) from None
        if "error" in reply:
            err = reply["error"]
            raise RemoteError(err.get("code", -32603), err.get("message", "error"), err.get("data"))
        return reply.get("result")

    def _read(self) -> dict[str, Any]:
        line = self._file.readline()
        if not line:
            raise ConnectionResetError("connection closed by the daemon")
        value = json.loads(line)
        if not isinstance(value, dict):
            raise ValueError("unexpected reply")
        return value

    def notifications(self) -> Iterator[dict[str, Any]]:
        """Yield notifications (after `events.subscribe`) until the daemon goes away."""
        assert self._sock is not None
        self._sock.settimeout(None)
        while True:
            try:
                message = self._read()
            except (OSError, ValueError):
                return
            if "method" in message:
                yield message


def _connect(sock: _socket.socket, path: str, timeout: float | None) -> None:
    """Connect, waiting (up to `timeout`) while the daemon's listen queue is full.

    With a timeout the socket is non-blocking, and a Unix socket's connect then fails
    with EAGAIN when the queue is full (a burst of clients) instead of waiting.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if deadline is not None and time.monotonic() + delay > deadline:
                raise TimeoutError("its connection queue stayed full") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def check_socket_dir(path: Path) -> None:
    """Refuse a socket whose directory is not a private one of ours: whoever can write
    there can put their own listener in the daemon's place. No directory yet is fine
    (the daemon makes it, 0700, and refuses one someone else made meanwhile)."""
    where = path.parent
    try:
        problem = paths.foreign(where)
        wide = 0 if problem else paths.open_to_others(where)
    except FileNotFoundError:
        return
    if problem is None and wide:
        problem = (
            f"{where} is open to other users (mode {0o700 | wide:04o}): run `chmod 700 {where}`"
            " if it is a directory of yours for the socket alone, or set ORCHESTRA_SOCKET to a"
            " path in one"
        )
    elif problem is not None:
        problem += ": remove it, or set ORCHESTRA_SOCKET to a path in a directory of your own"
    if problem is not None:
        raise UntrustedSocket(
            f"refusing the daemon socket {path}, nothing was sent: {problem}", socket=str(path)
        )


def peer_uid(sock: _socket.socket) -> int:
    """The uid of the process that listens on the other end of the connected `sock`."""
    if hasattr(_socket, "SO_PEERCRED"):  # Linux: struct ucred {pid, uid, gid}
        raw = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("iII"))
        return int(struct.unpack("iII", raw)[1])
    if sys.platform == "darwin" or "bsd" in sys.platform:
        # getsockopt(SOL_LOCAL=0, LOCAL_PEERCRED=1): struct xucred {version, uid, ngroups,
        # groups[16]}, what getpeereid(3) reads (Python has no getpeereid).
        raw = sock.getsockopt(0, getattr(_socket, "LOCAL_PEERCRED", 1), struct.calcsize("IIh16I"))
        return int(struct.unpack_from("II", raw)[1])
    raise OSError(f"no way to ask who listens on a Unix socket on {sys.platform}")


def check_peer(sock: _socket.socket, path: Path) -> None:
    """Refuse a connection whose listener runs as another user: it would read the prompts
    we send, and `attach` would hand it the terminal."""
    try:
        uid = peer_uid(sock)
    except OSError as exc:
        raise UntrustedSocket(
            f"refusing the daemon socket {path}, nothing was sent: cannot tell who listens"
            f" on it ({exc.strerror or exc})",
            socket=str(path),
        ) from None
    if uid != os.geteuid():
        raise UntrustedSocket(
            f"refusing the daemon socket {path}, nothing was sent: the process listening on it"
            f" runs as uid {uid}, not as you (uid {os.geteuid()}); stop it, or set"
            " ORCHESTRA_SOCKET to a path in a directory of your own",
            socket=str(path),
        )


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
