"""The person's terminal colours as an attaching client last reported them, kept per user
in the daemon's state dir (`colors.json`, mode 0600) across daemon restarts.

Agents ask their terminal for its foreground and background (OSC 10/11) and palette
(OSC 4) to pick a light or dark theme, often at start, before anyone attaches. The
daemon answers them with these, and with `terminal.DEFAULT_FG`/`DEFAULT_BG` (a dark
scheme) and the xterm palette while no client was ever seen.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import attrs

from orchestra.adapters.store import write_atomic
from orchestra.adapters.terminal import Terminal, parse_color


@attrs.frozen(kw_only=True)
class SeenColors:
    """X11 colour specs (`rgb:ffff/ffff/ffff`), each valid (`parse_color`); None or
    absent: not seen."""

    fg: str | None = None
    bg: str | None = None
    palette: dict[int, str] = attrs.field(factory=dict)  # index 0..255 -> spec

    def merged(self, fg: str | None, bg: str | None, palette: dict[int, str] | None) -> SeenColors:
        """These, with what a client reported now taking the place of what it replaces
        (a client that could not tell a colour does not forget the one seen before)."""
        return SeenColors(
            fg=fg or self.fg, bg=bg or self.bg, palette={**self.palette, **(palette or {})}
        )

    def apply(self, terminal: Terminal) -> None:
        """The terminal answers with these from now on."""
        if self.fg or self.bg or self.palette:
            terminal.set_colors(fg=self.fg, bg=self.bg, palette=self.palette)


def load(path: Path) -> SeenColors:
    """What `save` kept; nothing seen when the file is missing or unreadable, and without
    any value that is not a colour."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return SeenColors()
    if not isinstance(data, dict):
        return SeenColors()
    raw = data.get("palette")
    palette = {}
    for key, spec in (raw if isinstance(raw, dict) else {}).items():
        if str(key).isdigit() and int(key) < 256 and _valid(spec):
            palette[int(key)] = spec
    fg, bg = data.get("fg"), data.get("bg")
    return SeenColors(fg=fg if _valid(fg) else None, bg=bg if _valid(bg) else None, palette=palette)


def save(path: Path, colors: SeenColors) -> None:
    """Replace the file atomically (mkstemp makes it 0600: only this user reads it)."""
    doc: dict[str, Any] = {
        "fg": colors.fg,
        "bg": colors.bg,
        "palette": {str(k): v for k, v in sorted(colors.palette.items())},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(doc, indent=1) + "\n")


def _valid(spec: Any) -> bool:
    if not isinstance(spec, str):
        return False
    with contextlib.suppress(ValueError):
        parse_color(spec)
        return True
    return False
