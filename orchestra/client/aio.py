"""An asyncio client of the daemon: calls, and notifications after `events.subscribe`.

For front ends that live in an asyncio loop (the Textual dashboard). One connection
carries any number of calls at once and the notifications in between: a reader task
takes each line off the socket (`core/ndjson.py`), sorts it with the core's client half
(`core/jsonrpc.Calls`) and hands a reply to the call waiting for it, a notification to
`notifications()`. Checked as every client is (`trust`: the socket's directory and the
listener are the user's own, before a byte is sent).

    async with await AsyncClient.open(socket) as client:
        await client.call("events.subscribe", {"project": root})
        tasks = await client.call("task.list", {"project": root})
        async for notice in client.notifications():
            ...  # notice.method == "events.task_changed", notice.params
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from orchestra.client.lifecycle import refuse_autostart, spawn_daemon
from orchestra.client.trust import check_peer, check_socket_dir
from orchestra.core import jsonrpc, ndjson
from orchestra.core.errors import DaemonUnreachable, HostUnreachable

if TYPE_CHECKING:
    from orchestra.client.remote import Link
    from orchestra.core.remote import Target

READ_SIZE = 65536
_CLOSED = jsonrpc.Notice("", None)  # ends notifications(): the connection is gone


class AsyncClient:
    """One connection to the daemon in an asyncio loop. Make it with `open`."""

    def __init__(
        self, path: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.path = path
        self._reader = reader
        self._writer = writer
        self._calls = jsonrpc.Calls()
        self._lines = ndjson.LineSplitter(ndjson.MAX_REPLY)
        self._waiting: dict[int, asyncio.Future[jsonrpc.Response]] = {}
        self._notices: asyncio.Queue[jsonrpc.Notice] = asyncio.Queue()
        self._lost: DaemonUnreachable | None = None  # why the connection ended, once it has
        self.link: Link | None = None  # the ssh child, for a daemon on another host
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls, path: Path, *, autostart: bool = False, log_dir: Path | None = None
    ) -> AsyncClient:
        """Connect to the daemon on `path`; with `autostart` (and `log_dir`, for its output)
        start one first when none answers, where a client may (`refuse_autostart`)."""
        try:
            return await cls._connect(path)
        except DaemonUnreachable:
            if log_dir is None:
                autostart = False
            refuse_autostart(path, autostart)
        assert log_dir is not None
        await asyncio.to_thread(spawn_daemon, path, log_dir)
        return await cls._connect(path)

    @classmethod
    async def open_remote(
        cls, target: Target, *, control_dir: Path | None, start: bool = True
    ) -> AsyncClient:
        """Connect to the daemon on another host, through ssh and its bridge
        (`client/remote.py`; ssh is started in a thread, its greeting waited for there)."""
        from orchestra.client.remote import open_link

        sock, link, rest = await asyncio.to_thread(
            open_link, target, control_dir=control_dir, start=start
        )
        try:
            reader, writer = await asyncio.open_connection(sock=sock, limit=READ_SIZE)
        except BaseException:
            sock.close()
            await asyncio.to_thread(link.close)
            raise
        client = cls(Path(target.name), reader, writer)
        client.link = link
        client._lines.feed(rest)
        return client

    @classmethod
    async def _connect(cls, path: Path) -> AsyncClient:
        check_socket_dir(path)
        try:
            reader, writer = await asyncio.open_unix_connection(os.fspath(path), limit=READ_SIZE)
        except OSError as exc:
            raise DaemonUnreachable(
                f"the daemon is not answering on {path} ({exc.strerror or exc})", socket=str(path)
            ) from None
        try:
            check_peer(writer.get_extra_info("socket"), path)
        except BaseException:
            writer.close()
            raise
        return cls(path, reader, writer)

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its result, or raise RemoteError with the daemon's
        code, message and data (DaemonUnreachable once the connection is gone)."""
        if self._lost is not None:
            raise self._lost
        request_id, data = self._calls.request(method, params)
        reply = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = reply
        try:
            self._writer.write(data)
            await self._writer.drain()
            response = await reply
        except (OSError, asyncio.IncompleteReadError):
            raise self._gone(f"the daemon closed the connection during {method}") from None
        finally:
            self._waiting.pop(request_id, None)
            self._calls.forget(request_id)  # cancelled: its reply, if it comes, is dropped
        return response.value()

    async def notifications(self) -> AsyncIterator[jsonrpc.Notice]:
        """The daemon's notifications (after `events.subscribe`), in order, until the
        connection ends."""
        while True:
            notice = await self._notices.get()
            if notice is _CLOSED:
                self._notices.put_nowait(_CLOSED)  # for any other reader too
                return
            yield notice

    async def _read(self) -> None:
        """Sort every line the daemon sends; on the connection's end, fail what waits."""
        why = "the daemon closed the connection"
        try:
            while True:
                chunk = await self._reader.read(READ_SIZE)
                if not chunk:
                    break
                self._lines.feed(chunk)
                while (line := self._lines.next()) is not None:
                    if not isinstance(line, bytes):  # ndjson.TOO_LONG
                        why = f"the daemon sent a line over {ndjson.MAX_REPLY >> 20} MiB"
                        return
                    message = self._calls.receive(line)
                    if isinstance(message, jsonrpc.Notice):
                        self._notices.put_nowait(message)
                    elif message is not None:
                        waiter = self._waiting.get(message.id)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(message)
        except jsonrpc.WireError as exc:
            why = f"the daemon sent what is not JSON-RPC ({exc})"
        except OSError as exc:
            why = f"the connection to the daemon failed ({exc.strerror or exc})"
        finally:
            lost = self._gone(why)
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(lost)
            self._notices.put_nowait(_CLOSED)
            self._writer.close()

    def _gone(self, why: str) -> DaemonUnreachable:
        if self._lost is None:
            if self.link is not None:
                host = self.link.target.name
                self._lost = HostUnreachable(
                    f"lost the connection to {host}; its agents keep running", host=host
                )
            else:
                self._lost = DaemonUnreachable(f"{why} on {self.path}", socket=str(self.path))
        return self._lost

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        if self.link is not None:
            await asyncio.to_thread(self.link.close)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.aclose()
