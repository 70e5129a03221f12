"""The person's terminal as last seen, as kept on disk."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from orchestra.adapters import seen_terminal
from orchestra.adapters.seen_terminal import SeenTerminal


def test_saved_colours_load_back_and_bad_values_are_dropped(tmp_path: Path) -> None:
    """What is saved loads back (the file 0600); a value that is not a colour or a size,
    or a file that is not JSON, loads as not seen."""
    path = tmp_path / "state" / "terminal.json"
    seen = SeenTerminal(
        fg="rgb:0000/0000/0000", bg="#ffffff", palette={4: "#0000ee"}, size=(120, 40)
    )
    seen_terminal.save(path, seen)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert seen_terminal.load(path) == seen
    bad = {"fg": "\x1b]52;c;?", "bg": 7, "palette": {"300": "#000"}, "size": [0, 5000]}
    path.write_text(json.dumps(bad))
    assert seen_terminal.load(path) == SeenTerminal()
    path.write_text("{")
    assert seen_terminal.load(path) == SeenTerminal()
    assert seen_terminal.load(tmp_path / "missing.json") == SeenTerminal()


def test_a_client_that_could_not_tell_a_colour_keeps_the_one_seen_before() -> None:
    """Merging a report keeps what it does not say."""
    seen = SeenTerminal(fg="#000000", bg="#ffffff", palette={1: "#ff0000"})
    assert seen.merged(None, "#eeeeee", {2: "#00ff00"}) == SeenTerminal(
        fg="#000000", bg="#eeeeee", palette={1: "#ff0000", 2: "#00ff00"}
    )
