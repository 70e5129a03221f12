"""Fan-out of task events to subscribed connections.

A subscriber gets a bounded queue of encoded notifications (each event is encoded once,
however many subscribe). One that stops reading must not grow the daemon's memory or
slow anyone else: when its queue holds QUEUE_SIZE events or QUEUE_BYTES bytes it is
dropped (its channel closes; its connection sends what was queued, then tells the
client with `events.dropped`).
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import trio

from orchestra.core import jsonrpc

QUEUE_SIZE: Final = 1000  # events queued for one subscriber
QUEUE_BYTES: Final = 1024 * 1024  # their encoded bytes


@attrs.define(eq=False)
class Subscription:
    project: str | None  # None: every project
    send: trio.MemorySendChannel[bytes]
    receive: trio.MemoryReceiveChannel[bytes]
    internal: bool = False  # the daemon's own (its notifier): no client's, not counted
    # Bytes sent into the channel and not yet taken out (`taken` says so).
    queued: int = 0

    def taken(self, data: bytes) -> None:
        """The connection took `data` out of the queue, to send it."""
        self.queued -= len(data)


@attrs.define
class EventHub:
    _subs: list[Subscription] = attrs.field(factory=list)

    def subscribe(self, project: str | None, *, internal: bool = False) -> Subscription:
        send, receive = trio.open_memory_channel[bytes](QUEUE_SIZE)
        sub = Subscription(project=project, send=send, receive=receive, internal=internal)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        sub.send.close()

    def publish(self, project: str, params: dict[str, Any]) -> None:
        data: bytes | None = None
        for sub in list(self._subs):
            if sub.project not in (None, project):
                continue
            if data is None:
                data = jsonrpc.encode(jsonrpc.notification("events.task_changed", params))
            if sub.queued + len(data) > QUEUE_BYTES:
                self.unsubscribe(sub)
                continue
            try:
                sub.send.send_nowait(data)
            except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                self.unsubscribe(sub)
            else:
                sub.queued += len(data)

    def __len__(self) -> int:
        """Clients' subscriptions (daemon.status `subscribers`)."""
        return sum(not sub.internal for sub in self._subs)
