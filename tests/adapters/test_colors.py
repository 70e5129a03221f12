"""The colours last seen of a person's terminal, as kept on disk."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from orchestra.adapters import colors
from orchestra.adapters.colors import SeenColors


def test_saved_colours_load_back_and_bad_values_are_dropped(tmp_path: Path) -> None:
    """What is saved loads back (the file 0600); a value that is not a colour, or a file
    that is not JSON, loads as not seen."""
    path = tmp_path / "state" / "colors.json"
    seen = SeenColors(fg="rgb:0000/0000/0000", bg="#ffffff", palette={4: "#0000ee"})
    colors.save(path, seen)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert colors.load(path) == seen
    path.write_text(json.dumps({"fg": "\x1b]52;c;?", "bg": 7, "palette": {"300": "#000"}}))
    assert colors.load(path) == SeenColors()
    path.write_text("{")
    assert colors.load(path) == SeenColors()
    assert colors.load(tmp_path / "missing.json") == SeenColors()


def test_a_client_that_could_not_tell_a_colour_keeps_the_one_seen_before() -> None:
    """Merging a report keeps what it does not say."""
    seen = SeenColors(fg="#000000", bg="#ffffff", palette={1: "#ff0000"})
    assert seen.merged(None, "#eeeeee", {2: "#00ff00"}) == SeenColors(
        fg="#000000", bg="#eeeeee", palette={1: "#ff0000", 2: "#00ff00"}
    )
