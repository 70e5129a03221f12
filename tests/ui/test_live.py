"""`orchestra ui` in a real terminal (a tmux pane): Enter attaches, the detach keys come
back to the list, `q` leaves the shell's terminal as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attach.harness import Pane, Tmux, orchestra, require
from tests.attach.test_client import Bare, _controlling_terminal, set_size
from tests.conftest import Env, ProjectApi
from tests.daemon.wire import wait_until

pytestmark = pytest.mark.timeout(90)
LEAVE_ALT = b"\x1b[?1049l"

# Runs the dashboard between two readings of the terminal's settings.
AROUND = """\
stty -g > "$1/before"
"${@:2}"
echo "[ui exited $?]"
stty -g > "$1/after"
exec sleep 600
"""


@pytest.fixture
def tmux(daemon: Env) -> Iterator[Tmux]:
    require("tmux")
    server = Tmux(daemon.base, daemon.vars)
    try:
        yield server
    finally:
        server.kill()


def test_enter_attaches_detach_comes_back_and_q_restores(
    tmux: Tmux, daemon: Env, project: Path
) -> None:
    """From the list, Enter shows the agent full-screen; the detach key (ctrl-q) returns to
    the list, same selection; e edits the task file in $EDITOR and comes back; q quits with
    the terminal's settings as they were."""
    api = ProjectApi(daemon, project)
    api("task.new", slug="hello", agent="demo", description="say hello")
    api("task.start", task="hello")
    wait_until(lambda: "Tell me more" in api("pty.screen", task="hello")["text"], "the agent", 30)
    script = daemon.base / "around.sh"
    script.write_text(AROUND)
    argv = ["bash", str(script), str(daemon.base), *orchestra("ui")]
    editor = daemon.base / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/^title = .*//; 2i title = \\"Edited\\"" "$1"\n')
    editor.chmod(0o755)
    pane: Pane = tmux.pane("ui", argv, cols=140, rows=40, cwd=project, env={"EDITOR": str(editor)})

    pane.wait_text("slug")  # the list's header
    pane.wait_text("Orchestra demo agent")  # the preview
    pane.keys("Enter")
    wait_until(
        lambda: pane.text()[0].startswith("✻ Orchestra demo agent"),
        lambda: f"the agent full-screen:\n{pane.show()}",
        30,
    )
    assert not any("slug" in row for row in pane.text())
    pane.keys("C-q")
    pane.wait_text("slug")
    pane.wait_text("hello")
    pane.keys("e")  # the task file in $EDITOR (here a script giving it a title)
    wait_until(lambda: api("task.get", task="hello").get("title") == "Edited", "the edit", 30)
    pane.wait_text("slug")  # back in the list
    pane.keys("q")
    pane.wait_text("[ui exited 0]")
    assert (daemon.base / "after").read_text() == (daemon.base / "before").read_text()
    modes = pane.modes()
    assert modes["alternate_on"] == "0" and modes["cursor_flag"] == "1", modes
    assert modes["mouse_any_flag"] == "0" and modes["mouse_sgr_flag"] == "0", modes
    assert api("task.get", task="hello")["status"] in ("running", "idle")  # still at work


class OnePty(Bare):
    """`orchestra ui` with stdin, stdout and stderr on one PTY (Textual draws on stderr)."""

    def __init__(self, env: Env, cwd: Path) -> None:
        self.master, slave = os.openpty()
        set_size(slave, 140, 40)
        try:
            self.proc = subprocess.Popen(
                orchestra("ui"),
                cwd=cwd,
                env=env.vars,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                preexec_fn=_controlling_terminal,
            )
        finally:
            os.close(slave)
        self.out = b""

    def seen(self, text: bytes, since: int) -> bool:
        """Whether `text` was written since byte `since` (reading a little first)."""
        self.read(0.05)
        return text in self.out[since:]

    def wait(self) -> int:  # type: ignore[override]
        """Its exit status, once it exited (the terminal read meanwhile)."""
        wait_until(lambda: self.seen(b"", 0) and self.proc.poll() is not None, "its exit", 30)
        self.read(0)
        os.close(self.master)
        return self.proc.returncode


def test_enter_and_detach_never_show_the_shell(daemon: Env, project: Path) -> None:
    """From Enter to the list drawn again after the detach key, the dashboard never leaves
    the alternate screen (the shell below would flash): what it writes to its terminal
    holds no `CSI ? 1049 l` until `q`."""
    api = ProjectApi(daemon, project)
    api("task.new", slug="hello", agent="demo", description="say hello")
    api("task.start", task="hello")
    wait_until(lambda: "Tell me more" in api("pty.screen", task="hello")["text"], "the agent", 30)
    ui = OnePty(daemon, project)

    def wait_for(text: bytes, since: int) -> None:
        wait_until(lambda: ui.seen(text, since), lambda: f"{text!r} in {ui.out[-500:]!r}", 30)

    wait_for(b"Tell me more", 0)  # the list and the preview
    entered = len(ui.out)
    os.write(ui.master, b"\r")
    wait_for(b"\x1b[22;0t", entered)  # the attach session's first write
    time.sleep(0.5)
    os.write(ui.master, b"\x11")  # ctrl-q: detach
    wait_for(b"slug", entered)  # the list drawn again
    assert LEAVE_ALT not in ui.out[entered:]
    os.write(ui.master, b"q")
    assert ui.wait() == 0
    assert LEAVE_ALT in ui.out[entered:]  # on the way out, as Textual does


def test_sigterm_while_attached_ends_the_dashboard_and_restores(daemon: Env, project: Path) -> None:
    """A SIGTERM while attached from the dashboard detaches, then ends the dashboard too
    (it was meant for the process), leaving the alternate screen; the agent runs on."""
    api = ProjectApi(daemon, project)
    api("task.new", slug="hello", agent="demo", description="say hello")
    api("task.start", task="hello")
    wait_until(lambda: "Tell me more" in api("pty.screen", task="hello")["text"], "the agent", 30)
    ui = OnePty(daemon, project)
    wait_until(lambda: ui.seen(b"Tell me more", 0), "the list and the preview", 30)
    entered = len(ui.out)
    os.write(ui.master, b"\r")
    wait_until(lambda: ui.seen(b"\x1b[22;0t", entered), "the attach", 30)
    time.sleep(0.3)
    os.kill(ui.proc.pid, signal.SIGTERM)
    assert ui.wait() == 0
    assert LEAVE_ALT in ui.out[entered:]
    assert api("task.get", task="hello")["status"] in ("running", "idle")
