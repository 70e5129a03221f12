"""`pty.attach` on the wire, as a script speaks it: framed, or with a terminal handed over.

A real daemon and agent; the "person's terminal" of the handover tests is a PTY pair made
here (the test plays the terminal emulator on its master side).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import socket
import stat
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestra.adapters import paths
from orchestra.core import frames
from orchestra.daemon import forward
from tests.conftest import Env
from tests.daemon.wire import TIMEOUT, Raw, alive, wait_until
from tests.e2e.support import Api, add_agent, fds

# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = pytest.mark.shared_daemon

# Echoes each line it reads (the PTY's own echo shows the typing too).
ECHO = """
import sys
print("echo ready", flush=True)
for line in sys.stdin:
    print("got", line.strip(), flush=True)
"""


@pytest.fixture(
    params=["c", pytest.param("python", marks=pytest.mark.own_daemon)],
)
def inner_loop(request: pytest.FixtureRequest, env: Env) -> str:
    """The relay's inner loop the daemon runs (daemon/forward.py): the C one, or its
    Python twin (a daemon of its own, started with ORCHESTRA_PURE_PYTHON_RELAY). Ask for
    it before the daemon is started (first among a test's arguments)."""
    if request.param == "c" and not forward.HAVE_NATIVE:
        pytest.skip("the C forwarder is not built here")
    if request.param == "python":
        env.vars[forward.NO_NATIVE_ENV] = "1"
    return str(request.param)


def check_loop(api: Api, inner_loop: str) -> None:
    with api.env.client() as client:
        assert client.call("daemon.status")["relay"] == inner_loop


@pytest.fixture
def echo(api: Api) -> Api:
    add_agent(api.env, api.root, "echo", ECHO)
    api.new("alpha", agent="echo")
    api("task.start", task="alpha")
    api.wait_output("alpha", "echo ready")
    return api


def attach(raw: Raw, api: Api, **params: Any) -> dict[str, Any]:
    reply = raw.request("pty.attach", {"project": str(api.root), "task": "alpha", **params})
    return reply


class Frames:
    """Frames read off an attached connection."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.decoder = frames.Decoder()
        self.got: list[tuple[bytes, bytes]] = self.decoder.feed(raw.buffer)
        raw.buffer = b""

    def until(self, kind: bytes, text: bytes = b"") -> bytes:
        """Read until a frame of `kind` comes, with `text` in it; for OUTPUT, until `text`
        is in the output since the call (a line may come in two frames, as the agent's
        output came in two reads). Return that payload, or that output."""
        output = b""
        while True:
            while self.got:
                k, payload = self.got.pop(0)
                if k != kind:
                    continue
                if kind == frames.OUTPUT:
                    output += payload
                    if text in output:
                        return output
                elif text in payload:
                    return payload
            chunk = self.raw.sock.recv(65536)
            assert chunk, f"the daemon hung up before a {kind!r} frame with {text!r}"
            self.got = self.decoder.feed(chunk)


class Terminal:
    """A PTY pair standing in for a person's terminal: we type and read on the master."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # as `orchestra attach` leaves it
        self.seen = b""

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_until(self, text: bytes) -> None:
        def check() -> bool:
            while select.select([self.master], [], [], 0.05)[0]:
                self.seen += os.read(self.master, 65536)
            return text in self.seen

        wait_until(check, f"{text!r} on the terminal; it shows {self.seen[-300:]!r}")

    def close(self) -> None:
        for fd in (self.master, self.slave):
            os.close(fd)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    t = Terminal()
    yield t
    t.close()


def viewers(api: Api) -> int:
    return int(api("pty.screen", task="alpha")["viewers"])


def test_framed_attach_types_shows_and_detaches(echo: Api) -> None:
    """Without a terminal to hand over, the screen, the live stream, keys and detach all
    travel as frames; detach is answered with an EXIT frame, then the connection closes."""
    with Raw(echo.env.socket) as raw:
        reply = attach(raw, echo, cols=80, rows=24)
        assert reply["result"]["attached"] is True
        assert reply["result"]["alt_screen"] is False
        stream = Frames(raw)
        stream.until(frames.OUTPUT, b"echo ready")  # the redraw
        raw.send(frames.encode(frames.INPUT, b"hello\r"))
        stream.until(frames.OUTPUT, b"got hello")
        raw.send(frames.encode(frames.DETACH))
        info = json.loads(stream.until(frames.EXIT))
        assert info == {"reason": "detached", "alt_screen": False}
        assert raw.sock.recv(1) == b""
    wait_until(lambda: viewers(echo) == 0, "the viewer to be gone")


def test_handed_over_terminal_is_read_and_written_then_let_go(
    inner_loop: str, echo: Api, terminal: Terminal
) -> None:
    """With the terminal handed over, the daemon writes the screen to it and reads the keys
    from it (the detach keys included); after detach it neither reads nor writes it, and
    keeps no fd of it."""
    daemon = echo.env.daemon_pid()
    assert daemon is not None
    before = len(fds(daemon))
    with Raw(echo.env.socket) as raw:
        reply = attach(raw, echo, cols=80, rows=24, tty=True, detach_keys="ctrl-b,d")
        assert reply["result"]["attached"] is True
        socket.send_fds(raw.sock, [b"t"], [terminal.slave])
        terminal.read_until(b"echo ready")  # the redraw, on the terminal
        terminal.type(b"hi\r")
        terminal.read_until(b"got hi")
        terminal.type(b"\x02")  # the first detach key alone: held, not typed, not detached
        terminal.type(b"d")
        stream = Frames(raw)
        info = json.loads(stream.until(frames.EXIT))
        assert info == {"reason": "detached", "alt_screen": False}
        assert raw.sock.recv(1) == b""
    wait_until(lambda: viewers(echo) == 0, "the viewer to be gone")
    wait_until(lambda: len(fds(daemon)) == before, "the daemon to close the terminal")
    terminal.type(b"after")  # nobody else reads the terminal now
    assert select.select([terminal.slave], [], [], TIMEOUT)[0]
    assert os.read(terminal.slave, 100) == b"after"
    echo("task.send_input", task="alpha", text="more\r")
    echo.wait_output("alpha", "got more")
    terminal.seen = b""
    assert not select.select([terminal.master], [], [], 0.1)[0], "output after detach"
    assert "bd" not in echo.tail("alpha") and "\x02" not in echo.tail("alpha")
    check_loop(echo, inner_loop)  # last: its connection must not be among the fds counted


def test_handover_of_something_else_is_refused(echo: Api) -> None:
    """A client that promised a terminal but passes a pipe (or nothing) is hung up on, and
    the daemon keeps no fd of it."""
    daemon = echo.env.daemon_pid()
    assert daemon is not None
    before = len(fds(daemon))
    r, w = os.pipe()
    try:
        with Raw(echo.env.socket) as raw:
            attach(raw, echo, tty=True)
            socket.send_fds(raw.sock, [b"t"], [r])
            assert raw.sock.recv(1) == b""
        with Raw(echo.env.socket) as raw:
            attach(raw, echo, tty=True)
            raw.send(b"t")  # the byte without the fd
            assert raw.sock.recv(1) == b""
    finally:
        os.close(r)
        os.close(w)
    assert viewers(echo) == 0
    wait_until(lambda: len(fds(daemon)) == before, "the daemon to close what it was passed")


def test_bad_detach_keys_are_refused(echo: Api) -> None:
    with Raw(echo.env.socket) as raw:
        reply = attach(raw, echo, tty=True, detach_keys="ctrl-")
        assert reply["error"]["code"] == -32602
        assert "detach key" in reply["error"]["message"]
        raw.ping()  # still a JSON-RPC connection


# Raw mode; waits a moment before reading, so a paste fills its terminal first; then
# reads until it has SIZE bytes and reports their count and digest.
# Prints `count` numbered lines (plain text: the relay's route writes them itself) for
# each "go <count>" it reads, then "done <total>".
NUMBERS = """
import sys
print("numbers ready", flush=True)
start = 0
for line in sys.stdin:
    count = int(line.split()[1])
    sys.stdout.write("".join(f"{i}\\n" for i in range(start, start + count)))
    start += count
    sys.stdout.write(f"done {start}\\n")
    sys.stdout.flush()
"""


def test_a_terminal_that_falls_behind_gets_every_byte_once_in_order(
    inner_loop: str, api: Api, terminal: Terminal
) -> None:
    """Output the person's terminal does not take at once (nobody reads it for a while)
    waits in the daemon, and comes in order after what the relay wrote straight; once
    caught up, the terminal is written straight again. Nothing lost, nothing twice."""
    check_loop(api, inner_loop)
    add_agent(api.env, api.root, "numbers", NUMBERS)
    api.new("alpha", agent="numbers")
    api("task.start", task="alpha")
    api.wait_output("alpha", "numbers ready")
    count = 40_000  # about 230 KB a round: far more than a terminal buffers, far less
    # than the 8 MiB after which a viewer is sent a fresh screen instead
    with Raw(api.env.socket) as raw:
        attach(raw, api, cols=80, rows=24, tty=True)
        socket.send_fds(raw.sock, [b"t"], [terminal.slave])
        terminal.read_until(b"numbers ready")
        for done in (count, 2 * count):
            terminal.seen = b""
            terminal.type(b"go %d\r" % count)
            # The agent is done before anyone reads the terminal: the rest is queued.
            api.wait_output("alpha", f"done {done}", timeout=TIMEOUT)
            terminal.read_until(b"done %d" % done)
            numbers = [int(n) for n in re.findall(rb"^(\d+)\r?$", terminal.seen, re.M)]
            assert numbers == list(range(done - count, done))


SLOW_READER = """
import hashlib, os, sys, time, tty
tty.setraw(0)
os.write(1, b"slow ready\\r\\n")
time.sleep(1.0)
size = int(sys.argv[1])
got = b""
while len(got) < size:
    got += os.read(0, 65536)
os.write(1, b"got %d %s\\r\\n" % (len(got), hashlib.sha256(got).hexdigest()[:16].encode()))
time.sleep(60)
"""


def test_paste_larger_than_the_agents_terminal_arrives_whole_and_blocks_nothing(
    inner_loop: str, api: Api, terminal: Terminal
) -> None:
    """A paste the agent does not read yet waits (the person's terminal is not read
    meanwhile) without holding up the daemon; once the agent reads, every byte arrives,
    in order."""
    check_loop(api, inner_loop)
    size = 200_000
    add_agent(api.env, api.root, "slow", SLOW_READER, args=(str(size),))
    api.new("alpha", agent="slow")
    api("task.start", task="alpha")
    paste = bytes((i * 7 + 32) % 94 + 32 for i in range(size))  # printable, no detach key
    with Raw(api.env.socket) as raw:
        attach(raw, api, cols=80, rows=24, tty=True)
        socket.send_fds(raw.sock, [b"t"], [terminal.slave])
        terminal.read_until(b"slow ready")
        writer = threading.Thread(target=terminal.type, args=(paste,))
        writer.start()
        for _ in range(5):  # the daemon answers while the paste waits
            started = time.monotonic()
            with Raw(api.env.socket) as other:
                other.ping()
            assert time.monotonic() - started < 1.0
        digest = hashlib.sha256(paste).hexdigest()[:16]
        terminal.read_until(f"got {size} {digest}".encode())
        writer.join(TIMEOUT)
        assert not writer.is_alive()


@pytest.mark.own_daemon  # stops the daemon
def test_daemon_stopping_tells_an_attached_terminal_then_exits(
    echo: Api, terminal: Terminal
) -> None:
    """`daemon.shutdown` with a terminal handed over: the client gets its last word (the
    run ended because the daemon stops), the terminal is let go, and the daemon exits."""
    pid = echo.env.daemon_pid()
    assert pid is not None
    with Raw(echo.env.socket) as raw:
        attach(raw, echo, cols=80, rows=24, tty=True)
        socket.send_fds(raw.sock, [b"t"], [terminal.slave])
        terminal.read_until(b"echo ready")
        with Raw(echo.env.socket) as other:
            assert other.request("daemon.shutdown")["result"]["stopping"] is True
        info = json.loads(Frames(raw).until(frames.EXIT))
        assert info["reason"] == "daemon stopping"
        assert raw.sock.recv(1) == b""
    wait_until(lambda: not alive(pid), f"daemon {pid} to exit")
    terminal.type(b"after")  # nobody reads the terminal now
    assert select.select([terminal.slave], [], [], TIMEOUT)[0]
    assert os.read(terminal.slave, 100) == b"after"


def test_detach_keys_work_while_the_agent_does_not_read_a_paste(
    inner_loop: str, api: Api, terminal: Terminal
) -> None:
    """Keys the agent has not read yet do not stop the daemon reading the terminal: the
    detach keys typed after a paste larger than the agent's terminal still detach."""
    check_loop(api, inner_loop)
    deaf = "import time\nprint('deaf ready', flush=True)\ntime.sleep(60)\n"  # never reads
    add_agent(api.env, api.root, "deaf", deaf)
    api.new("alpha", agent="deaf")
    api("task.start", task="alpha")
    with Raw(api.env.socket) as raw:
        attach(raw, api, cols=80, rows=24, tty=True)
        socket.send_fds(raw.sock, [b"t"], [terminal.slave])
        terminal.read_until(b"deaf ready")
        terminal.type(b"x" * 100_000 + b"\x11")  # a paste, then ctrl-q
        info = json.loads(Frames(raw).until(frames.EXIT))
        assert info["reason"] == "detached"


# Asks its terminal for its foreground and background at start, as Codex and Gemini do,
# and says the size it started at.
COLOURS = r"""
import os, re, select, time, tty
tty.setraw(0)
size = os.get_terminal_size(0)
os.write(1, b"started at %dx%d\r\n" % (size.columns, size.lines))
os.write(1, b"\x1b]10;?\x1b\\\x1b]11;?\x1b\\")
got = b""
while got.count(b"rgb:") < 2 and select.select([0], [], [], 5)[0]:
    got += os.read(0, 4096)
found = re.findall(rb"\x1b\](1[01];rgb:[0-9a-f/]+)", got)
os.write(1, b"colours " + b" ".join(found) + b" end\r\n")
time.sleep(60)
"""
DARK = "colours 10;rgb:e5e5/e5e5/e5e5 11;rgb:0000/0000/0000 end"
LIGHT = "colours 10;rgb:1010/2020/3030 11;rgb:fafa/f0f0/e0e0 end"


@pytest.mark.own_daemon  # restarts the daemon
def test_agents_start_with_the_terminal_last_seen_also_after_a_restart(
    env: Env, project: Path
) -> None:
    """An agent started before anyone attached is answered the default dark scheme and
    started at 100x30 until a client was ever seen; from then on with the colours and
    at the size the last attaching client reported, kept (0600) for agents started
    later, also by the next daemon: as a shell in the person's terminal would be."""
    env.run("daemon", "start", check=True)
    api = Api(env, project)
    add_agent(env, project, "colours", COLOURS)
    try:
        api.new("alpha", agent="colours")
        api("task.start", task="alpha")
        out = api.wait_output("alpha", " end")
        assert "started at 100x30" in out and DARK in out
        with Raw(env.socket) as raw:
            colours = {"fg": "rgb:1010/2020/3030", "bg": "#faf0e0", "palette": {"1": "#ff0000"}}
            assert attach(raw, api, cols=80, rows=24, colors=colours)["result"]["attached"]
            Frames(raw).until(frames.OUTPUT, b"colours")
            raw.send(frames.encode(frames.DETACH))
        saved = paths.state_home(env.vars) / "terminal.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert json.loads(saved.read_text())["bg"] == "#faf0e0"
        api.new("beta", agent="colours")
        api("task.start", task="beta")
        out = api.wait_output("beta", " end")
        assert "started at 80x24" in out and LIGHT in out
    finally:
        api.close()
    env.run("daemon", "stop", check=True)
    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        api.new("gamma", agent="colours")
        api("task.start", task="gamma")
        out = api.wait_output("gamma", " end")
        assert "started at 80x24" in out and LIGHT in out
    finally:
        api.close()
