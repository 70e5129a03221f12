"""The bridge's connection to the daemon: JSON-RPC 2.0 over NDJSON on the Unix socket, on anyio.

Why anyio and not the blocking `orchestra.client.Client` in a worker thread: the MCP SDK runs
on anyio, so a socket opened with `anyio.connect_unix` is a plain awaitable stream in the same
event loop — a call costs no thread hop, and an MCP request the client cancels cancels the
read (a thread blocked in `recv` cannot be interrupted). Only the daemon's autostart, which
polls the new socket with `time.sleep`, runs in a thread (`orchestra.client.spawn_daemon`,
the very code the CLI uses), once.

One connection, one call at a time (the daemon answers a connection's requests in order
anyway). A connection found dead when sending is replaced, starting the daemon again if
autostart allows; a request is never sent twice once it may have reached the daemon.

On another host (`orchestra --host HOST mcp`) the connection is ssh to that host's bridge
(`client/remote.py`, started in a thread), and the same stream is read and written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from orchestra.client.lifecycle import refuse_autostart, spawn_daemon
from orchestra.client.trust import check_peer, check_socket_dir
from orchestra.core import jsonrpc, ndjson
from orchestra.core.errors import DaemonUnreachable

if TYPE_CHECKING:
    from orchestra.client.remote import Link
    from orchestra.core.remote import Target

# The host and where its shared ssh connections live, or None for this machine's daemon.
Remote = Callable[[], "tuple[Target, Path] | None"]

log = logging.getLogger("orchestra.mcp")

READ_SIZE = 65536
CONNECT_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


class DaemonLink:
    """A JSON-RPC client of the daemon for one event loop (anyio, so trio or asyncio)."""

    def __init__(
        self,
        where: Callable[[], tuple[Path, bool]],
        *,
        log_dir: Path,
        timeout: float = 300.0,
        remote: Remote = lambda: None,
    ) -> None:
        # (socket, autostart), asked at each (re)connect: config errors surface as call errors.
        self.where = where
        self.remote = remote
        self._link: Link | None = None
        self.log_dir = log_dir
        self.timeout = timeout  # per call: task.stop waits for the agent, task.merge for git
        self.socket = Path("(not connected)")
        self._stream: anyio.abc.SocketStream | None = None
        self._calls = jsonrpc.Calls()
        self._lines = ndjson.LineSplitter(ndjson.MAX_REPLY)
        self._lock = anyio.Lock()
        self.generation = 0  # counts connections made: a new one may be a different daemon
        self._rest = b""  # what ssh's bridge sent past its greeting

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its result, or raise RemoteError with the daemon's code,
        message and data (DaemonUnreachable when the daemon cannot be reached or started)."""
        async with self._lock:
            request_id, line = self._calls.request(method, params)
            try:
                with anyio.fail_after(self.timeout):
                    await self._send(line)
                    reply = await self._reply(request_id, method)
            except TimeoutError:
                await self._drop()
                raise DaemonUnreachable(
                    f"the daemon did not answer {method} within {self.timeout:.0f} s;"
                    " check `orchestra daemon status`",
                    socket=str(self.socket),
                ) from None
            except BaseException:
                # Cancelled or broken mid-call: the reply may still come; start afresh.
                await self._drop()
                raise
            finally:
                self._calls.forget(request_id)
        return reply.value()

    async def _send(self, line: bytes) -> None:
        """Send on the open connection; if it turns out dead, reconnect once and send again
        (a send that failed delivered nothing, so the retry cannot run a request twice)."""
        for _attempt in range(2):
            reused = self._stream is not None
            stream = await self._connected()
            try:
                await stream.send(line)
                return
            except CONNECT_ERRORS:
                await self._drop()
                if not reused:
                    break
                log.info("the daemon connection was closed; reconnecting")
        raise DaemonUnreachable(
            f"the daemon closed the connection on {self.socket}; check `orchestra daemon status`",
            socket=str(self.socket),
        )

    async def _reply(self, request_id: int, method: str) -> jsonrpc.Response:
        assert self._stream is not None
        while True:
            line = self._lines.next()
            if line is None:
                try:
                    chunk = await self._stream.receive(READ_SIZE)
                except (anyio.EndOfStream, *CONNECT_ERRORS):
                    chunk = b""
                if not chunk:
                    raise DaemonUnreachable(
                        f"the daemon closed the connection during {method} (did it stop or"
                        " restart?); check `orchestra daemon status`, then retry",
                        socket=str(self.socket),
                    )
                self._lines.feed(chunk)
                continue
            if not isinstance(line, bytes):  # ndjson.TOO_LONG
                raise DaemonUnreachable(
                    f"the daemon's reply to {method} is over {ndjson.MAX_REPLY >> 20} MiB;"
                    " ask for less",
                    socket=str(self.socket),
                )
            try:
                message = self._calls.receive(line)
            except jsonrpc.WireError:
                raise DaemonUnreachable(
                    f"the daemon sent an unreadable reply to {method}: {line[:80]!r}",
                    socket=str(self.socket),
                ) from None
            # Skip notifications and anything left over from a cancelled call.
            if isinstance(message, jsonrpc.Response) and message.id == request_id:
                return message

    async def _connected(self) -> anyio.abc.SocketStream:
        if self._stream is not None:
            return self._stream
        far = self.remote()
        if far is not None:
            stream = await self._open_remote(*far)
            self._stream = stream
            self._lines = ndjson.LineSplitter(ndjson.MAX_REPLY)
            self._lines.feed(self._rest)
            self.generation += 1
            return stream
        self.socket, autostart = self.where()
        try:
            stream = await self._open()
        except DaemonUnreachable as exc:
            refuse_autostart(self.socket, autostart)
            log.info("no daemon on %s (%s); starting one", self.socket, exc.message)
            await anyio.to_thread.run_sync(spawn_daemon, self.socket, self.log_dir)
            stream = await self._open()
        self._stream = stream
        self._lines = ndjson.LineSplitter(ndjson.MAX_REPLY)
        self.generation += 1
        return stream

    async def _open_remote(self, target: Target, control_dir: Path) -> anyio.abc.SocketStream:
        """ssh to the host's bridge (its daemon started there as its autostart allows)."""
        from orchestra.client.remote import open_link

        self.socket = Path(target.name)
        sock, self._link, self._rest = await anyio.to_thread.run_sync(
            lambda: open_link(target, control_dir=control_dir)
        )
        return await anyio.abc.UNIXSocketStream.from_socket(sock)

    async def _open(self) -> anyio.abc.SocketStream:
        """Connect as the CLI's client does: to a private directory of ours, and to a
        listener of our own uid (UntrustedSocket otherwise, before a byte is sent)."""
        check_socket_dir(self.socket)
        try:
            stream = await anyio.connect_unix(self.socket)
        except OSError as exc:
            raise DaemonUnreachable(
                f"the daemon is not answering on {self.socket} ({exc.strerror or exc})",
                socket=str(self.socket),
            ) from None
        try:
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)  # noqa: S610 - not Django
            check_peer(raw, self.socket)
        except BaseException:
            await stream.aclose()
            raise
        return stream

    async def _drop(self) -> None:
        stream, self._stream = self._stream, None
        link, self._link = self._link, None
        with anyio.CancelScope(shield=True):
            if stream is not None:
                await stream.aclose()
            if link is not None:
                await anyio.to_thread.run_sync(link.close)

    async def aclose(self) -> None:
        await self._drop()
