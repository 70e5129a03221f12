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
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from orchestra.adapters import paths
from orchestra.core.errors import DaemonUnreachable, RemoteError

GIT_LOCATION_VARS = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_COMMON_DIR",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_PREFIX",
        "GIT_NAMESPACE",
    }
)
CONNECT_ERRORS = (FileNotFoundError, ConnectionRefusedError, ConnectionResetError)


class Client:
    def __init__(self, path: Path, *, timeout: float | None = 60.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: _socket.socket | None = None
        self._file: Any = None
        self._next_id = 0

    def connect(self) -> Client:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            _connect(sock, os.fspath(self.path), self.timeout)
        except (TimeoutError, *CONNECT_ERRORS, PermissionError) as exc:
            sock.close()
            raise DaemonUnreachable(
                f"the daemon is not answering on {self.path} ({exc.strerror or exc})",
                socket=str(self.path),
            ) from None
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


def spawn_daemon(path: Path, log_dir: Path, *, timeout: float = 10.0) -> int:
    """Start `orchestra daemon run` detached and wait until the socket answers; return its pid."""
    import subprocess

    log_dir.mkdir(parents=True, exist_ok=True)
    out_path = log_dir / "daemon.out"
    # Started from a git hook, we would inherit variables that point every git command the
    # daemon (and its agents) run at the hook's repository: drop them.
    env = {k: v for k, v in os.environ.items() if k not in GIT_LOCATION_VARS}
    env["ORCHESTRA_SOCKET"] = os.fspath(path)
    with out_path.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestra", "daemon", "run"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # outlive this terminal and its signals
            close_fds=True,
            env=env,
        )
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
    """A connected client, starting the daemon first when it is not running and allowed to."""
    client = Client(path)
    try:
        return client.connect()
    except DaemonUnreachable:
        if not autostart:
            raise DaemonUnreachable(
                f"the daemon is not running on {path} (autostart is off):"
                " run `orchestra daemon start`",
                socket=str(path),
            ) from None
    spawn_daemon(path, log_dir)
    return client.connect()
