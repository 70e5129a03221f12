"""The Unix socket server: one task per connection, NDJSON lines in, replies out.

A connection is a two-way peer: it sends requests, gets replies in order, and,
after `events.subscribe`, also receives notifications. Nothing a client sends
(garbage, a 10 MB line, half a line then a hang-up) can take the daemon down or
hold up another client: each connection has its own task, and errors end only that
connection. Every method, `pty.attach` included, is answered by `dispatch` (the one
exception-to-wire boundary); an attach that succeeded leaves JSON-RPC behind once its
reply is out (`Connection.upgrade`).

What each connection may cost is bounded (docs/api.md "Limits"), so that what one
client does cannot stall or bloat the daemon that serves every other:

- Backpressure: a connection's requests are handled one at a time and its next line is
  not read while a reply is unsent, so a client that does not read its replies stops
  being read (its requests wait in the kernel, not here). A reply is sent in pieces; one
  that makes no progress for `stall_timeout` seconds ends the connection (logged).
- Memory: a connection buffers at most FREE_BYTES of a line for nothing; a longer line
  takes room from a daemon-wide budget of LINE_BUDGET bytes, a piece at a time, and must
  be finished within `stall_timeout` seconds of taking the first. A line is at most
  `ndjson.MAX_REQUEST`; a reply is encoded a piece at a time (`jsonrpc.encode_chunks`),
  a batch's replies one member at a time.
- Work: a `heavy` line (long, or with many arrays and objects) is parsed in a worker
  thread, one at a time daemon-wide; a batch has at most `jsonrpc.MAX_BATCH` members
  and yields to the other connections between them; a costly method (git, every task
  file, a long reply) holds one of `Daemon.costly`'s slots until its reply is sent.
- Connections: at most `connections` (and fewer than the descriptors allow, keeping
  DESCRIPTOR_RESERVE for agents' PTYs, git and task files); one more is told so in one
  JSON-RPC error and closed. A connection that sends no request for `idle_timeout`
  seconds is closed, unless it subscribed to events.

Accepting is `trio.serve_listeners`': on EMFILE, ENFILE, ENOBUFS or ENOMEM it waits
100 ms and accepts again, so a daemon out of descriptors keeps serving those it has
and takes new clients once some close. Any other failure of the listener (it was
closed under us: EBADF, ENOTSOCK; or accept fails for good, as EINVAL on a socket
that no longer listens) would fail at every accept: the daemon logs it and stops,
as on SIGTERM (its agents stopped, its socket removed), and exits with status 1 so a
service manager restarts it (`Restart=on-failure`), rather than retry forever.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

import attrs
import trio

from orchestra.core import jsonrpc, ndjson
from orchestra.core.config import LimitsConfig
from orchestra.daemon.attach import enter_attach
from orchestra.daemon.dispatch import METHODS, Daemon, dispatch
from orchestra.daemon.events import Subscription

READ_SIZE: Final = 65536  # bytes read at once (and taken from the line budget at once)
READ_MIN: Final = 4096  # less room than this for a line: take READ_SIZE from the budget
FREE_BYTES: Final = 16 * 1024  # of a line, buffered per connection without the budget
LINE_BUDGET: Final = 16 * 1024 * 1024  # bytes of longer lines buffered, daemon-wide
SEND_PIECE: Final = 65536  # bytes sent in one step, each within stall_timeout
DESCRIPTOR_RESERVE: Final = 256  # descriptors kept for agents' PTYs, git, task files
REFUSALS: Final = 64  # connections refused at once (past it, closed without a word)
# What serve_listeners waits out (trio's ACCEPT_CAPACITY_ERRNOS); we log them too.
CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

log = logging.getLogger("orchestra.daemon")


@attrs.frozen(kw_only=True)
class Limits:
    """What each connection may hold (config `[limits]`, capped by the descriptors)."""

    connections: int = 1000
    idle_timeout: float = 300.0
    stall_timeout: float = 10.0

    @classmethod
    def from_config(cls, config: LimitsConfig, descriptors: int | None) -> Limits:
        """The configured limits; `descriptors` (the soft RLIMIT_NOFILE) caps connections."""
        connections = config.connections
        if descriptors is not None:
            connections = min(connections, max(1, descriptors - DESCRIPTOR_RESERVE))
        return cls(
            connections=connections,
            idle_timeout=config.idle_timeout,
            stall_timeout=config.stall_timeout,
        )


class Budget:
    """A daemon-wide count of bytes that connections take and give back (longer lines)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._waiting = trio.lowlevel.ParkingLot()

    async def take(self, n: int) -> None:
        while self.used + n > self.total:
            await self._waiting.park()
        self.used += n

    def give(self, n: int) -> None:
        self.used -= n
        self._waiting.unpark_all()


@attrs.define(eq=False)
class Server:
    """What the connections share: the limits, the line budget, the count of those open."""

    daemon: Daemon
    limits: Limits = attrs.field(factory=Limits)
    budget: Budget = attrs.field(factory=lambda: Budget(LINE_BUDGET))
    # One heavy line parsed at a time: a single thread contends with the loop for the GIL.
    parsing: trio.CapacityLimiter = attrs.field(factory=lambda: trio.CapacityLimiter(1))
    open: int = 0  # connections being served
    refusing: int = 0  # connections being refused
    full: bool = False  # the last connection was refused (logged once per episode)


class Stuck(Exception):
    """The client let a reply or a line of its own wait past `stall_timeout`."""


class Connection:
    def __init__(self, server: Server, stream: trio.SocketStream, nursery: trio.Nursery) -> None:
        self.server = server
        self.daemon = server.daemon
        self.stream = stream
        self.nursery = nursery
        self.send_lock = trio.Lock()
        self.subs: list[Subscription] = []
        self.lines = ndjson.LineSplitter(ndjson.MAX_REQUEST)
        self.charged = 0  # bytes of the line budget this connection holds
        self.line_deadline = math.inf  # when the line holding them must be whole
        self.spoke = trio.current_time()  # when it connected or its last request was answered
        # Set by pty.attach (through `upgrade`): once its reply is out, the rest of this
        # connection is the attach stream of (run, params).
        self.upgraded: tuple[Any, Any] | None = None

    # -- sending ----------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        async with self.send_lock:
            await self._send(data)

    async def _send(self, data: bytes) -> None:
        """Send `data` (the send lock held), a piece at a time, each within the stall timeout."""
        view = memoryview(data)
        for at in range(0, len(view), SEND_PIECE):
            with trio.move_on_after(self.server.limits.stall_timeout) as scope:
                await self.stream.send_all(view[at : at + SEND_PIECE])
            if scope.cancelled_caught:
                raise Stuck(f"read none of a reply for {self.server.limits.stall_timeout:g} s")

    async def _reply(self, incoming: jsonrpc.Incoming) -> None:
        """Run a message's requests and send their replies: a batch's one member at a
        time, yielding to the other connections between members, its line under the send
        lock from its first byte to its last. A costly method holds `Daemon.costly` until
        its reply is sent."""
        if not incoming.batch:
            (item,) = incoming.items
            async with self._slot(item):
                reply = await self._answer(item, alone=True)
                if reply is not None:
                    async with self.send_lock:
                        for piece in jsonrpc.encode_chunks(reply):
                            await self._send(piece)
            return
        expected = sum(
            (not item.notification) if isinstance(item, jsonrpc.Request) else item.reply is not None
            for item in incoming.items
        )
        if not expected:  # only notifications: no reply at all
            for item in incoming.items:
                async with self._slot(item):
                    await self._answer(item, alone=False)
                await trio.lowlevel.checkpoint()
            return
        async with self.send_lock:
            sent = 0
            for item in incoming.items:
                async with self._slot(item):
                    reply = await self._answer(item, alone=False)
                    await trio.lowlevel.checkpoint()
                    if reply is None:
                        continue
                    sent += 1
                    opening = b"[" if sent == 1 else b","
                    for piece in jsonrpc.encode_chunks(reply):
                        piece, opening = opening + piece, b""
                        if piece.endswith(b"\n"):  # its last piece: the batch's, or a comma next
                            piece = piece[:-1] + (b"]\n" if sent == expected else b"")
                        await self._send(piece)

    def _slot(self, item: jsonrpc.Request | jsonrpc.Invalid) -> AbstractAsyncContextManager[Any]:
        """`Daemon.costly` for a call of a costly method, nothing for any other."""
        if isinstance(item, jsonrpc.Request):
            method = METHODS.get(item.method)
            if method is not None and method.costly:
                return self.daemon.costly
        return contextlib.nullcontext()

    async def _answer(self, item: jsonrpc.Request | jsonrpc.Invalid, *, alone: bool) -> Any:
        if isinstance(item, jsonrpc.Request):
            return await dispatch(self.daemon, self, item, alone=alone)
        return item.reply

    # -- what methods ask of their connection --------------------------------------

    def forward(self, sub: Subscription) -> None:
        self.subs.append(sub)
        self.nursery.start_soon(self._pump, sub)

    def upgrade(self, run: Any, params: Any) -> None:
        self.upgraded = (run, params)

    async def _pump(self, sub: Subscription) -> None:
        try:
            async for data in sub.receive:
                sub.taken(data)
                await self.send(data)
            # The hub dropped us (we read too slowly): say so rather than go silent.
            await self.send(
                jsonrpc.encode(
                    jsonrpc.notification("events.dropped", {"reason": "client too slow"})
                )
            )
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client is gone; serve() ends the connection
        except Stuck as exc:
            log.warning(
                "a subscriber %s: disconnected",
                exc,
                extra={"event": "daemon.client_stuck", "subscribed": True},
            )
            await self.stream.aclose()

    # -- reading ----------------------------------------------------------------------

    async def _receive(self) -> bytes | None:
        """The next bytes from the client (b"" at its end), or None when it stayed idle
        past `idle_timeout`. Raises Stuck when a long line stays unfinished."""
        limits = self.server.limits
        room = FREE_BYTES + self.charged - self.lines.buffered
        if room < READ_MIN:
            with trio.move_on_at(self.line_deadline) as scope:
                await self.server.budget.take(READ_SIZE)
            if scope.cancelled_caught:
                raise Stuck(self._unfinished())
            if not self.charged:
                self.line_deadline = trio.current_time() + limits.stall_timeout
            self.charged += READ_SIZE
            room += READ_SIZE
        if self.charged:
            deadline = self.line_deadline
        elif self.subs:
            deadline = math.inf
        else:
            deadline = self.spoke + limits.idle_timeout
        with trio.move_on_at(deadline) as scope:
            return await self.stream.receive_some(min(room, READ_SIZE))
        if self.charged:
            raise Stuck(self._unfinished())
        return None

    def _unfinished(self) -> str:
        return (
            f"sent {self.lines.buffered} bytes of a line and did not finish it within"
            f" {self.server.limits.stall_timeout:g} s"
        )

    def _refund(self) -> None:
        """Give back the budget the buffered bytes no longer need."""
        need = max(0, self.lines.buffered - FREE_BYTES)
        keep = -(-need // READ_SIZE) * READ_SIZE  # whole reads' worth
        if keep < self.charged:
            self.server.budget.give(self.charged - keep)
            self.charged = keep
        if not self.charged:
            self.line_deadline = math.inf

    async def serve(self) -> None:
        lines = self.lines
        while True:
            chunk = await self._receive()
            if chunk is None:
                log.info(
                    "a client sent nothing for %g s: disconnected",
                    self.server.limits.idle_timeout,
                    extra={"event": "daemon.client_idle"},
                )
                return
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
                                {"limit": "line", "max": lines.limit},
                            )
                        )
                    )
                    continue
                assert isinstance(line, bytes)
                await self._handle(line)
                self.spoke = trio.current_time()
                if self.upgraded is not None:
                    self._refund()
                    run, params = self.upgraded
                    await enter_attach(run, params, self.stream, lines.rest())
                    return
            self._refund()

    async def _handle(self, line: bytes) -> None:
        """Answer one framed message."""
        if not line.strip():
            return
        if jsonrpc.heavy(line):
            async with self.server.parsing:
                incoming = await trio.to_thread.run_sync(
                    lambda: jsonrpc.parse(line, slow=True), abandon_on_cancel=True
                )
        else:
            incoming = jsonrpc.parse(line)
        await self._reply(incoming)
        if self.daemon.stopping is self:
            self.daemon.shutdown.set()  # daemon.shutdown's reply is out: now stop

    def close(self) -> None:
        for sub in self.subs:
            self.daemon.hub.unsubscribe(sub)
        if self.charged:
            self.server.budget.give(self.charged)
            self.charged = 0


async def handle_client(server: Server, stream: trio.SocketStream) -> None:
    async with stream, trio.open_nursery() as nursery:
        conn = Connection(server, stream, nursery)
        try:
            await conn.serve()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client hung up mid-call: nothing to answer
        except Stuck as exc:
            log.warning("a client %s: disconnected", exc, extra={"event": "daemon.client_stuck"})
        except Exception:
            # A bug must cost one connection, never the daemon.
            log.exception("connection failed", extra={"event": "daemon.connection_error"})
        finally:
            conn.close()
            nursery.cancel_scope.cancel()


async def refuse(server: Server, stream: trio.SocketStream) -> None:
    """Tell a connection past the limit why, in one JSON-RPC error, then close it."""
    limit = server.limits.connections
    if not server.full:
        server.full = True
        log.warning(
            "%d connections open, the limit: refusing more",
            limit,
            extra={"event": "daemon.connections_full", "limit": limit},
        )
    async with stream:
        if server.refusing >= REFUSALS:
            return  # a flood: close at once rather than hold a descriptor for each
        server.refusing += 1
        try:
            with trio.move_on_after(1.0):
                await stream.send_all(jsonrpc.encode(refusal(limit)))
                # Wait for its first request before closing: a client whose request came
                # after the close would fail to send it, and never read the error.
                while (chunk := await stream.receive_some(READ_SIZE)) and b"\n" not in chunk:
                    pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            server.refusing -= 1


def refusal(limit: int) -> jsonrpc.Reply:
    return jsonrpc.error(
        None,
        -32000,
        f"the daemon already serves {limit} connections, its limit; close some (or raise"
        " limits.connections in the config) and try again",
        {"kind": "too_many_connections", "limit": "connections", "max": limit},
    )


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


async def serve(
    daemon: Daemon, listener: trio.SocketListener, limits: Limits | None = None
) -> None:
    """Serve connections until cancelled. Returns only when the listener failed for good
    (see the module docstring): then it has logged it and asked the daemon to stop."""
    server = Server(daemon=daemon, limits=limits or Limits())

    async def handler(stream: trio.SocketStream) -> None:
        if server.open >= server.limits.connections:
            await refuse(server, stream)
            return
        server.open += 1
        server.full = False
        try:
            await handle_client(server, stream)
        finally:
            server.open -= 1

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
