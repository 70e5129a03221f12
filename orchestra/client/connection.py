"""The blocking JSON-RPC client, for one-shot commands and scripts.

Stdlib only (socket, json): a CLI call must not pay for trio, attrs or cattrs at
start-up. The codec is the core's (`core/jsonrpc.Calls`, `core/ndjson.LineSplitter`);
this module only moves its bytes:

    with Client(socket_path) as c:
        c.call("task.list", {"project": "/path/to/repo"})
"""

from __future__ import annotations

import os
import socket as _socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from orchestra.client.trust import check_peer, check_socket_dir
from orchestra.core import jsonrpc, ndjson
from orchestra.core.errors import DaemonUnreachable

if TYPE_CHECKING:
    from orchestra.client.remote import Link

CONNECT_ERRORS = (FileNotFoundError, ConnectionRefusedError, ConnectionResetError)
READ_SIZE = 65536


class Client:
    """One connection to the daemon, one call at a time: to the socket `path`, or (made by
    `over`) to another host's daemon through an ssh child (`client/remote.py`)."""

    def __init__(self, path: Path, *, timeout: float | None = 60.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: _socket.socket | None = None
        self._calls = jsonrpc.Calls()
        self._lines = ndjson.LineSplitter(ndjson.MAX_REPLY)
        self.link: Link | None = None  # the ssh child, for a daemon on another host
        self.where = str(path)  # for messages: the socket, or the host

    @classmethod
    def over(cls, sock: _socket.socket, link: Link, rest: bytes = b"") -> Client:
        """A client of the connection `sock`, made by `remote.open_link` (`rest`: bytes
        it read past the bridge's greeting)."""
        client = cls(Path(link.target.name), timeout=None)
        client._sock, client.link, client.where = sock, link, link.target.name
        client._lines.feed(rest)
        return client

    @property
    def remote(self) -> bool:
        """Whether the daemon is on another host (a terminal cannot be handed to it)."""
        return self.link is not None

    def connect(self) -> Client:
        """Connect, if the socket's directory and the process listening are the user's own
        (UntrustedSocket otherwise, before a byte is sent)."""
        check_socket_dir(self.path)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            _connect(sock, os.fspath(self.path), self.timeout)
            check_peer(sock, self.path)
        except (TimeoutError, *CONNECT_ERRORS, PermissionError) as exc:
            sock.close()
            raise DaemonUnreachable(
                f"the daemon is not answering on {self.path} ({exc.strerror or exc})",
                socket=str(self.path),
            ) from None
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return self

    @property
    def sock(self) -> _socket.socket | None:
        """The connected socket."""
        return self._sock

    def take_over(self) -> tuple[_socket.socket, bytes]:
        """The socket and the bytes read past the last reply, for a connection that leaves
        JSON-RPC behind (`pty.attach`: frames follow its reply). The client is done."""
        sock, self._sock = self._sock, None
        assert sock is not None
        return sock, self._lines.rest()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        if self.link is not None:
            self.link.close()

    def __enter__(self) -> Client:
        return self if self._sock is not None else self.connect()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send one request and return its result, or raise RemoteError with its code and data."""
        if self._sock is None:
            if self.link is not None:
                raise self.link.lost()
            self.connect()
        assert self._sock is not None
        request_id, data = self._calls.request(method, params)
        try:
            self._sock.sendall(data)
            while True:
                message = self._calls.receive(self._line())
                if isinstance(message, jsonrpc.Response) and message.id == request_id:
                    break  # notifications (events) may arrive before our reply
        except (OSError, ValueError) as exc:
            self._calls.forget(request_id)
            if self.link is not None:
                raise self.link.lost() from None
            raise DaemonUnreachable(
                f"the daemon closed the connection on {self.path} ({exc})", socket=str(self.path)
            ) from None
        return message.value()

    def _line(self) -> bytes:
        """The next line from the daemon (OSError once it hangs up, ValueError past the bound)."""
        assert self._sock is not None
        while True:
            line = self._lines.next()
            if isinstance(line, bytes):
                return line
            if line is ndjson.TOO_LONG:
                raise ValueError(f"a reply longer than {ndjson.MAX_REPLY >> 20} MiB")
            chunk = self._sock.recv(READ_SIZE)
            if not chunk:
                raise ConnectionResetError("connection closed by the daemon")
            self._lines.feed(chunk)

    def notifications(self) -> Iterator[jsonrpc.Notice]:
        """Yield notifications (after `events.subscribe`) until the daemon goes away."""
        assert self._sock is not None
        self._sock.settimeout(None)
        while True:
            try:
                message = self._calls.receive(self._line())
            except (OSError, ValueError):
                return
            if isinstance(message, jsonrpc.Notice):
                yield message


def _connect(sock: _socket.socket, path: str, timeout: float | None) -> None:
    """Connect, waiting (up to `timeout`) while the daemon's listen queue is full.

    With a timeout the socket is non-blocking, and a Unix socket's connect then fails
    with EAGAIN when the queue is full (a burst of clients) instead of waiting.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if deadline is not None and time.monotonic() + delay > deadline:
                raise TimeoutError("its connection queue stayed full") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
