"""Attached clients: the daemon is the terminal; clients are shown its screen.

Theory of operation. The relay thread (daemon/relay.py) takes each chunk of the
agent's output to the run (`Run.take_output`): the query-stripped bytes go to
each `Viewer`, then the terminal model draws them (and answers the program's
queries at once, attached or not). A viewer is registered and sent its redraw
(`redraw`: synchronized output, soft reset, clear, the model's snapshot, then any
unfinished sequence) under the run's lock, between two chunks, so the redraw and
the live bytes after it never interleave.

Two ways to attach. `orchestra attach` hands its terminal over (`tty`: a file
descriptor passed on the socket right after the reply): the relay reads the
person's keys from it (`KeyReader`) and the screen is written to it, as tmux's
server does, so a keystroke crosses one relay, not two. That client only reports
resizes, and restores its terminal once the daemon's EXIT frame says the daemon
is done with it. Scripts, with no terminal to hand over, get the same stream in
frames on the socket (orchestra/core/frames.py).

Output is written straight from the relay while a viewer has nothing queued
(a chunk that needs no look, by the relay's inner loop itself: the run's route,
`Run.reroute`); only what the fd does not take at once waits for the viewer's
writer task (in the event loop). A viewer that falls too far behind is not
buffered without bound: its queue is dropped and it is sent a fresh redraw
instead (what it missed is on screen). The PTY follows the most recently active interactive viewer's
size; read-only viewers never type or resize.

A viewer whose size is not the PTY's cannot be sent the stream: the program draws for
another size, and a narrower terminal would wrap its rows. Such a viewer is "cropped"
(`sync_views`), as tmux treats a client of another size: it is out of the relay's
route and sent, after output, a picture drawn from the model (`crop_redraw`: the
part of the screen it can show, around the cursor), at most one per `FRAME` and
always one once output settles. When the sizes match again (it resized, or the PTY
took its size because it typed) it gets a full redraw and the stream again.
"""

from __future__ import annotations

import array
import contextlib
import json
import logging
import math
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import attrs
import trio

from orchestra.core import frames, modes
from orchestra.core.detach import DetachMatcher, parse_detach_keys
from orchestra.core.errors import InvalidTransition
from orchestra.core.frames import Decoder, FrameError
from orchestra.daemon.forward import write_some
from orchestra.daemon.runner import DAEMON_STOPPING

if TYPE_CHECKING:
    from orchestra.daemon.relay import Relay
    from orchestra.daemon.runner import Run

log = logging.getLogger("orchestra.daemon")

BSU, ESU = b"\x1b[?2026h", b"\x1b[?2026l"  # begin/end synchronized update
# Every mode at its default (see modes.reset), then the screen only: the person's
# scrollback is theirs (no CSI 3J).
SOFT_RESET_AND_CLEAR = modes.reset() + b"\x1b[H\x1b[2J"
# For a program on the alternate screen: the client's terminal enters it first, so its own
# screen, cursor and scrollback stay underneath (shown again at detach, as under tmux).
ALT_RESET_AND_CLEAR = b"\x1b[?1049h" + SOFT_RESET_AND_CLEAR
MAX_BEHIND = 8 << 20  # bytes queued for one viewer before it is resynced instead
FOCUS_IN, FOCUS_OUT = b"\x1b[I", b"\x1b[O"
DECKPAM = b"\x1b="  # application keypad
FRAME = 1 / 30  # seconds between two pictures for a cropped viewer, at least
# Seconds a cropped viewer's picture waits for the program to end a synchronized update
# (its frame is half drawn until then); a program that never ends it is shown anyway.
SYNC_HOLD = 0.2


@attrs.define(eq=False)
class Viewer:
    """One attached client. Its output state (`pending` and the rest) is touched under
    the run's lock: the relay's thread writes to it too."""

    read_only: bool
    cols: int
    rows: int
    fd: int  # where its output goes: its own terminal, or (framed) the socket
    framed: bool
    attached_on_alt: bool = False
    last_active: float = attrs.field(factory=time.monotonic)
    pending: deque[bytes] = attrs.field(factory=deque)  # not written yet; the head maybe in part
    head_sent: int = 0
    queued: int = 0
    resync: bool = False
    gone: bool = False  # a write failed: the client or its terminal went away
    routed: bool = False  # the relay writes clean output straight to its fd (Run.reroute)
    # Its size is not the PTY's (`sync_views`): it is shown pictures, not the stream; and
    # `stale`: the screen changed since its last picture (since `stale_since`).
    cropped: bool = False
    stale: bool = False
    stale_since: float = 0.0
    drawn_at: float = -math.inf  # when its last picture was made
    # Its handed-over terminal's key reader, while there is one (None: framed or read-only).
    reader: KeyReader | None = None
    ended: dict[str, Any] | None = None  # set when the run ends: the last word to the client
    _wake: trio.Event = attrs.field(factory=trio.Event)

    def push(self, data: bytes) -> bool:
        """Terminal output for this client: written now, as far as its fd takes it without
        waiting. Returns whether its writer task must run (`wake`) for the rest."""
        if not data or self.gone:
            return self.gone
        if not self.pending and not self.framed:  # the usual case: straight out
            return self.took(data, write_some(self.fd, data))
        if self.framed:
            for start in range(0, len(data), frames.MAX_PAYLOAD):
                self._queue(frames.encode(frames.OUTPUT, data[start : start + frames.MAX_PAYLOAD]))
        else:
            self._queue(data)
        if self.queued > MAX_BEHIND:
            self.drop()
            self.resync = True
        else:
            self.flush()
        return bool(self.pending) or self.resync or self.gone

    def took(self, data: bytes, sent: int) -> bool:
        """`data` was written to the fd, with nothing pending before it, and `sent` bytes
        of it taken (-1: the write failed: EPIPE, EIO, EBADF, nobody reads this any more).
        Returns whether its writer task must run for the rest."""
        if sent < 0:
            self.gone = True
            return True
        if sent == len(data):
            return False
        self._queue(data)
        self.head_sent = sent
        return True

    def direct(self) -> bool:
        """Output may be written straight to its fd now (nothing queued or owed first)."""
        busy = self.framed or self.pending or self.resync or self.gone or self.cropped
        return not busy and self.ended is None

    def changed(self, now: float) -> bool:
        """(Cropped.) The screen changed: whether its writer task must be woken for it."""
        if self.stale:
            return False
        self.stale, self.stale_since = True, now
        return True

    def _queue(self, data: bytes) -> None:
        self.pending.append(data)
        self.queued += len(data)

    def drop(self) -> None:
        """Forget what is queued, except a head already written in part (a frame, or an
        escape sequence, must not be cut)."""
        head = self.pending[0] if self.pending and self.head_sent else None
        self.pending.clear()
        self.queued = 0
        if head is not None:
            self._queue(head)

    def flush(self) -> None:
        """Write what the fd takes now."""
        while self.pending:
            head = self.pending[0]
            sent = write_some(self.fd, memoryview(head)[self.head_sent :])
            if sent < 0:  # EPIPE, EIO, EBADF: nobody reads this any more
                self.gone = True
                self.pending.clear()
                self.queued = 0
                return
            self.head_sent += sent
            if self.head_sent < len(head):
                return  # the fd is full
            self.pending.popleft()
            self.queued -= len(head)
            self.head_sent = 0

    def wake(self) -> None:
        """Run the writer task (from the event loop's thread)."""
        self._wake.set()

    def end(self, info: dict[str, Any]) -> None:
        self.ended = info
        self._wake.set()

    async def wait(self) -> None:
        await self._wake.wait()
        self._wake = trio.Event()


def redraw(run: Run) -> bytes:
    """What a viewer needs to show the run's screen exactly as the model has it (under the
    run's lock)."""
    terminal = run.terminal
    # A program in the middle of a synchronized frame: the snapshot re-opens it and the
    # program's own closing sequence ends it; we must not end it early.
    end = b"" if terminal.mode(2026) else ESU
    # The snapshot says application keypad as DECNKM (mode 66), which tmux, VTE and others
    # ignore; DECKPAM is what every terminal knows.
    keypad = DECKPAM if terminal.mode(66) else b""
    clear = ALT_RESET_AND_CLEAR if terminal.alt_screen else SOFT_RESET_AND_CLEAR
    return BSU + clear + terminal.snapshot() + keypad + end + terminal.pending()


def crop_redraw(run: Run, viewer: Viewer) -> bytes:
    """A picture of the run's screen for a viewer of another size (under the run's lock):
    the part it can show, as tmux shows a window larger than its client: from the top
    left where the screen fits, else centred on the cursor, within the screen."""
    terminal = run.terminal
    (cols, rows), (cx, cy) = run.size, terminal.cursor
    x, y = _pan(cx, cols, viewer.cols), _pan(cy, rows, viewer.rows)
    clear = ALT_RESET_AND_CLEAR if terminal.alt_screen else SOFT_RESET_AND_CLEAR
    return BSU + clear + terminal.snapshot_region(x, y, viewer.cols, viewer.rows) + ESU


def _pan(cursor: int, size: int, view: int) -> int:
    if size <= view:
        return 0
    return max(0, min(cursor - view // 2, size - view))


def viewers(run: Run) -> list[Viewer]:
    """A run's viewers as this module made them: the run knows them only through its
    narrow `runner.Viewer` protocol, and only this module adds any."""
    return cast(list[Viewer], run.viewers)


def sync_views(run: Run) -> list[Viewer]:
    """(Under the lock.) Each viewer is cropped exactly while its size is not the PTY's;
    returns those that changed: their writer task must run (`_show`), for a picture or,
    back at the PTY's size, a full redraw and the stream again; and the relay's route
    must be redone."""
    changed = []
    for viewer in viewers(run):
        cropped = (viewer.cols, viewer.rows) != run.size
        if cropped != viewer.cropped:
            viewer.cropped = cropped
            if cropped:
                viewer.changed(time.monotonic())
            else:
                viewer.stale, viewer.resync = False, True
            changed.append(viewer)
    return changed


def _show(run: Run, changed: list[Viewer]) -> None:
    """(In the event loop.) After `sync_views`: wake the viewers that changed, redo the
    relay's routes (the output's, and each key reader's: keys go straight to the PTY only
    from a client whose size it has)."""
    for viewer in changed:
        viewer.wake()
    if changed:
        relay = run.host.relay
        relay.post(run.reroute)
        for viewer in viewers(run):
            if viewer.reader is not None:
                relay.post(viewer.reader.reroute)


def active_size(run: Run) -> tuple[int, int] | None:
    """The size of the most recently active interactive viewer, if any."""
    interactive = [v for v in viewers(run) if not v.read_only]
    if not interactive:
        return None
    latest = max(interactive, key=lambda v: v.last_active)
    return latest.cols, latest.rows


def follow_size(run: Run) -> list[Viewer]:
    """The PTY takes the most recently active interactive viewer's size (under the lock);
    then `sync_views`."""
    size = active_size(run)
    if size is not None and size != run.size:
        run.resize(*size)
    return sync_views(run)


DETACHED, HUNG_UP, ENDED = "detached", "hung up", "ended"  # why a viewer's session ends
MAX_BACKLOG = 1 << 20  # typed bytes an agent has not read before its terminal is not read
HANDOVER_TIMEOUT = 10.0  # seconds for a client to pass its terminal after the reply


async def receive_terminal(stream: trio.SocketStream) -> int | None:
    """The client's terminal: a file descriptor passed (SCM_RIGHTS) with one byte, right
    after the attach reply. None (and nothing left open) if anything else arrives."""
    fd_size = array.array("i").itemsize
    # Close-on-exec from the start: agents and git run from this process, and must never
    # get a person's terminal.
    flags = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
    try:
        with trio.fail_after(HANDOVER_TIMEOUT):
            data, ancdata, _flags, _addr = await stream.socket.recvmsg(
                1, socket.CMSG_SPACE(4 * fd_size), flags
            )
    except (trio.TooSlowError, OSError):
        return None
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fd_size])
    tty = fds[0] if data and len(fds) == 1 and os.isatty(fds[0]) else None
    for fd in fds:
        if fd != tty:
            os.close(fd)
    if tty is not None:
        os.set_inheritable(tty, False)
        os.set_blocking(tty, False)  # our own open file of the terminal: the client's is not
    return tty


async def enter_attach(run: Run, params: Any, stream: trio.SocketStream, leftover: bytes) -> None:
    """The rest of a connection whose `pty.attach` (`params`, api.AttachParams) was just
    answered: take the client's terminal if it hands it over (and it sends nothing else
    first), then serve it as the run's viewer until it leaves."""
    tty = None
    if params.tty:
        tty = None if leftover else await receive_terminal(stream)
        if tty is None:
            return
    await serve_viewer(
        run,
        stream,
        leftover,
        read_only=params.read_only,
        cols=params.cols,
        rows=params.rows,
        tty=tty,
        detach_keys=parse_detach_keys(params.detach_keys),
    )


async def serve_viewer(
    run: Run,
    stream: trio.SocketStream,
    leftover: bytes,
    *,
    read_only: bool,
    cols: int,
    rows: int,
    tty: int | None = None,
    detach_keys: bytes = b"",
) -> None:
    """Run one attached client until it detaches, hangs up, or the agent's run ends.

    With `tty` (the client's terminal, handed over) keys are read from it and output
    written to it, and the socket carries only resizes, detach and the last word (an
    EXIT frame, after which the client restores its terminal). Without, everything is
    framed on the socket.
    """
    framed = tty is None
    viewer = Viewer(
        read_only=read_only,
        cols=cols,
        rows=rows,
        fd=stream.socket.fileno() if tty is None else tty,
        framed=framed,
    )
    # Registered, sized and sent its redraw under the lock: no output interleaves. The PTY
    # takes the new client's size before the snapshot (it is the newest, so the most
    # recently active interactive viewer), so the snapshot is drawn at the client's size.
    with run.lock:
        run.viewers.append(viewer)
        changed = [v for v in follow_size(run) if v is not viewer]
        viewer.attached_on_alt = run.terminal.alt_screen
        viewer.resync = viewer.stale = False
        if viewer.cropped:
            viewer.drawn_at = time.monotonic()
        if viewer.push(crop_redraw(run, viewer) if viewer.cropped else redraw(run)):
            viewer.wake()
    _show(run, changed)
    relay = run.host.relay
    await relay.call(run.reroute)  # its clean output straight from the relay, if it can take it
    why = HUNG_UP
    pty = None  # the key reader's own file of the agent's terminal
    reader = None
    try:
        if not read_only and run.terminal_focus_events():
            await run.send_raw(FOCUS_IN)
        async with trio.open_nursery() as nursery:

            async def until(work: Callable[[], Awaitable[str]]) -> None:
                nonlocal why
                why = await work()
                nursery.cancel_scope.cancel()

            nursery.start_soon(until, partial(_write, run, viewer))
            if tty is not None:
                with run.lock:
                    if not read_only and run.session is not None and not run.closed:
                        pty = os.dup(run.session.fileno())
                reader = KeyReader(run, viewer, relay, tty, pty, DetachMatcher(detach_keys))
                viewer.reader = reader
                await relay.call(reader.start)
                nursery.start_soon(until, reader.wait)
            await until(partial(_control, run, viewer, stream, leftover))
    finally:
        # Cancelled from outside (no hang-up of ours): the daemon is stopping, which cancels
        # the connections; the client still gets its last word.
        stopping = why == HUNG_UP and trio.current_effective_deadline() == -math.inf
        with run.lock:
            alt_screen = run.terminal.alt_screen if viewer.ended is None else None
            if viewer in run.viewers:
                run.viewers.remove(viewer)
        with trio.CancelScope(shield=True):
            # The relay no longer writes to the viewer's fd once this returns: from now on
            # only this task does (the last word), and then closes it.
            await relay.call(run.reroute)
            if not read_only and run.session is not None and run.terminal_focus_events():
                # Never waited for: an agent that does not read must not hold up the detach.
                run.session.write_nowait(FOCUS_OUT)
            with run.lock:
                changed = follow_size(run)
            _show(run, changed)
            if reader is not None:
                viewer.reader = None
                # Before the last word: once the client has it, its shell reads the keys.
                await relay.call(reader.stop)
            if why != HUNG_UP or stopping:
                reason = DAEMON_STOPPING if stopping else DETACHED
                info = viewer.ended or {"reason": reason, "alt_screen": alt_screen}
                await _last_word(viewer, stream, info)
            if tty is not None:
                os.close(tty)
            if pty is not None:
                os.close(pty)


async def _last_word(viewer: Viewer, stream: trio.SocketStream, info: dict[str, Any]) -> None:
    """The output still queued (for a second at most: a terminal that does not drain loses
    the rest), then the EXIT frame, which the client waits for before it restores its
    terminal. Framed, the frame follows the output on the same socket."""
    if viewer.framed:
        viewer._queue(frames.encode_json(frames.EXIT, info))
    with trio.move_on_after(1), contextlib.suppress(OSError, trio.BrokenResourceError):
        while viewer.pending and not viewer.gone:
            viewer.flush()
            if viewer.pending:
                await trio.lowlevel.wait_writable(viewer.fd)
    if not viewer.framed:  # the terminal's state does not hold up the client's
        errors = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)
        with trio.move_on_after(1), contextlib.suppress(*errors):
            await stream.send_all(frames.encode_json(frames.EXIT, info))


async def _write(run: Run, viewer: Viewer) -> str:
    """What `push` could not write at once; resyncs. Returns when the run has ended."""
    while True:
        wait = math.inf
        with run.lock:
            if viewer.gone:
                return HUNG_UP
            if viewer.cropped and viewer.ended is None and not viewer.pending:
                wait = _picture(run, viewer)
                if wait <= 0:
                    continue
            elif viewer.resync and viewer.ended is None:
                viewer.resync = False
                viewer.drop()
                viewer.push(redraw(run))
                continue
            if not viewer.pending and viewer.ended is not None:
                return ENDED
            waiting = bool(viewer.pending)
            rejoin = not viewer.routed and viewer.direct()
        if waiting:
            try:
                await trio.lowlevel.wait_writable(viewer.fd)
            except (trio.ClosedResourceError, OSError):
                return HUNG_UP
            with run.lock:
                viewer.flush()
        else:
            if rejoin:  # caught up: the relay may write to it straight again
                run.host.relay.post(run.reroute)
            with trio.move_on_after(wait):  # until the next picture is due, or sooner news
                await viewer.wait()


def _picture(run: Run, viewer: Viewer) -> float:
    """(Under the lock; a cropped viewer with nothing queued.) Push its next picture if
    one is owed and due; else return how long until one may be (inf: none owed)."""
    if not (viewer.stale or viewer.resync):
        return math.inf
    now = time.monotonic()
    due = viewer.drawn_at + FRAME
    if run.terminal.mode(2026):  # the program is in the middle of a frame
        due = max(due, viewer.stale_since + SYNC_HOLD)
    if now < due:
        return due - now
    viewer.stale = viewer.resync = False
    viewer.drawn_at = now
    viewer.push(crop_redraw(run, viewer))
    return 0.0


@attrs.define(eq=False)
class KeyReader:
    """A handed-over terminal's keys, read in the relay's thread (daemon/relay.py): to the
    agent's PTY at once, or detach. `pty` is a file of its own on the agent's terminal
    (None for a read-only client), so nothing closes it under the relay.

    While nothing is half-matched or waiting, the relay itself writes a chunk of keys
    without the first detach key to the PTY (its route, see daemon/forward.py), and
    `on_keys` is told what the write took."""

    run: Run
    viewer: Viewer
    relay: Relay
    tty: int
    pty: int | None
    matcher: DetachMatcher
    why: str = HUNG_UP
    writable: bool = True  # false once the agent's side is gone
    # Keys its PTY has not taken yet (the agent reads slower than this is typed: a paste).
    # The terminal is still read meanwhile, so the detach keys work, up to MAX_BACKLOG.
    backlog: bytearray = attrs.field(factory=bytearray)
    paused: bool = False  # the terminal is not read until the backlog shrinks
    stopped: bool = False  # `stop` ran (in the relay's thread): nothing is routed again
    done: trio.Event = attrs.field(factory=trio.Event)

    async def wait(self) -> str:
        """Until the keys ask to detach or the terminal hangs up; which of the two."""
        await self.done.wait()
        return self.why

    def start(self) -> None:
        """In the relay's thread: read the terminal."""
        self.relay.receive_now(self.tty, self.on_keys, failed=self.failed)
        self.reroute()

    def reroute(self) -> None:
        """Keys go straight to the PTY while none is waiting and none half-matched, and the
        PTY has this client's size: otherwise a key would reach the agent before the PTY
        takes the size of the client that typed it (see `_take_size`)."""
        if self.stopped:
            return  # a reroute posted before `stop` ran: the terminal is no longer read
        pty = self.pty
        sized = self.run.size == (self.viewer.cols, self.viewer.rows)
        if (
            pty is not None
            and self.writable
            and sized
            and not self.backlog
            and not self.matcher.held
        ):
            self.relay.route_now(self.tty, (pty,), self.matcher.keys[:1], None)
        else:
            self.relay.route_now(self.tty, (), b"", None)

    def on_keys(self, data: bytes, _tag: object, sent: tuple[int, ...] | None) -> None:
        if not data:
            self._finish(HUNG_UP)  # the terminal hung up
            return
        if sent is not None:  # no detach key in it: written to the PTY already
            self._wrote(data, sent[0])
            return
        typed, detach = self.matcher.feed(data)
        if typed and self.pty is not None and self.writable:
            if self.backlog:  # behind keys still waiting: in order, after them
                self.backlog += typed
                if len(self.backlog) > MAX_BACKLOG:
                    self.paused = True
                    self.relay.unwatch_now(self.tty)
            else:
                self._take_size()
                self._wrote(typed, write_some(self.pty, typed))
        if detach:  # what is still waiting for the agent goes with the client
            self._finish(DETACHED)
        elif not self.paused:
            self.reroute()

    def on_writable(self) -> None:
        assert self.pty is not None
        data = bytes(self.backlog)
        self.backlog.clear()
        self.relay.unwatch_now(self.pty)
        self._wrote(data, write_some(self.pty, data))
        if self.paused and len(self.backlog) <= MAX_BACKLOG:
            self.paused = False
            self.start()
        elif not self.paused:
            self.reroute()

    def _wrote(self, data: bytes, sent: int) -> None:
        """`sent` bytes of `data` went to the PTY (-1: it failed); wait for it to take the
        rest. Then, the most recently active client, its size goes to the PTY."""
        assert self.pty is not None
        if sent < 0:  # EIO: the agent's side is gone; the run's end will be told
            self.writable = False
            self.backlog.clear()
            self.reroute()
            return
        run, viewer = self.run, self.viewer
        viewer.last_active = time.monotonic()
        run.note_input()
        if sent < len(data):
            self.backlog += data[sent:]
            self.relay.watch_now(self.pty, self.on_writable, write=True, failed=self.failed)
            self.reroute()
        self._take_size()

    def _take_size(self) -> None:
        """The typing client is the most recently active one: the PTY takes its size, if
        it has another (before its keys are written, where they are not routed)."""
        run, viewer = self.run, self.viewer
        viewer.last_active = time.monotonic()
        if run.size != (viewer.cols, viewer.rows):
            with run.lock:
                changed = follow_size(run)
                if changed:
                    run._reroute()  # in the relay's thread already
            if changed:
                self.relay.soon(partial(_show, run, changed))

    def failed(self, _exc: Exception) -> None:
        self._finish(HUNG_UP)  # the relay logged it; this client's session ends

    def _finish(self, why: str) -> None:
        self.why = why
        self.stop()
        self.relay.soon(self.done.set)

    def stop(self) -> None:
        """In the relay's thread: watch neither fd any more."""
        self.stopped = True
        self.relay.unwatch_now(self.tty)
        if self.pty is not None:
            self.relay.unwatch_now(self.pty)


async def _control(run: Run, viewer: Viewer, stream: trio.SocketStream, leftover: bytes) -> str:
    """Frames from the client: keys (when it kept its terminal), resizes, detach."""
    decoder = Decoder()
    data = leftover
    try:
        while True:
            for kind, payload in decoder.feed(data):
                if kind == frames.DETACH:
                    return DETACHED
                if kind == frames.INPUT and not viewer.read_only and payload:
                    await _type(run, viewer, payload)
                elif kind == frames.RESIZE:
                    size = json.loads(payload)
                    if not isinstance(size, dict):
                        return HUNG_UP
                    if not viewer.read_only:
                        viewer.last_active = time.monotonic()
                    with run.lock:
                        viewer.cols = _clamp(size.get("cols"), 2, 1000, viewer.cols)
                        viewer.rows = _clamp(size.get("rows"), 2, 1000, viewer.rows)
                        changed = follow_size(run)
                    _show(run, changed)
            data = bytes(await stream.receive_some(65536))
            if not data:
                return HUNG_UP
    except (trio.BrokenResourceError, trio.ClosedResourceError, FrameError, ValueError):
        return HUNG_UP


async def _type(run: Run, viewer: Viewer, data: bytes) -> None:
    """Keys to the agent, from the most recently active client now: the PTY takes its size
    first, unless it has it already."""
    viewer.last_active = time.monotonic()
    if run.size != (viewer.cols, viewer.rows):
        with run.lock:
            changed = follow_size(run)
        _show(run, changed)
    # The agent's terminal may be closing: the run's end will be told.
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, InvalidTransition):
        await run.send_input(data)


def _clamp(value: Any, low: int, high: int, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or math.isnan(value):
        return default
    return max(low, min(high, value))
