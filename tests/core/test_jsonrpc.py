"""The sans-io JSON-RPC 2.0 codec: the specification's examples, ids, params, hostile input."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestra.core import jsonrpc
from orchestra.core.errors import EXIT_NOT_FOUND, RemoteError
from orchestra.core.jsonrpc import Incoming, Invalid, Request

# --- a tiny synchronous method table, the way the daemon's connection loop uses the codec ---


def _dispatch(request: Request) -> jsonrpc.Reply | None:
    """Answer the methods the specification's examples call; None for notifications."""
    methods: dict[str, Any] = {
        "sum": lambda p: sum(p),
        "subtract": lambda p: (
            p[0] - p[1] if isinstance(p, list) else p["minuend"] - p["subtrahend"]
        ),
        "get_data": lambda p: ["hello", 5],
        "notify_hello": lambda p: None,
        "notify_sum": lambda p: None,
        "update": lambda p: None,
    }
    if request.method not in methods:
        reply = jsonrpc.error(request.id, jsonrpc.METHOD_NOT_FOUND, "Method not found")
    else:
        reply = jsonrpc.result(request.id, methods[request.method](request.params))
    return None if request.notification else reply


def roundtrip(data: str | bytes) -> Any:
    """parse -> dispatch -> assemble, then decode what would go on the wire (None: nothing)."""
    raw = data.encode() if isinstance(data, str) else data
    incoming = jsonrpc.parse(raw)
    replies = [_dispatch(i) if isinstance(i, Request) else i.reply for i in incoming.items]
    out = incoming.assemble(replies)
    if out is None:
        return None
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    return json.loads(out)


def normalise(reply: Any) -> Any:
    """Cut our detailed error messages down to the specification's short ones."""
    if isinstance(reply, list):
        return [normalise(r) for r in reply]
    if "error" in reply:
        err = dict(reply["error"])
        err["message"] = err["message"].split(":")[0]
        err.pop("data", None)
        return {**reply, "error": err}
    return reply


def err(code: int, message: str, id: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": id}


def ok(value: Any, id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": value, "id": id}


# --- section 7 of https://www.jsonrpc.org/specification, example by example ---


def test_spec_positional_params() -> None:
    """A call with positional parameters becomes a Request and gets its result."""
    data = '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}'
    assert jsonrpc.parse(data.encode()).items == (
        Request(method="subtract", params=[42, 23], id=1, notification=False),
    )
    assert roundtrip(data) == ok(19, 1)


def test_spec_named_params() -> None:
    """A call with named parameters keeps them as an object."""
    data = (
        '{"jsonrpc": "2.0", "method": "subtract",'
        ' "params": {"subtrahend": 23, "minuend": 42}, "id": 3}'
    )
    (item,) = jsonrpc.parse(data.encode()).items
    assert isinstance(item, Request)
    assert item.params == {"subtrahend": 23, "minuend": 42}
    assert roundtrip(data) == ok(19, 3)


@pytest.mark.parametrize(
    "data",
    [
        '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}',
        '{"jsonrpc": "2.0", "method": "foobar"}',
    ],
)
def test_spec_notification(data: str) -> None:
    """A request without an id is a notification: parsed, never answered, even if unknown."""
    (item,) = jsonrpc.parse(data.encode()).items
    assert isinstance(item, Request)
    assert item.notification
    assert item.id is None
    assert roundtrip(data) is None


def test_spec_non_existent_method_is_a_dispatch_matter() -> None:
    """The codec accepts any method name; -32601 is the dispatcher's answer, not the codec's."""
    data = '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}'
    (item,) = jsonrpc.parse(data.encode()).items
    assert item == Request(method="foobar", params=None, id="1", notification=False)
    assert roundtrip(data) == err(-32601, "Method not found", "1")


def test_spec_invalid_json() -> None:
    """Unparseable JSON gets one -32700 Parse error with a null id."""
    data = '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]'
    reply = roundtrip(data)
    assert normalise(reply) == err(-32700, "Parse error")
    assert reply["error"]["message"].startswith("Parse error: ")


def test_spec_invalid_request_object() -> None:
    """A request whose method is not a string gets -32600 Invalid Request with a null id."""
    reply = roundtrip('{"jsonrpc": "2.0", "method": 1, "params": "bar"}')
    assert normalise(reply) == err(-32600, "Invalid Request")
    assert "method" in reply["error"]["message"]


def test_spec_batch_invalid_json() -> None:
    """A batch that is not valid JSON gets a single Parse error, not an array."""
    data = (
        '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
        '{"jsonrpc": "2.0", "method"]'
    )
    assert normalise(roundtrip(data)) == err(-32700, "Parse error")


def test_spec_empty_array() -> None:
    """An empty batch gets a single Invalid Request, not an empty array."""
    incoming = jsonrpc.parse(b"[]")
    assert not incoming.batch
    assert normalise(roundtrip("[]")) == err(-32600, "Invalid Request")


def test_spec_invalid_batch_of_one() -> None:
    """`[1]` is a batch of one invalid member, answered with an array of one error."""
    incoming = jsonrpc.parse(b"[1]")
    assert incoming.batch
    assert normalise(roundtrip("[1]")) == [err(-32600, "Invalid Request")]


def test_spec_invalid_batch_of_three() -> None:
    """`[1,2,3]` gets an array of three Invalid Request errors."""
    assert normalise(roundtrip("[1,2,3]")) == [err(-32600, "Invalid Request")] * 3


def test_spec_mixed_batch() -> None:
    """A mixed batch gets one reply per member that is not a notification, in order."""
    data = """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"""
    incoming = jsonrpc.parse(data.encode())
    assert incoming.batch
    kinds = [type(i).__name__ for i in incoming.items]
    assert kinds == ["Request", "Request", "Request", "Invalid", "Request", "Request"]
    assert normalise(roundtrip(data)) == [
        ok(7, "1"),
        ok(19, "2"),
        err(-32600, "Invalid Request"),
        err(-32601, "Method not found", "5"),
        ok(["hello", 5], "9"),
    ]


def test_spec_all_notification_batch() -> None:
    """A batch of notifications only gets nothing back at all."""
    data = """[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]"""
    assert roundtrip(data) is None


# --- ids ---


@pytest.mark.parametrize("id", ["abc", "", 0, 1, -5, 2**62, None])
def test_valid_ids_are_kept(id: Any) -> None:
    """String, integer and null ids are accepted and echoed unchanged in the reply."""
    data = json.dumps({"jsonrpc": "2.0", "method": "get_data", "id": id})
    (item,) = jsonrpc.parse(data.encode()).items
    assert isinstance(item, Request)
    assert item.id == id
    assert not item.notification
    assert roundtrip(data) == ok(["hello", 5], id)


def test_null_id_is_a_call_not_a_notification() -> None:
    """An explicit `"id": null` still gets a reply; only a missing id makes a notification."""
    (item,) = jsonrpc.parse(b'{"jsonrpc":"2.0","method":"x","id":null}').items
    assert isinstance(item, Request)
    assert not item.notification


@pytest.mark.parametrize("id", ["true", "false", "1.5", "1e400", "{}", "[1]", '{"a":1}'])
def test_bad_ids_are_refused(id: str) -> None:
    """Boolean, fractional, object and array ids get -32600 with a null id (never echoed)."""
    data = '{"jsonrpc":"2.0","method":"get_data","id":' + id + "}"
    (item,) = jsonrpc.parse(data.encode()).items
    assert isinstance(item, Invalid)
    reply = roundtrip(data)
    assert normalise(reply) == err(-32600, "Invalid Request")
    assert '"id"' in reply["error"]["message"]


# --- the rest of the request object ---


@pytest.mark.parametrize("params", ['"bar"', "3", "true", "1.5"])
def test_params_must_be_structured(params: str) -> None:
    """Params that are neither an object nor an array get -32600, echoing the request's id."""
    reply = roundtrip('{"jsonrpc":"2.0","method":"sum","params":' + params + ',"id":7}')
    assert normalise(reply) == err(-32600, "Invalid Request", 7)
    assert "params" in reply["error"]["message"]


@pytest.mark.parametrize("params", ["[]", "{}", "[1,2]", '{"a":[1]}'])
def test_structured_params_accepted(params: str) -> None:
    """Object and array params, even empty ones, are passed through as they are."""
    (item,) = jsonrpc.parse(
        ('{"jsonrpc":"2.0","method":"m","params":' + params + ',"id":1}').encode()
    ).items
    assert isinstance(item, Request)
    assert item.params == json.loads(params)


@pytest.mark.parametrize(
    "message",
    [
        '{"method":"m","id":4}',
        '{"jsonrpc":"1.0","method":"m","id":4}',
        '{"jsonrpc":2.0,"method":"m","id":4}',
        '{"jsonrpc":"2.0","id":4}',
        '{"jsonrpc":"2.0","method":null,"id":4}',
    ],
)
def test_bad_version_or_method_echoes_a_valid_id(message: str) -> None:
    """A request missing "jsonrpc":"2.0" or a string method gets -32600 carrying its own id."""
    assert normalise(roundtrip(message)) == err(-32600, "Invalid Request", 4)


@pytest.mark.parametrize("value", ['"text"', "42", "null", "true"])
def test_non_object_message(value: str) -> None:
    """A message that is valid JSON but not an object gets -32600."""
    assert normalise(roundtrip(value)) == err(-32600, "Invalid Request")


# --- responses sent to us ---


@pytest.mark.parametrize(
    "message",
    [
        '{"jsonrpc":"2.0","result":1,"id":1}',
        '{"jsonrpc":"2.0","result":null,"id":null}',
        '{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}',
        '{"result":1,"id":1}',
    ],
)
def test_responses_are_never_answered(message: str) -> None:
    """A response (or error) sent to us gets no reply, so two peers cannot bounce errors forever."""
    (item,) = jsonrpc.parse(message.encode()).items
    assert item == Invalid(reply=None)
    assert roundtrip(message) is None


def test_responses_inside_a_batch_are_dropped() -> None:
    """In a batch, response members are skipped and the real calls still answered."""
    data = (
        '[{"jsonrpc":"2.0","result":1,"id":1},'
        '{"jsonrpc":"2.0","method":"sum","params":[2,3],"id":2}]'
    )
    assert roundtrip(data) == [ok(5, 2)]


# --- hostile input ---


@pytest.mark.parametrize("data", ["[" * 100_000, '{"a":' * 100_000, "[" * 100_000 + "]" * 100_000])
def test_deep_nesting_is_a_parse_error(data: str) -> None:
    """Absurdly deep nesting gets a Parse error instead of blowing the stack."""
    reply = roundtrip(data)
    assert normalise(reply) == err(-32700, "Parse error")


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b'"\xc3\x28"',
        b'{"jsonrpc":"2.0","method":"\xed\xa0\x80","id":1}',  # an encoded surrogate
        b'{"jsonrpc":"2.0","method":"m\xc0\xaf","id":1}',  # an overlong encoding of '/'
        '{"jsonrpc":"2.0","method":"m","id":1}'.encode("utf-16"),
        '{"jsonrpc":"2.0","method":"m","id":1}'.encode("utf-32"),
        b"\xef\xbb\xbf" + b'{"jsonrpc":"2.0","method":"m","id":1}',  # a UTF-8 byte order mark
    ],
)
def test_anything_but_plain_utf8_is_a_parse_error(data: bytes) -> None:
    """Messages must be UTF-8 without a BOM; anything else is a Parse error, not a request."""
    assert normalise(roundtrip(data)) == err(-32700, "Parse error")


@pytest.mark.parametrize("data", [b"", b" ", b"\x00", b'{"a":1}{"b":2}', b'{"jsonrpc":"2.0"'])
def test_empty_or_truncated_input(data: bytes) -> None:
    """Empty, NUL, concatenated or half messages are Parse errors."""
    assert normalise(roundtrip(data)) == err(-32700, "Parse error")


def test_non_ascii_text_survives() -> None:
    """Non-ASCII strings decode and encode back as UTF-8, not as escapes."""
    data = '{"jsonrpc":"2.0","method":"echo-é","id":"ключ"}'.encode()
    (item,) = jsonrpc.parse(data).items
    assert isinstance(item, Request)
    assert item.method == "echo-é"
    out = jsonrpc.encode(jsonrpc.result(item.id, "✓"))
    assert "ключ".encode() in out
    assert "✓".encode() in out


def test_lone_surrogate_id_can_still_be_answered() -> None:
    """An id holding a lone surrogate escape is echoed as a valid escaped JSON line, not a crash."""
    (item,) = jsonrpc.parse(b'{"jsonrpc":"2.0","method":"m","id":"\\ud800"}').items
    assert isinstance(item, Request)
    out = jsonrpc.encode(jsonrpc.result(item.id, None))
    assert out.endswith(b"\n")
    assert json.loads(out) == {"jsonrpc": "2.0", "result": None, "id": "\ud800"}
    out.decode("utf-8")  # strictly valid UTF-8 on the wire


# --- building replies ---


def test_assemble_single_and_batch() -> None:
    """A single message gets an object back; a batch gets an array, even of one."""
    single = Incoming(items=(Invalid(reply=None),), batch=False)
    batch = Incoming(items=(Invalid(reply=None),), batch=True)
    reply = jsonrpc.result(1, "x")
    assert single.assemble([reply]) == jsonrpc.encode(reply)
    assert batch.assemble([reply]) == jsonrpc.encode([reply])
    assert json.loads(batch.assemble([None, reply, None]) or b"") == [reply]


def test_assemble_nothing_to_send() -> None:
    """When every reply is None (notifications, responses) assemble returns None, not `[]`."""
    assert Incoming(items=(), batch=True).assemble([None, None]) is None
    assert Incoming(items=(), batch=False).assemble([None]) is None


def test_encode_is_one_compact_line() -> None:
    """encode() writes compact JSON ending in exactly one newline, escaping newlines in strings."""
    out = jsonrpc.encode({"a": "line1\nline2", "b": [1, 2]})
    assert out == b'{"a":"line1\\nline2","b":[1,2]}\n'


def test_error_builder() -> None:
    """error() leaves out `data` when there is none and includes it when given."""
    assert jsonrpc.error(3, -32602, "bad") == err(-32602, "bad", 3)
    assert jsonrpc.error(None, -32001, "gone", {"task": 4}) == {
        "jsonrpc": "2.0",
        "error": {"code": -32001, "message": "gone", "data": {"task": 4}},
        "id": None,
    }


def test_notification_builder() -> None:
    """notification() builds a message with no id, which our own parser reads as a notification."""
    message = jsonrpc.notification("events.task_changed", {"id": 1})
    assert "id" not in message
    (item,) = jsonrpc.parse(jsonrpc.encode(message)).items
    assert item == Request(
        method="events.task_changed", params={"id": 1}, id=None, notification=True
    )


def test_standard_error_codes() -> None:
    """The five standard codes have the specification's values."""
    assert (
        jsonrpc.PARSE_ERROR,
        jsonrpc.INVALID_REQUEST,
        jsonrpc.METHOD_NOT_FOUND,
        jsonrpc.INVALID_PARAMS,
        jsonrpc.INTERNAL_ERROR,
    ) == (-32700, -32600, -32601, -32602, -32603)


# --- properties ---


def _check_incoming(incoming: Incoming) -> None:
    """Every ready reply is a well-formed error that encodes to one valid UTF-8 JSON line."""
    assert incoming.items
    for item in incoming.items:
        if isinstance(item, Request):
            assert isinstance(item.method, str)
            assert item.params is None or isinstance(item.params, (dict, list))
            assert item.id is None or (
                isinstance(item.id, (str, int)) and not isinstance(item.id, bool)
            )
        elif item.reply is not None:
            assert item.reply["error"]["code"] in (-32700, -32600)
            out = jsonrpc.encode(item.reply)
            assert out.count(b"\n") == 1
            assert json.loads(out.decode("utf-8")) == item.reply


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parse_never_raises_on_bytes(data: bytes) -> None:
    """parse() turns any bytes at all into items, never an exception."""
    _check_incoming(jsonrpc.parse(data))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
request_like = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2.0]) | json_values,
        "method": st.text(max_size=10) | json_values,
        "params": json_values,
        "id": json_values,
        "result": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(request_like | st.lists(request_like | json_values, max_size=5) | json_values)
def test_parse_never_raises_on_json(message: Any) -> None:
    """parse() sorts any JSON value into valid requests and ready errors without raising."""
    _check_incoming(jsonrpc.parse(json.dumps(message).encode()))


# --- the client half: Calls ---------------------------------------------------------------


def test_requests_are_numbered_and_encoded_as_one_line() -> None:
    """Each request gets the next id and is one JSON-RPC 2.0 line; no params, no key."""
    calls = jsonrpc.Calls()
    first_id, first = calls.request("daemon.ping")
    second_id, second = calls.request("task.get", {"project": "/p", "task": 1})
    assert (first_id, second_id) == (1, 2)
    assert first.endswith(b"\n") and first.count(b"\n") == 1
    assert json.loads(first) == {"jsonrpc": "2.0", "method": "daemon.ping", "id": 1}
    assert json.loads(second)["params"] == {"project": "/p", "task": 1}
    assert calls.pending == 2


def test_a_reply_is_matched_to_its_request_once() -> None:
    """A result comes back as the Response to its id, however the replies are ordered, and
    the same id again (or one never asked) is dropped."""
    calls = jsonrpc.Calls()
    calls.request("a")
    calls.request("b")
    second = calls.receive(b'{"jsonrpc":"2.0","result":"B","id":2}')
    first = calls.receive(b'{"jsonrpc":"2.0","result":"A","id":1}')
    assert second == jsonrpc.Response(2, result="B")
    assert first == jsonrpc.Response(1, result="A")
    assert first.value() == "A"
    assert calls.receive(b'{"jsonrpc":"2.0","result":"A","id":1}') is None
    assert calls.receive(b'{"jsonrpc":"2.0","result":"?","id":99}') is None
    assert calls.pending == 0


def test_a_forgotten_request_s_late_reply_is_dropped() -> None:
    """The reply to a request its caller gave up on is not taken for another's."""
    calls = jsonrpc.Calls()
    gone, _ = calls.request("slow")
    calls.forget(gone)
    calls.request("next")
    assert calls.receive(b'{"jsonrpc":"2.0","result":"late","id":1}') is None
    assert calls.receive(b'{"jsonrpc":"2.0","result":"ok","id":2}') == jsonrpc.Response(2, "ok")


def test_an_error_reply_raises_our_exception_with_its_code_and_data() -> None:
    """An error object becomes a RemoteError keeping the code, message and data, and the CLI
    exit code of its kind."""
    calls = jsonrpc.Calls()
    calls.request("task.get")
    line = (
        b'{"jsonrpc":"2.0","error":{"code":-32001,"message":"no task 7",'
        b'"data":{"kind":"not_found"}},"id":1}'
    )
    reply = calls.receive(line)
    assert isinstance(reply, jsonrpc.Response)
    with pytest.raises(RemoteError) as info:
        reply.value()
    assert info.value.remote_code == -32001
    assert info.value.message == "no task 7"
    assert info.value.data == {"kind": "not_found"}
    assert info.value.cli_exit_code == EXIT_NOT_FOUND


@pytest.mark.parametrize(
    "err",
    [None, "boom", [1], {"code": "x", "message": 5, "data": [1]}, {"code": True}, {}],
)
def test_a_malformed_error_object_is_an_internal_error(err: Any) -> None:
    """An error object that is not one (not an object, a code that is no integer, data that
    is no object) is a RemoteError -32603, never a crash of the client."""
    exc = jsonrpc.remote_error(err)
    assert exc.remote_code == jsonrpc.INTERNAL_ERROR
    assert isinstance(exc.message, str)
    assert isinstance(exc.data, dict)


def test_an_error_without_an_id_answers_the_oldest_request() -> None:
    """An error the daemon could not give an id (it found our line too long) answers the
    oldest request still waiting: the daemon answers in order."""
    calls = jsonrpc.Calls()
    calls.request("huge")
    calls.request("next")
    line = b'{"jsonrpc":"2.0","error":{"code":-32600,"message":"too long"},"id":null}'
    reply = calls.receive(line)
    assert isinstance(reply, jsonrpc.Response) and reply.id == 1
    assert isinstance(reply.error, RemoteError) and reply.error.remote_code == -32600
    again = calls.receive(line)
    assert isinstance(again, jsonrpc.Response) and again.id == 2
    assert calls.receive(line) is None  # nothing waits any more


def test_notifications_and_blank_lines() -> None:
    """A message with a method is a Notice, whatever is pending; a blank line is nothing."""
    calls = jsonrpc.Calls()
    calls.request("events.subscribe")
    notice = calls.receive(b'{"jsonrpc":"2.0","method":"events.task_changed","params":{"a":1}}')
    assert notice == jsonrpc.Notice("events.task_changed", {"a": 1})
    assert calls.receive(b"  \r") is None
    assert calls.pending == 1


@pytest.mark.parametrize(
    "line",
    [b"not json", b"[1, 2]", b'"text"', b"[" * 100_000, b'{"jsonrpc":"2.0","id":1}', b"\xff"],
)
def test_what_is_not_json_rpc_is_a_wire_error(line: bytes) -> None:
    """Garbage, a value that is no object, or a reply with neither result nor error raises
    WireError (a ValueError), never anything else."""
    calls = jsonrpc.Calls()
    calls.request("x")
    with pytest.raises(jsonrpc.WireError):
        calls.receive(line)


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_receive_never_raises_anything_but_wire_error(line: bytes) -> None:
    """Whatever bytes arrive, receive() returns or raises WireError."""
    calls = jsonrpc.Calls()
    calls.request("x")
    with contextlib.suppress(jsonrpc.WireError):
        calls.receive(line)


# --- bounds (docs/api.md "Limits") ---------------------------------------------------

BOTH = pytest.mark.parametrize("slow", [False, True], ids=["inline", "slow"])


def _nested(depth: int) -> bytes:
    """A request whose params nest `depth` levels in all (the request object is one)."""
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"jsonrpc":"2.0","method":"m","id":1,"params":' + inner + b"}"


def _batch(size: int) -> bytes:
    return json.dumps([{"jsonrpc": "2.0", "method": "m", "id": i} for i in range(size)]).encode()


@BOTH
def test_nesting_is_refused_past_the_limit(slow: bool) -> None:
    """64 levels parse; 65, or 100,000, are one Parse error naming the bound, either way."""
    (item,) = jsonrpc.parse(_nested(jsonrpc.MAX_DEPTH), slow=slow).items
    assert isinstance(item, Request) and item.method == "m"
    for depth in (jsonrpc.MAX_DEPTH + 1, 100_000):
        (item,) = jsonrpc.parse(_nested(depth), slow=slow).items
        assert isinstance(item, Invalid) and item.reply is not None
        assert item.reply["error"]["code"] == jsonrpc.PARSE_ERROR
        assert "nested deeper than 64" in item.reply["error"]["message"]


@BOTH
def test_a_batch_past_the_limit_is_one_error(slow: bool) -> None:
    """A batch of 100 is a batch; 101 or 20,000 members are one Invalid Request naming the
    bound (not an array of errors)."""
    incoming = jsonrpc.parse(_batch(jsonrpc.MAX_BATCH), slow=slow)
    assert incoming.batch and len(incoming.items) == jsonrpc.MAX_BATCH
    for size in (jsonrpc.MAX_BATCH + 1, 20_000):
        incoming = jsonrpc.parse(_batch(size), slow=slow)
        assert not incoming.batch
        (item,) = incoming.items
        assert isinstance(item, Invalid) and item.reply is not None
        assert item.reply["error"]["code"] == jsonrpc.INVALID_REQUEST
        assert item.reply["error"]["data"] == {"limit": "batch", "max": jsonrpc.MAX_BATCH}


def test_heavy_lines_are_the_long_and_the_deeply_structured() -> None:
    """A line is heavy past QUICK_BYTES or with more arrays and objects than MAX_DEPTH: a
    short request is not, a long string or a batch of 100 is."""
    assert not jsonrpc.heavy(b'{"jsonrpc":"2.0","method":"daemon.ping","id":1}')
    assert jsonrpc.heavy(b'{"x":"' + b"y" * jsonrpc.QUICK_BYTES + b'"}')
    assert jsonrpc.heavy(_batch(100))
    assert not jsonrpc.heavy(_nested(jsonrpc.MAX_DEPTH))
    assert jsonrpc.heavy(_nested(jsonrpc.MAX_DEPTH + 1))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@given(json_values)
@settings(max_examples=300)
def test_the_slow_parser_reads_what_json_reads(value: Any) -> None:
    """The pure-Python path (for heavy lines) gives what the inline one gives, batches,
    errors and all."""
    for line in (json.dumps(value).encode(), json.dumps([value, {"jsonrpc": "2.0"}]).encode()):
        inline, slow = jsonrpc.parse(line), jsonrpc.parse(line, slow=True)
        assert inline.batch == slow.batch
        assert [type(i) for i in inline.items] == [type(i) for i in slow.items]
        assert [getattr(i, "params", None) for i in inline.items] == [
            getattr(i, "params", None) for i in slow.items
        ]


@pytest.mark.parametrize(
    "line", [b"", b" ", b"[1,]", b"[1 2]", b'{"a":1} x', b"[", b"]", b"[1", b"nul", b"\xff["]
)
def test_the_slow_parser_refuses_what_json_refuses(line: bytes) -> None:
    """Malformed lines are a Parse error (or the same Invalid Request) on both paths."""
    inline, slow = jsonrpc.parse(line), jsonrpc.parse(line, slow=True)
    if inline == slow:
        return
    codes = [getattr(i.items[0], "reply", {})["error"]["code"] for i in (inline, slow)]
    assert codes == [jsonrpc.PARSE_ERROR] * 2


@given(json_values, st.integers(0, 3))
@settings(max_examples=200)
def test_encode_chunks_is_encode_in_pieces(value: Any, longs: int) -> None:
    """The pieces joined decode to the message, end with the one newline, and none is far
    over PIECE bytes; a message without long strings is one piece, `encode`'s."""
    message = {"result": value, "long": ["é\ud800x" * (jsonrpc.PIECE // 2)] * longs}
    pieces = list(jsonrpc.encode_chunks(message))
    data = b"".join(pieces)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == message
    if not longs:
        assert pieces == [jsonrpc.encode(message)]
    else:
        assert len(pieces) > 1
        assert max(map(len, pieces)) <= 8 * jsonrpc.PIECE  # escaped text, one slice at most
