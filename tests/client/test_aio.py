"""The asyncio client against a real daemon: calls, errors, concurrency, notifications."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestra.client.aio import AsyncClient
from orchestra.core.errors import DaemonUnreachable, NotFound, RemoteError, UntrustedSocket
from tests.conftest import Env

TIMEOUT = 20.0


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run `main` in a fresh asyncio loop, bounded so a lost reply fails the test."""

    async def bounded() -> Any:
        return await asyncio.wait_for(main(), TIMEOUT)

    return asyncio.run(bounded())


@pytest.mark.shared_daemon
def test_a_call_returns_its_result_and_an_error_its_code(env: Env, project: Path) -> None:
    """A call's result comes back as the daemon sent it, and a daemon error is raised as a
    RemoteError with its code, message and data."""
    env.run("new", "alpha", "-m", "Do alpha", cwd=project, check=True)

    async def main() -> tuple[Any, RemoteError]:
        async with await AsyncClient.open(env.socket) as client:
            got = await client.call("task.get", {"project": str(project), "task": "alpha"})
            with pytest.raises(RemoteError) as info:
                await client.call("task.get", {"project": str(project), "task": "nope"})
            return got, info.value

    task, error = run(main)
    assert task["slug"] == "alpha"
    assert error.remote_code == NotFound.code
    assert error.data["kind"] == "not_found"
    assert "nope" in error.message


@pytest.mark.shared_daemon
def test_calls_in_flight_together_each_get_their_own_reply(env: Env, project: Path) -> None:
    """Many calls sent at once on one connection are each answered with their own result."""
    for slug in ("alpha", "beta", "gamma"):
        env.run("new", slug, "-m", f"Do {slug}", cwd=project, check=True)

    async def main() -> list[str]:
        async with await AsyncClient.open(env.socket) as client:
            calls = [
                client.call("task.get", {"project": str(project), "task": slug})
                for slug in ("gamma", "alpha", "beta") * 10
            ]
            return [t["slug"] for t in await asyncio.gather(*calls)]

    assert run(main) == ["gamma", "alpha", "beta"] * 10


@pytest.mark.shared_daemon
def test_subscribed_changes_arrive_as_notifications(env: Env, project: Path) -> None:
    """After events.subscribe, a change made by another client arrives as an
    events.task_changed notification, while calls on the same connection still work."""
    env.run("new", "alpha", "-m", "Do alpha", cwd=project, check=True)

    async def main() -> tuple[Any, Any]:
        async with await AsyncClient.open(env.socket) as client:
            await client.call("events.subscribe", {"project": str(project)})
            notices = client.notifications()
            async with await AsyncClient.open(env.socket) as other:
                await other.call(
                    "task.update", {"project": str(project), "task": "alpha", "labels": ["ui"]}
                )
            notice = await anext(notices)
            pong = await client.call("daemon.ping")
            return notice, pong

    notice, pong = run(main)
    assert notice.method == "events.task_changed"
    assert notice.params["task"]["slug"] == "alpha"
    assert notice.params["task"]["labels"] == ["ui"]
    assert pong == {"pong": True}


@pytest.mark.own_daemon
def test_a_daemon_that_stops_ends_calls_and_notifications(env: Env, project: Path) -> None:
    """When the daemon goes away, notifications() ends and the next call raises
    DaemonUnreachable instead of waiting forever."""
    env.run("daemon", "start", check=True)

    async def main() -> DaemonUnreachable:
        async with await AsyncClient.open(env.socket) as client:
            await client.call("events.subscribe", {"project": str(project)})
            await client.call("daemon.shutdown")
            assert [n async for n in client.notifications()] == []
            with pytest.raises(DaemonUnreachable) as info:
                await client.call("daemon.ping")
            return info.value

    assert str(env.socket) in run(main).message


def test_no_daemon_and_no_autostart_is_unreachable(env: Env) -> None:
    """Without a daemon, open() raises DaemonUnreachable, and starts none without autostart."""

    async def main() -> None:
        await AsyncClient.open(env.socket)

    with pytest.raises(DaemonUnreachable, match="autostart is off"):
        run(main)
    assert not env.socket.exists()


def test_autostart_starts_the_daemon(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """With autostart, open() starts a daemon when none answers, and is connected to it."""
    for key, value in env.vars.items():
        monkeypatch.setenv(key, value)  # the started daemon's environment is the caller's

    async def main() -> Any:
        client = await AsyncClient.open(env.socket, autostart=True, log_dir=env.base / "state")
        async with client:
            return await client.call("daemon.status")

    status = run(main)
    assert status["socket"] == str(env.socket)


def test_a_socket_in_a_shared_directory_is_refused(tmp_path: Path) -> None:
    """A socket whose directory others may write is refused before connecting."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)

    async def main() -> None:
        await AsyncClient.open(shared / "orchestra.sock")

    with pytest.raises(UntrustedSocket, match="open to other users"):
        run(main)
