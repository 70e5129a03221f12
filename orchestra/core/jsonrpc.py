"""JSON-RPC 2.0 codec, sans I/O: both halves, the daemon's and the clients'.

Framing is NDJSON: one JSON value per line (`core/ndjson.py` splits the lines). The
daemon only answers: a message that is a *response* (no "method") is ignored,
never answered, so two peers can never bounce errors at each other forever.

The server half (what the daemon's connection loop does for every line):

    incoming = parse(line)
    replies = [await dispatch(r) if isinstance(r, Request) else r.reply for r in incoming.items]
    data = incoming.assemble(replies)   # bytes to send, or None

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
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from orchestra.core.errors import RemoteError

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

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


def parse(data: bytes) -> Incoming:
    """Decode one framed message. Never raises: bad input becomes a ready error reply."""
    try:
        # Decode strictly first: json.loads(bytes) would also take UTF-16/32 and encoded surrogates.
        message = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return Incoming(
            items=(Invalid(reply=error(None, PARSE_ERROR, f"Parse error: {reason}")),), batch=False
        )
    if isinstance(message, list):
        if not message:
            reply = error(None, INVALID_REQUEST, "Invalid Request: empty batch")
            return Incoming(items=(Invalid(reply=reply),), batch=False)
        return Incoming(items=tuple(_item(m) for m in message), batch=True)
    return Incoming(items=(_item(message),), batch=False)


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
