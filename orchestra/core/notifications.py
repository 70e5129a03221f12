"""Desktop notifications a program sends its terminal, as one line of text.

Three forms are in use: OSC 9 (iTerm2: `9;text`, not ConEmu's `9;4;...` progress
reports), OSC 777 (rxvt: `777;notify;title;body`) and OSC 99 (kitty: a title and a
body that may come in separate sequences, joined by their `i=` id, either part
possibly base64 with `e=1`).

Stdlib and attrs only, no I/O.
"""

from __future__ import annotations

import base64
import contextlib
import re
from typing import Final

import attrs

_PROGRESS: Final = re.compile(rb"\d+(;|$)")  # ConEmu's OSC 9 sub-commands
MAX_PENDING: Final = 32
"""OSC 99 notifications kept by id (the oldest is forgotten first)."""


def join(title: str | None, body: str | None) -> str:
    """`title: body`, or whichever of them is not empty."""
    return ": ".join(v for v in (title, body) if v)


@attrs.define
class NotificationReader:
    """Reads notifications from OSC bodies. `skip` lists the OSC numbers an engine
    reports itself (libghostty-vt reports 9 and 777).

    Invariant: `_notes` holds at most MAX_PENDING OSC 99 notifications, by id, each
    with the parts ("title", "body") received so far.
    """

    skip: frozenset[bytes] = frozenset()
    _notes: dict[bytes, dict[str, str]] = attrs.field(factory=dict)

    def read(self, body: bytes) -> str | None:
        """The notification an OSC body (between `ESC ]` and its terminator) shows, as
        it reads so far; None when the body is no notification."""
        num, _, rest = body.partition(b";")
        if num in self.skip:
            return None
        if num == b"9":
            return None if _PROGRESS.match(rest) else rest.decode("utf-8", "replace")
        if num == b"777":
            parts = rest.split(b";", 2)
            if parts[0] != b"notify":
                return None
            return b": ".join(p for p in parts[1:] if p).decode("utf-8", "replace")
        if num == b"99":
            return self._kitty(rest)
        return None

    def _kitty(self, rest: bytes) -> str | None:
        meta, _, payload = rest.partition(b";")
        keys = dict(kv.partition(b"=")[::2] for kv in meta.split(b":") if kv)
        part = keys.get(b"p", b"title")
        if part not in (b"title", b"body"):
            return None  # a query, buttons, icons...
        if keys.get(b"e") == b"1":
            with contextlib.suppress(ValueError):  # shown as sent
                payload = base64.b64decode(payload)
        note = self._notes.setdefault(keys.get(b"i", b""), {})
        note[part.decode()] = payload.decode("utf-8", "replace")
        if len(self._notes) > MAX_PENDING:
            self._notes.pop(next(iter(self._notes)))
        return join(note.get("title"), note.get("body"))
