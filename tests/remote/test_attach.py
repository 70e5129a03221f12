"""`orchestra --host box attach` in a real tmux pane, through a real sshd: the agent's
screen shows, keys reach it, a resize reaches its terminal, the detach keys come back;
and when the link dies mid-attach the agent keeps running, the client says so in one
line, and attaching again works."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attach.harness import Pane, Tmux, orchestra, require
from tests.conftest import Env
from tests.daemon.wire import wait_until
from tests.remote.conftest import ALIAS, Server, control_socket

# cat on a terminal: the line discipline echoes what is typed, cat prints each line again.
AGENT_CONFIG = """
agents.catter.command = ["sh", "-c", "echo catter ready; exec cat"]
"""


@pytest.fixture
def far(far: Path) -> Path:
    """The host's project, its tasks running `catter`."""
    with (far / ".orchestra" / "config.toml").open("a") as f:
        f.write(AGENT_CONFIG)
    return far


@pytest.fixture
def tmux(local: Env) -> Iterator[Tmux]:
    require("tmux")
    t = Tmux(local.base, local.vars)
    yield t
    t.kill()


def attach_pane(tmux: Tmux, far: Path, name: str) -> Pane:
    """A pane running the attach over ssh, then saying how it ended (and staying open)."""
    command = shlex.join(orchestra("--host", ALIAS, "-C", str(far), "attach", "cat-task"))
    return tmux.pane(name, ["sh", "-c", f'{command}; echo "[exit $?]"; exec sleep 600'])


def start_cat_task(local: Env, far: Path) -> None:
    """`cat-task` made and started on the host, through --host."""
    over = ("--host", ALIAS, "-C", str(far))
    made = local.run(*over, "new", "cat-task", "-m", "x", "--agent", "catter")
    assert made.returncode == 0, made.stderr
    started = local.run(*over, "start", "cat-task")
    assert started.returncode == 0, started.stderr


def screen_size(sshd: Server, far: Path) -> tuple[int, int]:
    with sshd.remote.client() as c:
        screen = c.call("pty.screen", {"project": str(far), "task": "cat-task", "lines": 1})
    return screen["cols"], screen["rows"]


def test_attach_over_ssh(local: Env, sshd: Server, far: Path, tmux: Tmux) -> None:
    """Screen, keys, resize and detach over ssh, as locally."""
    start_cat_task(local, far)
    pane = attach_pane(tmux, far, "one")
    pane.wait_text("catter ready")
    pane.type("hello over ssh")
    pane.keys("Enter")
    pane.wait(lambda rows: sum("hello over ssh" in r for r in rows) >= 2, "the line echoed")
    pane.resize(90, 20)
    wait_until(lambda: screen_size(sshd, far) == (90, 20), "the agent's terminal resized")
    pane.keys("C-q")
    rows = pane.wait_text("[exit 0]")
    assert any("detached: cat-task" in r for r in rows), rows


def _master_pid(local: Env, sshd: Server) -> int:
    control = control_socket(local, sshd)
    out = subprocess.run(
        [*sshd.ssh, "-o", f"ControlPath={control}", "-O", "check", ALIAS],
        capture_output=True,
        text=True,
        timeout=10,
    )
    found = re.search(r"pid=(\d+)", out.stderr)
    assert found, out.stderr
    return int(found.group(1))


def test_the_link_dies_mid_attach(local: Env, sshd: Server, far: Path, tmux: Tmux) -> None:
    """Killing the ssh connection under an attach: the client exits 5 saying the link was
    lost and the agents keep running; the agent does; attaching again shows it."""
    start_cat_task(local, far)
    pane = attach_pane(tmux, far, "two")
    pane.wait_text("catter ready")
    os.kill(_master_pid(local, sshd), signal.SIGKILL)
    rows = pane.wait_text("[exit 5]")
    said = "".join(rows)  # the line may wrap
    assert "lost the connection to box" in said and "keep running" in said, said
    with sshd.remote.client() as c:
        task = c.call("task.get", {"project": str(far), "task": "cat-task"})
    assert task["status"] == "running" and task["run"] is not None
    again = attach_pane(tmux, far, "three")
    again.wait_text("catter ready")
    again.type("still here")
    again.keys("Enter")
    again.wait(lambda rows: sum("still here" in r for r in rows) >= 2, "the line echoed")
    again.keys("C-q")
    again.wait_text("[exit 0]")
