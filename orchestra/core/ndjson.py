"""NDJSON framing, sans I/O: bytes in, bounded lines out. Every peer uses it.

The daemon's connections, the blocking client, the MCP bridge's link and the asyncio
client all feed what they read into a `LineSplitter` and take whole lines out of it;
none of them splits lines itself. A line is bounded: once the bytes buffered without a
newline pass the limit, the splitter reports `TOO_LONG` (once, straight away, so the
peer can be told before the line ends) and drops bytes up to the next newline.

Stdlib only: the CLI imports it on its fast path. (The attach stream's binary frames
are `core/frames.py`.)
"""

from __future__ import annotations

from typing import Final

# A line the daemon takes (docs/api.md "Limits"): room for a 1 MB prompt (a description
# or a task file, JSON-escaped), the largest request a client has reason to send.
MAX_REQUEST: Final = 2 * 1024 * 1024
# A line a client takes: task.tail's 4 MiB of output, JSON-escaped, can be six times that.
MAX_REPLY: Final = 64 * 1024 * 1024


_KEEP: Final = 65536  # a buffer that held a longer line is replaced once it empties


class TooLong:
    """The marker for a line over the limit (dropped up to its newline)."""

    def __repr__(self) -> str:
        return "TOO_LONG"


TOO_LONG: Final = TooLong()


class LineSplitter:
    """Whole lines out of a byte stream, each at most `limit` bytes (without its newline)."""

    __slots__ = ("_buffer", "_discarding", "_scanned", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buffer = bytearray()
        # Inside an over-long line, already reported: drop bytes up to its newline.
        self._discarding = False
        # How many bytes at the start of the buffer are known to hold no newline: a long
        # line arriving in chunks is searched once, not once per chunk.
        self._scanned = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next(self) -> bytes | TooLong | None:
        """The next whole line (without its newline), TOO_LONG for one over the limit, or
        None until more bytes are fed."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(buffer)
                if len(buffer) > self.limit and not self._discarding:
                    self._discarding = True
                    buffer.clear()
                    self._scanned = 0
                    return TOO_LONG
                if self._discarding:
                    buffer.clear()
                    self._scanned = 0
                return None
            self._scanned = 0
            if self._discarding:
                self._discarding = False
                del buffer[: end + 1]
                continue
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if not buffer and end > _KEEP:
                self._buffer = bytearray()  # give a long line's memory back
            if end > self.limit:
                return TOO_LONG
            return line

    def rest(self) -> bytes:
        """Take what is buffered after the last line taken (a connection that leaves NDJSON
        behind, as `pty.attach` does, hands it on)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        return data

    @property
    def pending(self) -> bool:
        """Whether bytes of a line not yet whole are buffered."""
        return bool(self._buffer)

    @property
    def buffered(self) -> int:
        """How many bytes are buffered (what a peer bounding its memory counts)."""
        return len(self._buffer)
