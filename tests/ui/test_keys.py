"""`[ui.keys]`: the dashboard's keys remapped from config, and bad maps refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from orchestra.core.config import Layer, resolve
from orchestra.core.errors import ConfigError
from orchestra.ui.app import Dashboard
from orchestra.ui.screens import Confirm
from tests.conftest import Env, ProjectApi
from tests.ui.test_dashboard import rows_of, until

pytestmark = pytest.mark.shared_daemon


def test_a_remapped_key_acts_and_the_old_one_no_longer_does(
    env: Env, project: Path, daemon: Env
) -> None:
    """With stop on X, the footer says X, x does nothing and X asks to stop; help lists
    the keys as bound."""
    api = ProjectApi(env, project)
    api("task.new", slug="zeta", agent="demo")

    async def main() -> None:
        app = Dashboard(project=str(project), socket=env.socket, keys={"stop": "X"})
        async with app.run_test(size=(120, 30)) as pilot:
            await scenario(app, pilot)

    async def scenario(app: Dashboard, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: rows_of(app) == ["zeta"], "the list")
        footer = str(app.main("#keys", Static).render())
        assert " X Stop " in footer and " x Stop " not in footer
        await pilot.press("x")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, Confirm)
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the stop question")
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, Confirm), "answered")
        keys = {k: a.binding.id for k, a in app.active_bindings.items()}
        assert keys.get("X") == "stop" and "x" not in keys

    asyncio.run(main())


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ({"stopp": "x"}, "unknown action 'stopp'"),
        ({"stop": "a b"}, "is not a list of keys"),
        ({"stop": 3}, "expected a string"),
    ],
)
def test_a_bad_key_map_is_a_config_error(keys: dict[str, object], says: str) -> None:
    """An unknown action or a malformed key is refused where the config is read."""
    with pytest.raises(ConfigError) as info:
        resolve([Layer(source="config.toml", values={"ui": {"keys": keys}})])
    assert says in str(info.value)
