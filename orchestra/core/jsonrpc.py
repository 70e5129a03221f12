"""JSON-RPC 2.0 codec, sans I/O: both halves, the daemon's and the clients'.

Framing is NDJSON: one JSON value per line (`core/ndjson.py` splits the lines). The
daemon only answers: a message that is a *response* (no "method") is ignored,
never answered, so two peers can never bounce errors at each other forever.

The server half (what the daemon's connection loop does for every line):

    incoming = parse(line)
    replies = [await dispatch(r) if isinstance(r, Request) else r.reply for r in incoming.items]
    data = incoming.assemble(replies)   # bytes to send, or None

Bounds (docs/api.md "Limits"): a batch has at most MAX_BATCH members and a message at
most MAX_DEPTH levels of arrays and objects; either is refused with one error, not an
array. A line that could cost the C parser more than a few milliseconds (a long one, or
one with many arrays and objects) is `heavy`: the daemon parses it with `parse(...,
slow=True)` in a worker thread, where the pure-Python scanner lets the event loop take
the GIL back between bytecodes, and a batch is refused as soon as its member past the
bound is read. `encode_chunks` gives a reply in pieces, long strings escaped a piece at a
time, so no reply is one long step for the loop nor held whole in memory.

The client half (what every client does: the blocking one, the MCP link, the asyncio one):

    calls = Calls()
    request_id, data = calls.request("task.list", {"project": root})   # send data
    message = calls.receive(line)    # for each line read: a Response to one of our
    if isinstance(message, Response) and message.id == request_id:  # requests, a Notice,
        return message.value()       # or None; value() raises RemoteError for an error

Stdlib only (no attrs): every client imports it on its way to a one-shot call.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, NamedTuple

from orchestra.core.errors import RemoteError

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

MAX_BATCH: Final = 100  # members of one batch
MAX_DEPTH: Final = 64  # levels of arrays and objects in one message
# A line parsed inline (by the C parser, on the loop) is at most QUICK_BYTES long and opens
# at most MAX_DEPTH arrays and objects (so it cannot nest deeper): a few milliseconds at
# worst. Any other line is `heavy`.
QUICK_BYTES: Final = 64 * 1024
PIECE: Final = 64 * 1024  # characters of a long string escaped in one step (encode_chunks)

Id = str | int | None
Reply = dict[str, Any]


class Request(NamedTuple):
    """A well-formed call. `notification` requests get no reply."""

    method: str
    params: dict[str, Any] | list[Any] | None
    id: Id = None
    notification: bool = False


class Invalid(NamedTuple):
    """A batch member or message that is not a valid request: its reply is ready."""

    reply: Reply | None


class Incoming(NamedTuple):
    """One framed message: a single item, or a batch of them."""

    items: tuple[Request | Invalid, ...]
    batch: bool

    def assemble(self, replies: list[Reply | None]) -> bytes | None:
        """Encode the replies for this message, dropping the ones notifications got."""
        present = [r for r in replies if r is not None]
        if not present:
            return None
        return encode(present if self.batch else present[0])


def result(id: Id, value: Any) -> Reply:
    return {"jsonrpc": "2.0", "result": value, "id": id}


def error(id: Id, code: int, message: str, data: Any = None) -> Reply:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "error": err, "id": id}


def notification(method: str, params: dict[str, Any]) -> Reply:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def encode(message: Any) -> bytes:
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:  # a lone surrogate (from a "\ud800" escape) has no UTF-8 form
        return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def heavy(data: bytes) -> bool:
    """Whether a line is to be parsed with `slow=True`, off the event loop (see QUICK_BYTES)."""
    return len(data) > QUICK_BYTES or data.count(b"[") + data.count(b"{") > MAX_DEPTH


def parse(data: bytes, *, slow: bool = False) -> Incoming:
    """Decode one framed message. Never raises: bad input becomes a ready error reply.
    `slow`: with the pure-Python scanner (for a `heavy` line, in a worker thread). Either
    way gives the same answer; a line that might nest too deeply is always scanned so."""
    try:
        # Decode strictly first: json.loads(bytes) would also take UTF-16/32 and encoded surrogates.
        text = data.decode("utf-8")
        deep = data.count(b"[") + data.count(b"{") > MAX_DEPTH  # it might nest too deeply
        message = _slow_loads(text) if slow or deep else json.loads(text)
    except _TooDeep:
        return _alone(error(None, PARSE_ERROR, f"Parse error: nested deeper than {MAX_DEPTH}"))
    except _TooMany:
        return _too_many()
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return _alone(error(None, PARSE_ERROR, f"Parse error: {reason}"))
    if isinstance(message, list):
        if not message:
            return _alone(error(None, INVALID_REQUEST, "Invalid Request: empty batch"))
        if len(message) > MAX_BATCH:
            return _too_many()
        return Incoming(items=tuple(_item(m) for m in message), batch=True)
    return Incoming(items=(_item(message),), batch=False)


def _alone(reply: Reply) -> Incoming:
    return Incoming(items=(Invalid(reply=reply),), batch=False)


def _too_many() -> Incoming:
    return _alone(
        error(
            None,
            INVALID_REQUEST,
            f"Invalid Request: a batch has at most {MAX_BATCH} members; send it in parts",
            {"limit": "batch", "max": MAX_BATCH},
        )
    )


class _TooDeep(Exception):
    pass


class _TooMany(Exception):
    pass


_BLANK = re.compile(r"[ \t\n\r]*")  # what json skips between tokens


def _skip(text: str, at: int) -> int:
    """Where the next token starts, at or after `at`."""
    found = _BLANK.match(text, at)
    return at if found is None else found.end()


def _slow_loads(text: str) -> Any:
    """json.loads with the pure-Python scanner, refusing nesting past MAX_DEPTH as it goes
    and a top-level array past MAX_BATCH members as soon as one more is read."""
    decoder = json.JSONDecoder()
    depth = 0

    def nested(parse: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            nonlocal depth
            depth += 1
            if depth > MAX_DEPTH:
                raise _TooDeep
            try:
                return parse(*args)
            finally:
                depth -= 1

        return run

    # The pure-Python parts of json (the stubs do not show them): JSONArray, py_make_scanner.
    parts: Any = json.decoder
    vars(decoder).update(parse_object=nested(parts.JSONObject), parse_array=nested(parts.JSONArray))
    scanner: Any = json.scanner
    scan = scanner.py_make_scanner(decoder)
    end = _skip(text, 0)
    if not text.startswith("[", end):
        value, end = _scan(scan, text, end)
    else:
        value = []
        depth = 1  # the batch's own array
        end = _skip(text, end + 1)
        if text.startswith("]", end):
            end += 1
        else:
            while True:
                member, end = _scan(scan, text, end)
                value.append(member)
                if len(value) > MAX_BATCH:
                    raise _TooMany
                end = _skip(text, end)
                if text.startswith("]", end):
                    end += 1
                    break
                if not text.startswith(",", end):
                    raise json.JSONDecodeError("Expecting ',' delimiter", text, end)
                end = _skip(text, end + 1)
    end = _skip(text, end)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _scan(scan: Callable[[str, int], tuple[Any, int]], text: str, at: int) -> tuple[Any, int]:
    try:
        return scan(text, at)
    except StopIteration as exc:
        raise json.JSONDecodeError("Expecting value", text, exc.value) from None


def encode_chunks(message: Any) -> Iterator[bytes]:
    """`encode(message)` in pieces of about PIECE bytes: a string longer than PIECE is
    escaped PIECE characters at a time. The pieces joined are a valid encoding of the
    message (the same as `encode` gives, but where a lone surrogate is escaped only in its
    own piece)."""
    if not _has_long_string(message):
        yield encode(message)
        return
    out: list[bytes] = []
    size = 0
    for part in _pieces(message):
        out.append(part)
        size += len(part)
        if size >= PIECE:
            yield b"".join(out)
            out, size = [], 0
    out.append(b"\n")
    yield b"".join(out)


def _has_long_string(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) > PIECE
    if isinstance(value, dict):
        return any(_has_long_string(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_long_string(v) for v in value)
    return False


def _pieces(value: Any) -> Iterator[bytes]:
    if isinstance(value, dict):
        yield b"{"
        for n, (key, item) in enumerate(value.items()):
            yield (b"," if n else b"") + _leaf(str(key)) + b":"
            yield from _pieces(item)
        yield b"}"
    elif isinstance(value, (list, tuple)):
        yield b"["
        for n, item in enumerate(value):
            if n:
                yield b","
            yield from _pieces(item)
        yield b"]"
    elif isinstance(value, str) and len(value) > PIECE:
        yield b'"'
        for at in range(0, len(value), PIECE):
            part = value[at : at + PIECE]
            try:
                yield json.encoder.encode_basestring(part)[1:-1].encode()
            except UnicodeEncodeError:  # a lone surrogate: this piece escaped as ASCII
                yield json.encoder.encode_basestring_ascii(part)[1:-1].encode()
        yield b'"'
    else:
        yield _leaf(value)


def _leaf(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (str, int)) and not isinstance(value, bool))


def _item(message: Any) -> Request | Invalid:
    if not isinstance(message, dict):
        return Invalid(reply=error(None, INVALID_REQUEST, "Invalid Request: expected an object"))
    has_id = "id" in message
    msg_id = message.get("id")
    reply_id = msg_id if _valid_id(msg_id) else None
    if "method" not in message and ("result" in message or "error" in message):
        return Invalid(reply=None)  # a response sent to us: we never asked, never answer
    if message.get("jsonrpc") != "2.0":
        return Invalid(
            reply=error(reply_id, INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"')
        )
    method = message.get("method")
    if not isinstance(method, str):
        return Invalid(
            reply=error(reply_id, INVALID_REQUEST, 'Invalid Request: "method" must be a string')
        )
    if has_id and not _valid_id(msg_id):
        return Invalid(
            reply=error(
                None, INVALID_REQUEST, 'Invalid Request: "id" must be a string, an integer or null'
            )
        )
    params = message.get("params")
    if params is not None and not isinstance(params, (dict, list)):
        return Invalid(
            reply=error(
                reply_id, INVALID_REQUEST, 'Invalid Request: "params" must be an object or an array'
            )
        )
    return Request(method=method, params=params, id=msg_id, notification=not has_id)


# -- the client half ------------------------------------------------------------------


class Response(NamedTuple):
    """The peer's answer to one of our requests: its result, or its error object."""

    id: int
    result: Any = None
    error: RemoteError | None = None

    def value(self) -> Any:
        """The result, or the error raised (RemoteError, with the daemon's code and data)."""
        if self.error is not None:
            raise self.error
        return self.result


class Notice(NamedTuple):
    """A notification from the peer (`events.task_changed` after `events.subscribe`)."""

    method: str
    params: Any


class WireError(ValueError):
    """What the peer sent is not JSON-RPC 2.0 (not JSON, not an object...)."""


def remote_error(err: Any) -> RemoteError:
    """An error object off the wire as our exception: its code (which the CLI maps to its
    exit code, core/errors.EXIT_BY_CODE), message and data. A malformed one (not an
    object, a code that is no integer) is an internal error, never a crash of the client."""
    if not isinstance(err, Mapping):
        return RemoteError(INTERNAL_ERROR, f"malformed error object from the daemon: {err!r:.80}")
    code = err.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = INTERNAL_ERROR
    message = err.get("message")
    data = err.get("data")
    return RemoteError(
        code,
        message if isinstance(message, str) else "error",
        dict(data) if isinstance(data, Mapping) else None,
    )


class Calls:
    """The client half of one connection: numbers our requests and matches each reply to
    the request it answers. The daemon answers a connection's requests in order, so an
    error it could not give an id (a line it found too long) answers the oldest one."""

    __slots__ = ("_next_id", "_pending")

    def __init__(self) -> None:
        self._next_id = 0
        self._pending: dict[int, str] = {}  # id -> method, oldest first, until answered

    def request(self, method: str, params: Mapping[str, Any] | None = None) -> tuple[int, bytes]:
        """A new request: its id, and the line to send."""
        self._next_id += 1
        request_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
        if params is not None:
            message["params"] = dict(params)
        self._pending[request_id] = method
        return request_id, encode(message)

    def forget(self, request_id: int) -> None:
        """Stop waiting for a request's reply (its caller gave up): it is dropped if it comes."""
        self._pending.pop(request_id, None)

    @property
    def pending(self) -> int:
        """How many of our requests are not answered yet."""
        return len(self._pending)

    def receive(self, line: bytes) -> Response | Notice | None:
        """Sort one line from the peer: a Response to a request of ours, a Notice, or None
        (a blank line, or the reply to a request we forgot). WireError for anything else."""
        if not line.strip():
            return None
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            raise WireError(f"not JSON: {bytes(line[:80])!r}") from None
        if not isinstance(message, dict):
            raise WireError(f"not a JSON-RPC object: {bytes(line[:80])!r}")
        method = message.get("method")
        if isinstance(method, str):
            return Notice(method, message.get("params"))
        request_id = message.get("id")
        if request_id is None and "error" in message and self._pending:
            request_id = next(iter(self._pending))
        if type(request_id) is not int or self._pending.pop(request_id, None) is None:
            return None
        if "error" in message:
            return Response(request_id, error=remote_error(message["error"]))
        if "result" not in message:
            raise WireError(f"a reply with neither result nor error: {bytes(line[:80])!r}")
        return Response(request_id, result=message["result"])
