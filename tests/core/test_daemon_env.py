"""A started daemon gets a clean environment (orchestra/client.py's DAEMON_ENV): the
switches the daemon itself reads must be in it, or setting them would do nothing."""

from __future__ import annotations

from pathlib import Path

from orchestra.adapters.cgroups import NO_CGROUPS_ENV
from orchestra.client import DAEMON_ENV, daemon_environ
from orchestra.daemon.forward import NO_NATIVE_ENV


def test_the_daemons_own_switches_reach_it() -> None:
    """ORCHESTRA_PURE_PYTHON_RELAY, ORCHESTRA_NO_CGROUPS and the fault tests' crash point
    pass to a started daemon; a task's variables and an agent's secrets do not."""
    assert {NO_NATIVE_ENV, NO_CGROUPS_ENV, "ORCHESTRA_CRASH_AT"} <= DAEMON_ENV
    environ = {
        NO_CGROUPS_ENV: "1",
        "ORCHESTRA_RUN_ID": "abc",
        "ORCHESTRA_TASK_ID": "3",
        "ANTHROPIC_API_KEY": "secret",
        "HOME": "/home/me",
    }
    env = daemon_environ(Path("/run/me/o.sock"), environ)
    assert env == {NO_CGROUPS_ENV: "1", "HOME": "/home/me", "ORCHESTRA_SOCKET": "/run/me/o.sock"}
