"""`pty.screen`'s long poll and styled rows: what the dashboard's preview follows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.core.errors import RemoteError
from tests.conftest import Env, ProjectApi

# The tests only need a daemon: they share the module's (tests/conftest.py).
pytestmark = [pytest.mark.timeout(60), pytest.mark.shared_daemon]

CAT = """
agents.cat.command = ["cat"]
"""


@pytest.fixture
def api(env: Env, project: Path, daemon: Env) -> Iterator[ProjectApi]:
    """A task `echo` running `cat`, and a connection to the daemon, closed afterwards."""
    with (project / ".orchestra" / "config.toml").open("a") as f:
        f.write(CAT)
    api = ProjectApi(env, project)
    with api.client:
        api("task.new", slug="echo", agent="cat")
        api("task.start", task="echo")
        yield api


def test_the_long_poll_answers_when_the_screen_changes(
    env: Env, project: Path, api: ProjectApi
) -> None:
    """Asked with the version it has, the daemon answers once output changed the screen,
    with the new text and its colours; asked again with no change, it answers when `wait`
    ran out, with the same version."""
    first = api("pty.screen", task="echo", styled=True)
    assert isinstance(first["version"], int) and len(first["ansi"]) == first["rows"]

    def later() -> None:
        time.sleep(0.3)  # the poll is already waiting: the answer comes from the change
        with env.client() as c:
            c.call(
                "task.send_input",
                {"project": str(project), "task": "echo", "text": "\x1b[31mred\x1b[0m\r"},
            )

    typist = threading.Thread(target=later)
    typist.start()
    began = time.monotonic()
    changed = api("pty.screen", task="echo", styled=True, after=first["version"], wait=20)
    took = time.monotonic() - began
    typist.join()
    assert changed["version"] != first["version"]
    assert "red" in changed["text"] and took < 10
    assert any("\x1b[" in row and "red" in row for row in changed["ansi"])

    version = changed["version"]
    for _ in range(20):  # the PTY's echo and cat's copy may come as two changes
        began = time.monotonic()
        same = api("pty.screen", task="echo", after=version, wait=0.5)
        if same["version"] == version:
            break
        version = same["version"]
    assert same["version"] == version and "ansi" not in same
    assert time.monotonic() - began >= 0.45


def test_the_long_poll_ends_with_the_run(env: Env, project: Path, api: ProjectApi) -> None:
    """A poll waiting on a run that stops is answered at once with the reason there is no
    screen any more, not left hanging until `wait` runs out."""
    version = api("pty.screen", task="echo")["version"]

    def stop() -> None:
        time.sleep(0.3)
        with env.client() as c:
            c.call("task.stop", {"project": str(project), "task": "echo"})

    stopper = threading.Thread(target=stop)
    stopper.start()
    began = time.monotonic()
    with pytest.raises(RemoteError) as info:
        api("pty.screen", task="echo", after=version, wait=30)
    stopper.join()
    assert time.monotonic() - began < 15
    assert info.value.remote_code == -32002 and "no running agent" in info.value.message


@pytest.mark.parametrize(
    ("params", "field"),
    [({"after": -1}, "after"), ({"after": 0, "wait": 301}, "wait"), ({"styled": "yes"}, "styled")],
)
def test_bad_poll_params_are_refused(
    api: ProjectApi, params: dict[str, object], field: str
) -> None:
    """The poll's params are checked at the boundary (-32602 naming the field)."""
    err = api.error("pty.screen", task="echo", **params)
    assert err.remote_code == -32602 and field in err.message
