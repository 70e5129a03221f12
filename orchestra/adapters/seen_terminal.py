"""The person's terminal as an attaching client last reported it (its colours, and the
size of the last interactive one), kept per user in the daemon's state dir
(`terminal.json`, mode 0600) across daemon restarts.

An agent started before anyone attaches should see what it would in the person's
terminal, as a shell run inside the task does. Agents ask for the foreground and
background (OSC 10/11) and palette (OSC 4) to pick a light or dark theme, often at
start; and a program started at one size and resized at attach may draw otherwise
(Claude Code leaves a blank line) than one started at the size it is shown at. So new
runs are answered these colours and spawned at this size. While no client was ever
seen: `terminal.DEFAULT_FG`/`DEFAULT_BG` (a dark scheme), the xterm palette, 100x30.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import attrs

from orchestra.adapters.store import write_atomic
from orchestra.adapters.terminal import Terminal, parse_color

MIN_SIZE, MAX_SIZE = 2, 1000  # what pty.attach takes for cols and rows


@attrs.frozen(kw_only=True)
class SeenTerminal:
    """X11 colour specs (`rgb:ffff/ffff/ffff`), each valid (`parse_color`), and a size
    within MIN_SIZE..MAX_SIZE; None or absent: not seen."""

    fg: str | None = None
    bg: str | None = None
    palette: dict[int, str] = attrs.field(factory=dict)  # index 0..255 -> spec
    size: tuple[int, int] | None = None  # (cols, rows)

    def merged(
        self,
        fg: str | None = None,
        bg: str | None = None,
        palette: dict[int, str] | None = None,
        size: tuple[int, int] | None = None,
    ) -> SeenTerminal:
        """These, with what a client reported now taking the place of what it replaces
        (a client that could not tell a colour does not forget the one seen before)."""
        return SeenTerminal(
            fg=fg or self.fg,
            bg=bg or self.bg,
            palette={**self.palette, **(palette or {})},
            size=size or self.size,
        )

    def apply(self, terminal: Terminal) -> None:
        """The terminal answers colour queries with these from now on."""
        if self.fg or self.bg or self.palette:
            terminal.set_colors(fg=self.fg, bg=self.bg, palette=self.palette)


def load(path: Path) -> SeenTerminal:
    """What `save` kept; nothing seen when the file is missing or unreadable, and without
    any value that is not a colour or a size."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return SeenTerminal()
    if not isinstance(data, dict):
        return SeenTerminal()
    raw = data.get("palette")
    palette = {}
    for key, spec in (raw if isinstance(raw, dict) else {}).items():
        if str(key).isdigit() and int(key) < 256 and _color(spec):
            palette[int(key)] = spec
    fg, bg, size = data.get("fg"), data.get("bg"), _size(data.get("size"))
    return SeenTerminal(
        fg=fg if _color(fg) else None, bg=bg if _color(bg) else None, palette=palette, size=size
    )


def save(path: Path, seen: SeenTerminal) -> None:
    """Replace the file atomically (mkstemp makes it 0600: only this user reads it)."""
    doc: dict[str, Any] = {
        "fg": seen.fg,
        "bg": seen.bg,
        "palette": {str(k): v for k, v in sorted(seen.palette.items())},
        "size": None if seen.size is None else list(seen.size),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc, indent=1) + "\n")


def _color(spec: Any) -> bool:
    if not isinstance(spec, str):
        return False
    with contextlib.suppress(ValueError):
        parse_color(spec)
        return True
    return False


def _size(value: Any) -> tuple[int, int] | None:
    if not (isinstance(value, list) and len(value) == 2):
        return None
    cols, rows = value
    ok = all(type(n) is int and MIN_SIZE <= n <= MAX_SIZE for n in (cols, rows))
    return (cols, rows) if ok else None
