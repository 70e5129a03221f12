"""Helpers for end-to-end daemon tests: a raw NDJSON socket, bounded waits, process checks.

The raw client speaks bytes, not the project's Client, so tests can send what a
well-behaved client never would (garbage, half lines, batches) and see exactly
what comes back, line by line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tests.conftest import Env

T = TypeVar("T")

TIMEOUT = 10.0  # seconds any single wait may take before the test fails


class Raw:
    """One raw connection to the daemon's socket; every read is bounded by `timeout`."""

    def __init__(self, path: Path, *, timeout: float = TIMEOUT) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(os.fspath(path))
        self.buffer = b""
        self._next_id = 0

    def __enter__(self) -> Raw:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_json(self, message: Any) -> None:
        self.send(json.dumps(message).encode() + b"\n")

    def line(self) -> bytes:
        """The next line the daemon sends (without its newline); b"" once it hangs up."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self.buffer = self.buffer, b""
                return rest
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def recv(self) -> Any:
        """The next JSON value the daemon sends."""
        line = self.line()
        assert line, "the daemon closed the connection instead of answering"
        return json.loads(line)

    def request(self, method: str, params: Any = None) -> dict[str, Any]:
        """Send one call and return the whole reply envelope (result or error)."""
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": self._next_id}
        if params is not None:
            message["params"] = params
        self.send_json(message)
        while True:
            reply = self.recv()
            if "method" not in reply:  # skip event notifications
                assert reply["id"] == self._next_id, reply
                return dict(reply)

    def ping(self) -> None:
        """A round trip that proves this connection (and the daemon) still serve."""
        reply = self.request("daemon.ping")
        assert reply == {"jsonrpc": "2.0", "result": {"pong": True}, "id": reply["id"]}


def wait_until(
    check: Callable[[], T | None], what: Callable[[], str] | str, timeout: float = TIMEOUT
) -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds with
    `what` (a callable is asked only then: it can show the state as it was)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            told = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {told}")
        time.sleep(0.01)


def alive(pid: int) -> bool:
    """Whether `pid` is still a live process, or still holds its files.

    A zombie awaiting its reaper counts as gone, but only once its other threads
    have exited too: until then they still hold the process's sockets open.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return not Path("/proc/self").exists()  # no procfs (macOS): signal 0 got through
    return state not in ("Z", "X") or len(threads) > 1


def log_lines(project: Path) -> list[dict[str, Any]]:
    """Every line of the project's `.orchestra/logs.jsonl`, parsed."""
    path = project / ".orchestra" / "logs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stop_and_forget(env: Env) -> None:
    """Stop `env`'s daemon, wait until it has exited, then drop its stale lock file.

    The shared `env` teardown signals the pid in the lock file and waits until
    `kill(pid, 0)` fails, which for a daemon orphaned to init lasts until init
    reaps the zombie (about two seconds on some machines). Doing it here, with
    zombies counted as gone, keeps each test fast.
    """
    lock = env.socket.with_name(env.socket.name + ".lock")
    pid = env.daemon_pid()
    if pid is not None and alive(pid) and _is_orchestra(pid):
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not alive(pid), f"daemon {pid} to exit after SIGTERM")
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            raise
    lock.unlink(missing_ok=True)


def _is_orchestra(pid: int) -> bool:
    try:
        return b"orchestra" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no procfs: trust the lock file
