"""An attach session: this process's terminal shows an agent's terminal until a detach.

Blocking (selectors, no event loop), the standard library and the core only (not even
attrs: its import would be a tenth of the dashboard's start-up), so that every front end
runs the same session: `orchestra attach` (cli/attach.py) and the dashboard's Enter
(inside Textual's `App.suspend()`, no second process).

The caller decides how keys and screen travel (`attach_session`'s `terminal`):
- handed over: a file of the terminal of its own (`own_terminal()`) is passed to the
  daemon on the socket; the daemon then reads the keys from it and writes the screen to
  it, as tmux's server does, so a keystroke crosses one relay, not two. This session
  only reports resizes and waits for the daemon's EXIT frame;
- relayed (`terminal=None`): keys and screen travel as frames on the socket
  (core/frames.py), as for scripts; for a terminal that cannot be opened again by its
  name, ORCHESTRA_ATTACH_RELAY=1, and a daemon on another machine.
On every way out (detach keys, the agent's exit, a lost daemon, SIGTERM/SIGHUP, a
refused attach) the terminal is restored fully.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import selectors
import signal
import socket
import sys
import termios
import time
import tty
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from orchestra.core import frames
from orchestra.core.detach import DEFAULT_DETACH_KEYS, DetachMatcher, parse_detach_keys
from orchestra.core.errors import EXIT_OK, EXIT_UNREACHABLE

if TYPE_CHECKING:
    from orchestra.client.connection import Client

DEFAULT_DETACH: Final = (DEFAULT_DETACH_KEYS, parse_detach_keys(DEFAULT_DETACH_KEYS))
RELAY_VAR: Final = "ORCHESTRA_ATTACH_RELAY"  # set: relay even where the terminal could be handed

# Everything an agent may have turned on, turned off again (the client's own duty).
RESTORE = b"".join(
    [
        b"\x1b[?2026l",  # synchronized output off
        b"\x1b[?9l\x1b[?1000l\x1b[?1002l\x1b[?1003l",  # every mouse mode
        b"\x1b[?1005l\x1b[?1006l\x1b[?1015l\x1b[?1016l",
        b"\x1b[?1004l\x1b[?2004l\x1b[?2031l\x1b[?2048l",  # focus, paste, theme, resize reports
        b"\x1b[?1l\x1b>",  # normal cursor keys, numeric keypad
        b"\x1b[>4m",  # XTMODKEYS: modifyOtherKeys back to default
        b"\x1b[<99u",  # kitty keyboard: pop whatever the agent pushed
        b"\x1b[0m\x1b]8;;\x1b\\",  # SGR, hyperlink
        b"\x1b]104\x1b\\\x1b]110\x1b\\\x1b]111\x1b\\\x1b]112\x1b\\",  # palette, fg, bg, cursor
        b"\x1b[r\x1b[?6l\x1b[?7h",  # scroll region, origin, wrap
        b"\x1b[?69l\x1b[?45l",  # left/right margins, reverse wrap
        b"\x1b[4l\x1b[20l\x1b[?5l",  # insert mode, newline mode, reverse video
        b"\x1b(B\x1b)0\x0f",  # charsets
        b"\x1b[?25h\x1b[0 q",  # cursor shown, default shape
    ]
)
# 1049 restores the cursor; 1047 and 47 are no-ops on the primary screen, but terminals
# that keep each as a mode of its own (Ghostty) would otherwise keep them set.
LEAVE_ALT = b"\x1b[?1049l\x1b[?1047l\x1b[?47l"
PUSH_TITLE, POP_TITLE = b"\x1b[22;0t", b"\x1b[23;0t"
SAVE_CURSOR, RESTORE_CURSOR = b"\x1b7", b"\x1b8"
BOTTOM = b"\x1b[999;1H"  # the last row: below whatever a program drew on the primary screen
QUERY = (
    b"\x1b]10;?\x1b\\\x1b]11;?\x1b\\"
    + b"".join(b"\x1b]4;%d;?\x1b\\" % i for i in range(16))
    + b"\x1b[?u\x1b[c"
)
_OSC_REPLY = re.compile(rb"\x1b\](10|11|4;\d+);(rgb:[0-9a-fA-F/]+)(?:\x07|\x1b\\)")
_KITTY_REPLY = re.compile(rb"\x1b\[\?(\d+)u")
_DA1_REPLY = re.compile(rb"\x1b\[\?[\d;]*c")

DEFAULT_SIZE = (80, 24)  # for a terminal that does not know its size, as tmux and vim take it
MIN_SIDE, MAX_SIDE = 2, 1000  # what the daemon takes (docs/api.md, pty.attach)
LAST_WORD_TIMEOUT = 2.0  # seconds to wait for the daemon's EXIT frame after asking to detach


@dataclass
class Ending:
    """How the session ended (`code`: the exit status, `why`: in words), whether the
    terminal was left on the alternate screen, and whether a signal ended it (SIGTERM,
    SIGHUP: the process is asked to end too)."""

    why: str = "detached"
    code: int = EXIT_OK
    alt_screen: bool = False
    signalled: bool = False


def describe_keys(spec: str) -> str:
    return spec.replace(",", " then ")


def relay_asked(environ: Mapping[str, str]) -> bool:
    """Whether the person asked to relay (ORCHESTRA_ATTACH_RELAY set)."""
    return bool(environ.get(RELAY_VAR))


def own_terminal(fd: int = 0) -> int | None:
    """A file of `fd`'s terminal of its own (opened again by name) to hand the daemon, or
    None where it cannot be opened again (then relay).

    Its own open file, not a copy of stdin's: the daemon makes it non-blocking, which on
    a shared one would also hit the shell (or the dashboard) we return to.
    """
    try:
        return os.open(os.ttyname(fd), os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None


def attach_session(
    client: Client,
    project: str,
    task: str,
    *,
    detach_keys: tuple[str, bytes],
    terminal: int | None,
    read_only: bool = False,
    announce: bool = True,
    leave_screen: bool = True,
) -> Ending:
    """Attach stdin/stdout's terminal to `task`'s agent until the detach keys, the agent's
    end, a lost daemon or a signal; the terminal restored, return how it ended.

    `client` is a connected blocking client, used up by the session (its socket becomes
    the attach stream). `detach_keys`: as configured ("ctrl-b,d") and the bytes they send.
    `terminal`: the file to hand the daemon (`own_terminal()`), closed here whatever
    happens, or None to relay keys and screen as frames. `announce`: a one-line hint on
    stderr naming the detach keys. `leave_screen`: at the end, leave the alternate screen
    and put the cursor below the agent's output, back to a shell; False for a caller that
    redraws the whole screen itself (the dashboard, which attached from its alternate
    screen and stays there: the shell is never shown in between). A task that cannot be
    attached raises the daemon's refusal (RemoteError, as `peek` is refused) before the
    terminal is touched.
    """
    try:
        spec, keys = detach_keys
        # Asked first (the same check pty.attach makes), so that a task that cannot be
        # attached is refused before the terminal is touched.
        client.call("pty.screen", {"project": project, "task": task, "lines": 1})
        ending = Ending()
        # Signals are caught from here on, and kept for the session: a resize while the
        # attach is being asked for is reported once it starts, and a SIGTERM then
        # detaches at once.
        with _caught_signals() as wake_r, raw_terminal(0):
            cols, rows = terminal_size(1)
            colors, kitty_flags = query_terminal(0, 1)
            reply = client.call(
                "pty.attach",
                {
                    "project": project,
                    "task": task,
                    "cols": cols,
                    "rows": rows,
                    "read_only": read_only,
                    "colors": colors,
                    "tty": terminal is not None,
                    "detach_keys": spec,
                },
            )
            # The rest of the connection is the attach stream: frames, not JSON-RPC.
            sock, leftover = client.take_over()
            if announce:
                sys.stderr.write(
                    f"\r[attached to {reply['task']}; detach: {describe_keys(spec)}]\r\n"
                )
            # A clean state, the cursor kept where it is: on the alternate screen the
            # terminal saves it, to put it back at the end.
            os.write(1, PUSH_TITLE + SAVE_CURSOR + RESTORE + RESTORE_CURSOR)
            ending.alt_screen = bool(reply.get("alt_screen"))
            try:
                relay = terminal is None
                if terminal is not None:
                    socket.send_fds(sock, [b"t"], [terminal])
                    os.close(terminal)
                    terminal = None
                _run(
                    sock,
                    leftover,
                    ending,
                    wake_r,
                    relay_keys=keys if relay else None,
                    read_only=read_only,
                )
            finally:
                # Back to the user's screen and cursor from the alternate screen; from the
                # primary one (the program's output stays), to a new line below all of it.
                below = b"\r" if ending.alt_screen else BOTTOM + b"\r\n"
                back = LEAVE_ALT + below if leave_screen else b""
                os.write(1, RESTORE + back + b"\x1b[=%d;1u" % kitty_flags + POP_TITLE)
                sock.close()
        return ending
    finally:
        if terminal is not None:
            os.close(terminal)


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[list[Any]]:
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield saved
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)


def query_terminal(fd_in: int, fd_out: int, timeout: float = 0.5) -> tuple[dict[str, Any], int]:
    """Ask the real terminal its colours and kitty keyboard flags, once (DA1 ends the wait)."""
    os.write(fd_out, QUERY)
    got = b""
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(fd_in, selectors.EVENT_READ)
    try:
        while not _DA1_REPLY.search(got):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                break
            got += os.read(fd_in, 4096)
    finally:
        sel.close()
    colors: dict[str, Any] = {"palette": {}}
    for which, spec in _OSC_REPLY.findall(got):
        value = spec.decode()
        if which == b"10":
            colors["fg"] = value
        elif which == b"11":
            colors["bg"] = value
        else:
            colors["palette"][which.decode().split(";")[1]] = value
    kitty = _KITTY_REPLY.search(got)
    return colors, int(kitty.group(1)) if kitty else 0


def terminal_size(fd: int) -> tuple[int, int]:
    """The terminal's size for the daemon: a side it says is 0 (script(1), a serial line)
    is the default's, and either side kept within what the daemon takes."""
    size = os.get_terminal_size(fd)
    cols, rows = (
        max(MIN_SIDE, min(MAX_SIDE, side or default))
        for side, default in zip(size, DEFAULT_SIZE, strict=True)
    )
    return cols, rows


@contextlib.contextmanager
def _caught_signals() -> Iterator[int]:
    """SIGWINCH, SIGTERM and SIGHUP written to a pipe ("w" a resize, "t" the others), whose
    read end this yields, instead of their default actions (or the caller's handlers,
    put back after)."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            os.write(wake_w, b"w" if sig == signal.SIGWINCH else b"t")

    old = {
        sig: signal.signal(sig, on_signal)
        for sig in (signal.SIGWINCH, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield wake_r
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)


def _run(
    sock: socket.socket,
    leftover: bytes,
    ending: Ending,
    wake_r: int,
    *,
    relay_keys: bytes | None,
    read_only: bool,
) -> None:
    """Until the daemon's EXIT frame (or a lost daemon): report resizes, pass signals on as
    a detach (`wake_r`: see `_caught_signals`), and, when relaying (`relay_keys`: the detach
    keys), shuttle keys and screen."""
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "daemon")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    if relay_keys is not None:
        sel.register(0, selectors.EVENT_READ, "keys")
    matcher = DetachMatcher(relay_keys or b"")
    decoder = frames.Decoder()
    pending = leftover
    deadline: float | None = None  # set once we asked to detach: how long to wait for EXIT
    try:
        while True:
            for kind, payload in decoder.feed(pending):
                if kind == frames.OUTPUT:
                    _write_all(1, payload)
                elif kind == frames.EXIT:
                    info = json.loads(payload)
                    if info.get("alt_screen") is not None:
                        ending.alt_screen = bool(info["alt_screen"])
                    reason, code = info.get("reason"), info.get("exit_code")
                    if reason != "detached":
                        ending.why = f"agent ended ({reason}" + (
                            ")" if code is None else f", exit code {code})"
                        )
                    return
            pending = b""
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = sel.select(timeout)
            if not ready and deadline is not None:
                return  # no last word from the daemon: restore anyway
            for key, _ in ready:
                if key.data == "daemon":
                    try:
                        pending = sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    except OSError:
                        pending = b""
                    if not pending:
                        ending.why, ending.code = "lost the daemon", EXIT_UNREACHABLE
                        return
                elif key.data == "keys":
                    typed = os.read(0, 65536)
                    data, detach = matcher.feed(typed)
                    if data and not read_only:
                        _send(sock, frames.encode(frames.INPUT, data))
                    if detach or not typed:
                        sel.unregister(0)
                        deadline = _detach(sock)
                else:
                    woke = os.read(wake_r, 64)
                    if b"w" in woke:
                        cols, rows = terminal_size(1)
                        _send(sock, frames.encode_json(frames.RESIZE, {"cols": cols, "rows": rows}))
                    if b"t" in woke and deadline is None:
                        ending.why, ending.signalled = "detached (signal)", True
                        deadline = _detach(sock)
    finally:
        sel.close()


def _detach(sock: socket.socket) -> float:
    """Ask the daemon to let go; return until when to wait for its EXIT frame."""
    with contextlib.suppress(OSError):
        _send(sock, frames.encode(frames.DETACH))
    return time.monotonic() + LAST_WORD_TIMEOUT


def _send(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view) :]
        except BlockingIOError:
            select.select([], [sock], [], 0.05)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            time.sleep(0.001)
