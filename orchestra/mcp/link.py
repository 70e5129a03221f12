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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from orchestra.client import check_peer, check_socket_dir, refuse_autostart, spawn_daemon
from orchestra.core.errors import DaemonUnreachable, RemoteError

log = logging.getLogger("orchestra.mcp")

MAX_LINE = 64 * 1024 * 1024  # a reply line; task.tail alone may carry 4 MiB of escaped output
CONNECT_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


class DaemonLink:
    """A JSON-RPC client of the daemon for one event loop (anyio, so trio or asyncio)."""

    def __init__(
        self,
        where: Callable[[], tuple[Path, bool]],
        *,
        log_dir: Path,
        timeout: float = 300.0,
    ) -> None:
        # (socket, autostart), asked at each (re)connect: config errors surface as call errors.
        self.where = where
        self.log_dir = log_dir
        self.timeout = timeout  # per call: task.stop waits for the agent, task.merge for git
        self.socket = Path("(not connected)")
        self._stream: anyio.abc.SocketStream | None = None
        self._reader: BufferedByteReceiveStream | None = None
        self._lock = anyio.Lock()
        self._next_id = 0
        self.generation = 0  # counts connections made: a new one may be a different daemon

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its result, or raise RemoteError with the daemon's code,
        message and data (DaemonUnreachable when the daemon cannot be reached or started)."""
        async with self._lock:
            self._next_id += 1
            request_id = self._next_id
            message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
            if params is not None:
                message["params"] = dict(params)
            line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
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
        if "error" in reply:
            err = reply["error"] if isinstance(reply["error"], dict) else {}
            data = err.get("data")
            raise RemoteError(
                int(err.get("code", -32603)),
                str(err.get("message", "error")),
                data if isinstance(data, dict) else None,
            )
        return reply.get("result")

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

    async def _reply(self, request_id: int, method: str) -> dict[str, Any]:
        assert self._reader is not None
        while True:
            try:
                raw = await self._reader.receive_until(b"\n", MAX_LINE)
            except anyio.DelimiterNotFound:
                raise DaemonUnreachable(
                    f"the daemon's reply to {method} is over {MAX_LINE >> 20} MiB; ask for less",
                    socket=str(self.socket),
                ) from None
            except (anyio.IncompleteRead, anyio.EndOfStream, *CONNECT_ERRORS):
                raise DaemonUnreachable(
                    f"the daemon closed the connection during {method} (did it stop or"
                    " restart?); check `orchestra daemon status`, then retry",
                    socket=str(self.socket),
                ) from None
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                raise DaemonUnreachable(
                    f"the daemon sent an unreadable reply to {method}: {raw[:80]!r}",
                    socket=str(self.socket),
                ) from None
            # Skip notifications and anything left over from a cancelled call.
            if isinstance(value, dict) and "method" not in value and value.get("id") == request_id:
                return value

    async def _connected(self) -> anyio.abc.SocketStream:
        if self._stream is not None:
            return self._stream
        self.socket, autostart = self.where()
        try:
            stream = await self._open()
        except DaemonUnreachable as exc:
            refuse_autostart(self.socket, autostart)
            log.info("no daemon on %s (%s); starting one", self.socket, exc.message)
            await anyio.to_thread.run_sync(spawn_daemon, self.socket, self.log_dir)
            stream = await self._open()
        self._stream = stream
        self._reader = BufferedByteReceiveStream(stream)
        self.generation += 1
        return stream

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
        stream, self._stream, self._reader = self._stream, None, None
        if stream is not None:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def aclose(self) -> None:
        await self._drop()
