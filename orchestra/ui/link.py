"""The dashboard's connections to the daemon, in asyncio: calls, the event stream, a screen.

Two kinds of connection, because the daemon answers one connection's requests in order:
the main one carries actions, `task.list` and the `events.subscribe` stream; each screen
being watched has its own, where `pty.screen`'s long poll may wait without holding up a
click. Both are `orchestra.client.aio.AsyncClient`, the core codec's client half over an
asyncio socket: the dashboard speaks no protocol of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from orchestra.client.aio import AsyncClient
from orchestra.core.errors import DaemonUnreachable, OrchestraError

RETRY: Final = 0.5  # seconds between two attempts to reach a daemon that is gone
SCREEN_WAIT: Final = 20.0  # a screen's long poll: the daemon answers at the latest then


class Link:
    """The main connection, made again whenever it is lost (the daemon restarted)."""

    def __init__(self, socket: Path, state_dir: Path | None, *, autostart: bool) -> None:
        self.socket = socket
        self.state_dir = state_dir
        self.autostart = autostart
        self.client: AsyncClient | None = None

    async def connect(self) -> AsyncClient:
        if self.client is None:
            self.client = await AsyncClient.open(
                self.socket, autostart=self.autostart, log_dir=self.state_dir
            )
            self.autostart = False  # once: a daemon that stops later was stopped on purpose
        return self.client

    async def call(self, method: str, **params: Any) -> Any:
        client = await self.connect()
        try:
            return await client.call(method, params)
        except DaemonUnreachable:
            await self.drop()
            raise

    async def drop(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def follow(
        self,
        project: str | None,
        on_event: Callable[[str, Any], Awaitable[None]],
        on_state: Callable[[str | None], Awaitable[None]],
    ) -> None:
        """Subscribe and hand every notification to `on_event`, forever: when the daemon
        goes, say so (`on_state(message)`), wait, connect again, subscribe again, and say
        it is back (`on_state(None)`), which is when a caller reloads what it shows."""
        while True:
            try:
                client = await self.connect()
                await client.call("events.subscribe", {"project": project})
                await on_state(None)
                async for notice in client.notifications():
                    await on_event(notice.method, notice.params)
                why = "the daemon closed the connection"
            except OrchestraError as exc:
                why = str(exc)
            await self.drop()
            await on_state(f"{why}; reconnecting…")
            await asyncio.sleep(RETRY)

    async def aclose(self) -> None:
        await self.drop()


async def watch_screen(
    socket: Path, project: str, task: int, *, styled: bool = True
) -> AsyncIterator[dict[str, Any]]:
    """The task's screen now, then each time it changed (the daemon coalesces to a frame),
    on a connection of its own, until the run ends (an error from the daemon) or the
    caller stops iterating."""
    client = await AsyncClient.open(socket)
    try:
        params: dict[str, Any] = {"project": project, "task": task, "styled": styled}
        screen = await client.call("pty.screen", params)
        yield screen
        while True:
            screen = await client.call(
                "pty.screen", {**params, "after": screen["version"], "wait": SCREEN_WAIT}
            )
            yield screen
    finally:
        await client.aclose()
