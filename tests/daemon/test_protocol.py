"""JSON-RPC 2.0 over NDJSON against a real daemon, byte for byte.

The first half replays the examples of the JSON-RPC 2.0 specification (section 7),
with its toy methods (`sum`, `subtract`, `get_data`...) swapped for ours. The
second half is hostile clients: none of them may take the daemon down or hold
up anyone else.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env, make_repo, stop_daemon
from tests.daemon.wire import Raw, stop_and_forget, wait_until


class Served:
    """A daemon plus one initialised project with one task, shared by read-only tests."""

    def __init__(self, env: Env, root: Path) -> None:
        self.env = env
        self.root = root

    def raw(self) -> Raw:
        return Raw(self.env.socket)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    base = Path(tempfile.mkdtemp(prefix="orc-", dir="/tmp"))
    env = Env(base)
    try:
        root = make_repo(base / "repo")
        env.run("init", cwd=root, check=True)
        env.run("daemon", "start", check=True)
        with env.client() as c:
            c.call("task.new", {"project": str(root), "slug": "first", "description": "One."})
        yield Served(env, root)
    finally:
        stop_and_forget(env)
        stop_daemon(env)
        shutil.rmtree(base, ignore_errors=True)


def ids_and_codes(replies: list[dict[str, Any]]) -> Counter[tuple[Any, Any]]:
    """Each reply as (id, error code or "ok"), counted: a batch reply may come in any order."""
    return Counter((r["id"], r["error"]["code"] if "error" in r else "ok") for r in replies)


# -- the specification's examples (jsonrpc.org/specification, section 7) ------------


def test_call_with_named_params(served: Served) -> None:
    """A call with named params gets a result carrying the request's id."""
    with served.raw() as c:
        c.send(
            b'{"jsonrpc": "2.0", "method": "task.get", "params": {"project": "'
            + str(served.root).encode()
            + b'", "task": "first"}, "id": 3}\n'
        )
        reply = c.recv()
    assert reply["jsonrpc"] == "2.0"
    assert reply["id"] == 3
    assert reply["result"]["slug"] == "first"
    assert set(reply) == {"jsonrpc", "result", "id"}


def test_notification_gets_no_reply(served: Served) -> None:
    """A notification (no id), even to an unknown method or to pty.attach, is never
    answered."""
    with served.raw() as c:
        c.send(b'{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}\n')
        c.send(b'{"jsonrpc": "2.0", "method": "daemon.ping"}\n')
        # pty.attach, answered by the server itself: neither an error nor an upgrade.
        c.send(b'{"jsonrpc": "2.0", "method": "pty.attach", "params": []}\n')
        c.send(b'{"jsonrpc": "2.0", "method": "pty.attach", "params": {"task": 1}}\n')
        c.send(b'{"jsonrpc": "2.0", "method": "daemon.ping", "id": "after"}\n')
        assert c.recv() == {"jsonrpc": "2.0", "result": {"pong": True}, "id": "after"}


def test_unknown_method(served: Served) -> None:
    """A call to a method that does not exist gets -32601 with its id and the method list."""
    with served.raw() as c:
        c.send(b'{"jsonrpc": "2.0", "method": "foobar", "id": "1"}\n')
        reply = c.recv()
    assert reply["id"] == "1"
    assert reply["error"]["code"] == -32601
    assert "foobar" in reply["error"]["message"]
    assert "daemon.ping" in reply["error"]["data"]["methods"]


def test_invalid_json(served: Served) -> None:
    """Text that is not JSON gets -32700 Parse error with id null."""
    with served.raw() as c:
        c.send(b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]\n')
        reply = c.recv()
        assert reply["id"] is None
        assert reply["error"]["code"] == -32700
        c.ping()


def test_invalid_request_object(served: Served) -> None:
    """A request whose method is not a string gets -32600 Invalid Request with id null."""
    with served.raw() as c:
        c.send(b'{"jsonrpc": "2.0", "method": 1, "params": "bar"}\n')
        reply = c.recv()
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600


def test_batch_with_invalid_json(served: Served) -> None:
    """A batch that is not valid JSON gets one -32700 reply, not an array."""
    with served.raw() as c:
        c.send(
            b'[{"jsonrpc": "2.0", "method": "daemon.ping", "id": "1"},'
            b'{"jsonrpc": "2.0", "method"]\n'
        )
        reply = c.recv()
    assert isinstance(reply, dict)
    assert reply["id"] is None
    assert reply["error"]["code"] == -32700


def test_empty_batch(served: Served) -> None:
    """An empty array gets one -32600 reply with id null, not an array."""
    with served.raw() as c:
        c.send(b"[]\n")
        reply = c.recv()
    assert isinstance(reply, dict)
    assert reply["id"] is None
    assert reply["error"]["code"] == -32600


def test_batch_of_one_non_request(served: Served) -> None:
    """`[1]` gets an array holding one -32600 reply."""
    with served.raw() as c:
        c.send(b"[1]\n")
        reply = c.recv()
    assert isinstance(reply, list)
    assert ids_and_codes(reply) == Counter({(None, -32600): 1})


def test_batch_of_three_non_requests(served: Served) -> None:
    """`[1,2,3]` gets an array of three -32600 replies, each with id null."""
    with served.raw() as c:
        c.send(b"[1,2,3]\n")
        reply = c.recv()
    assert isinstance(reply, list)
    assert ids_and_codes(reply) == Counter({(None, -32600): 3})
    assert all(r["jsonrpc"] == "2.0" for r in reply)


def test_mixed_batch(served: Served) -> None:
    """A batch of calls, a notification, an invalid and an unknown-method member gets exactly
    one reply per non-notification, each matched to its id."""
    root = str(served.root)
    batch = [
        {"jsonrpc": "2.0", "method": "daemon.ping", "id": "1"},
        {
            "jsonrpc": "2.0",
            "method": "task.update",
            "params": {"project": root, "task": 1, "title": "Set by a notification"},
        },
        {
            "jsonrpc": "2.0",
            "method": "task.get",
            "params": {"project": root, "task": 1},
            "id": "2",
        },
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "task.list", "params": {"project": root}, "id": "9"},
    ]
    with served.raw() as c:
        c.send(json.dumps(batch).encode() + b"\n")
        replies = c.recv()
    assert isinstance(replies, list)
    assert ids_and_codes(replies) == Counter(
        [(None, -32600), ("1", "ok"), ("2", "ok"), ("5", -32601), ("9", "ok")]
    )
    by_id = {r["id"]: r for r in replies}
    assert by_id["1"]["result"] == {"pong": True}
    assert by_id["2"]["result"]["slug"] == "first"
    assert [t["slug"] for t in by_id["9"]["result"]["tasks"]] == ["first"]
    with served.raw() as c:  # the notification ran, though nobody heard back
        reply = c.request("task.get", {"project": root, "task": 1})
        assert reply["result"]["title"] == "Set by a notification"


def test_batch_of_notifications_gets_nothing(served: Served) -> None:
    """A batch made only of notifications gets no reply at all: the next line is the ping's."""
    with served.raw() as c:
        c.send(
            b'[{"jsonrpc": "2.0", "method": "daemon.ping", "params": {}},'
            b'{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]\n'
        )
        c.send(b'{"jsonrpc": "2.0", "method": "daemon.ping", "id": 42}\n')
        assert c.recv() == {"jsonrpc": "2.0", "result": {"pong": True}, "id": 42}


# -- params and envelope details -------------------------------------------------------


def test_positional_params_are_refused(served: Served) -> None:
    """Params given as an array get -32602 saying an object is expected."""
    with served.raw() as c:
        c.send(b'{"jsonrpc": "2.0", "method": "task.list", "params": [1, 2], "id": 1}\n')
        reply = c.recv()
    assert reply["id"] == 1
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"]["problems"] == ["params must be an object with named fields"]


def test_params_of_the_wrong_type(served: Served) -> None:
    """Wrong types and unknown fields get -32602 with one entry per problem in data.problems."""
    with served.raw() as c:
        reply = c.request(
            "task.new",
            {"project": str(served.root), "slug": 5, "labels": "ui", "colour": "red"},
        )
    assert reply["error"]["code"] == -32602
    problems = reply["error"]["data"]["problems"]
    assert "field 'slug' must be a string, not a number" in problems, problems
    assert "field 'labels' must be an array, not a string" in problems, problems
    assert "unknown field 'colour'" in problems, problems
    assert reply["error"]["data"]["fields"] == ["slug", "labels"]
    assert "@ $" not in reply["error"]["message"]
    assert reply["error"]["data"]["kind"] == "invalid_params"


def test_bad_slug_says_the_rule(served: Served) -> None:
    """A slug that breaks the naming rule gets -32602 whose message quotes the value."""
    with served.raw() as c:
        reply = c.request("task.new", {"project": str(served.root), "slug": "Bad Slug!"})
    assert reply["error"]["code"] == -32602
    assert "Bad Slug!" in reply["error"]["message"]


def test_missing_params_field(served: Served) -> None:
    """A required field left out is named in data.problems."""
    with served.raw() as c:
        reply = c.request("task.get", {"project": str(served.root)})
    assert reply["error"]["code"] == -32602
    assert reply["error"]["data"]["problems"] == ["field 'task' is missing"]
    assert reply["error"]["message"] == "field 'task' is missing"


def test_bad_jsonrpc_version_and_bool_id(served: Served) -> None:
    """A wrong "jsonrpc" version or a boolean id is an Invalid Request."""
    with served.raw() as c:
        c.send(b'{"jsonrpc": "1.0", "method": "daemon.ping", "id": 7}\n')
        assert c.recv()["error"]["code"] == -32600
        c.send(b'{"jsonrpc": "2.0", "method": "daemon.ping", "id": true}\n')
        reply = c.recv()
        assert reply["error"]["code"] == -32600
        assert reply["id"] is None


def test_responses_sent_to_the_daemon_are_ignored(served: Served) -> None:
    """A response object sent to the daemon is not answered (no error ping-pong)."""
    with served.raw() as c:
        c.send(b'{"jsonrpc": "2.0", "result": 1, "id": 1}\n')
        c.send(b'{"jsonrpc": "2.0", "error": {"code": 1, "message": "x"}, "id": 2}\n')
        c.send(b'{"jsonrpc": "2.0", "method": "daemon.ping", "id": "after"}\n')
        assert c.recv()["id"] == "after"


def test_pipelined_requests_answer_in_order(served: Served) -> None:
    """Many requests written in one go are answered one line each, in order."""
    lines = b"".join(
        json.dumps({"jsonrpc": "2.0", "method": "daemon.ping", "id": i}).encode() + b"\n"
        for i in range(200)
    )
    with served.raw() as c:
        c.send(lines + b"\n  \n")  # blank lines are ignored
        assert [c.recv()["id"] for _ in range(200)] == list(range(200))
        c.ping()


def test_unknown_project_is_refused(served: Served) -> None:
    """A task call naming a directory without .orchestra/ gets -32006 naming the path."""
    with served.raw() as c:
        reply = c.request("task.list", {"project": str(served.env.base)})
    assert reply["error"]["code"] == -32006
    assert str(served.env.base) in reply["error"]["message"]


# -- hostile clients ----------------------------------------------------------------


def test_garbage_gets_parse_error_and_connection_survives(served: Served) -> None:
    """Binary garbage and absurdly nested JSON get -32700 and the same connection still works."""
    with served.raw() as c, served.raw() as other:
        c.send(b"\x00\xff\xfe\x80 not json at all\n")
        assert c.recv()["error"]["code"] == -32700
        c.send(b"[" * 100_000 + b"\n")
        assert c.recv()["error"]["code"] == -32700
        other.ping()
        c.ping()


def test_half_a_line_then_hang_up(served: Served) -> None:
    """A client that sends half a request and disconnects leaves the daemon serving others."""
    other = served.raw()
    try:
        half = served.raw()
        half.send(b'{"jsonrpc": "2.0", "method": "daemon.pi')
        other.ping()  # the half line holds up nobody
        half.close()
        other.ping()
    finally:
        other.close()
    with served.raw() as fresh:
        fresh.ping()


def test_ten_megabyte_line(served: Served) -> None:
    """A 10 MB line gets -32600 (too long), the connection stays usable, others are served."""
    big = b'{"jsonrpc": "2.0", "method": "daemon.ping", "params": {"x": "' + b"a" * 10_000_000
    with served.raw() as c, served.raw() as other:
        c.send(big[: len(big) // 2])
        other.ping()  # served while half of the monster is buffered
        c.send(big[len(big) // 2 :] + b'"}, "id": 1}\n')
        c.send(b'{"jsonrpc": "2.0", "method": "daemon.ping", "id": "after"}\n')
        reply = c.recv()
        assert reply["id"] is None
        assert reply["error"]["code"] == -32600
        assert "longer than" in reply["error"]["message"]
        assert c.recv() == {"jsonrpc": "2.0", "result": {"pong": True}, "id": "after"}
        other.ping()


def test_disconnect_mid_call(served: Served) -> None:
    """Clients that hang up before their replies (or after subscribing) do not hurt the daemon."""
    root = str(served.root)
    request = json.dumps(
        {"jsonrpc": "2.0", "method": "task.list", "params": {"project": root}, "id": 1}
    )
    for _ in range(20):
        c = served.raw()
        c.send((request + "\n").encode() * 5)
        c.close()
    sub = served.raw()
    assert sub.request("events.subscribe", {"project": root})["result"]["subscribed"]
    sub.close()
    with served.raw() as c:
        reply = c.request("task.update", {"project": root, "task": 1, "labels": ["poke"]})
        assert reply["result"]["labels"] == ["poke"]  # published to the gone subscriber
        wait_until(
            lambda: c.request("daemon.status")["result"]["subscribers"] == 0,
            "the closed subscriber to be dropped",
        )
        c.ping()


def test_slow_floods_do_not_block_others(served: Served) -> None:
    """While one client floods garbage from a thread, another client's calls keep being answered."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def flood() -> None:
        try:
            with served.raw() as c:
                while not stop.is_set():
                    c.send(b"garbage\n" * 100)
                    for _ in range(100):
                        assert c.recv()["error"]["code"] == -32700
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=flood)
    thread.start()
    try:
        with served.raw() as c:
            for _ in range(20):
                c.ping()
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert not errors, errors


def test_reply_arrives_after_the_client_half_closes(served: Served) -> None:
    """A request followed by end-of-input (as `nc -U` sends it) still gets its reply, then EOF."""
    with served.raw() as c:
        c.send(b'{"jsonrpc": "2.0", "method": "daemon.ping", "id": 1}\n')
        c.sock.shutdown(socket.SHUT_WR)
        assert c.recv() == {"jsonrpc": "2.0", "result": {"pong": True}, "id": 1}
        assert c.line() == b""


def test_client_that_never_reads(served: Served) -> None:
    """A client that writes requests but never reads its replies stalls only itself."""
    stuck = served.raw()
    stuck.sock.setblocking(False)
    request = b'{"jsonrpc": "2.0", "method": "daemon.ping", "id": 1}\n' * 1000
    sent = 0
    with contextlib.suppress(BlockingIOError):
        while sent < 50_000_000:  # until the daemon stops reading (its replies back up)
            sent += stuck.sock.send(request)
    assert sent < 50_000_000, "the daemon kept reading although its replies were not read"
    with served.raw() as other:
        other.ping()
        stuck.close()
        other.ping()


def test_attach_in_a_batch_is_refused(served: Served) -> None:
    """pty.attach inside a batch gets -32600 (its reply would end JSON-RPC mid-batch), the
    rest of the batch is answered, and the connection stays JSON-RPC."""
    batch = [
        {"jsonrpc": "2.0", "method": "pty.attach", "params": {"task": 1}, "id": "a"},
        {"jsonrpc": "2.0", "method": "daemon.ping", "id": "p"},
    ]
    with served.raw() as c:
        c.send(json.dumps(batch).encode() + b"\n")
        replies = {r["id"]: r for r in c.recv()}
        assert replies["a"]["error"]["code"] == -32600
        assert "batch" in replies["a"]["error"]["message"]
        assert replies["p"]["result"] == {"pong": True}
        c.ping()


def test_attach_errors_come_through_the_method_boundary(served: Served) -> None:
    """A refused pty.attach (a task that does not run) is answered like any method's error:
    its code, message and data with its kind, and the connection stays JSON-RPC."""
    with served.raw() as c:
        reply = c.request("pty.attach", {"project": str(served.root), "task": "first"})
        assert reply["error"]["code"] == -32002
        assert reply["error"]["data"]["kind"] == "invalid_transition"
        reply = c.request("pty.attach", {"project": str(served.root), "task": "first", "x": 1})
        assert reply["error"]["code"] == -32602
        assert "unknown field 'x'" in reply["error"]["data"]["problems"]
        c.ping()
