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


class SpawnError(OrchestraError):
    kind = "spawn"


@attrs.define(eq=False)
class PtySession:
    proc: PtyProcess
    stream: trio.lowlevel.FdStream
    exited: trio.Event  # set by the reaper when the child exits

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
        """Bytes the agent wrote; b"" once its side of the terminal is closed."""
        try:
            return await self.stream.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""
        except OSError:
            return b""

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)

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
