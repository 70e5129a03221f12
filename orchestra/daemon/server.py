"""The Unix socket server: NDJSON framing, one task per connection.

A connection is a two-way peer: it sends requests, gets replies in order, and,
after `events.subscribe`, also receives notifications. Nothing a client sends
(garbage, a 10 MB line, half a line then a hang-up) can take the daemon down or
hold up another client: each connection has its own task, lines are bounded,
and errors end only that connection.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from orchestra.core import jsonrpc
from orchestra.core.config import parse_detach_keys
from orchestra.core.errors import OrchestraError
from orchestra.daemon.attach import receive_terminal, serve_viewer
from orchestra.daemon.dispatch import ATTACH, Daemon, dispatch, prepare_attach
from orchestra.daemon.events import Subscription

MAX_MESSAGE = 4 * 1024 * 1024  # bytes in one line; longer ones are refused
READ_SIZE = 65536

log = logging.getLogger("orchestra.daemon")


class Connection:
    def __init__(self, daemon: Daemon, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        self.daemon = daemon
        self.stream = stream
        self.nursery = nursery
        self.send_lock = trio.Lock()
        self.subs: list[Subscription] = []

    async def send(self, data: bytes) -> None:
        async with self.send_lock:
            await self.stream.send_all(data)

    def forward(self, sub: Subscription) -> None:
        self.subs.append(sub)
        self.nursery.start_soon(self._pump, sub)

    async def _pump(self, sub: Subscription) -> None:
        try:
            async for params in sub.receive:
                await self.send(jsonrpc.encode(jsonrpc.notification("events.task_changed", params)))
            # The hub dropped us (we read too slowly): say so rather than go silent.
            await self.send(
                jsonrpc.encode(
                    jsonrpc.notification("events.dropped", {"reason": "client too slow"})
                )
            )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client is gone; serve() ends the connection

    async def serve(self) -> None:
        buffer = bytearray()
        discarding = False  # inside an over-long line: drop bytes until its newline
        while True:
            chunk = await self.stream.receive_some(READ_SIZE)
            if not chunk:
                return
            buffer += chunk
            while True:
                end = buffer.find(b"\n")
                if end < 0:
                    break
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                if discarding:
                    discarding = False
                    continue
                upgrade = await self._handle(line)
                if upgrade is not None:
                    run, params = upgrade  # the rest of this connection is the terminal stream
                    tty = None
                    if params.tty:  # the client hands its terminal over, and sends nothing else
                        tty = None if buffer else await receive_terminal(self.stream)
                        if tty is None:
                            return
                    await serve_viewer(
                        run,
                        self.stream,
                        bytes(buffer),
                        read_only=params.read_only,
                        cols=params.cols,
                        rows=params.rows,
                        tty=tty,
                        detach_keys=parse_detach_keys(params.detach_keys),
                    )
                    return
            if len(buffer) > MAX_MESSAGE and not discarding:
                discarding = True
                buffer.clear()
                await self.send(
                    jsonrpc.encode(
                        jsonrpc.error(
                            None,
                            jsonrpc.INVALID_REQUEST,
                            f"Invalid Request: message longer than {MAX_MESSAGE} bytes",
                        )
                    )
                )
            elif discarding:
                buffer.clear()

    async def _handle(self, line: bytes) -> tuple[Any, Any] | None:
        """Answer one framed message; returns (run, params) when it upgrades to attach."""
        if not line.strip():
            return None
        incoming = jsonrpc.parse(line)
        first = incoming.items[0]
        if not incoming.batch and isinstance(first, jsonrpc.Request) and first.method == ATTACH:
            # A notification gets no reply, and an attach without one is no attach.
            return None if first.notification else await self._attach(first)
        replies: list[jsonrpc.Reply | None] = []
        for item in incoming.items:
            if isinstance(item, jsonrpc.Request):
                replies.append(await dispatch(self.daemon, self, item))
            else:
                replies.append(item.reply)
        data = incoming.assemble(replies)
        if data is not None:
            await self.send(data)
        if self.daemon.stopping is self:
            self.daemon.shutdown.set()  # daemon.shutdown's reply is out: now stop
        return None

    async def _attach(self, request: jsonrpc.Request) -> tuple[Any, Any] | None:
        """`pty.attach`: reply, then hand the connection to the viewer (no more JSON)."""
        try:
            result, upgrade = await prepare_attach(self.daemon, request.params)
        except OrchestraError as exc:
            wire = exc.to_wire()
            await self.send(
                jsonrpc.encode(
                    jsonrpc.error(request.id, wire["code"], wire["message"], wire["data"])
                )
            )
            return None
        await self.send(jsonrpc.encode(jsonrpc.result(request.id, result)))
        run, params = upgrade
        return run, params

    def close(self) -> None:
        for sub in self.subs:
            self.daemon.hub.unsubscribe(sub)


async def handle_client(daemon: Daemon, stream: trio.SocketStream) -> None:
    async with stream, trio.open_nursery() as nursery:
        conn = Connection(daemon, stream, nursery)
        try:
            await conn.serve()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client hung up mid-call: nothing to answer
        except Exception:
            # A bug must cost one connection, never the daemon.
            log.exception("connection failed", extra={"event": "daemon.connection_error"})
        finally:
            conn.close()
            nursery.cancel_scope.cancel()


async def serve(daemon: Daemon, listener: trio.SocketListener) -> None:
    async with trio.open_nursery() as nursery:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # EMFILE and friends: back off, keep serving
                log.warning("accept failed: %s", exc, extra={"event": "daemon.accept_failed"})
                await trio.sleep(0.1)
                continue
            nursery.start_soon(handle_client, daemon, stream)
