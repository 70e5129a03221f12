"""Fuzzing the daemon's socket: whatever a client sends, the daemon answers and survives.

Hypothesis writes lines of every kind a broken or hostile client could send:
random bytes, truncated JSON, deep nesting, huge strings, batches, responses,
and requests to every method (and to unknown ones) whose params have the wrong
types, hostile strings, huge numbers and unknown fields. Each line is followed
by a sentinel ping, so the test knows exactly which replies that line got.

The oracle (`expected`) is JSON-RPC 2.0 itself: a well-framed request (one line
of valid JSON, an object with "jsonrpc": "2.0", a string "method" and an "id")
gets exactly one response carrying its id; a notification or a response gets
none; anything else gets one error. Methods that change things are only ever
called with params their own validator refuses, so the task files must stay
byte-identical through the whole run.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import typing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestra.core import api
from orchestra.core.errors import InvalidParams
from orchestra.core.states import Status
from orchestra.daemon.dispatch import ATTACH, METHODS
from tests.conftest import (
    TEST_AGENT_CONFIG,
    Env,
    make_repo,
    served_project,
)
from tests.daemon.wire import Raw, alive, stop_and_forget, wait_until
from tests.faults.support import Patient, connect, daemon_pid, fd_count, snapshot

# Each method's params class, from the method table (pty.attach: the server's own).
PARAMS: dict[str, type] = {
    **{name: method.params for name, method in METHODS.items()},
    ATTACH: api.AttachParams,
}
# Methods that change nothing on disk (or, given a project with no running agent, cannot).
# Every other method, including any added later, is treated as one that writes.
READ_ONLY = frozenset(
    {
        "daemon.ping",
        "daemon.status",
        "task.list",
        "task.get",
        "task.path",
        "task.tail",
        "task.diff",
        "task.send_input",
        "pty.screen",
        "pty.attach",
        "events.subscribe",
    }
)
TASKS = ("alpha", "beta")
# A valid value for each required field, so that one bad field is the only problem.
REQUIRED = {
    "task": "alpha",
    "slug": "fresh",
    "text": "hi",
    "session_id": "s1",
    "status": "idle",
    "run": "ab" * 16,  # task.report: a run marker (of no live run)
    "event": "waiting",
}

HOSTILE = [
    "",
    " ",
    "-",
    "--help",
    "-rf",
    "../x",
    "../../../../etc/passwd",
    "/etc/passwd",
    "a/../../b",
    "a\nb",
    "a\rb",
    "a\x00b",
    "\x00",
    "; touch /tmp/x",
    "$(touch /tmp/x)",
    "`id`",
    "a|b",
    "\u202e",
    "\ud800",
    "é",
    "1",
    "0",
    "-1",
    "9" * 30,
    "HEAD",
    "@{-1}",
    "a..b",
    "x" * 10_000,
]
HUGE_INTS = [0, -1, -(2**63), 2**63, 2**64, 10**30, 10**300]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(),  # NaN and Infinity too: Python's json writes and reads them
    st.text(max_size=30),
    st.sampled_from(HOSTILE),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
method_names = st.one_of(
    st.sampled_from(sorted(PARAMS)),
    st.sampled_from(sorted(PARAMS)),
    st.sampled_from(["", "task.", "DAEMON.PING", "daemon.ping ", "task.new\x00", "rpc.x"]),
    st.text(max_size=20),
)


def _good(name: str, hint: Any, root: str) -> st.SearchStrategy[Any]:
    """Plausible values for one field, so calls reach past the first check."""
    text = str(hint)
    if name == "project":
        return st.just(root)
    if hint == api.TaskRef:
        return st.sampled_from([1, 2, "1", *TASKS, 99, "nope"])
    if name == "status" and "str" in text:
        return st.sampled_from(["idle", "complete", "fail", "reviewed"])
    if "Status" in text:
        return st.lists(st.sampled_from([str(s) for s in Status]), max_size=2)
    if "list" in text:
        return st.lists(st.sampled_from(["ui", "core", "a.b"]), max_size=2)
    if "Colors" in text:
        return st.just({"fg": "rgb:ff/ff/ff", "palette": {"1": "rgb:00/00/00"}})
    if "bool" in text:
        return st.booleans()
    if "int" in text:
        return st.integers(1, 50)
    return st.sampled_from(["ok", "a title", "main"]) | st.text(max_size=20)


def _valid(params: Any, cls: type) -> bool:
    try:
        api.structure(params, cls)
    except InvalidParams:
        return False
    return True


@st.composite
def requests(draw: st.DrawFn, root: str) -> dict[str, Any]:
    """One request object: any method, params with wrong types, hostile values, bad envelopes."""
    method = draw(method_names)
    cls = PARAMS.get(method)
    params: Any
    if cls is None:
        params = draw(st.dictionaries(st.text(max_size=8), values, max_size=3))
    else:
        params = {}
        hints = typing.get_type_hints(cls)
        for field in attrs.fields(cls):
            how = draw(st.sampled_from(["omit", "good", "good", "any"]))
            if how == "good":
                params[field.name] = draw(_good(field.name, hints[field.name], root))
            elif how == "any":
                params[field.name] = draw(values)
        if draw(st.integers(0, 9)) == 0:
            params[draw(st.text(max_size=8))] = draw(values)
    shape = draw(st.integers(0, 19))
    if shape == 0:
        params = draw(st.lists(values, max_size=3))  # positional
    elif shape == 1:
        params = draw(values)  # anything at all
    elif shape == 2:
        params = None  # left out
    if (
        method in PARAMS
        and method not in READ_ONLY
        and (params is None or isinstance(params, dict))
        and _valid(params, PARAMS[method])
    ):
        # A valid call to a method that writes would rightly change things: spoil it.
        params = {**(params or {}), "fuzz_unknown_field": True}
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    ident = draw(st.integers(0, 9))
    if ident < 5:
        message["id"] = draw(st.integers(-(2**70), 2**70))
    elif ident < 7:
        message["id"] = draw(st.text(max_size=12) | st.sampled_from(HOSTILE))
    elif ident == 7:
        message["id"] = draw(st.none() | st.booleans() | st.floats() | st.lists(scalars))
    # ident 8, 9: a notification
    if draw(st.integers(0, 19)) == 0:
        message["jsonrpc"] = draw(values)
    if draw(st.integers(0, 19)) == 0:
        message["method"] = draw(values)
    return message


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@st.composite
def lines(draw: st.DrawFn, root: str) -> bytes:
    """One line of any kind (without its newline)."""
    kind = draw(st.integers(0, 11))
    if kind <= 3:
        return dumps(draw(requests(root)))
    if kind == 4:
        return dumps(draw(st.lists(requests(root), min_size=1, max_size=4)))
    if kind == 5:
        return draw(st.binary(max_size=300)).replace(b"\n", b"")
    if kind == 6:
        whole = dumps(draw(requests(root)))
        return whole[: draw(st.integers(1, len(whole) - 1))]
    if kind == 7:
        # Around the parser's recursion limit the outcome depends on the reader's own stack
        # depth (the oracle's differs from the daemon's): test_nesting_near_the_limit.
        depth = draw(st.integers(1, 400) | st.integers(5_000, 200_000))
        form = draw(st.integers(0, 3))
        if form == 0:
            return b"[" * depth
        if form == 1:
            return b"[" * depth + b"]" * depth
        if form == 2:
            return b'{"a":' * depth + b"1" + b"}" * depth
        nested = b"[" * depth + b"]" * depth
        method = draw(st.sampled_from(sorted(PARAMS)))
        return (
            b'{"jsonrpc":"2.0","method":'
            + dumps(method)
            + b',"id":7,"params":{"project":'
            + dumps(root)
            + b',"task":'
            + nested
            + b"}}"
        )
    if kind == 8:
        size = draw(st.integers(10_000, 1_000_000))
        method = draw(st.sampled_from(sorted(PARAMS)))
        field = draw(st.sampled_from(["task", "slug", "project", "text", "description", "zz"]))
        params: dict[str, Any] = {"project": root, "task": "alpha", field: "x" * size}
        if method not in READ_ONLY and _valid(params, PARAMS[method]):
            params["fuzz_unknown_field"] = True
        return dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": size})
    if kind == 9:
        key = draw(st.sampled_from(["result", "error"]))
        return dumps({"jsonrpc": "2.0", key: draw(values), "id": draw(st.integers())})
    if kind == 10:
        return draw(st.sampled_from([b"", b" ", b"\t", b"\r", b"null", b"1", b'"x"', b"[]"]))
    return dumps(draw(values))


# -- the oracle -------------------------------------------------------------------

ANY = "any"  # a result or an error


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (int, str)) and not isinstance(value, bool))


def _item(message: Any) -> tuple[Any, Any] | None:
    """(id, expected code or ANY) for one request object, None when it gets no reply."""
    if not isinstance(message, dict):
        return (None, -32600)
    if "method" not in message and ("result" in message or "error" in message):
        return None  # a response: never answered
    framed = (
        message.get("jsonrpc") == "2.0"
        and isinstance(message.get("method"), str)
        and _valid_id(message.get("id"))
        and (message.get("params") is None or isinstance(message["params"], (dict, list)))
    )
    if not framed:
        return (message.get("id") if _valid_id(message.get("id")) else None, -32600)
    if "id" not in message:
        return None  # a notification
    return (message["id"], ANY)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _loads(line: bytes) -> Any:
    """The message the daemon reads in `line`: ValueError past the nesting limit
    (docs/api.md "Limits": 64 levels), as for a line that is not JSON."""
    message = json.loads(line.decode("utf-8"))
    if _depth(message) > 64:
        raise ValueError("nested too deeply")
    return message


def expected(line: bytes) -> tuple[int, list[tuple[Any, Any]] | None]:
    """(number of reply lines, the batch's (id, code) pairs or None for a single reply)."""
    if not line.strip():
        return 0, None
    try:
        message = _loads(line)
    except (ValueError, RecursionError):
        return 1, None
    if isinstance(message, list):
        if not message:
            return 1, None
        answered = [item for item in map(_item, message) if item is not None]
        return (1, answered) if answered else (0, None)
    return (0, None) if _item(message) is None else (1, None)


def check_reply(line: bytes, replies: list[Any]) -> None:
    """The replies one line got agree with the oracle, envelope by envelope."""
    count, batch = expected(line)
    assert len(replies) == count, (line[:300], replies)
    if not count:
        return
    reply = replies[0]
    if batch is not None:
        assert isinstance(reply, list), (line[:300], reply)
        assert len(reply) == len(batch), (line[:300], reply)
        for one in reply:
            _envelope(one)
        want = Counter(repr(i) for i, code in batch if code == ANY)
        got = Counter(repr(r["id"]) for r in reply)
        assert not want - got, (line[:300], reply)
        return
    _envelope(reply)
    try:
        message = _loads(line)
        item = _item(message)
    except (ValueError, RecursionError):
        item = (None, -32700)
    assert item is not None
    ident, code = item
    if code == ANY:
        assert reply["id"] == ident and type(reply["id"]) is type(ident), (line[:300], reply)
        method = message["method"]
        if method not in PARAMS:
            assert reply["error"]["code"] == -32601, (line[:300], reply)
        elif method not in READ_ONLY:
            assert "error" in reply, f"{method} succeeded: {line[:300]!r} -> {reply}"
    else:
        assert reply["error"]["code"] == code, (line[:300], reply)
        assert reply["id"] in (None, ident), (line[:300], reply)


def _envelope(reply: Any) -> None:
    assert isinstance(reply, dict), reply
    assert reply["jsonrpc"] == "2.0", reply
    assert "id" in reply, reply
    assert ("result" in reply) != ("error" in reply), reply
    if "error" in reply:
        error = reply["error"]
        assert isinstance(error["code"], int) and isinstance(error["message"], str), reply
        assert error["code"] != -32603, f"internal error: {reply}"


# -- the daemon under test --------------------------------------------------------


@attrs.frozen
class Target:
    env: Env
    root: Path
    files: dict[str, bytes]  # the task files before any fuzzing


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    tasks = [{"slug": slug, "labels": ["ui"]} for slug in TASKS]
    with served_project(tasks) as (env, root):
        try:
            yield Target(env, root, snapshot(root))
        finally:
            stop_and_forget(env)


def exchange(c: Raw, line: bytes, n: int) -> list[Any]:
    """Send `line` and a sentinel ping; return what the daemon sent before the ping's reply."""
    sentinel = f"sentinel-{n}"
    c.send(
        line + b"\n" + dumps({"jsonrpc": "2.0", "method": "daemon.ping", "id": sentinel}) + b"\n"
    )
    got: list[Any] = []
    while True:
        raw = c.line()
        assert raw, f"the daemon hung up after {line[:300]!r}"
        reply = json.loads(raw)
        if isinstance(reply, dict) and "method" in reply:
            continue  # an event notification (after events.subscribe)
        if isinstance(reply, dict) and reply.get("id") == sentinel:
            assert reply["result"] == {"pong": True}
            return got
        got.append(reply)


@pytest.mark.timeout(60)
@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
def test_fuzzed_lines_are_answered_and_change_nothing(target: Target, data: st.DataObject) -> None:
    """Every fuzzed line gets exactly the replies JSON-RPC prescribes, the daemon keeps
    serving, and no task file changes."""
    root = str(target.root)
    batch = data.draw(st.lists(lines(root), min_size=1, max_size=6), label="lines")
    with Raw(target.env.socket) as c:
        for n, line in enumerate(batch):
            check_reply(line, exchange(c, line, n))
    assert snapshot(target.root) == target.files
    assert alive(daemon_pid(target.env))


def test_every_method_is_fuzzed(target: Target) -> None:
    """The fuzzer knows the params class of every method the daemon serves."""
    assert set(PARAMS) == {*METHODS, ATTACH}
    assert all(attrs.has(cls) for cls in PARAMS.values())
    assert set(PARAMS) >= READ_ONLY


@pytest.mark.timeout(60)
def test_wrong_type_in_each_field_of_each_method(target: Target) -> None:
    """Each wrong value in each field of each method, an unknown field and positional params
    get -32602 naming the field, and change nothing."""
    root = str(target.root)
    wrong = [
        None,
        True,
        1.5,
        -1,
        0,
        10**30,
        "",
        [],
        {},
        ["x", 1],
        {"a": None},
        "../x",
        "x" * 10_000,
    ]
    with Raw(target.env.socket) as c:
        for method, cls in sorted(PARAMS.items()):
            fields = attrs.fields_dict(cls)
            required = [f.name for f in fields.values() if f.default is attrs.NOTHING]
            base = {k: REQUIRED[k] for k in required if k != "project"} | {"project": root}
            cases = [(name, value) for name in fields for value in wrong]
            cases += [("colour", "red"), ("params", None)]
            for name, value in cases:
                params: Any = [root] if name == "params" else {**base, name: value}
                if _valid(params, cls):
                    continue  # a value this field accepts (None where it is optional, ...)
                reply = c.request(method, params)
                _envelope(reply)
                error = reply["error"]
                assert error["code"] == -32602, (method, params, reply)
                # It names the field, or says what kind of value it wanted and quotes this one.
                assert name in json.dumps(error) or (
                    repr(value)[:40] in error["message"]
                    and any(part in error["message"] for part in [*name.split("_"), "branch"])
                ), (method, name, reply)
    assert snapshot(target.root) == target.files


@pytest.mark.timeout(60)
def test_a_thousand_clients_vanish(target: Target) -> None:
    """1,000 clients that connect and vanish (idle, after half a line, mid-reply, after
    subscribing) leave the daemon serving, with no fd leaked."""
    env = target.env
    pid = daemon_pid(env)
    root = str(target.root)
    with Raw(env.socket) as c:
        c.ping()
    baseline = fd_count(pid)
    big = dumps(
        {
            "jsonrpc": "2.0",
            "method": "task.get",
            "params": {"project": root, "task": "a" * 500_000},
            "id": 1,
        }
    )
    subscribe = dumps({"jsonrpc": "2.0", "method": "events.subscribe", "params": {}, "id": 1})
    errors: list[BaseException] = []

    def client(i: int) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            connect(sock, env.socket)
            kind = i % 5
            if kind == 1:
                sock.sendall(b'{"jsonrpc": "2.0", "method": "task.li')
            elif kind == 2:  # mid-reply: a 500 kB error message it never reads
                sock.sendall(big + b"\n")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif kind == 3:  # reads the start of a reply, then resets the connection
                sock.sendall(big + b"\n")
                sock.recv(100)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif kind == 4:
                sock.sendall(subscribe + b"\n")
                sock.recv(100)
        except OSError as exc:
            errors.append(exc)
        finally:
            sock.close()

    def worker(start: int) -> None:
        for i in range(start, 1000, 20):
            client(i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    with Patient(env.socket) as probe:
        while any(t.is_alive() for t in threads):
            probe.ping()  # served all along
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors[:3]
    wait_until(lambda: fd_count(pid) <= baseline + 2, f"fds back to {baseline}")
    with Raw(env.socket) as c:
        c.ping()
        wait_until(
            lambda: c.request("daemon.status")["result"]["subscribers"] == 0,
            "the vanished subscribers to be dropped",
        )
    assert snapshot(target.root) == target.files


@pytest.mark.timeout(60)
def test_nesting_near_the_limit(target: Target) -> None:
    """Params nested around the JSON parser's recursion limit get one error reply, never a
    hang-up or an internal error."""
    root = str(target.root)
    with Patient(target.env.socket) as c:
        for method in sorted(PARAMS):
            for depth in range(850, 1150, 25):
                for field in ("task", "labels", "zz"):
                    nested = b"[" * depth + b"]" * depth
                    c.send(
                        b'{"jsonrpc":"2.0","method":'
                        + dumps(method)
                        + b',"id":"deep","params":{"project":'
                        + dumps(root)
                        + b","
                        + dumps(field)
                        + b":"
                        + nested
                        + b"}}\n"
                    )
                    reply = c.recv()
                    _envelope(reply)
                    assert reply["id"] == "deep" or reply["error"]["code"] == -32700, reply
                    assert "error" in reply, reply
            c.ping()
    assert snapshot(target.root) == target.files


# -- hostile text in every text field ----------------------------------------------

# Text JSON carries but no file, argv or terminal should take as is: lone surrogates, NUL,
# bidi and C1 controls (accepted in branch names once), escapes, separators, sheer size.
HOSTILE_TEXT = [
    "\ud800",
    "a\udc00b",
    "\x00",
    "a\x00b",
    "\u202e",
    "a\u202eb",
    "\u0085",
    "a\x85b",
    "\x9b2J",
    "\x1b]52;c;cm0gLXJmIH4=\x07",
    "\x1b[2J",
    "\x7f\x01\x1f",
    "\u2028",
    "\ufeff\u200b",
    "\U000e0001",
    "x" * 300_000,
]


def text_paths(cls: type, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Each field of a params class that takes text, as (path, shape): shape "str" for a
    string (or a task reference), "list" for a list of strings, "dict" for a mapping."""
    out: list[tuple[tuple[str, ...], str]] = []
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        hint, path = hints[field.name], (*prefix, field.name)
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        kind = inner[0]
        if attrs.has(kind):
            out += text_paths(kind, path)
        elif typing.get_origin(kind) is dict:
            out.append((path, "dict"))
        elif typing.get_origin(kind) is list:
            out.append((path, "list"))
        elif hint == api.TaskRef or str in inner or kind is str:
            out.append((path, "str"))
    return out


def hostile_params(
    path: tuple[str, ...], shape: str, value: str, base: dict[str, Any]
) -> list[dict[str, Any]]:
    """`base` (valid params) with `value` at `path`, each way the field's shape holds it."""
    shapes: dict[str, list[Any]] = {
        "str": [value],
        "list": [[value]],
        "dict": [{value: "rgb:00/00/00"}, {"1": value}],
    }
    out = []
    for held in shapes[shape]:
        params = dict(base)
        node = params
        for key in path[:-1]:
            node = node[key] = dict(node.get(key, {}))
        node[path[-1]] = held
        out.append(params)
    return out


@attrs.frozen
class Scratch:
    """A second project on the fuzzed daemon, which these tests may change at will."""

    env: Env
    root: Path


@pytest.fixture(scope="module")
def scratch(target: Target) -> Scratch:
    root = make_repo(target.env.base / "scratch")
    target.env.run("init", cwd=root, check=True)
    with (root / ".orchestra" / "config.toml").open("a") as f:
        f.write(TEST_AGENT_CONFIG)
    with Raw(target.env.socket) as c:
        for slug in TASKS:
            assert "result" in c.request("task.new", {"project": str(root), "slug": slug})
    return Scratch(target.env, root)


@pytest.mark.timeout(120)
def test_hostile_text_in_every_text_field(scratch: Scratch) -> None:
    """Surrogates, NUL, bidi, C1 and C0 controls and huge strings, in each text field of each
    method, get a result or a typed error, never -32603; what is accepted reads back intact
    and leaves no broken file; a refused task.new allocates no id; the daemon stays up."""
    root = str(scratch.root)
    pid = daemon_pid(scratch.env)
    created: list[int] = []
    n = 0
    with Raw(scratch.env.socket, timeout=30) as c:
        for method, cls in sorted(PARAMS.items()):
            fields = attrs.fields_dict(cls)
            required = [f.name for f in fields.values() if f.default is attrs.NOTHING]
            for path, shape in text_paths(cls):
                for value in HOSTILE_TEXT:
                    n += 1
                    base = {k: REQUIRED[k] for k in required if k in REQUIRED}
                    base |= {"project": root} | ({"slug": f"s{n}"} if "slug" in fields else {})
                    for params in hostile_params(path, shape, value, base):
                        reply = c.request(method, params)
                        _envelope(reply)  # never -32603
                        if "error" in reply:
                            continue
                        if method == "task.new":
                            created.append(reply["result"]["id"])
                        if method in ("task.new", "task.update") and shape == "str":
                            stored = reply["result"][path[0]]  # a body ends with "\n"
                            assert stored in (value, value + "\n"), (method, path, value)
            c.ping()
        after = c.request("task.new", {"project": root, "slug": "last"})["result"]
        listed = c.request("task.list", {"project": root})["result"]
    start = len(TASKS) + 1
    assert created == list(range(start, start + len(created)))
    assert after["id"] == start + len(created)  # no refused task.new took an id
    assert listed["errors"] == []
    assert alive(pid)


@pytest.mark.timeout(60)
def test_attach_with_bad_colours_is_refused(scratch: Scratch) -> None:
    """pty.attach to a running agent with a colour it cannot parse, or a palette index out
    of range, is answered -32602 naming the field, and the connection stays JSON-RPC."""
    root = str(scratch.root)
    bad = [
        {"fg": "red"},
        {"bg": "rgb:zz/00/00"},
        {"fg": "\x00"},
        {"palette": {"1": "nope"}},
        {"palette": {"300": "rgb:00/00/00"}},
        {"palette": {"\u00b2": "rgb:00/00/00"}},  # "²".isdigit(), but int("²") fails
        {"palette": {"9" * 5000: "rgb:00/00/00"}},
    ]
    with Raw(scratch.env.socket) as c:
        c.request("task.new", {"project": root, "slug": "colours"})
        assert "result" in c.request("task.start", {"project": root, "task": "colours"})
        try:
            for colors in bad:
                params = {"project": root, "task": "colours", "colors": colors}
                reply = c.request("pty.attach", params)
                assert reply["error"]["code"] == -32602, (colors, reply)
                assert "colors" in json.dumps(reply["error"]["data"]), reply
                c.ping()
        finally:
            c.request("task.stop", {"project": root, "task": "colours"})
