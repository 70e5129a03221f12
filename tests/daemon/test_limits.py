"""What one connection may cost the daemon (docs/api.md "Limits"), against a real daemon on
a real socket: a client that reads nothing is cut off while others are served, batches,
lines, nesting and connections are bounded with one clear error each, idle and stalled
connections are closed, and a slow subscriber is dropped and told.

The daemons here run with short timeouts (`[limits]` in their global config), so every
bound shows within a second or so.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from orchestra.core import jsonrpc
from orchestra.core.config import LimitsConfig
from orchestra.core.errors import RemoteError
from orchestra.daemon import events
from orchestra.daemon.server import DESCRIPTOR_RESERVE, Limits
from tests.conftest import Env, make_repo, private_user
from tests.daemon.wire import Raw, wait_until

STALL = 0.5  # limits.stall_timeout of the `short` daemon
IDLE = 0.6  # its limits.idle_timeout
CONNECTIONS = 6  # its limits.connections


def _daemon(limits: str) -> Iterator[Env]:
    with private_user() as env:
        config = env.base / "config" / "orchestra" / "config.toml"
        config.parent.mkdir(parents=True)
        config.write_text("[limits]\n" + limits)
        env.run("daemon", "start", check=True)
        yield env


@pytest.fixture(scope="module")
def short() -> Iterator[Env]:
    """A daemon with short stall and idle timeouts and room for few connections."""
    yield from _daemon(
        f"stall_timeout = {STALL}\nidle_timeout = {IDLE}\nconnections = {CONNECTIONS}\n"
    )


@pytest.fixture(scope="module")
def patient() -> Iterator[Env]:
    """A daemon with a long stall timeout (a subscriber is dropped long before it is cut)."""
    yield from _daemon("stall_timeout = 60.0\n")


def logged(env: Env, event: str) -> list[dict[str, Any]]:
    path = env.base / "state" / "orchestra" / "daemon.log"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == event]


def ping_line(ident: int = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": "daemon.ping", "id": ident}).encode()


def fill(sock: socket.socket, data: bytes, seconds: float) -> int:
    """Send `data` over and over without reading, until the kernel takes no more (or for
    `seconds`); return the bytes sent."""
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + seconds
    view = memoryview(data)
    idle_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - idle_since < 0.2:
        try:
            n = sock.send(view)
        except BlockingIOError:
            time.sleep(0.005)
            continue
        sent += n
        idle_since = time.monotonic()
        view = view[n:] or memoryview(data)
    sock.setblocking(True)
    return sent


def read_to_end(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    out = bytearray()
    try:
        while chunk := sock.recv(1 << 20):
            out += chunk
    except ConnectionResetError:
        pass
    return bytes(out)


def test_a_client_that_reads_no_reply_is_cut_off_and_others_are_served(short: Env) -> None:
    """A client that pipelines requests and never reads stops being read, is disconnected
    after the stall timeout (and logged), and meanwhile another client's pings are answered
    at once."""
    before = len(logged(short, "daemon.client_stuck"))
    with Raw(short.socket) as quiet, Raw(short.socket) as greedy:
        sent = fill(greedy.sock, (ping_line() + b"\n") * 1000, seconds=5.0)
        worst = 0.0
        while len(logged(short, "daemon.client_stuck")) == before:
            start = time.monotonic()
            quiet.ping()
            worst = max(worst, time.monotonic() - start)
            assert time.monotonic() < start + 10, "the stuck client was never cut off"
            time.sleep(0.02)
        assert worst < 1.0, f"a ping took {worst:.3f} s while another client was stuck"
        replies = read_to_end(greedy.sock).count(b"\n")
        assert 0 < replies < sent // (len(ping_line()) + 1), "it was cut off before the end"
        quiet.ping()
    (entry,) = logged(short, "daemon.client_stuck")[before:]
    assert "read none of a reply" in entry["message"]


def test_a_batch_of_more_than_100_gets_one_error(short: Env) -> None:
    """A batch of 100 is answered member by member; one of 101, or of 30,000 (parsed off
    the loop), gets a single -32600 naming the bound, and the connection goes on."""
    with Raw(short.socket) as c:
        batch = [{"jsonrpc": "2.0", "method": "daemon.ping", "id": i} for i in range(100)]
        c.send_json(batch)
        reply = c.recv()
        assert [r["id"] for r in reply] == list(range(100))
        for size in (101, 30_000):
            c.send_json(batch[:1] * size)
            reply = c.recv()
            assert isinstance(reply, dict), "a refused batch gets one error, not an array"
            assert reply["error"]["code"] == -32600 and reply["id"] is None
            assert reply["error"]["data"] == {"limit": "batch", "max": jsonrpc.MAX_BATCH}
        c.ping()


def test_a_line_over_the_limit_is_refused_and_the_connection_goes_on(short: Env) -> None:
    """A line over 2 MiB gets one -32600 naming the line limit; one just under it (a long
    description) is parsed and answered; the connection serves on."""
    with Raw(short.socket) as c:
        c.send(b'{"jsonrpc":"2.0","method":"daemon.ping","id":1,"x":"' + b"y" * (2 << 20) + b'"}\n')
        reply = c.recv()
        assert reply["error"]["code"] == -32600 and reply["id"] is None
        assert reply["error"]["data"] == {"limit": "line", "max": 2 << 20}
        params = {"project": "/nowhere", "slug": "big", "description": "z" * ((2 << 20) - 200)}
        c.send_json({"jsonrpc": "2.0", "method": "task.new", "params": params, "id": 2})
        reply = c.recv()
        assert reply["id"] == 2 and reply["error"]["data"]["kind"] == "not_a_project"
        c.ping()


def test_nesting_past_64_levels_is_refused(short: Env) -> None:
    """Params nested 65 levels deep get a -32700 naming the bound; 64 levels parse (and are
    refused as params, -32602), on one connection."""
    with Raw(short.socket) as c:
        for depth, code in ((65, -32700), (64, -32602), (200_000, -32700)):
            inner = b"[" * (depth - 1) + b"]" * (depth - 1)
            c.send(b'{"jsonrpc":"2.0","method":"daemon.ping","id":3,"params":' + inner + b"}\n")
            reply = c.recv()
            assert reply["error"]["code"] == code, (depth, reply)
            if code == -32700:
                assert "nested deeper than 64" in reply["error"]["message"]
        c.ping()


def test_connections_past_the_limit_are_refused_with_an_error(short: Env) -> None:
    """Past `limits.connections`, a new connection gets one -32000 error saying so (the
    blocking client raises it) and is closed; once one closes, a new client is served."""
    held: list[Raw] = []
    try:
        refused = None
        for _ in range(CONNECTIONS + 3):
            c = Raw(short.socket)
            c.send(ping_line() + b"\n")
            reply = c.recv()
            if "error" in reply:
                refused = reply
                assert c.line() == b"", "a refused connection is closed"
                c.close()
                break
            held.append(c)
        assert refused is not None, "no connection was refused"
        assert len(held) <= CONNECTIONS
        assert refused["error"]["code"] == -32000 and refused["id"] is None
        assert refused["error"]["data"]["kind"] == "too_many_connections"
        assert refused["error"]["data"]["max"] == CONNECTIONS
        with pytest.raises(RemoteError) as info, short.client() as client:
            client.call("daemon.ping")
        assert "connections" in info.value.message
        held.pop().close()

        def served() -> bool:
            with Raw(short.socket) as c:
                c.send(ping_line() + b"\n")
                return "result" in c.recv()

        wait_until(served, "a new connection to be served once one closed")
    finally:
        for c in held:
            c.close()


def test_idle_connections_are_closed_unless_subscribed(short: Env) -> None:
    """A connection that sends no request for the idle timeout is closed, whether it never
    spoke or spoke once; one that subscribed to events is kept."""
    root = make_repo(short.base / "idle-repo")
    short.run("init", cwd=root, check=True)
    with (
        Raw(short.socket) as silent,
        Raw(short.socket) as spoke,
        Raw(short.socket) as subscribed,
    ):
        spoke.ping()
        reply = subscribed.request("events.subscribe", {"project": str(root)})
        assert reply["result"]["subscribed"] is True
        start = time.monotonic()
        assert silent.line() == b"" and spoke.line() == b""
        assert time.monotonic() - start >= IDLE * 0.8
        subscribed.ping()  # past the idle timeout, and still served
    assert logged(short, "daemon.client_idle")


def test_a_long_line_left_unfinished_is_cut_off(short: Env) -> None:
    """A client that sends 100 KB of a line (past what a connection buffers for free) and
    stops is disconnected after the stall timeout, and the budget it held is given back."""
    before = len(logged(short, "daemon.client_stuck"))
    for _ in range(3):  # holding budget twice over would fail if it were not given back
        with Raw(short.socket) as c:
            c.send(b'{"jsonrpc":"2.0","method":"daemon.ping","x":"' + b"y" * 100_000)
            start = time.monotonic()
            assert c.line() == b""
            assert time.monotonic() - start >= STALL * 0.8
    found = logged(short, "daemon.client_stuck")[before:]
    assert len(found) == 3 and "did not finish it" in found[0]["message"]
    with Raw(short.socket) as c:
        c.ping()


def test_a_subscriber_that_stops_reading_is_dropped_and_told(patient: Env) -> None:
    """A subscriber that reads nothing while events pile up is unsubscribed once its queue
    is full (others are served meanwhile); when it reads again it gets what was queued,
    then `events.dropped`."""
    root = make_repo(patient.base / "sub-repo")
    patient.run("init", cwd=root, check=True)
    project = str(root)
    with Raw(patient.socket) as sub, Raw(patient.socket) as writer:
        # 400 labels of 64 characters: each event is ~27 KB, the queue fills in ~40.
        labels = [f"{i:03d}" + "l" * 61 for i in range(400)]
        writer.request("task.new", {"project": project, "slug": "busy", "labels": labels})
        assert sub.request("events.subscribe", {"project": project})["result"]["subscribed"]
        rounds = 0

        def subscribers() -> int:
            return int(writer.request("daemon.status")["result"]["subscribers"])

        while subscribers():
            rounds += 1
            assert rounds < 100, "the subscriber was never dropped"
            writer.send_json(
                [
                    {
                        "jsonrpc": "2.0",
                        "method": "task.update",
                        "params": {"project": project, "task": "busy", "title": f"t{rounds} {i}"},
                        "id": i,
                    }
                    for i in range(5)
                ]
            )
            assert len(writer.recv()) == 5
        seen = 0
        while True:
            message = sub.recv()
            if message.get("method") == "events.dropped":
                break
            assert message["method"] == "events.task_changed"
            seen += 1
        assert seen * 27000 >= events.QUEUE_BYTES // 2
        assert message["params"] == {"reason": "client too slow"}
        sub.ping()


async def test_the_event_queue_is_bounded_in_bytes() -> None:
    """A subscriber whose queue would pass QUEUE_BYTES is dropped, however few events that
    is, and its channel closed so its connection can say so."""
    hub = events.EventHub()
    sub = hub.subscribe(None)
    big = {"x": "y" * (events.QUEUE_BYTES // 4)}
    for _ in range(3):
        hub.publish("/p", big)
    assert len(hub) == 1 and sub.queued > events.QUEUE_BYTES // 2
    hub.publish("/p", big)
    hub.publish("/p", big)
    assert len(hub) == 0
    got = [data async for data in sub.receive]
    assert len(got) == 3
    assert json.loads(got[0])["method"] == "events.task_changed"


async def test_the_event_queue_is_bounded_in_count() -> None:
    """A subscriber with QUEUE_SIZE small events queued is dropped at the next one."""
    hub = events.EventHub()
    hub.subscribe("/p")
    for _ in range(events.QUEUE_SIZE):
        hub.publish("/p", {})
    assert len(hub) == 1
    hub.publish("/p", {})
    assert len(hub) == 0
    await trio.lowlevel.checkpoint()


def test_descriptors_are_raised_to_the_hard_limit(short: Env) -> None:
    """The daemon runs with its soft open-files limit raised to the hard one."""
    pid = short.daemon_pid()
    assert pid is not None
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    (row,) = [line for line in limits if line.startswith("Max open files")]
    soft, hard = row.split()[3:5]
    assert soft == hard, row


def test_connections_stay_below_the_descriptor_limit() -> None:
    """The connection limit is the configured one, or 256 below the open-files limit if
    that is lower (descriptors kept for agents' terminals, git and task files)."""
    config = LimitsConfig(connections=1000, idle_timeout=5.0, stall_timeout=2.0)
    assert Limits.from_config(config, None) == Limits(
        connections=1000, idle_timeout=5.0, stall_timeout=2.0
    )
    assert Limits.from_config(config, 1_048_576).connections == 1000
    assert Limits.from_config(config, 1024).connections == 1024 - DESCRIPTOR_RESERVE == 768
