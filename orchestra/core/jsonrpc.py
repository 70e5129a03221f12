"""JSON-RPC 2.0 codec, sans I/O: one framed message in, requests out; replies in, bytes out.

Framing is NDJSON: one JSON value per line (the transport splits lines). The
daemon only answers: a message that is a *response* (no "method") is ignored,
never answered, so two peers can never bounce errors at each other forever.

Usage (what the daemon's connection loop does for every line):

    incoming = parse(line)
    replies = [await dispatch(r) if isinstance(r, Request) else r.reply for r in incoming.items]
    data = incoming.assemble(replies)   # bytes to send, or None
"""

from __future__ import annotations

import json
from typing import Any, Final

import attrs

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

Id = str | int | None
Reply = dict[str, Any]


@attrs.frozen(kw_only=True)
class Request:
    """A well-formed call. `notification` requests get no reply."""

    method: str
    params: dict[str, Any] | list[Any] | None
    id: Id = None
    notification: bool = False


@attrs.frozen(kw_only=True)
class Invalid:
    """A batch member or message that is not a valid request: its reply is ready."""

    reply: Reply | None


@attrs.frozen(kw_only=True)
class Incoming:
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
