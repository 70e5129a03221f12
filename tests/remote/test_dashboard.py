"""The dashboard showing two daemons at once, this machine's and another host's over ssh:
each row names its host, and an action goes to the daemon of the row it is about."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import DataTable

from orchestra.core.remote import target
from orchestra.ui.app import Dashboard
from orchestra.ui.link import Daemon
from tests.conftest import Env
from tests.remote.conftest import ALIAS, Server
from tests.ui.test_dashboard import until

pytestmark = pytest.mark.timeout(120)


def test_two_hosts_in_one_dashboard(
    local: Env, sshd: Server, far: Path, project: Path, daemon: Env
) -> None:
    """Tasks of here and of box side by side, a host column naming each; `s` on box's row
    starts it on box's daemon, not here."""
    assert local.run("new", "near-task", "-m", "here", cwd=project).returncode == 0
    made = local.run("--host", ALIAS, "-C", str(far), "new", "far-task", "-m", "there")
    assert made.returncode == 0, made.stderr
    daemons = [
        Daemon(local.socket, str(project)),
        Daemon(
            local.socket,
            str(far),
            target(ALIAS, {}, sshd.ssh),
            local.socket.parent / "ssh",
        ),
    ]

    def cells(app: Dashboard) -> list[tuple[str, str]]:
        table = app.main("#tasks", DataTable)
        return [
            (str(table.get_row_at(i)[0]), str(table.get_row_at(i)[3]))
            for i in range(table.row_count)
        ]

    def far_status() -> str:
        with sshd.remote.client() as c:
            return str(c.call("task.get", {"project": str(far), "task": "far-task"})["status"])

    async def main() -> None:
        app = Dashboard(project=str(project), socket=local.socket, daemons=daemons)
        async with app.run_test(size=(160, 40)) as pilot:
            await until(pilot, lambda: len(cells(app)) == 2, "both hosts' tasks")
            assert app.columns[0] == "host"
            assert sorted(cells(app)) == [("box", "far-task"), ("here", "near-task")]
            for _ in range(3):  # this machine's rows come first: box's is below
                row = app.current()
                if row is not None and row.host == ALIAS:
                    break
                await pilot.press("j")
            row = app.current()
            assert row is not None and row.host == ALIAS and row.slug == "far-task"
            await pilot.press("s")
            await until(pilot, lambda: far_status() == "running", "far-task running on box")
            with local.client() as c:
                near = c.call("task.get", {"project": str(project), "task": "near-task"})
            assert near["status"] == "draft"

    asyncio.run(main())


def test_which_daemons_a_dashboard_shows(
    local: Env, sshd: Server, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--host` names one daemon (its project: -C, else the host's own, else all of them);
    several names make one Daemon each, `local` being this machine's; a name twice is
    refused."""
    import os

    from orchestra.cli.dashboard import _daemons
    from orchestra.client.local import Local
    from orchestra.core.errors import InvalidParams

    monkeypatch.chdir(project)
    environ = {**os.environ, **local.vars}
    config = Path(local.vars["XDG_CONFIG_HOME"]) / "orchestra" / "config.toml"
    config.write_text(sshd.host_config(project="/srv/app") + sshd.host_config("bare"))
    [one] = _daemons(Local(None, environ, ALIAS), [], None, False)
    assert (one.host, one.project) == (ALIAS, "/srv/app")
    [given] = _daemons(Local(Path("/srv/other"), environ, ALIAS), [], Path("/srv/other"), False)
    assert given.project == "/srv/other"
    here, box, bare = _daemons(Local(None, environ), ["local", ALIAS, "bare"], None, False)
    assert (here.host, here.project, here.target) == ("", str(project), None)
    assert (box.host, box.project) == (ALIAS, "/srv/app")
    assert (bare.host, bare.project) == ("bare", None)  # no project named there: all
    with pytest.raises(InvalidParams, match="named twice"):
        _daemons(Local(None, environ), [ALIAS, ALIAS], None, False)
