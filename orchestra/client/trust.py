"""Whether a daemon socket is ours to talk to: checked by every client before a byte is sent.

Whoever can write in the socket's directory can put their own listener in the daemon's
place, and a listener of another user would read our prompts (and `attach` would hand
it the terminal). So a client refuses both (UntrustedSocket), and starts no daemon there.
"""

from __future__ import annotations

import os
import socket as _socket
import struct
import sys
from pathlib import Path

from orchestra.adapters import paths
from orchestra.core.errors import UntrustedSocket


def check_socket_dir(path: Path) -> None:
    """Refuse a socket whose directory is not a private one of ours: whoever can write
    there can put their own listener in the daemon's place. No directory yet is fine
    (the daemon makes it, 0700, and refuses one someone else made meanwhile)."""
    where = path.parent
    try:
        problem = paths.foreign(where)
        wide = 0 if problem else paths.open_to_others(where)
    except FileNotFoundError:
        return
    if problem is None and wide:
        problem = (
            f"{where} is open to other users (mode {0o700 | wide:04o}): run `chmod 700 {where}`"
            " if it is a directory of yours for the socket alone, or set ORCHESTRA_SOCKET to a"
            " path in one"
        )
    elif problem is not None:
        problem += ": remove it, or set ORCHESTRA_SOCKET to a path in a directory of your own"
    if problem is not None:
        raise UntrustedSocket(
            f"refusing the daemon socket {path}, nothing was sent: {problem}", socket=str(path)
        )


def peer_uid(sock: _socket.socket) -> int:
    """The uid of the process that listens on the other end of the connected `sock`."""
    if hasattr(_socket, "SO_PEERCRED"):  # Linux: struct ucred {pid, uid, gid}
        raw = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, struct.calcsize("iII"))
        return int(struct.unpack("iII", raw)[1])
    if sys.platform == "darwin" or "bsd" in sys.platform:
        # getsockopt(SOL_LOCAL=0, LOCAL_PEERCRED=1): struct xucred {version, uid, ngroups,
        # groups[16]}, what getpeereid(3) reads (Python has no getpeereid).
        raw = sock.getsockopt(0, getattr(_socket, "LOCAL_PEERCRED", 1), struct.calcsize("IIh16I"))
        return int(struct.unpack_from("II", raw)[1])
    raise OSError(f"no way to ask who listens on a Unix socket on {sys.platform}")


def check_peer(sock: _socket.socket, path: Path) -> None:
    """Refuse a connection whose listener runs as another user: it would read the prompts
    we send, and `attach` would hand it the terminal."""
    try:
        uid = peer_uid(sock)
    except OSError as exc:
        raise UntrustedSocket(
            f"refusing the daemon socket {path}, nothing was sent: cannot tell who listens"
            f" on it ({exc.strerror or exc})",
            socket=str(path),
        ) from None
    if uid != os.geteuid():
        raise UntrustedSocket(
            f"refusing the daemon socket {path}, nothing was sent: the process listening on it"
            f" runs as uid {uid}, not as you (uid {os.geteuid()}); stop it, or set"
            " ORCHESTRA_SOCKET to a path in a directory of your own",
            socket=str(path),
        )
