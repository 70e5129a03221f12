"""Attached clients: the daemon is the terminal; clients are shown its screen.

Theory of operation. The run's output pump feeds every byte to the terminal
model (which answers the program's queries at once, attached or not) and pushes
the query-stripped bytes to each `Viewer`. Attaching is synchronous between two
pump iterations (trio runs one task at a time), so the redraw a new viewer gets
(`redraw`: synchronized output, soft reset, clear, the model's snapshot, then
any unfinished sequence) and the live bytes after it never interleave.

A viewer that falls too far behind is not buffered without bound: its queue is
dropped and it is sent a fresh redraw instead (what it missed is on screen).
The PTY follows the most recently active interactive viewer's size; read-only
viewers never type or resize.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Any

import attrs
import trio

from orchestra.core import frames
from orchestra.core.errors import InvalidTransition
from orchestra.core.frames import Decoder, FrameError

if TYPE_CHECKING:
    from orchestra.daemon.runner import Run

log = logging.getLogger("orchestra.daemon")

BSU, ESU = b"\x1b[?2026h", b"\x1b[?2026l"  # begin/end synchronized update
SOFT_RESET_AND_CLEAR = b"\x1b[!p\x1b[H\x1b[2J\x1b[3J"
# For a program on the alternate screen: the client's terminal enters it first, so its own
# screen, cursor and scrollback stay underneath (shown again at detach, as under tmux).
ALT_RESET_AND_CLEAR = b"\x1b[?1049h\x1b[!p\x1b[H\x1b[2J"
MAX_BEHIND = 8 << 20  # bytes queued for one viewer before it is resynced instead
FOCUS_IN, FOCUS_OUT = b"\x1b[I", b"\x1b[O"
DECKPAM = b"\x1b="  # application keypad


@attrs.define(eq=False)
class Viewer:
    """One attached client. Mutated only from the daemon's trio thread."""

    read_only: bool
    cols: int
    rows: int
    attached_on_alt: bool = False
    last_active: float = attrs.field(factory=trio.current_time)
    queue: deque[bytes] = attrs.field(factory=deque)
    queued: int = 0
    resync: bool = False
    ended: dict[str, Any] | None = None  # set when the run ends: sent as the EXIT frame
    _wake: trio.Event = attrs.field(factory=trio.Event)

    def push(self, data: bytes) -> None:
        if not data:
            return
        self.queue.append(data)
        self.queued += len(data)
        if self.queued > MAX_BEHIND:
            self.queue.clear()
            self.queued = 0
            self.resync = True
        self._wake.set()

    def end(self, info: dict[str, Any]) -> None:
        self.ended = info
        self._wake.set()

    async def wait(self) -> None:
        await self._wake.wait()
        self._wake = trio.Event()

    def take(self) -> bytes:
        data = b"".join(self.queue)
        self.queue.clear()
        self.queued = 0
        return data


def redraw(run: Run) -> bytes:
    """What a viewer needs to show the run's screen exactly as the model has it."""
    terminal = run.terminal
    # A program in the middle of a synchronized frame: the snapshot re-opens it and the
    # program's own closing sequence ends it; we must not end it early.
    end = b"" if terminal.mode(2026) else ESU
    # The snapshot says application keypad as DECNKM (mode 66), which tmux, VTE and others
    # ignore; DECKPAM is what every terminal knows.
    keypad = DECKPAM if terminal.mode(66) else b""
    clear = ALT_RESET_AND_CLEAR if terminal.alt_screen else SOFT_RESET_AND_CLEAR
    return BSU + clear + terminal.snapshot() + keypad + end + terminal.pending()


def active_size(run: Run) -> tuple[int, int] | None:
    """The size of the most recently active interactive viewer, if any."""
    interactive = [v for v in run.viewers if not v.read_only]
    if not interactive:
        return None
    latest = max(interactive, key=lambda v: v.last_active)
    return latest.cols, latest.rows


def follow_size(run: Run) -> None:
    size = active_size(run)
    if size is not None and size != run.size:
        run.resize(*size)


def after_output(run: Run, was_alt: bool) -> None:
    """Called by the pump after each chunk: a program leaving the alternate screen shows
    the primary screen again to viewers that attached on the alternate one."""
    if was_alt and not run.terminal.alt_screen:
        for viewer in run.viewers:
            if viewer.attached_on_alt:
                viewer.attached_on_alt = False
                viewer.resync = True
                viewer._wake.set()


async def serve_viewer(
    run: Run, stream: trio.abc.Stream, leftover: bytes, *, read_only: bool, cols: int, rows: int
) -> None:
    """Run one attached client until it detaches, hangs up, or the agent's run ends."""
    viewer = Viewer(read_only=read_only, cols=cols, rows=rows)
    # Registered, sized and sent its redraw with no await in between: no output interleaves.
    # The PTY takes the new client's size before the snapshot (it is the newest, so the most
    # recently active interactive viewer), so the snapshot is drawn at the client's size.
    run.viewers.append(viewer)
    if not read_only:
        follow_size(run)
    viewer.attached_on_alt = run.terminal.alt_screen
    viewer.push(redraw(run))
    if not read_only and run.terminal_focus_events():
        await run.send_raw(FOCUS_IN)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_write, run, viewer, stream, nursery.cancel_scope)
            await _read(run, viewer, stream, leftover)
            nursery.cancel_scope.cancel()
    except (trio.BrokenResourceError, trio.ClosedResourceError, FrameError):
        pass
    finally:
        if viewer in run.viewers:
            run.viewers.remove(viewer)
        with trio.CancelScope(shield=True):
            if not read_only and run.session is not None and run.terminal_focus_events():
                with contextlib.suppress(
                    trio.BrokenResourceError, trio.ClosedResourceError, OSError, InvalidTransition
                ):
                    await run.send_raw(FOCUS_OUT)
            if not read_only:
                follow_size(run)


async def _write(
    run: Run, viewer: Viewer, stream: trio.abc.Stream, scope: trio.CancelScope
) -> None:
    while True:
        if viewer.resync:
            viewer.resync = False
            viewer.take()
            data = redraw(run)
        else:
            data = viewer.take()
        for start in range(0, len(data), frames.MAX_PAYLOAD):
            await stream.send_all(
                frames.encode(frames.OUTPUT, data[start : start + frames.MAX_PAYLOAD])
            )
        if viewer.ended is not None and not viewer.queue:
            await stream.send_all(frames.encode_json(frames.EXIT, viewer.ended))
            scope.cancel()
            return
        await viewer.wait()


async def _read(run: Run, viewer: Viewer, stream: trio.abc.Stream, leftover: bytes) -> None:
    decoder = Decoder()
    data = leftover
    while True:
        for kind, payload in decoder.feed(data):
            if kind == frames.DETACH:
                return
            if kind == frames.INPUT and not viewer.read_only and payload:
                viewer.last_active = trio.current_time()
                follow_size(run)
                await run.send_input(payload)
            elif kind == frames.RESIZE:
                size = json.loads(payload)
                viewer.cols = _clamp(size.get("cols"), 2, 1000, viewer.cols)
                viewer.rows = _clamp(size.get("rows"), 2, 1000, viewer.rows)
                if not viewer.read_only:
                    viewer.last_active = trio.current_time()
                    follow_size(run)
        data = bytes(await stream.receive_some(65536))
        if not data:
            return


def _clamp(value: Any, low: int, high: int, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or math.isnan(value):
        return default
    return max(low, min(high, value))
