"""The dashboard's layout at 100x30 and 200x50, as text snapshots (tests/ui/snapshots/).

The text the app draws, without colours (Rich's export of Textual's own frame, as its
SVG screenshots are made), ages masked. After a deliberate change of the layout, run
with ORCHESTRA_UPDATE_SNAPSHOTS=1 and review the diff of the snapshot files.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
from pathlib import Path

import pytest
from rich.console import Console

from orchestra.ui.app import Dashboard
from tests.conftest import Env, ProjectApi
from tests.daemon.wire import wait_until
from tests.ui.test_dashboard import rows_of, shown, until

pytestmark = pytest.mark.shared_daemon

SNAPSHOTS = Path(__file__).parent / "snapshots"
AGE = re.compile(r"(?<= )\d+[smhd](?= )")
CAT = '\nagents.cat.command = ["cat"]\n'


def frame_text(app: Dashboard) -> str:
    """What the app's screen shows now, as plain text."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(app.screen._compositor.render_update(full=True))  # as export_screenshot
    text = console.export_text(styles=False)
    return "\n".join(AGE.sub("<age>", line.rstrip()) for line in text.splitlines()) + "\n"


@pytest.mark.parametrize("size", [(100, 30), (200, 50)])
def test_the_layout_at_two_sizes(
    env: Env, project: Path, daemon: Env, size: tuple[int, int]
) -> None:
    """The list, the preview with its note, the tabs and the footer, as drawn."""
    with (project / ".orchestra" / "config.toml").open("a") as f:
        f.write(CAT)
    api = ProjectApi(env, project)
    api("task.new", slug="echo", agent="cat", title="Echo what it is told", labels=["demo"])
    api("task.new", slug="later", agent="cat", title="Not started yet")
    api("task.start", task="echo")
    api("task.send_input", task="echo", text="hello from the agent\r")
    wait_until(lambda: "hello" in api("pty.screen", task="echo")["text"], "the echo", 20)

    async def main() -> str:
        app = Dashboard(project=str(project), socket=env.socket)
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: sorted(rows_of(app)) == ["echo", "later"], "the list")
            await until(pilot, lambda: "hello from the agent" in shown(app, "#screen"), "screen")
            await pilot.pause(0.1)
            return frame_text(app)

    got = asyncio.run(main())
    path = SNAPSHOTS / f"layout-{size[0]}x{size[1]}.txt"
    if os.environ.get("ORCHESTRA_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(got)
        if not os.environ.get("ORCHESTRA_UPDATE_SNAPSHOTS"):
            pytest.fail(f"no snapshot yet: wrote {path.name}; review it and run again")
    assert got == path.read_text(), (
        f"the layout changed (ORCHESTRA_UPDATE_SNAPSHOTS=1 to take it): {path}"
    )
