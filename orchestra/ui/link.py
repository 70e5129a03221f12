"""The dashboard's connections to the daemon, in asyncio: calls, the event stream, a screen.

Two kinds of connection, because the daemon answers one connection's requests in order:
the main one carries actions, `task.list` and the `events.subscribe` stream; each screen
being watched has its own, where `pty.screen`'s long poll may wait without holding up a
click. Both are `orchestra.client.aio.AsyncClient`, the core codec's client half over an
asyncio socket: the dashboard speaks no protocol of its own.

A dashboard may show several daemons at once (`orchestra ui --host a --host b`): each is a
`Daemon`, this machine's (its socket) or another host's (ssh to its bridge), with a Link
of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from orchestra.client.aio import AsyncClient
from orchestra.client.connection import Client
from orchestra.core.errors import DaemonUnreachable, OrchestraError
from orchestra.core.remote import Target

RETRY: Final = 0.5  # seconds between two attempts to reach a daemon that is gone
SCREEN_WAIT: Final = 20.0  # a screen's long poll: the daemon answers at the latest then


@dataclass(frozen=True)  # not attrs: see rows.Row
class Daemon:
    """One daemon the dashboard shows: this machine's (`target` None: its `socket`) or
    another host's (`target`, reached by ssh); `project` is the root followed there
    (None: every project it serves)."""

    socket: Path
    project: str | None
    target: Target | None = None
    control_dir: Path | None = None

    @property
    def host(self) -> str:
        """The host's name as the person gave it; "" for this machine."""
        return self.target.name if self.target is not None else ""

    async def open(self, *, autostart: bool = False, log_dir: Path | None = None) -> AsyncClient:
        """A new asyncio connection (another host's bridge starts its daemon as it may)."""
        if self.target is not None:
            return await AsyncClient.open_remote(self.target, control_dir=self.control_dir)
        return await AsyncClient.open(self.socket, autostart=autostart, log_dir=log_dir)

    def blocking(self) -> Client:
        """A new blocking connection (Enter's attach session)."""
        if self.target is not None:
            from orchestra.client.remote import open_link

            return Client.over(*open_link(self.target, control_dir=self.control_dir))
        return Client(self.socket).connect()


class Link:
    """The main connection to one daemon, made again whenever it is lost (the daemon
    restarted, the link to its host dropped)."""

    def __init__(
        self, daemon: Daemon | Path, state_dir: Path | None = None, *, autostart: bool = False
    ) -> None:
        self.daemon = daemon if isinstance(daemon, Daemon) else Daemon(daemon, None)
        self.state_dir = state_dir
        self.autostart = autostart
        self.client: AsyncClient | None = None

    async def connect(self) -> AsyncClient:
        if self.client is None:
            self.client = await self.daemon.open(autostart=self.autostart, log_dir=self.state_dir)
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
    daemon: Daemon | Path, project: str, task: int, *, styled: bool = True
) -> AsyncIterator[dict[str, Any]]:
    """The task's screen now, then each time it changed (the daemon coalesces to a frame),
    on a connection of its own, until the run ends (an error from the daemon) or the
    caller stops iterating."""
    where = daemon if isinstance(daemon, Daemon) else Daemon(daemon, None)
    client = await where.open()
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
