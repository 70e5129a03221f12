"""`orchestra ui` in a real terminal (a tmux pane): Enter attaches, the detach keys come
back to the list, `q` leaves the shell's terminal as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attach.harness import Pane, Tmux, orchestra, require
from tests.conftest import Env, ProjectApi
from tests.daemon.wire import wait_until

pytestmark = pytest.mark.timeout(90)

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
