"""`orchestra attach` on a bare PTY of its own: every byte it writes to the terminal is
kept, so a test can tell that a refused attach wrote none, and what size it attached at.

The client's stdin and stdout are the PTY (its controlling terminal), its stderr a pipe:
the one-line error goes there, and the terminal's bytes are the client's alone. Nothing
answers the client's terminal queries: it waits its half second for them, as under a
terminal that ignores them.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.attach.harness import TIMEOUT
from tests.conftest import Env
from tests.daemon.wire import wait_until
from tests.e2e.support import Api

pytestmark = pytest.mark.shared_daemon

DETACH = b"\x11"  # ctrl-q, the default detach keys


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _controlling_terminal() -> None:
    """(In the child.) A session of its own, with stdin's PTY as its terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Bare:
    """`orchestra ARGS` with a PTY of `size` as its terminal; `out` is all it wrote there."""

    def __init__(
        self,
        env: Env,
        *args: str,
        cwd: Path,
        size: tuple[int, int],
        extra: dict[str, str] | None = None,
    ) -> None:
        self.master, slave = os.openpty()
        set_size(slave, *size)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "orchestra", *args],
                cwd=cwd,
                env={**env.vars, **(extra or {})},
                stdin=slave,
                stdout=slave,
                stderr=subprocess.PIPE,
                preexec_fn=_controlling_terminal,
            )
        finally:
            os.close(slave)
        self.out = b""

    def read(self, timeout: float) -> None:
        """Take what the terminal was sent, waiting at most `timeout` for some."""
        if select.select([self.master], [], [], timeout)[0]:
            try:
                self.out += os.read(self.master, 65536)
            except OSError:  # EIO: every end of the terminal's other side is closed
                time.sleep(min(timeout, 0.01))

    def wait(self) -> tuple[int, str]:
        """Its exit status and stderr, once it exited (the terminal read meanwhile)."""
        deadline = time.monotonic() + TIMEOUT
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"still running; the terminal got {self.out!r}"
            self.read(0.05)
        self.read(0)  # what it wrote just before it exited
        assert self.proc.stderr is not None
        err = self.proc.stderr.read().decode()
        os.close(self.master)
        return self.proc.returncode, err


@pytest.fixture
def api(daemon: Env, project: Path) -> Iterator[Api]:
    calls = Api(daemon, project)
    try:
        yield calls
    finally:
        calls.close()


def running(api: Api, slug: str) -> str:
    """A task whose (sleeper) agent is up."""
    api.new(slug)
    api("task.start", task=slug)
    wait_until(
        lambda: "sleeper ready" in api("pty.screen", task=slug)["text"],
        f"{slug}'s agent to be ready",
        TIMEOUT,
    )
    return slug


def draft(api: Api, slug: str) -> str:
    api.new(slug)
    return slug


def stopped(api: Api, slug: str) -> str:
    running(api, slug)
    api("task.stop", task=slug)
    api.wait_status(slug, "stopped")
    return slug


def unknown(_api: Api, slug: str) -> str:
    return slug


@pytest.mark.parametrize("make", [unknown, draft, stopped], ids=lambda f: f.__name__)
@pytest.mark.parametrize("relay", [False, True], ids=["handover", "relay"])
def test_refused_attach_writes_nothing_and_exits_like_peek(
    api: Api, make: Callable[[Api, str], str], relay: bool
) -> None:
    """A task that cannot be attached (none by that name, never started, stopped) is
    refused before the client touches the terminal (no query, no mode, no byte), with
    `peek`'s one line and exit code."""
    task = make(api, "alpha")
    peek = api.cli("peek", task)
    assert peek.returncode in (3, 4), peek
    extra = {"ORCHESTRA_ATTACH_RELAY": "1"} if relay else {}
    client = Bare(api.env, "attach", task, cwd=api.root, size=(80, 24), extra=extra)
    code, err = client.wait()
    assert client.out == b""
    assert (code, err) == (peek.returncode, peek.stderr)


def attach_at(api: Api, task: str, size: tuple[int, int], *, relay: bool) -> tuple[int, int]:
    """Attach to `task` on a terminal of `size`; the agent's PTY size while attached (the
    client then detached with exit 0)."""
    extra = {"ORCHESTRA_ATTACH_RELAY": "1"} if relay else {}
    client = Bare(api.env, "attach", task, cwd=api.root, size=size, extra=extra)

    def attached() -> bool:
        client.read(0.01)
        return client.proc.poll() is not None or api("pty.screen", task=task)["viewers"] == 1

    wait_until(attached, lambda: f"an attach; the terminal got {client.out!r}", TIMEOUT)
    screen = api("pty.screen", task=task)
    os.write(client.master, DETACH)
    code, err = client.wait()
    assert code == 0, err
    return screen["cols"], screen["rows"]


SIZES = [
    ((0, 0), (80, 24)),  # a terminal that does not know its size: script(1), a serial line
    ((0, 30), (80, 30)),
    ((120, 0), (120, 24)),
    ((1, 1), (2, 2)),  # outside what the daemon takes: the nearest it does
    ((1200, 40), (1000, 40)),
]


@pytest.mark.parametrize("relay", [False, True], ids=["handover", "relay"])
def test_attach_at_a_size_the_terminal_does_not_know(api: Api, relay: bool) -> None:
    """A terminal of size 0 (either way) attaches at 80x24's width or height, as other
    terminal programs take it; one beyond the daemon's 2 to 1000 at the nearest size."""
    task = running(api, "alpha")
    for size, expected in SIZES:
        assert attach_at(api, task, size, relay=relay) == expected, size


def test_resize_to_an_unknown_size_while_attached(api: Api) -> None:
    """A terminal resized to 0x0 while attached is reported as 80x24, not as 0x0."""
    task = running(api, "alpha")
    client = Bare(api.env, "attach", task, cwd=api.root, size=(100, 40))

    def pty_size() -> tuple[int, int]:
        client.read(0.01)
        screen = api("pty.screen", task=task)
        return screen["cols"], screen["rows"]

    wait_until(lambda: pty_size() == (100, 40), "the attach at 100x40", TIMEOUT)
    set_size(client.master, 0, 0)  # SIGWINCH to the client, its terminal's foreground
    wait_until(lambda: pty_size() == (80, 24), lambda: f"80x24, not {pty_size()}", TIMEOUT)
    os.write(client.master, DETACH)
    code, err = client.wait()
    assert code == 0, err
