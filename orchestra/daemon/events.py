"""Fan-out of task events to subscribed connections.

A subscriber gets a bounded queue. One that stops reading must not grow the
daemon's memory or slow anyone else: when its queue is full it is dropped (its
channel closes, and its connection tells the client so).
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

QUEUE_SIZE = 1000


@attrs.define(eq=False)
class Subscription:
    project: str | None  # None: every project
    send: trio.MemorySendChannel[dict[str, Any]]
    receive: trio.MemoryReceiveChannel[dict[str, Any]]
    internal: bool = False  # the daemon's own (its notifier): no client's, not counted


@attrs.define
class EventHub:
    _subs: list[Subscription] = attrs.field(factory=list)

    def subscribe(self, project: str | None, *, internal: bool = False) -> Subscription:
        send, receive = trio.open_memory_channel[dict[str, Any]](QUEUE_SIZE)
        sub = Subscription(project=project, send=send, receive=receive, internal=internal)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
        sub.send.close()

    def publish(self, project: str, params: dict[str, Any]) -> None:
        for sub in list(self._subs):
            if sub.project not in (None, project):
                continue
            try:
                sub.send.send_nowait(params)
            except trio.WouldBlock:
                self.unsubscribe(sub)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self.unsubscribe(sub)

    def __len__(self) -> int:
        """Clients' subscriptions (daemon.status `subscribers`)."""
        return sum(not sub.internal for sub in self._subs)
