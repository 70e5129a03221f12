"""The Unix socket server: one task per connection, NDJSON lines in, replies out.

A connection is a two-way peer: it sends requests, gets replies in order, and,
after `events.subscribe`, also receives notifications. Nothing a client sends
(garbage, a 10 MB line, half a line then a hang-up) can take the daemon down or
hold up another client: each connection has its own task, lines are bounded
(`core/ndjson.py`), and errors end only that connection. Every method, `pty.attach`
included, is answered by `dispatch` (the one exception-to-wire boundary); an attach
that succeeded leaves JSON-RPC behind once its reply is out (`Connection.upgrade`).

Accepting is `trio.serve_listeners`': on EMFILE, ENFILE, ENOBUFS or ENOMEM it waits
100 ms and accepts again, so a daemon out of descriptors keeps serving those it has
and takes new clients once some close. Any other failure of the listener (it was
closed under us: EBADF, ENOTSOCK; or accept fails for good, as EINVAL on a socket
that no longer listens) would fail at every accept: the daemon logs it and stops,
as on SIGTERM (its agents stopped, its socket removed), and exits with status 1 so a
service manager restarts it (`Restart=on-failure`), rather than retry forever.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

import attrs
import trio

from orchestra.core import jsonrpc, ndjson
from orchestra.daemon.attach import enter_attach
from orchestra.daemon.dispatch import Daemon, dispatch
from orchestra.daemon.events import Subscription

READ_SIZE = 65536
# What serve_listeners waits out (trio's ACCEPT_CAPACITY_ERRNOS); we log them too.
CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

log = logging.getLogger("orchestra.daemon")


class Connection:
    def __init__(self, daemon: Daemon, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        self.daemon = daemon
        self.stream = stream
        self.nursery = nursery
        self.send_lock = trio.Lock()
        self.subs: list[Subscription] = []
        self.lines = ndjson.LineSplitter(ndjson.MAX_REQUEST)
        # Set by pty.attach (through `upgrade`): once its reply is out, the rest of this
        # connection is the attach stream of (run, params).
        self.upgraded: tuple[Any, Any] | None = None

    async def send(self, data: bytes) -> None:
        async with self.send_lock:
            await self.stream.send_all(data)

    def forward(self, sub: Subscription) -> None:
        self.subs.append(sub)
        self.nursery.start_soon(self._pump, sub)

    def upgrade(self, run: Any, params: Any) -> None:
        self.upgraded = (run, params)

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
        lines = self.lines
        while True:
            chunk = await self.stream.receive_some(READ_SIZE)
            if not chunk:
                return
            lines.feed(chunk)
            while (line := lines.next()) is not None:
                if line is ndjson.TOO_LONG:
                    await self.send(
                        jsonrpc.encode(
                            jsonrpc.error(
                                None,
                                jsonrpc.INVALID_REQUEST,
                                f"Invalid Request: message longer than {lines.limit} bytes",
                            )
                        )
                    )
                    continue
                assert isinstance(line, bytes)
                await self._handle(line)
                if self.upgraded is not None:
                    run, params = self.upgraded
                    await enter_attach(run, params, self.stream, lines.rest())
                    return

    async def _handle(self, line: bytes) -> None:
        """Answer one framed message."""
        if not line.strip():
            return
        incoming = jsonrpc.parse(line)
        alone = not incoming.batch
        replies: list[jsonrpc.Reply | None] = []
        for item in incoming.items:
            if isinstance(item, jsonrpc.Request):
                replies.append(await dispatch(self.daemon, self, item, alone=alone))
            else:
                replies.append(item.reply)
        data = incoming.assemble(replies)
        if data is not None:
            await self.send(data)
        if self.daemon.stopping is self:
            self.daemon.shutdown.set()  # daemon.shutdown's reply is out: now stop

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


@attrs.define(eq=False)
class LoggedListener(trio.abc.Listener[trio.SocketStream]):
    """The daemon's listener, with a failed accept logged to the daemon's log (then
    raised for `serve_listeners` to wait out or give up on)."""

    listener: trio.SocketListener

    async def accept(self) -> trio.SocketStream:
        try:
            return await self.listener.accept()
        except OSError as exc:
            level = logging.WARNING if exc.errno in CAPACITY_ERRNOS else logging.ERROR
            log.log(level, "accept failed: %s", exc, extra={"event": "daemon.accept_failed"})
            raise

    async def aclose(self) -> None:
        await self.listener.aclose()


async def serve(daemon: Daemon, listener: trio.SocketListener) -> None:
    """Serve connections until cancelled. Returns only when the listener failed for good
    (see the module docstring): then it has logged it and asked the daemon to stop."""

    async def handler(stream: trio.SocketStream) -> None:
        await handle_client(daemon, stream)

    async with trio.open_nursery() as connections:
        try:
            await trio.serve_listeners(
                handler,
                [LoggedListener(listener)],
                handler_nursery=connections,
            )
        except* (OSError, trio.ClosedResourceError) as group:
            reason = "; ".join(str(exc) for exc in group.exceptions)
            log.error(
                "the listening socket failed (%s): stopping the daemon",
                reason or "it was closed",
                extra={"event": "daemon.listener_failed"},
            )
        daemon.shutdown.set()  # the connections still open finish their calls meanwhile
