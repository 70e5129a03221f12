"""A real terminal for live attach tests: tmux on a private socket, read back as text.

Each test gets its own tmux server (`tmux -S <base>/tmux/sock`) with a private config
(no status line, panes kept after their program exits, `xterm-256color` inside, as the
daemon gives its agents). A `Pane` runs one command at a chosen size; the test reads
its screen (`capture-pane -p`, with `-e` for escapes), its cursor and its modes
(`display -p` formats), types into it (`send-keys`) and resizes it (`resize-window`).
The commands run with the test's `Env` variables (private HOME, XDG dirs and
ORCHESTRA_SOCKET): the server is started with them, and every pane inherits them.

tmux 3.3 shows most modes as formats (`MODES`), but not bracketed paste or focus
events: bracketed paste is probed by pasting (`Pane.paste`: tmux adds the markers only
when the program asked for them); focus events are not checked here.

Nothing here sleeps to synchronise: every wait polls the screen (or a file) until it
matches, and fails with what it saw after a deadline.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.daemon.wire import wait_until

T = TypeVar("T")

TIMEOUT = 10.0  # seconds any single wait may take
CONFIG = """\
set -g status off
set -g remain-on-exit on
set -g escape-time 0
set -g history-limit 2000
set -g default-terminal xterm-256color
set -g focus-events off
set -g allow-rename off
"""

# The pane modes tmux can tell (its formats), the ones an agent may turn on.
MODES = (
    "alternate_on",
    "cursor_flag",
    "insert_flag",
    "keypad_cursor_flag",
    "keypad_flag",
    "mouse_all_flag",
    "mouse_any_flag",
    "mouse_button_flag",
    "mouse_sgr_flag",
    "mouse_standard_flag",
    "mouse_utf8_flag",
    "origin_flag",
    "wrap_flag",
    "scroll_region_upper",
    "scroll_region_lower",
    "pane_mode",
    "pane_in_mode",
    "pane_title",
    "pane_fg",
    "pane_bg",
)


def require(*programs: str) -> None:
    """Skip the test where a program it drives is missing (CI installs them all: there,
    a missing one is a failure, so the live tests cannot silently stop running)."""
    missing = [p for p in programs if shutil.which(p) is None]
    if not missing:
        return
    message = f"needs {', '.join(missing)} (installed by .ci/run)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def orchestra(*args: str) -> list[str]:
    """The argv of the CLI from this checkout, as the tests run it."""
    return [sys.executable, "-m", "orchestra", *args]


SGR = re.compile(r"\x1b\[([0-9;:]*)m")


def palette_sgr(row: str) -> str:
    """Write the 16 basic colours one way: `94` and `38;5;12` are the same palette entry,
    and tmux keeps whichever form the program used."""

    def one(match: re.Match[str]) -> str:
        params = match.group(1).split(";")
        out: list[str] = []
        i = 0
        while i < len(params):
            p = params[i]
            if p in ("38", "48", "58") and i + 1 < len(params):
                n = 3 if params[i + 1] == "5" else 5 if params[i + 1] == "2" else 1
                out.append(";".join(params[i : i + n]))
                i += n
                continue
            code = int(p) if p.isdigit() else -1
            if 30 <= code <= 37 or 40 <= code <= 47:
                out.append(f"{code // 10 * 10 + 8};5;{code % 10}")
            elif 90 <= code <= 97 or 100 <= code <= 107:
                out.append(f"{(code - 60) // 10 * 10 + 8};5;{code % 10 + 8}")
            else:
                out.append(p)
            i += 1
        return "\x1b[" + ";".join(out) + "m"

    return SGR.sub(one, row)


def trim(text: str) -> list[str]:
    """Screen text as rows, trailing spaces removed (tmux pads some rows, not others)."""
    return [line.rstrip() for line in text.split("\n")]


class Tmux:
    """One private tmux server; `kill` ends it and every pane's program."""

    def __init__(self, base: Path, env: dict[str, str]) -> None:
        tmux = shutil.which("tmux")
        assert tmux is not None
        self.dir = base / "tmux"
        self.dir.mkdir(exist_ok=True)
        self.socket = self.dir / "sock"
        self.config = self.dir / "tmux.conf"
        self.config.write_text(CONFIG)
        self.argv = [tmux, "-S", str(self.socket), "-f", str(self.config)]
        self.env = {k: v for k, v in env.items() if k not in ("TMUX", "TMUX_PANE")}
        self.panes: list[Pane] = []

    def __call__(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            [*self.argv, *args], env=self.env, capture_output=True, text=True, timeout=TIMEOUT
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def pane(
        self,
        name: str,
        argv: list[str],
        *,
        cols: int = 80,
        rows: int = 24,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> Pane:
        """A new session `name` of one pane `cols`x`rows` running `argv` (with `env` added)."""
        extra = [f"-e{k}={v}" for k, v in (env or {}).items()]
        self(
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            str(cols),
            "-y",
            str(rows),
            "-c",
            str(cwd or self.dir),
            *extra,
            shlex.join(argv),
        )
        pane = Pane(self, f"={name}:")
        self.panes.append(pane)
        return pane

    def kill(self) -> None:
        self("kill-server", check=False)


class Pane:
    """One tmux pane: its screen, cursor and modes; keys and resizes into it."""

    def __init__(self, tmux: Tmux, target: str) -> None:
        self.tmux = tmux
        self.target = target

    def display(self, fmt: str) -> str:
        return self.tmux("display-message", "-p", "-t", self.target, fmt).rstrip("\n")

    def text(self) -> list[str]:
        """The visible screen, one string per row, trailing spaces removed."""
        out = self.tmux("capture-pane", "-p", "-t", self.target)
        return trim(out.removesuffix("\n"))

    def history(self) -> list[str]:
        """The scrollback and the screen, trailing blank rows removed."""
        rows = trim(self.tmux("capture-pane", "-p", "-S", "-", "-t", self.target))
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def styled(self) -> list[str]:
        """The visible screen with its colours and attributes as escape sequences."""
        out = self.tmux("capture-pane", "-p", "-e", "-t", self.target)
        return [palette_sgr(row) for row in trim(out.removesuffix("\n"))]

    def cursor(self) -> tuple[int, int]:
        x, y = self.display("#{cursor_x},#{cursor_y}").split(",")
        return int(x), int(y)

    def modes(self) -> dict[str, str]:
        """Every mode tmux reports for the pane (see MODES)."""
        values = self.display("\t".join(f"#{{{m}}}" for m in MODES)).split("\t")
        return dict(zip(MODES, values, strict=True))

    def keys(self, *keys: str) -> None:
        """Press keys by tmux name (`C-q`, `Enter`)."""
        self.tmux("send-keys", "-t", self.target, *keys)

    def type(self, text: str) -> None:
        """Type `text` literally."""
        self.tmux("send-keys", "-t", self.target, "-l", text)

    def paste(self, text: str) -> None:
        """Paste `text` as tmux does: in bracketed-paste markers iff the program asked."""
        self.tmux("set-buffer", "-b", "probe", text)
        self.tmux("paste-buffer", "-p", "-d", "-b", "probe", "-t", self.target)

    def resize(self, cols: int, rows: int) -> None:
        """Resize the pane, and wait until its terminal has the new size: tmux 3.3 applies a
        resize that comes within 250 ms of the previous one only when that timer fires, after
        `resize-window` has returned (a program started meanwhile sees the old size)."""
        self.tmux("resize-window", "-t", self.target, "-x", str(cols), "-y", str(rows))
        wait_until(
            lambda: self.tty_size() == (cols, rows),
            lambda: f"the terminal of {self.target} to be {cols}x{rows}: {self.tty_size()}",
        )

    def tty_size(self) -> tuple[int, int]:
        """The size the pane's terminal has now (what a program in it would read)."""
        fd = os.open(self.display("#{pane_tty}"), os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            size = os.get_terminal_size(fd)
        finally:
            os.close(fd)
        return size.columns, size.lines

    def wait(
        self, check: Callable[[list[str]], T | None], what: str, timeout: float = TIMEOUT
    ) -> T:
        """Poll the screen until `check(rows)` is truthy; return what it returned."""
        return wait_until(
            lambda: check(self.text()), lambda: f"{what}; the screen:\n{self.show()}", timeout
        )

    def wait_text(self, needle: str | re.Pattern[str], timeout: float = TIMEOUT) -> list[str]:
        """Poll the screen until a row contains `needle` (a string or a pattern)."""

        def found(rows: list[str]) -> list[str] | None:
            hit = any(
                needle in row if isinstance(needle, str) else needle.search(row) for row in rows
            )
            return rows if hit else None

        return self.wait(found, f"{needle!r} on screen", timeout)

    def show(self) -> str:
        return "\n".join(f"{i:3}|{row}" for i, row in enumerate(self.text()))


def same_screen(
    a: Pane,
    b: Pane,
    timeout: float = TIMEOUT,
    *,
    styled: bool = False,
    mask: Callable[[str], str] = lambda row: row,
) -> None:
    """Wait until both panes show the same screen (rows passed through `mask`), the same
    cursor and cursor visibility; fail showing both screens."""

    def state(p: Pane) -> tuple[list[str], tuple[int, int], str]:
        rows = p.styled() if styled else p.text()
        return [mask(row) for row in rows], p.cursor(), p.display("#{cursor_flag}")

    def matches() -> bool:
        return state(a) == state(b)

    def diff() -> str:
        (ta, ca, fa), (tb, cb, fb) = state(a), state(b)
        rows = [
            f"{i:3}{'!' if x != y else ' '}|{x}\n   {'!' if x != y else ' '}|{y}"
            for i, (x, y) in enumerate(zip(ta, tb, strict=False))
        ]
        return (
            f"the same screen in {a.target} and {b.target}: cursors {ca} (shown {fa}) and "
            f"{cb} (shown {fb}), rows {len(ta)} and {len(tb)}:\n" + "\n".join(rows)
        )

    wait_until(matches, diff, timeout)
