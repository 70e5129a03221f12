"""A daemon on another machine, reached through the system's `ssh` (no protocol of ours).

`open_link` runs `ssh -T HOST orchestra bridge` as a child whose stdin and stdout are one
end of a socket pair; the other end is then used exactly as a connection to a local
daemon's socket (the same `Client`, the same attach stream), since the bridge on the
host only joins its stdin and stdout to that host's daemon. The bridge says its version
first (`core/remote.py`'s greeting), so a mismatch or a missing daemon is one clear line.

Connections are shared: unless the user's ssh config already sets ControlMaster or
ControlPath, ssh is told to keep one master connection per host for CONTROL_PERSIST in
a private directory beside the daemon's socket, so a one-shot command over SSH costs a
round trip, not a handshake. Stdlib only, as the rest of the CLI's way to a call.
"""

from __future__ import annotations

import os
import select
import socket as _socket
import subprocess
import time
from pathlib import Path

import orchestra
from orchestra.core import ndjson, remote
from orchestra.core.errors import HostUnreachable, OrchestraError

GREETING_TIMEOUT = 60.0  # s for ssh to connect, the bridge to start and reach its daemon
SUFFIX_LEN = 17  # the temporary suffix ssh adds to a control path while it binds it
MAX_SUN_PATH = 104  # the smallest sun_path of the systems ssh runs on (macOS), with its NUL


class Link:
    """The ssh child behind a connection: what it said on stderr, and its end."""

    def __init__(self, target: remote.Target, proc: subprocess.Popen[bytes], err: int):
        self.target = target
        self.proc = proc
        self._err = err  # an unnamed file holding ssh's stderr

    def stderr(self) -> str:
        """The end of what ssh said on stderr."""
        size = os.fstat(self._err).st_size
        return os.pread(self._err, 8192, max(0, size - 8192)).decode("utf-8", "replace")

    def exit_code(self, wait: float = 2.0) -> int | None:
        """ssh's exit status, once it has ended (None if it has not within `wait` s)."""
        try:
            return self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None

    def lost(self) -> OrchestraError:
        """Why the connection ended under us (ssh's last words, once it has exited)."""
        code = self.exit_code()
        said = [line.strip() for line in self.stderr().splitlines() if line.strip()]
        why = said[-1] if said else f"ssh exited {code}" if code is not None else "closed"
        return HostUnreachable(
            f"lost the connection to {self.target.name} ({why}); its agents keep running",
            host=self.target.name,
            exit_code=code,
        )

    def close(self) -> None:
        """Let ssh end by itself: our end of its stdin is closed first (by the caller), so
        the bridge sees the end, then ssh. Not waited for (a one-shot command would pay
        ssh's teardown); `subprocess` reaps it later, or our exit does."""
        self.proc.poll()
        os.close(self._err)


def control_path(directory: Path, t: remote.Target) -> str | None:
    """Where our shared connection to `t` lives (one per ssh command and destination), or
    None when that path would be too long for a socket (ssh then connects afresh)."""
    path = directory / remote.control_name(t)
    if len(os.fsencode(path)) + SUFFIX_LEN >= MAX_SUN_PATH:
        return None
    try:
        from orchestra.adapters import paths

        paths.private_dir(directory.parent)  # the socket's directory: the daemon's too
        paths.private_dir(directory)
    except OSError:
        return None
    return str(path)


def user_shares_connections(t: remote.Target) -> bool:
    """Whether the user's ssh config for this host sets connection sharing of its own."""
    try:
        out = subprocess.run(
            [*t.ssh, "-G", "--", t.destination],
            capture_output=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and remote.uses_control(out.stdout.decode("utf-8", "replace"))


def argv(t: remote.Target, control_dir: Path | None, *, start: bool = True) -> list[str]:
    """The whole ssh command for `t`, with our shared connection where the user has none.
    Once our shared connection to `t` runs, the user's config is not asked again (`ssh -G`
    costs a process start on every command)."""
    path = None
    if control_dir is not None:
        ours = control_dir / remote.control_name(t)
        if ours.is_socket() or not user_shares_connections(t):
            path = control_path(control_dir, t)
    return remote.ssh_argv(t, path, start=start)


def unnamed_file(directory: Path | None) -> int:
    """A file with no name (gone once closed), for ssh's stderr: not a pipe, which a control
    master forked by ssh may hold open long after. In our private `directory` where the
    system makes unnamed files (Linux's O_TMPFILE), else from `tempfile`, which costs a
    one-shot command more (it imports random, hashlib and shutil)."""
    if directory is not None and hasattr(os, "O_TMPFILE"):
        try:
            return os.open(directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError:
            pass  # not made yet, or a file system without unnamed files
    import tempfile

    with tempfile.TemporaryFile() as f:
        return os.dup(f.fileno())


def open_link(
    t: remote.Target,
    *,
    control_dir: Path | None,
    start: bool = True,
    timeout: float = GREETING_TIMEOUT,
) -> tuple[_socket.socket, Link, bytes]:
    """Start ssh to `t`'s bridge (`start`: which may start the daemon there) and wait for
    its greeting: the connected socket, the link, and any bytes read past the greeting.
    One clear error otherwise (`remote.failure`)."""
    ours, theirs = _socket.socketpair()
    command = argv(t, control_dir, start=start)  # makes the control directory, if it can
    err = unnamed_file(control_dir if control_dir is not None and control_dir.is_dir() else None)
    try:
        fd = theirs.fileno()
        proc = subprocess.Popen(command, stdin=fd, stdout=fd, stderr=err, close_fds=True)
    except OSError as exc:
        ours.close()
        os.close(err)
        raise HostUnreachable(
            f"cannot run {command[0]} to reach {t.name}: {exc.strerror or exc}", host=t.name
        ) from None
    finally:
        theirs.close()
    link = Link(t, proc, err)
    try:
        rest = _greeting(ours, link, time.monotonic() + timeout)
    except BaseException:
        ours.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(err)
        raise
    return ours, link, rest


def _greeting(sock: _socket.socket, link: Link, deadline: float) -> bytes:
    """Read up to the bridge's greeting and check it; what follows it is returned."""
    lines = ndjson.LineSplitter(ndjson.MAX_REPLY)
    noise = 0
    while True:
        line = lines.next()
        if isinstance(line, bytes):
            params = remote.greeting(line)
            if params is not None:
                remote.check_greeting(link.target, params, orchestra.__version__)
                return lines.rest()
            noise += 1
            if noise > remote.MAX_GREETING_NOISE:
                raise HostUnreachable(
                    f"{link.target.name} printed {noise} lines before orchestra's greeting"
                    " (does a shell startup file there write to stdout?)",
                    host=link.target.name,
                )
            continue
        if line is ndjson.TOO_LONG:
            raise HostUnreachable(
                f"{link.target.name} sent a line too long to be orchestra's greeting",
                host=link.target.name,
            )
        left = deadline - time.monotonic()
        ready = select.select([sock], [], [], max(0.0, left))[0] if left > 0 else []
        if not ready:
            raise remote.failure(link.target, None, link.stderr())
        chunk = sock.recv(65536)
        if not chunk:
            raise remote.failure(link.target, link.exit_code(), link.stderr())
        lines.feed(chunk)
