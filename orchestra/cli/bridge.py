"""`orchestra bridge`: this machine's daemon on stdin and stdout, for a client over SSH.

A client on another machine runs `ssh -T HOST orchestra bridge` (`client/remote.py`) and
speaks to the daemon here through it. The bridge speaks nothing of its own past its
first line, the greeting (`core/remote.py`: its version, or why it could not reach the
daemon); from then on it only moves bytes between its stdin and stdout and a connection
to the daemon's socket (started first if it is not running, by this machine's config),
until either side ends. So everything a local client can do (calls, events, the attach
stream) works the same over SSH, and the daemon sees one more local client.

Served before Typer is imported (cli/__init__.py), since every command over SSH pays its
start-up.
"""

from __future__ import annotations

import os
import socket
import threading

import orchestra
from orchestra.core import remote
from orchestra.core.errors import OrchestraError

CHUNK = 1 << 18


def run(*, start: bool = True) -> int:
    """The bridge's whole life: 0 once either side has ended, else the error's exit code.
    `start`: start the daemon if it is not running (as this machine's autostart allows)."""
    from orchestra.client.local import Local

    try:
        # This machine's daemon, whatever a default host says: a bridge never hops on.
        client = Local(None, host=remote.LOCAL).connect(start=start)
    except OrchestraError as exc:
        _write_all(1, remote.hello(orchestra.__version__, exc))
        return exc.exit_code
    sock = client.sock
    assert sock is not None
    sock.settimeout(None)
    try:
        _write_all(1, remote.hello(orchestra.__version__))
        threading.Thread(target=_upstream, args=(sock,), daemon=True).start()
        _downstream(sock)
    except OSError:
        pass  # the client went away: nothing to tell anyone
    finally:
        client.close()
    return 0


def _upstream(sock: socket.socket) -> None:
    """stdin to the daemon; at its end, the daemon is told no more requests come."""
    try:
        while data := os.read(0, CHUNK):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        os._exit(0)  # the daemon is gone (the other thread says so) or the client is


def _downstream(sock: socket.socket) -> None:
    """The daemon to stdout, until it hangs up."""
    while data := sock.recv(CHUNK):
        _write_all(1, data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
