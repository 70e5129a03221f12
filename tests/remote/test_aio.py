"""The asyncio client (the dashboard's) over ssh: calls, and events as they happen."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from orchestra.client.aio import AsyncClient
from orchestra.core.errors import HostUnreachable
from orchestra.core.remote import target
from tests.conftest import make_repo
from tests.remote.conftest import ALIAS, Server


def test_events_arrive_over_ssh(sshd: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    """events.subscribe through the bridge: a task made on the host arrives as an event;
    when ssh dies the client says the link to the host was lost."""
    root = make_repo(Path(os.path.realpath(tmp_path_factory.mktemp("far"))) / "repo")
    sshd.remote.run("init", cwd=root, check=True)

    async def scenario() -> None:
        t = target(ALIAS, {}, sshd.ssh)
        client = await AsyncClient.open_remote(t, control_dir=None)
        try:
            await client.call("events.subscribe", {"project": str(root)})
            made = await client.call("task.new", {"project": str(root), "slug": "evt"})
            async with asyncio.timeout(10):
                async for notice in client.notifications():
                    if notice.method == "events.task_changed":
                        assert notice.params["task"]["id"] == made["id"]
                        break
            assert client.link is not None
            client.link.proc.kill()
            with pytest.raises(HostUnreachable, match="lost the connection to box"):
                async with asyncio.timeout(10):
                    await client.call("daemon.ping")
        finally:
            await client.aclose()

    asyncio.run(scenario())
