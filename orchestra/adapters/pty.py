"""An agent process in a pseudo-terminal, read and written from trio without blocking.

ptyprocess forks the child onto a new PTY (as a session leader). We never call
its `read`/`wait`/`isalive`/`close` (they block or sleep): the master fd is
read and written through a `trio.lowlevel.FdStream` on a dup of it, and the
child is reaped by the daemon's Reaper. At EOF Linux reports EIO on the master,
which trio surfaces as BrokenResourceError: both mean "the agent side closed".
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import attrs
import trio
from ptyprocess import PtyProcess

from orchestra.adapters.procs import Reaper
from orchestra.core.errors import OrchestraError

# A read this large suggests more is waiting (the kernel hands a PTY's output over in
# pieces of about 4 KiB); a smaller one, such as a keystroke's echo, is all there is.
DRAIN_AFTER = 1024


class SpawnError(OrchestraError):
    kind = "spawn"


@attrs.define(eq=False)
class PtySession:
    proc: PtyProcess
    stream: trio.lowlevel.FdStream
    exited: trio.Event  # set by the reaper when the child exits
    # Writers (clients typing, attached viewers) take turns: a stream has one sender at a
    # time, and an agent that does not read its input makes a write wait.
    _write_lock: trio.Lock = attrs.field(factory=trio.Lock)

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
    ) -> PtySession:
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
                    [exe, *argv[1:]], cwd=str(cwd), env=dict(env), dimensions=(rows, cols)
                )
            # Registered before this (the loop's) thread yields, so the reaper cannot miss it.
            exited = reaper.watch(proc.pid)
        except OSError as exc:
            raise SpawnError(f"cannot start {argv[0]!r}: {exc}", argv=argv) from None
        stream = trio.lowlevel.FdStream(os.dup(proc.fd))
        return cls(proc=proc, stream=stream, exited=exited)

    async def read(self, max_bytes: int = 65536) -> bytes:
        """Bytes the agent wrote; b"" once its side of the terminal is closed.

        One scheduler turn per read (wait until readable, then read without waiting), not
        the two of `FdStream.receive_some` (a checkpoint, then the wait): this is half of a
        keystroke's round trip. The kernel's PTY buffer holds about 4 KiB, so after a
        large read what is already there is read too, up to `max_bytes`, or a fast agent
        would be capped at what the loop does per wakeup.
        """
        fd = self.stream.fileno()
        while True:
            try:
                await trio.lowlevel.wait_readable(fd)
            except (trio.ClosedResourceError, OSError):  # closed by us: the run is ending
                return b""
            chunks: list[bytes] = []
            size = 0
            while size < max_bytes and (not chunks or len(chunks[-1]) >= DRAIN_AFTER):
                try:
                    data = os.read(fd, max_bytes - size)
                except BlockingIOError:  # nothing more yet (or a spurious wakeup)
                    break
                except OSError:  # EIO: the agent's side of the terminal is closed
                    return b"".join(chunks)
                if not data:
                    return b"".join(chunks)
                chunks.append(data)
                size += len(data)
            if chunks:
                return b"".join(chunks)

    async def write(self, data: bytes) -> None:
        """Write all of `data`, after any write already waiting (FIFO).

        With no write waiting, what the terminal takes now goes at once, with no
        scheduler turn (a keystroke's other half); only a remainder waits its turn.
        """
        if not self._write_lock.locked():
            sent = self.write_nowait(data)
            if sent == len(data):
                return
            data = data[sent:]
        async with self._write_lock:
            await self.stream.send_all(data)

    def write_nowait(self, data: bytes) -> int:
        """Write what the terminal takes now, without waiting; return how much that was.

        For the answers to the agent's terminal queries: the output pump must never wait
        on the input side, or an agent that does not read its input (or a client whose
        paste it reads slowly) would stall its output, and with it the agent.
        """
        try:
            return os.write(self.stream.fileno(), data)
        except (OSError, trio.ClosedResourceError):  # full (EAGAIN), hung up (EIO), closed
            return 0

    def resize(self, rows: int, cols: int) -> None:
        with contextlib.suppress(OSError):
            self.proc.setwinsize(rows, cols)

    def close(self) -> None:
        """Close both fds we hold on the master; ptyprocess must not touch them again."""
        with contextlib.suppress(OSError, trio.ClosedResourceError):
            self.stream.close()
        if not self.proc.closed:
            with contextlib.suppress(OSError):
                self.proc.fileobj.close()
            self.proc.fd = -1
            self.proc.closed = True
        self.proc.terminated = True
