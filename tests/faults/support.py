"""Helpers for the fault tests: daemon vitals from /proc, task-file snapshots, a ping probe.

The probe is the responsiveness check every pathology shares: a thread with its
own connection sends `daemon.ping` over and over while a test abuses the daemon,
and records each round trip.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.conftest import Env
from tests.daemon.wire import Raw, wait_until
from tests.e2e.support import PROC


def connect(sock: socket.socket, path: Path, timeout: float = 10.0) -> None:
    """Connect a Unix socket, waiting while the daemon's listen queue is full (a
    non-blocking connect fails with EAGAIN then, where a blocking one would wait)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock.connect(os.fspath(path))
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.002)


class Patient(Raw):
    """A raw connection that waits for room in the daemon's listen queue."""

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            connect(self.sock, path, timeout)
        except BaseException:
            self.sock.close()
            raise
        self.buffer = b""
        self._next_id = 0


def daemon_pid(env: Env) -> int:
    pid = env.daemon_pid()
    assert pid is not None, "no daemon pid in the lock file"
    return pid


def rss(pid: int) -> int:
    """Resident memory of `pid`, in bytes (VmRSS)."""
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def fd_count(pid: int) -> int:
    return len(list((PROC / str(pid) / "fd").iterdir()))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `.orchestra/tasks/` plus the id counter, as bytes."""
    dot = root / ".orchestra"
    files = {str(p.relative_to(dot)): p.read_bytes() for p in (dot / "tasks").rglob("*")}
    counter = dot / "next_id"
    if counter.exists():
        files["next_id"] = counter.read_bytes()
    return files


class PingProbe:
    """A thread pinging the daemon on its own connection until stopped; records round trips.

    `pause` is the gap between pings (a client polling, not a benchmark loop).
    """

    def __init__(self, env: Env, *, pause: float = 0.005) -> None:
        self.env = env
        self.pause = pause
        self.rtts: list[float] = []
        self.times: list[float] = []  # when each ping was sent (time.monotonic())
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PingProbe:
        self._thread.start()
        wait_until(lambda: len(self.rtts) >= 3 or self.errors, "the first pings")
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the ping probe is stuck"

    def _run(self) -> None:
        try:
            with Patient(self.env.socket, timeout=5) as c:
                while not self._stop.is_set():
                    sent = time.monotonic()
                    start = time.perf_counter()
                    c.ping()
                    self.rtts.append(time.perf_counter() - start)
                    self.times.append(sent)
                    time.sleep(self.pause)
        except BaseException as exc:  # reported by check()
            self.errors.append(exc)

    def mark(self) -> int:
        """An index into the recorded pings: `stats(since=mark)` covers what came after."""
        return len(self.rtts)

    def stats(self, since: int = 0) -> dict[str, Any]:
        assert not self.errors, f"the ping probe failed: {self.errors[0]!r}"
        rtts = self.rtts[since:]
        assert len(rtts) >= 5, f"only {len(rtts)} pings answered"
        return {
            "pings": len(rtts),
            "median_ms": round(statistics.median(rtts) * 1000, 2),
            "p99_ms": round(sorted(rtts)[int(len(rtts) * 0.99) - 1] * 1000, 2),
            "max_ms": round(max(rtts) * 1000, 2),
        }

    def check(self, what: str, *, since: int = 0, median: float = 50.0, worst: float = 250.0):
        """Assert the pings stayed fast (milliseconds); print and return the figures."""
        figures = self.stats(since)
        print(f"\nping while {what}: {figures}")
        assert figures["median_ms"] < median, (what, figures)
        assert figures["max_ms"] < worst, (what, figures)
        return figures
