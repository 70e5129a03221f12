"""The daemon's accept loop, in process: a listener that fails for good stops the server
(no retry loop), and running out of descriptors only holds accepting up until some close."""

from __future__ import annotations

import logging
import os
import resource
import socket
from pathlib import Path
from typing import Any, cast

import pytest
import trio

from orchestra.core import jsonrpc
from orchestra.daemon import server
from orchestra.daemon.dispatch import Daemon


class Bare:
    """What the server asks of the daemon when no method touches a project."""

    def __init__(self) -> None:
        self.shutdown = trio.Event()
        self.stopping: object | None = None
        self.hub: Any = None


async def listening(path: Path) -> trio.SocketListener:
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(os.fspath(path))
    sock.listen(16)
    return trio.SocketListener(sock)


class Tries(logging.Handler):
    """Sets `event` once the daemon has logged `count` failed accepts."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.event = trio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "daemon.accept_failed":
            self.count -= 1
            if self.count <= 0:
                self.event.set()


def failures(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


async def test_a_listener_closed_under_the_server_stops_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    """Closing the listening socket under a serving daemon ends serve() at once: it logs
    why and asks the daemon to stop, instead of accepting again forever."""
    daemon = Bare()
    listener = await listening(tmp_path / "s.sock")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve, cast(Daemon, daemon), listener)
        await trio.testing.wait_all_tasks_blocked()
        listener.socket.close()
        with trio.fail_after(5):
            await daemon.shutdown.wait()
    assert len(failures(caplog, "daemon.listener_failed")) == 1


async def test_an_accept_that_fails_for_good_is_not_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    """An accept error that is not about capacity (EINVAL: the descriptor is a socket that
    no longer listens) stops serve() after one try, not one every 100 ms."""
    daemon = Bare()
    listener = await listening(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        os.dup2(idle.fileno(), listener.socket.fileno())  # the same fd, no longer listening
    with trio.fail_after(5):
        await server.serve(cast(Daemon, daemon), listener)
    assert daemon.shutdown.is_set()
    assert len(failures(caplog, "daemon.accept_failed")) == 1
    assert len(failures(caplog, "daemon.listener_failed")) == 1


async def test_out_of_descriptors_backs_off_and_keeps_serving(tmp_path: Path) -> None:
    """With no descriptor left (EMFILE) a waiting client is not accepted, and the server
    goes on; once descriptors are free again it is accepted and answered."""
    tries = Tries(2)  # it tried, waited, and tried again
    logging.getLogger("orchestra.daemon").addHandler(tries)
    path = tmp_path / "s.sock"
    daemon = Bare()
    listener = await listening(path)
    client = await trio.open_unix_socket(os.fspath(path))  # queued until accepted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
        async with trio.open_nursery() as nursery:
            while True:  # every descriptor taken
                try:
                    fillers.append(os.dup(0))
                except OSError:
                    break
            nursery.start_soon(server.serve, cast(Daemon, daemon), listener)
            with trio.fail_after(10):
                await tries.event.wait()
            assert not daemon.shutdown.is_set()
            for fd in fillers:
                os.close(fd)
            fillers.clear()
            with trio.fail_after(10):
                await client.send_all(b'{"jsonrpc": "2.0", "method": "daemon.ping", "id": 1}\n')
                line = await client.receive_some(65536)
            assert jsonrpc.Calls().receive(line) is None  # not a request of this Calls'
            assert b'"pong":true' in line
            nursery.cancel_scope.cancel()
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        logging.getLogger("orchestra.daemon").removeHandler(tries)
        await client.aclose()
