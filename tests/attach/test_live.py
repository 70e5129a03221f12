"""Live attach in a real terminal: tmux panes run `orchestra attach` and the same programs
directly, and their screens, cursors, sizes and terminal modes are compared.

The agents are real programs started by the daemon (the demo agent, vim, htop) and small
test agents written here, each doing one thing a TUI does: turning modes on, reporting its
size, asking the terminal questions. A wrapper shell script runs `orchestra attach` in its
pane and records `stty -g` before and after each attach, so the test can compare the
terminal's state with what it was.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from orchestra.adapters.terminal import available_engines
from tests.attach.harness import (
    TIMEOUT,
    Pane,
    Tmux,
    orchestra,
    require,
    same_screen,
)
from tests.conftest import Env
from tests.daemon.wire import stop_and_forget, wait_until
from tests.e2e.support import Api, add_agent, configure, toml

# A daemon of its own for each test: the daemon starts agents at the size of the last
# interactive client it saw (adapters/seen_terminal.py), and these tests attach at many
# sizes and expect an agent to start at PANE.

PANE = (100, 30)  # the size the daemon gives a PTY before anyone attaches
SHA = re.compile(r"(?<=committed )[0-9a-f]{7,}")  # commit ids differ between checkouts
HTOP_NUMBERS = re.compile(r"\d[\d.:]*[KMGT]?")  # numbers and meter bars change, labels do not

# Leaves some history, then runs `orchestra attach ...` each time a line is entered,
# recording the terminal's settings before and after; the line itself is saved (a paste
# shows its markers).
WRAPPER = """\
dir=$1; shift
n=0
while [ "$n" -lt 40 ]; do n=$((n + 1)); echo "shell history $n"; done
n=0
while :; do
  stty -g > "$dir/stty.$n"
  printf '[wrapper %s]\\n' "$n"
  IFS= read -r line || exit 0
  printf '%s\\n' "$line" > "$dir/line" && mv "$dir/line" "$dir/line.$n"
  "$@"
  printf '[attach exited %s]\\n' "$?"
  n=$((n + 1))
done
"""

# Turns on everything a TUI turns on, then echoes what it reads (raw mode) but focus events.
MODES_AGENT = r"""
import os, sys, tty
tty.setraw(0)
out = sys.stdout
out.write("\x1b]2;modes agent\x07\x1b]10;rgb:12/34/56\x1b\\\x1b]11;rgb:ab/cd/ef\x1b\\")
out.write("\x1b[?1049h\x1b[H\x1b[2J\x1b[1;33;44mmodes agent ready\x1b[0m\r\n")
out.write("\x1b(0lqqk\x1b(B line drawing\r\n")
out.write("\x1b[?1000h\x1b[?1002h\x1b[?1003h\x1b[?1005h\x1b[?1006h")  # mouse
out.write("\x1b[?2004h\x1b[?1004h\x1b[?25l\x1b[5 q")  # paste, focus, cursor hidden, bar
out.write("\x1b[?1h\x1b=\x1b[4h\x1b[?7l\x1b[4;20r\x1b[?6h")  # keys, insert, nowrap, region
out.write("\x1b[1;4;31;42m\x1b(0")  # a pen and a charset left on
out.flush()
while True:
    data = os.read(0, 4096)
    if not data:
        break
    data = data.replace(b"\x1b[I", b"").replace(b"\x1b[O", b"")  # focus: each attach, detach
    if data:
        out.write("\x1b(Bgot %r\x1b(0\r\n" % data)
        out.flush()
"""

# Says its size at start and on each SIGWINCH; echoes each line typed, with the size.
SIZE_AGENT = r"""
import os, select, signal, sys, tty
tty.setraw(0)
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
signal.signal(signal.SIGWINCH, lambda *_: None)
def size():
    c, l = os.get_terminal_size(0)
    return f"{c}x{l}"
def say(text):
    os.write(1, f"{text}\r\n".encode())
say(f"size {size()}")
line = b""
while True:
    ready, _, _ = select.select([0, r], [], [])
    if r in ready:
        os.read(r, 512)
        say(f"size {size()}")
    if 0 in ready:
        data = os.read(0, 4096)
        if not data:
            break
        for byte in data:
            if byte in (13, 10):
                say(f"line {line.decode(errors='replace')} at {size()}")
                line = b""
            else:
                line += bytes([byte])
"""

# Asks for the cursor position and DA1, reads both answers in raw mode and says how long
# they took; again for each line typed.
ASK_AGENT = r"""
import os, re, select, sys, time, tty
tty.setraw(0)
CPR, DA1 = re.compile(rb"\x1b\[\d+;\d+R"), re.compile(rb"\x1b\[\?[\d;]*c")
def ask(n):
    start = time.monotonic()
    os.write(1, b"\x1b[6n\x1b[c")
    got = b""
    while not (CPR.search(got) and DA1.search(got)):
        left = start + 5 - time.monotonic()
        if left <= 0 or not select.select([0], [], [], left)[0]:
            break
        got += os.read(0, 4096)
    ms = (time.monotonic() - start) * 1000
    cpr, da1 = CPR.search(got), DA1.search(got)
    os.write(1, ("round %d: %.1f ms cpr %r da1 %r\r\n" % (
        n, ms, cpr and cpr.group(), da1 and da1.group())).encode())
n = 1
ask(n)
while True:
    data = os.read(0, 4096)
    if not data:
        break
    if b"\r" in data:
        n += 1
        ask(n)
"""

# Asks the cursor position, DA1 and the background colour every 20 ms and counts the
# answers of each kind, until it reads "x"; then it drains and says the totals.
SPAM_AGENT = r"""
import os, re, select, sys, time, tty
tty.setraw(0)
KINDS = {
    "cpr": re.compile(rb"\x1b\[\d+;\d+R"),
    "da1": re.compile(rb"\x1b\[\?62;22c"),
    "other_da": re.compile(rb"\x1b\[\?(?!62;22c)[\d;]*c"),
    "osc11": re.compile(rb"\x1b\]11;[^\x07\x1b]*(?:\x07|\x1b\\)"),
}
got, queries, stop = b"", 0, False
def counts():
    return " ".join(f"{k} {len(p.findall(got))}" for k, p in KINDS.items())
while not stop:
    os.write(1, b"\x1b[6n\x1b[c\x1b]11;?\x1b\\")
    queries += 1
    deadline = time.monotonic() + 0.02
    while (left := deadline - time.monotonic()) > 0:
        if select.select([0], [], [], left)[0]:
            data = os.read(0, 4096)
            got += data
            stop = stop or b"x" in data
    os.write(1, f"\x1b[Hqueries {queries} {counts()}\x1b[K\r\n".encode())
deadline = time.monotonic() + 0.5
while (left := deadline - time.monotonic()) > 0:
    if select.select([0], [], [], left)[0]:
        got += os.read(0, 4096)
os.write(1, f"\x1b[3Hfinal queries {queries} {counts()}\x1b[K\r\n".encode())
os.read(0, 1)
"""

# What MODES_AGENT turns on, as tmux reports it (of the mouse modes, the last one set wins).
MODES_ON = {
    "alternate_on": "1",
    "cursor_flag": "0",
    "insert_flag": "1",
    "keypad_cursor_flag": "1",
    "keypad_flag": "1",
    "mouse_all_flag": "1",
    "mouse_any_flag": "1",
    "mouse_sgr_flag": "1",
    "mouse_utf8_flag": "1",
    "origin_flag": "1",
    "wrap_flag": "0",
    "scroll_region_upper": "3",
    "scroll_region_lower": "19",
    "pane_title": "modes agent",
    "pane_fg": "#123456",
    "pane_bg": "#abcdef",
}


class Live:
    """A daemon, a project, a client on it and a private tmux server."""

    def __init__(self, env: Env, project: Path) -> None:
        self.env = env
        self.project = project
        self.api = Api(env, project)
        self.tmux = Tmux(env.base, env.vars)
        self.wrapper = env.base / "wrapper.sh"
        self.wrapper.write_text(WRAPPER)
        self.relay = False  # clients keep their terminal and relay (ORCHESTRA_ATTACH_RELAY)

    def attach_argv(self, task: str, *args: str) -> list[str]:
        argv = orchestra("attach", task, *args)
        return ["env", "ORCHESTRA_ATTACH_RELAY=1", *argv] if self.relay else argv

    def agent(self, name: str, argv: list[str], agent_env: dict[str, str] | None = None) -> None:
        """Add an agent profile running `argv`."""
        lines = [f"agents.{name}.command = {toml(argv)}"]
        if agent_env:
            lines.append(f"agents.{name}.env = {toml(agent_env)}")
        configure(self.project, "\n".join(lines))

    def script(self, name: str, body: str) -> None:
        """Add an agent profile running the Python script `body`."""
        add_agent(self.env, self.project, name, body)

    def start(self, slug: str, agent: str, ready: str) -> None:
        """Start a task on `agent` and wait until its screen shows `ready`."""
        self.api.new(slug, agent=agent)
        self.api("task.start", task=slug)
        wait_until(
            lambda: ready in self.screen(slug)["text"],
            lambda: f"{ready!r} on the screen of {slug}:\n{self.screen(slug)['text']}",
            TIMEOUT,
        )

    def screen(self, task: str) -> dict[str, Any]:
        screen: dict[str, Any] = self.api("pty.screen", task=task)
        return screen

    def attach(self, name: str, task: str, *args: str, cols: int, rows: int) -> Pane:
        """A pane running `orchestra attach TASK ARGS...` (it starts at once)."""
        return self.tmux.pane(
            name, self.attach_argv(task, *args), cols=cols, rows=rows, cwd=self.project
        )

    def wrapped(self, name: str, task: str, *args: str, cols: int, rows: int) -> Wrapped:
        """A pane running the wrapper, which attaches each time Enter is pressed."""
        state = self.env.base / f"{name}.state"
        state.mkdir()
        argv = ["/bin/sh", str(self.wrapper), str(state), *self.attach_argv(task, *args)]
        pane = self.tmux.pane(name, argv, cols=cols, rows=rows, cwd=self.project)
        return Wrapped(pane, state)

    def direct(
        self,
        name: str,
        argv: list[str],
        *,
        cwd: Path,
        size: tuple[int, int] = PANE,
        env: dict[str, str] | None = None,
    ) -> Pane:
        """`argv` run straight in a pane, with the TERM agents get."""
        return self.tmux.pane(
            name,
            ["env", "-u", "TMUX", "-u", "TMUX_PANE", "TERM=xterm-256color", *argv],
            cols=size[0],
            rows=size[1],
            cwd=cwd,
            env=env,
        )


class Wrapped:
    """A pane running WRAPPER: the terminal's state around each attach."""

    def __init__(self, pane: Pane, state: Path) -> None:
        self.pane = pane
        self.state = state
        self.rounds = 0

    def ready(self) -> tuple[str, dict[str, str]]:
        """Wait for the wrapper's prompt; the terminal's `stty -g` and modes there."""
        self.pane.wait_text(f"[wrapper {self.rounds}]")
        return (self.state / f"stty.{self.rounds}").read_text(), self.pane.modes()

    def attach(self, probe: str = "probe") -> str:
        """Paste `probe` and press Enter (which attaches); return the line the shell read:
        the probe with bracketed-paste markers if the terminal was left in that mode."""
        self.pane.paste(probe)
        self.pane.keys("Enter")
        line = self.state / f"line.{self.rounds}"
        wait_until(line.exists, f"the wrapper to read a line into {line}", TIMEOUT)
        self.rounds += 1
        return line.read_text().removesuffix("\n")


@pytest.fixture
def tmux_installed() -> None:
    require("tmux")


@pytest.fixture
def live(tmux_installed: None, daemon: Env, project: Path) -> Iterator[Live]:
    """A daemon, a project and a tmux server (stopped, with every pane, afterwards)."""
    session = Live(daemon, project)
    try:
        yield session
    finally:
        session.tmux.kill()
        session.api.close()
        if daemon.host is None:  # a shared daemon keeps running (see tests/conftest.py)
            stop_and_forget(daemon)


def clone(live: Live, name: str) -> Path:
    """A checkout of the project's main branch, where a program runs as in the task."""
    path = live.env.base / name
    subprocess.run(
        ["git", "clone", "-q", str(live.project), str(path)],
        check=True,
        env=live.env.vars,
        capture_output=True,
    )
    return path


def htop_mask(row: str) -> str:
    return " ".join(HTOP_NUMBERS.sub("#", row.replace("|", " ")).split())


# -- the screen after attach equals the program run directly ------------------------


@pytest.mark.parametrize("size", [PANE, (80, 24)], ids=["same-size", "resized"])
def test_demo_agent_screen_equals_direct_run(live: Live, size: tuple[int, int]) -> None:
    """Attached to the demo agent, the screen equals the demo agent run directly in tmux at
    the client's size (the PTY's own, or another it takes at attach)."""
    demo_env = {"ORCHESTRA_DEMO_STEP_DELAY": "0"}
    live.agent("demo0", ["{python}", "-m", "orchestra.agents.demo", "{prompt}"], demo_env)
    done = "waiting for input"
    live.start("alpha", "demo0", done)
    direct = live.direct(
        "direct",
        [sys.executable, "-m", "orchestra.agents.demo", "Do alpha."],
        size=size,
        cwd=clone(live, "direct"),
        env={"ORCHESTRA_TASK_ID": "1", "ORCHESTRA_TASK_SLUG": "alpha", **demo_env},
    )
    direct.wait_text(done)
    attached = live.attach("attached", "alpha", cols=size[0], rows=size[1])
    same_screen(attached, direct, styled=True, mask=lambda row: SHA.sub("<sha>", row))


@pytest.mark.own_daemon  # vim and htop write to the HOME they run in
def test_vim_screen_equals_direct_run(live: Live) -> None:
    """Attached to vim, the screen (colours included) and cursor equal vim run directly."""
    require("vim")
    poem = live.env.base / "poem.txt"
    poem.write_text("".join(f"line {i}: the quick brown fox\n" for i in range(1, 8)))
    argv = ["vim", "-u", "NONE", "-N", "-n", str(poem)]
    live.agent("vim", argv)
    loaded = f'"{poem}" 7L'
    live.start("alpha", "vim", loaded)
    direct = live.direct("direct", argv, cwd=live.env.base)
    direct.wait_text(loaded)
    attached = live.attach("attached", "alpha", cols=PANE[0], rows=PANE[1])
    same_screen(attached, direct, styled=True)
    attached.type("jjwcwSLOW")  # the attached vim is the live one: edits show as they would
    direct.type("jjwcwSLOW")
    attached.keys("Escape")
    direct.keys("Escape")
    attached.wait_text("line SLOW: the quick")
    same_screen(attached, direct, styled=True)


@pytest.mark.own_daemon
@pytest.mark.parametrize("size", [PANE, (80, 24)], ids=["same-size", "resized"])
def test_htop_screen_equals_direct_run(live: Live, size: tuple[int, int]) -> None:
    """Attached to htop, its labels, column header and keys bar equal htop run directly."""
    require("htop")
    argv = ["htop", "-d", "10", "-p", "1"]  # one process, redrawn every second
    live.agent("htop", argv)
    live.start("alpha", "htop", "F10Quit")
    direct = live.direct("direct", argv, size=size, cwd=live.env.base)
    direct.wait_text("F10Quit")
    attached = live.attach("attached", "alpha", cols=size[0], rows=size[1])
    same_screen(attached, direct, mask=htop_mask)


# -- detach, re-attach and the terminal's state ------------------------------------------


@pytest.mark.parametrize("relay", [False, True], ids=["handover", "relay"])
def test_detach_restores_terminal_and_reattach_shows_same_screen(live: Live, relay: bool) -> None:
    """After detach the terminal's settings and modes are as before attach, even though the
    agent turned every mode on, and re-attaching shows the very same screen; whether the
    client hands its terminal to the daemon or relays."""
    live.relay = relay
    live.script("modes", MODES_AGENT)
    live.start("alpha", "modes", "modes agent ready")
    outer = live.wrapped("outer", "alpha", cols=PANE[0], rows=PANE[1])
    stty, modes = outer.ready()
    pane = outer.pane
    history = pane.history()
    assert outer.attach() == "probe"
    pane.wait_text("modes agent ready")
    on = pane.modes()  # the redraw turned on what the agent turned on, in the real terminal
    assert {k: on[k] for k in MODES_ON} == MODES_ON, on
    pane.paste("inside")  # the outer terminal brackets pastes now: the agent sees the markers
    pane.wait_text(r"got b'\x1b[200~inside\x1b[201~'")
    screen = pane.styled(), pane.cursor()

    pane.keys("C-q")
    assert outer.ready() == (stty, modes)
    after = pane.history()  # the shell's screen and scrollback, then the detach line
    assert after[: len(history)] == history, "\n".join(after)
    assert after[len(history) :] == [
        "probe",
        "[attached to 1-alpha; detach: ctrl-q]",
        "[detached: alpha]",
        "[attach exited 0]",
        "[wrapper 1]",
    ], "\n".join(after)
    assert outer.attach() == "probe"  # no bracketed paste left on

    wait_until(
        lambda: (pane.styled(), pane.cursor()) == screen,
        lambda: f"the screen of the first attach again; it is:\n{pane.show()}",
        TIMEOUT,
    )
    pane.keys("C-q")
    assert outer.ready() == (stty, modes)


def test_attach_to_a_primary_screen_agent_keeps_the_terminals_scrollback(live: Live) -> None:
    """Attaching to an agent on the primary screen clears the screen, never the person's
    scrollback: after detach everything it held is still there, in order."""
    live.script("size", SIZE_AGENT)
    live.start("alpha", "size", f"size {PANE[0]}x{PANE[1]}")
    outer = live.wrapped("outer", "alpha", cols=PANE[0], rows=PANE[1])
    outer.ready()
    history = outer.pane.history()
    assert len(history) > PANE[1]  # some of it is in the scrollback
    outer.attach()
    outer.pane.wait_text(f"size {PANE[0]}x{PANE[1]}")
    outer.pane.keys("C-q")
    outer.ready()
    after = outer.pane.history()
    assert after[: len(history)] == history, "\n".join(after)


def kill_daemon(live: Live, _outer: Wrapped) -> None:
    pid = live.env.daemon_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


def terminate_client(_live: Live, outer: Wrapped) -> None:
    wrapper = int(outer.pane.display("#{pane_pid}"))
    children = Path(f"/proc/{wrapper}/task/{wrapper}/children")
    (client,) = (int(pid) for pid in children.read_text().split())
    os.kill(client, signal.SIGTERM)


@pytest.mark.parametrize(
    ("cut", "said"),
    [
        pytest.param(
            kill_daemon,
            ["orchestra: lost the daemon: alpha", "[attach exited 5]"],
            marks=pytest.mark.own_daemon,
        ),
        (terminate_client, ["[detached (signal): alpha]", "[attach exited 0]"]),
    ],
    ids=["daemon-killed", "client-terminated"],
)
def test_session_cut_short_leaves_the_terminal_as_it_found_it(
    live: Live, cut: Callable[[Live, Wrapped], None], said: list[str]
) -> None:
    """The daemon killed with SIGKILL while attached (the client says it lost the daemon
    and exits 5, as a command that cannot reach it does), or the client sent SIGTERM (it
    asks the daemon to let go of its terminal and waits for that): either way the terminal
    is left as it was found."""
    live.script("modes", MODES_AGENT)
    live.start("alpha", "modes", "modes agent ready")
    outer = live.wrapped("outer", "alpha", cols=PANE[0], rows=PANE[1])
    stty, modes = outer.ready()
    history = outer.pane.history()
    outer.attach()
    outer.pane.wait_text("modes agent ready")
    cut(live, outer)
    assert outer.ready() == (stty, modes)
    after = outer.pane.history()
    assert after[: len(history)] == history, "\n".join(after)
    assert after[len(history) + 2 :] == [*said, "[wrapper 1]"], "\n".join(after)


# -- sizes -------------------------------------------------------------------------------


def pty_size(live: Live, task: str) -> tuple[int, int]:
    screen = live.screen(task)
    return screen["cols"], screen["rows"]


def test_resize_while_attached_and_detached(live: Live) -> None:
    """The agent gets SIGWINCH with the terminal's new size when it is resized while
    attached, and the size of the next client's terminal when that one attaches."""
    live.script("size", SIZE_AGENT)
    live.start("alpha", "size", f"size {PANE[0]}x{PANE[1]}")
    outer = live.wrapped("outer", "alpha", cols=80, rows=24)
    outer.ready()
    outer.attach()
    pane = outer.pane
    pane.wait_text("size 80x24")
    pane.resize(90, 20)
    pane.wait_text("size 90x20")
    assert pty_size(live, "alpha") == (90, 20)

    pane.keys("C-q")
    outer.ready()
    rows = pane.history()  # the agent's output stays, the detach line goes below all of it
    assert rows.index("[detached: alpha]") > rows.index("size 90x20"), "\n".join(rows)
    assert pty_size(live, "alpha") == (90, 20)  # no client: the size stays
    pane.resize(70, 22)
    outer.attach()
    pane.wait_text("size 70x22")
    assert pty_size(live, "alpha") == (70, 22)
    pane.type("hi")
    pane.keys("Enter")
    pane.wait_text("line hi at 70x22")


@pytest.mark.parametrize("relay", [False, True], ids=["handover", "relay"])
def test_two_interactive_clients_and_a_read_only_one(live: Live, relay: bool) -> None:
    """Two interactive clients both see what is typed, and the PTY takes the size of the one
    that typed last; a read-only client's keys and size never reach the agent."""
    live.relay = relay
    live.script("size", SIZE_AGENT)
    live.start("alpha", "size", f"size {PANE[0]}x{PANE[1]}")
    one = live.attach("one", "alpha", cols=80, rows=24)
    one.wait_text("size 80x24")
    two = live.attach("two", "alpha", cols=90, rows=26)
    two.wait_text("size 90x26")  # the newest client is the most recently active one

    one.type("hello")
    one.keys("Enter")
    for pane in (one, two):
        pane.wait_text("line hello at 80x24")
    assert pty_size(live, "alpha") == (80, 24)
    two.type("world")
    two.keys("Enter")
    for pane in (one, two):
        pane.wait_text("line world at 90x26")
    assert pty_size(live, "alpha") == (90, 26)

    watcher = live.attach("watcher", "alpha", "--read-only", cols=60, rows=20)
    watcher.type("nope")
    watcher.keys("Enter")
    watcher.resize(50, 15)
    two.type("yes")
    two.keys("Enter")
    for pane in (one, two, watcher):
        pane.wait_text("line yes at 90x26")  # the watcher sees it, at the agent's size
    assert pty_size(live, "alpha") == (90, 26)
    watcher.keys("C-q")
    watcher.wait_text("[detached: alpha]")
    tail = live.api.tail("alpha")
    assert "nope" not in tail and "size 60x20" not in tail and "size 50x15" not in tail, tail
    assert live.screen("alpha")["viewers"] == 2


def crop(rows: list[str], cursor: tuple[int, int], view: tuple[int, int]) -> list[str]:
    """What a `view`-sized client shows of a screen (tmux's rule): the top left where the
    screen fits, else the part centred on the cursor; blank beyond the screen."""
    (cols, height), (x, y) = view, cursor
    width = max((len(row) for row in rows), default=0)

    def pan(at: int, size: int, shown: int) -> int:
        return 0 if size <= shown else max(0, min(at - shown // 2, size - shown))

    left, top = pan(x, width, cols), pan(y, len(rows), height)
    shown = [row[left : left + cols].rstrip() for row in rows[top : top + height]]
    return shown + [""] * (height - len(shown))


def shows_crop_of(client: Pane, reference: Pane, view: tuple[int, int]) -> None:
    """Wait until `client` shows the `view`-sized part of `reference`'s screen."""

    def expected() -> list[str]:
        return crop(reference.text(), reference.cursor(), view)

    wait_until(
        lambda: client.text() == expected(),
        lambda: (
            f"the crop of {reference.target} in {client.target}:\n{client.show()}\n"
            + "\n".join(f"{i:3}|{row}" for i, row in enumerate(expected()))
        ),
        TIMEOUT,
    )


@pytest.mark.own_daemon  # vim writes to the HOME it runs in
@pytest.mark.parametrize(
    ("first", "relay"),
    [("big", False), ("small", False), ("small", True)],
    ids=["big-first", "small-first", "small-first-relay"],
)
def test_clients_of_two_sizes_each_see_the_screen_cropped(
    live: Live, first: str, relay: bool
) -> None:
    """Two clients of different sizes on one vim, attached in either order: the one whose
    size the PTY has (the last to type) shows vim as run directly at that size, the
    other the part of that screen it can show, never the stream wrapped."""
    require("vim")
    live.relay = relay
    text = live.env.base / "wide.txt"
    text.write_text("".join(f"{i:03} " + "abcdefghij" * 11 + f" end{i}\n" for i in range(60)))
    argv = ["vim", "-u", "NONE", "-N", "-n", "-c", "set nowrap", str(text)]
    live.agent("vim", argv)
    loaded = f'"{text}" 60L'
    live.start("alpha", "vim", loaded)
    sizes = {"big": (120, 40), "small": (100, 30)}
    panes = {}
    for name in (first, "small" if first == "big" else "big"):
        panes[name] = live.attach(name, "alpha", cols=sizes[name][0], rows=sizes[name][1])
        panes[name].wait_text("000 abcdefghij")
    refs = {}
    for name, size in sizes.items():
        refs[name] = live.direct(f"ref-{name}", argv, size=size, cwd=live.env.base)
        refs[name].wait_text(loaded)

    # `:echo` clears the message line in the references, as the attached vim's redraws do;
    # `gg`: vim keeps the cursor's place in a resized window, the references' never were.
    for typist, keys, other in (("big", ":echo\r5j", "small"), ("small", "gg3jw", "big")):
        panes[typist].keys("Escape")  # a first key: the PTY takes the typist's size
        wait_until(
            lambda: pty_size(live, "alpha") == sizes[typist],  # noqa: B023 (called at once)
            f"the PTY at {typist}'s size",
            TIMEOUT,
        )
        panes[typist].type(keys)
        for ref in refs.values():
            ref.type(keys)
        same_screen(panes[typist], refs[typist])
        shows_crop_of(panes[other], refs[typist], sizes[other])
    # The PTY's size again, by a resize: the big client is back on the stream.
    panes["big"].resize(*sizes["small"])
    panes["big"].type("j")
    for ref in refs.values():
        ref.type("j")
    for name in sizes:
        same_screen(panes[name], refs["small"])


# -- queries -----------------------------------------------------------------------------


ROUND = re.compile(r"round (\d+): ([\d.]+) ms cpr (.*?) da1 (.*)")


def rounds(live: Live, task: str) -> list[tuple[int, float, str, str]]:
    """The ASK_AGENT's reports so far, read with `orchestra peek`."""
    out = live.env.run("peek", task, cwd=live.project, check=True).stdout
    found = [ROUND.search(line) for line in out.splitlines()]
    return [(int(m[1]), float(m[2]), m[3], m[4]) for m in found if m]


def test_queries_answered_at_once_while_detached(live: Live) -> None:
    """A program that asks for the cursor position and DA1 with no client attached gets
    both answers, DA1 the daemon's own, within 100 ms, before and after an attach."""
    live.script("ask", ASK_AGENT)
    live.start("alpha", "ask", "round 1:")
    assert live.screen("alpha")["viewers"] == 0
    [(_, ms, cpr, da1)] = rounds(live, "alpha")
    assert (cpr, da1) == (repr(b"\x1b[1;1R"), repr(b"\x1b[?62;22c"))
    assert ms < 100, f"answers took {ms} ms"

    pane = live.attach("outer", "alpha", cols=80, rows=24)
    pane.wait_text("round 1:")
    pane.keys("C-q")
    pane.wait_text("[detached: alpha]")
    wait_until(lambda: live.screen("alpha")["viewers"] == 0, "the client to be gone", TIMEOUT)
    live.env.run("send", "alpha", "again", "--enter", cwd=live.project, check=True)
    wait_until(lambda: len(rounds(live, "alpha")) == 2, "round 2", TIMEOUT)
    _, ms, cpr, da1 = rounds(live, "alpha")[1]
    assert (cpr, da1) == (repr(b"\x1b[2;1R"), repr(b"\x1b[?62;22c"))
    assert ms < 100, f"answers took {ms} ms"
    assert live.screen("alpha")["viewers"] == 0


def test_forwarded_stream_carries_no_query(live: Live) -> None:
    """While a client is attached, an agent asking questions all the time gets exactly one
    answer to each, the daemon's: the client's terminal is never asked."""
    live.script("spam", SPAM_AGENT)
    live.start("alpha", "spam", "queries 2")
    outer = live.wrapped("outer", "alpha", cols=80, rows=24)
    outer.ready()
    seen = live.env.base / "outer.bytes"
    live.tmux("pipe-pane", "-O", "-t", outer.pane.target, f"cat > {seen}")
    outer.attach()
    pane = outer.pane
    first = int(pane.wait_text(re.compile(r"^queries \d+"))[0].split()[1])
    pane.wait(
        lambda rows: (m := re.match(r"queries (\d+)", rows[0])) and int(m[1]) >= first + 25,
        "25 more rounds of questions while attached",
    )
    pane.type("x")
    rows = pane.wait_text("final queries")
    final = next(row for row in rows if row.startswith("final")).split()
    counts = dict(zip(final[1::2], map(int, final[2::2]), strict=True))
    assert counts["other_da"] == 0, counts
    assert counts["cpr"] == counts["da1"] == counts["osc11"] == counts["queries"], counts

    wait_until(lambda: b"final queries" in seen.read_bytes(), "the output in the pipe", TIMEOUT)
    stream = seen.read_bytes()
    at = stream.find(b"[attached to ")
    assert at >= 0, stream[:400]
    forwarded = stream[at:]
    for query in (b"\x1b[6n", b"\x1b[c", b"\x1b]11;?"):
        assert query not in forwarded, f"{query!r} reached the client's terminal"


# -- the restore sequence, on the model --------------------------------------------------

ENGINES = [
    pytest.param(
        name, marks=pytest.mark.skipif(name not in available_engines(), reason=f"no {name}")
    )
    for name in ("ghostty", "avt")
]
# Every mode an agent may set and a snapshot may then set in the client's terminal, but
# those that are the user's own preference (cursor blink 12, alternate scroll 1007,
# meta sends escape 1036, grapheme clustering 2027).
DEC_MODES = [1, 5, 6, 9, 25, 45, 66, 69, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 1016]
DEC_MODES += [1047, 1049, 2004, 2026, 2031, 2048]
AGENT_SETS = (
    b"\x1b[?7l\x1b[?25l\x1b[4h\x1b[20h\x1b[1;31m\x1b[3;9r\x1b[?69h\x1b[2;20s\x1b=\x1b[>4;2m\x1b[>1u"
    + b"".join(b"\x1b[?%dh" % n for n in DEC_MODES if n not in (25, 2026))
)


@pytest.mark.parametrize("engine", ENGINES)
def test_restore_undoes_every_mode_a_snapshot_sets(engine: str) -> None:
    """A terminal shown the redraw of an agent that set every mode is, after the client's
    restore sequence, in the modes of a fresh terminal."""
    from orchestra.adapters.terminal import Terminal
    from orchestra.client.attach import LEAVE_ALT, RESTORE
    from orchestra.daemon.attach import redraw

    agent = Terminal(40, 10, engine=engine)
    agent.feed(AGENT_SETS)
    client = Terminal(40, 10, engine=engine)
    client.feed(redraw(cast(Any, SimpleNamespace(terminal=agent))))
    assert client.mode(1049) and client.mode(1003) and client.mode(4, ansi=True)
    client.feed(RESTORE + LEAVE_ALT + b"\x1b[=0;1u")
    fresh = Terminal(40, 10, engine=engine)
    left = [f"?{n}" for n in DEC_MODES if client.mode(n) != fresh.mode(n)]
    left += [f"{n}" for n in (4, 20) if client.mode(n, ansi=True) != fresh.mode(n, ansi=True)]
    assert not left, f"modes the restore leaves set: {left}"
    assert client.kitty_flags == fresh.kitty_flags == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_redraw_shows_the_sixteen_colour_codes_in_tmux(tmux_installed: None, engine: str) -> None:
    """In tmux, which keeps whichever form of a colour a program used, the redraw of a
    screen drawn with 16-colour codes shows the very cells and codes the stream did."""
    from orchestra.adapters.terminal import Terminal
    from orchestra.daemon.attach import redraw

    stream = b"\x1b[94mblue\x1b[0m \x1b[1;90mbold grey\x1b[0m \x1b[31;42mred\x1b[0m "
    stream += b"\x1b[97mwhite\x1b[0m"
    agent = Terminal(*PANE, engine=engine)
    agent.feed(stream)
    files = {"stream": stream, "redraw": redraw(cast(Any, SimpleNamespace(terminal=agent)))}
    base = Path(tempfile.mkdtemp(prefix="orc-"))  # short: tmux's socket path has a limit
    tmux = Tmux(base, dict(os.environ))
    try:
        panes = {}
        for name, data in files.items():
            (base / name).write_bytes(data)
            argv = ["sh", "-c", 'cat "$1"; read _', "sh", str(base / name)]
            panes[name] = tmux.pane(name, argv, cols=PANE[0], rows=PANE[1])

        def rows(name: str) -> str:
            row = tmux("capture-pane", "-p", "-e", "-t", panes[name].target).split("\n")[0]
            return re.sub(r"(\x1b\[[0-9;]*m)+$", "", row)  # what blanks after the text leave

        wait_until(
            lambda: "white" in rows("redraw") and "white" in rows("stream"),
            lambda: f"both panes drawn: {rows('stream')!r}, {rows('redraw')!r}",
        )
        assert rows("redraw") == rows("stream")
        assert "\x1b[94m" in rows("redraw") and "38;5" not in rows("redraw")
    finally:
        tmux.kill()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_redraw_after_a_cut_stream_puts_every_mode_back_in_tmux(
    tmux_installed: None, engine: str
) -> None:
    """A redraw that follows bytes the model never saw (a resync drops what a client has
    not read yet) leaves the client's terminal in the model's modes, also in tmux, which
    ignores DECSTR: the cursor shown again, no mouse reporting, no origin mode..."""
    from orchestra.adapters.terminal import Terminal
    from orchestra.daemon.attach import redraw

    cut = b"\x1b[?25l\x1b[?1h\x1b=\x1b[?1000;1006;2004h\x1b[4h\x1b[?7l\x1b[?6h\x1b[2;5r\x1b[7m"
    agent = Terminal(*PANE, engine=engine)
    agent.feed(b"hello\r\n\x1b[1mthere\x1b[0m")
    files = {
        "stream": b"hello\r\n\x1b[1mthere\x1b[0m",
        "redraw": cut + redraw(cast(Any, SimpleNamespace(terminal=agent))),
    }
    base = Path(tempfile.mkdtemp(prefix="orc-"))  # short: tmux's socket path has a limit
    tmux = Tmux(base, dict(os.environ))
    try:
        panes = {}
        for name, data in files.items():
            (base / name).write_bytes(data + b"\x1b[?2026l")  # tmux 3.3 knows no 2026
            argv = ["sh", "-c", 'cat "$1"; read _', "sh", str(base / name)]
            panes[name] = tmux.pane(name, argv, cols=PANE[0], rows=PANE[1])
        for pane in panes.values():
            pane.wait_text("there")
        assert panes["redraw"].modes() == panes["stream"].modes()
        # (What blanks after the text leave differs by engine, as above.)
        trailing = re.compile(r"(\x1b\[[0-9;]*m)+$")
        same_screen(
            panes["redraw"], panes["stream"], styled=True, mask=lambda r: trailing.sub("", r)
        )
    finally:
        tmux.kill()
        shutil.rmtree(base, ignore_errors=True)
