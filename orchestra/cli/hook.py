"""`orchestra hook EVENT`: an agent's hook, reported to the daemon (`task.report`).

Agents run it on every turn and tool call, so it must cost little and never get in their
way: stdlib only (socket, json; not even orchestra.client, whose package pulls in more),
at most MAX_PAYLOAD bytes of stdin, and BUDGET seconds in all, after which it gives up.
Whatever happens (the daemon gone, a payload that is no JSON, not inside a task) it
exits 0 and prints nothing: the agent's screen is not ours to write on. The daemon logs
what it refuses, when it can be reached (a payload that is no JSON is sent as text, so
that it can say so).

The run comes from the environment the daemon gave the agent: ORCHESTRA_SOCKET,
ORCHESTRA_TASK_ID and ORCHESTRA_RUN_ID (the run marker: a hook of an agent the daemon
no longer runs is refused as stale), never from the current directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Sequence

MAX_PAYLOAD = 1 << 20  # bytes of stdin read, at most
MAX_TEXT = 4096  # characters of a payload that is no JSON, sent for the daemon's log
BUDGET = 0.9  # seconds, in all: the agent waits for no more than a second


def run(args: Sequence[str]) -> int:
    """The hook's whole life; always 0."""
    # Whatever went wrong (even ^C): a hook must never fail its agent, nor print.
    with contextlib.suppress(BaseException):
        _report(args[0], time.monotonic() + BUDGET)
    return 0


def _report(event: str, deadline: float) -> None:
    env = os.environ
    path, task, marker = (
        env.get(k) for k in ("ORCHESTRA_SOCKET", "ORCHESTRA_TASK_ID", "ORCHESTRA_RUN_ID")
    )
    if not (path and task and task.isascii() and task.isdigit() and marker):
        return  # not inside a task: nothing to report
    raw = _stdin(deadline)
    try:
        payload: object = json.loads(raw) if raw.strip() else {}
    except ValueError:
        payload = raw[:MAX_TEXT].decode("utf-8", "replace")  # the daemon logs and refuses it
    params = {"task": int(task), "run": marker, "event": event, "payload": payload}
    project = env.get("ORCHESTRA_PROJECT")
    if project:
        params["project"] = project
    request = {"jsonrpc": "2.0", "id": 1, "method": "task.report", "params": params}
    _call(path, json.dumps(request).encode() + b"\n", deadline)


def _stdin(deadline: float) -> bytes:
    """What the agent wrote on stdin, up to MAX_PAYLOAD bytes, until EOF or the deadline
    (a terminal, or a pipe nobody closes, is waited for no longer)."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return b""
    if os.isatty(fd):
        return b""
    chunks, size = [], 0
    while size <= MAX_PAYLOAD:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, min(65536, MAX_PAYLOAD + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    return b"" if size > MAX_PAYLOAD else data  # a truncated payload is no payload


def _call(path: str, request: bytes, deadline: float) -> None:
    """Send the request and wait for the reply's line (not read: nothing is shown), all
    within the deadline; only to a daemon of our own user (as orchestra.client checks)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        sock.connect(path)
        if _peer_uid(sock) != os.geteuid():
            return  # another user's listener would read the payload: send nothing
        sock.sendall(request)
        got = b""
        while b"\n" not in got:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                return
            got += chunk


def _peer_uid(sock: socket.socket) -> int:
    """The uid of the process listening on `sock` (-1 where it cannot be told)."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux: struct ucred {pid, uid, gid}
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("iII"))
        return int(struct.unpack("iII", raw)[1])
    if sys.platform == "darwin" or "bsd" in sys.platform:  # struct xucred {version, uid, ...}
        raw = sock.getsockopt(0, getattr(socket, "LOCAL_PEERCRED", 1), struct.calcsize("IIh16I"))
        return int(struct.unpack_from("II", raw)[1])
    return -1
