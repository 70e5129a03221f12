"""Finding the detach keys in what a person types, across reads (sans I/O)."""

from __future__ import annotations

import re

DEFAULT_DETACH_KEYS = "ctrl-q"  # `detach_keys`' default
_KEY = re.compile(r"(ctrl-[a-z\[\]\\^_@]|[\x21-\x7e])")


def parse_detach_keys(spec: str) -> bytes:
    """`ctrl-]` or `ctrl-b,d` -> the bytes a terminal sends for that sequence."""
    out = bytearray()
    for part in spec.split(","):
        part = part.strip().lower() if part.strip().lower().startswith("ctrl-") else part.strip()
        if not _KEY.fullmatch(part):
            raise ValueError(
                f"invalid detach key {part!r}: use ctrl-<letter or one of []\\^_@> or one"
                " printable character, comma-separated (e.g. 'ctrl-]' or 'ctrl-b,d')"
            )
        out.append(ord(part[5].upper()) - 64 if part.startswith("ctrl-") else ord(part))
    return bytes(out)


class DetachMatcher:
    """`feed` returns the bytes to send to the agent and whether to detach.

    A partial match at the end of a read is held back until the next read decides it,
    so `ctrl-b,d` is found even when the two keys arrive in separate reads.
    """

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        keys = self.keys
        if not keys:
            return data, False
        if self.held:
            data = self.held + data
            self.held = b""
        at = data.find(keys)
        if at >= 0:
            return data[:at], True
        for n in range(min(len(keys) - 1, len(data)), 0, -1):  # none for a single key
            if data.endswith(keys[:n]):
                self.held = data[-n:]
                return data[:-n], False
        return data, False
