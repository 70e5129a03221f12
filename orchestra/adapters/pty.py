"""An agent process in a pseudo-terminal, read and written from trio without blocking.

ptyprocess forks the child onto a new PTY (as a session leader). We never call
its `read`/`wait`/`isalive`/`close` (they block or sleep): a dup of the master
fd, non-blocking, is read by the daemon's relay thread and written here (waiting
in trio when the agent's input is full), and the child is reaped by the daemon's
Reaper. At EOF Linux reports EIO on the master: "the agent side closed".
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import attrs
import trio
from ptyprocess import PtyProcess

from orchestra.adapters.cgroups import Cgroup
from orchestra.adapters.procs import Reaper
from orchestra.core.errors import OrchestraError

# The kernel hands a PTY's output over in pieces of at most 4095 bytes: reading more at a
# time only costs a larger buffer (which a keystroke's echo pays for too).
PIECE = 4096
# A read this large suggests more is waiting; a smaller one (an echo) is all there is.
DRAIN_AFTER = 1024


class SpawnError(OrchestraError):
    kind = "spawn"


@attrs.define(eq=False)
class PtySession:
    proc: PtyProcess
    stream: trio.lowlevel.FdStream
    exited: trio.Event  # set by the reaper when the child exits
    fd: int = attrs.field(init=False)  # the stream's: the master side (-1 once closed)
    # Writers (clients typing, attached viewers) take turns: a stream has one sender at a
    # time, and an agent that does not read its input makes a write wait.
    _write_lock: trio.Lock = attrs.field(factory=trio.Lock)

    def __attrs_post_init__(self) -> None:
        self.fd = self.stream.fileno()

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    @classmethod
    def spawn(
        cls,
        argv: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        rows: int,
        cols: int,
        reaper: Reaper,
        cgroup: Cgroup | None = None,
    ) -> PtySession:
        """Start `argv` on a new PTY, with the reaper's umask; it joins `cgroup` (if any)
        before it execs. Blocking until the child execs (10-30 ms in a large daemon): call
        it from a worker thread."""
        exe = shutil.which(argv[0], path=env.get("PATH")) if "/" not in argv[0] else argv[0]
        if exe is None:
            raise SpawnError(
                f"agent command {argv[0]!r} not found on PATH; install it or set"
                f" [agents.<name>] command in config",
                argv=argv,
            )
        try:
            with reaper.spawning():
                proc = PtyProcess.spawn(
                    [exe, *argv[1:]],
                    cwd=str(cwd),
                    env=dict(env),
                    dimensions=(rows, cols),
                    preexec_fn=reaper.child_setup(cgroup),
                )
                # Registered before the fork is done, so the reaper cannot miss it.
                exited = reaper.watch(proc.pid)
        except OSError as exc:
            raise SpawnError(f"cannot start {argv[0]!r}: {exc}", argv=argv) from None
        stream = trio.lowlevel.FdStream(os.dup(proc.fd))
        return cls(proc=proc, stream=stream, exited=exited)

    def fileno(self) -> int:
        """The master side (-1 once closed)."""
        return self.fd

    def read_now(self, max_bytes: int = 65536) -> bytes | None:
        """What the agent wrote, without waiting: None when nothing is there (yet), b""
        once its side of the terminal is closed. For the relay's thread (daemon/relay.py).

        The kernel hands a PTY's output over in pieces of about 4 KiB, so after a large
        read what is already there is read too, up to `max_bytes`: one wakeup per piece
        would cap a fast agent at what a wakeup costs.
        """
        fd = self.fd
        try:
            data = os.read(fd, PIECE)
        except BlockingIOError:  # a spurious wakeup
            return None
        except OSError:  # EIO: the agent's side of the terminal is closed
            return b""
        if len(data) < DRAIN_AFTER:
            return data  # all there is (a keystroke's echo takes this way)
        chunks = [data]
        size = len(data)
        while size < max_bytes and len(chunks[-1]) >= DRAIN_AFTER:
            try:
                data = os.read(fd, PIECE)
            except BlockingIOError:  # nothing more yet (or a spurious wakeup)
                break
            except OSError:  # EIO: the agent's side of the terminal is closed
                data = b""
            if not data:
                break
            chunks.append(data)
            size += len(data)
        return b"".join(chunks)

    async def write(self, data: bytes, *, stall: float = math.inf) -> int:
        """Write `data`, after any write already waiting (FIFO); return how much was
        written: all of it, unless the agent read none of its input for `stall` seconds
        (then the rest is dropped: nothing still waits to be typed in later).

        With no write waiting, what the terminal takes now goes at once, with no
        scheduler turn (a keystroke's other half); only a remainder waits its turn.
        Raises BrokenResourceError once the agent's side is gone.
        """
        sent = 0
        if not self._write_lock.locked():
            sent = self._write_some(data)
            if sent == len(data):
                return sent
        with trio.move_on_after(stall) as waiting:
            async with self._write_lock:
                view = memoryview(data)
                while True:
                    sent += self._write_some(view[sent:])
                    if sent == len(data):
                        break
                    waiting.deadline = trio.current_time() + stall
                    await trio.lowlevel.wait_writable(self.fd)
        return sent

    def _write_some(self, data: bytes | memoryview) -> int:
        if self.fd < 0:
            raise trio.ClosedResourceError("the agent's terminal is closed")
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:  # EIO: the agent's side is gone
            raise trio.BrokenResourceError(f"the agent's terminal: {exc}") from exc

    def write_nowait(self, data: bytes) -> int:
        """Write what the terminal takes now, without waiting; return how much that was.

        For the answers to the agent's terminal queries: the output pump must never wait
        on the input side, or an agent that does not read its input (or a client whose
        paste it reads slowly) would stall its output, and with it the agent.
        """
        try:
            return self._write_some(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):  # hung up, closed
            return 0

    def resize(self, rows: int, cols: int) -> None:
        with contextlib.suppress(OSError):
            self.proc.setwinsize(rows, cols)

    def close(self) -> None:
        """Close both fds we hold on the master; ptyprocess must not touch them again."""
        self.fd = -1
        with contextlib.suppress(OSError, trio.ClosedResourceError):
            self.stream.close()
        if not self.proc.closed:
            with contextlib.suppress(OSError):
                self.proc.fileobj.close()
            self.proc.fd = -1
            self.proc.closed = True
        self.proc.terminated = True
