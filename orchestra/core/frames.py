"""The attach stream's framing, sans I/O.

After a successful `pty.attach` reply (one JSON-RPC line), the connection stops
speaking JSON: both directions carry frames, so terminal bytes travel as they
are (no base64, no JSON escaping):

    kind: 1 byte | length: 4 bytes, big-endian | payload: `length` bytes

Daemon -> client: OUTPUT (terminal bytes), EXIT (JSON: why the stream ends).
Client -> daemon: INPUT (keys), RESIZE (JSON: {"cols", "rows"}), DETACH (empty).
"""

from __future__ import annotations

import json
import struct
from typing import Any, Final

OUTPUT: Final = b"o"
EXIT: Final = b"x"
INPUT: Final = b"i"
RESIZE: Final = b"r"
DETACH: Final = b"d"
KINDS: Final = frozenset({OUTPUT, EXIT, INPUT, RESIZE, DETACH})

_HEADER = struct.Struct("!cI")
HEADER_SIZE: Final = _HEADER.size
MAX_PAYLOAD: Final = 1 << 20


class FrameError(ValueError):
    """The peer sent something that is not a frame: the stream cannot continue."""


def encode(kind: bytes, payload: bytes = b"") -> bytes:
    return _HEADER.pack(kind, len(payload)) + payload


def encode_json(kind: bytes, value: Any) -> bytes:
    return encode(kind, json.dumps(value, separators=(",", ":")).encode())


class Decoder:
    """Feed bytes as they arrive; take whole frames out."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER_SIZE:
            kind, length = _HEADER.unpack_from(self._buf)
            if kind not in KINDS or length > MAX_PAYLOAD:
                raise FrameError(f"bad frame header: kind {kind!r}, length {length}")
            end = HEADER_SIZE + length
            if len(self._buf) < end:
                break
            frames.append((kind, bytes(self._buf[HEADER_SIZE:end])))
            del self._buf[:end]
        return frames
