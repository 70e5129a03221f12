"""The method table and the one place exceptions become JSON-RPC errors."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

import orchestra
from orchestra.core import api, jsonrpc
from orchestra.core.errors import OrchestraError
from orchestra.daemon import review
from orchestra.daemon.events import EventHub, Subscription
from orchestra.daemon.registry import Registry

log = logging.getLogger("orchestra.daemon")


class Peer(Protocol):
    """What a method may ask of the connection that called it."""

    def forward(self, sub: Subscription) -> None: ...


@attrs.define
class Daemon:
    socket: Path
    registry: Registry
    hub: EventHub
    shutdown: trio.Event = attrs.field(factory=trio.Event)
    # The connection that asked for daemon.shutdown: it stops the server once its reply is
    # out (only it: another connection finishing a call must not cut that reply off).
    stopping: object | None = None
    started: float = attrs.field(factory=time.monotonic)
    started_at: float = attrs.field(factory=time.time)


Handler = Callable[[Daemon, Peer, Any], Awaitable[Any]]
METHODS: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        METHODS[name] = fn
        return fn

    return register


async def dispatch(daemon: Daemon, peer: Peer, request: jsonrpc.Request) -> jsonrpc.Reply | None:
    """Run one request; the exception-to-wire boundary. Notifications get no reply."""
    handler = METHODS.get(request.method)
    try:
        if handler is None:
            raise _NoMethod(request.method)
        value = await handler(daemon, peer, request.params)
        reply = jsonrpc.result(request.id, value)
    except _NoMethod:
        reply = jsonrpc.error(
            request.id,
            jsonrpc.METHOD_NOT_FOUND,
            f"Method not found: {request.method!r}",
            {"methods": sorted(METHODS)},
        )
    except OrchestraError as exc:
        wire = exc.to_wire()
        reply = jsonrpc.error(request.id, wire["code"], wire["message"], wire["data"])
    except Exception:
        log.exception("internal error in %s", request.method, extra={"event": "rpc.internal_error"})
        reply = jsonrpc.error(
            request.id, jsonrpc.INTERNAL_ERROR, "Internal error (see the daemon log)"
        )
    return None if request.notification else reply


class _NoMethod(Exception):
    pass


# -- daemon.* -------------------------------------------------------------------


@method("daemon.ping")
async def _ping(d: Daemon, _peer: Peer, params: Any) -> Any:
    api.structure(params, api.NoParams)
    return {"pong": True}


@method("daemon.status")
async def _status(d: Daemon, _peer: Peer, params: Any) -> Any:
    api.structure(params, api.NoParams)
    projects = [
        {"root": root, "tasks": await project.counts()}
        for root, project in sorted(d.registry.projects.items())
    ]
    return {
        "pid": os.getpid(),
        "version": orchestra.__version__,
        "uptime": round(time.monotonic() - d.started, 3),
        "started_at": d.started_at,
        "socket": str(d.socket),
        "projects": projects,
        "subscribers": len(d.hub),
    }


@method("daemon.shutdown")
async def _shutdown(d: Daemon, peer: Peer, params: Any) -> Any:
    api.structure(params, api.NoParams)
    d.stopping = peer
    return {"stopping": True, "pid": os.getpid()}


# -- task.* ---------------------------------------------------------------------


@method("task.new")
async def _new(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.NewParams)
    return await (await d.registry.get(p.project)).new(p)


@method("task.list")
async def _list(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.ListParams)
    return await (await d.registry.get(p.project)).list(p)


@method("task.get")
async def _get(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.TaskParams)
    return await (await d.registry.get(p.project)).get(p.task)


@method("task.update")
async def _update(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.UpdateParams)
    return await (await d.registry.get(p.project)).update(p)


@method("task.set_status")
async def _set_status(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.SetStatusParams)
    return await (await d.registry.get(p.project)).set_status(p)


@method("task.session_set")
async def _session_set(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.SessionParams)
    return await (await d.registry.get(p.project)).session_set(p)


@method("task.path")
async def _path(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.TaskParams)
    return await (await d.registry.get(p.project)).path(p.task)


@method("task.start")
async def _start(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.TaskParams)
    return await (await d.registry.get(p.project)).start(p.task)


@method("task.stop")
async def _stop(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.TaskParams)
    return await (await d.registry.get(p.project)).stop(p.task)


@method("task.send_input")
async def _send_input(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.InputParams)
    return await (await d.registry.get(p.project)).send_input(p.task, p.text)


@method("task.tail")
async def _tail(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.TailParams)
    return await (await d.registry.get(p.project)).tail(p.task, p.bytes)


# -- pty.* ------------------------------------------------------------------------


@method("pty.screen")
async def _screen(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.ScreenParams)
    return await (await d.registry.get(p.project)).screen(p.task, p.lines)


# pty.attach is answered by the server itself: its reply upgrades the connection to the
# framed terminal stream (orchestra/daemon/attach.py), see server.Connection._attach.
ATTACH = "pty.attach"


async def prepare_attach(d: Daemon, params: Any) -> tuple[Any, Any]:
    """Validate an attach and find its run: (reply result, run, params)."""
    p = api.structure(params, api.AttachParams)
    project = await d.registry.get(p.project)
    run = await project.attachable(p.task)
    with run.lock:
        if p.colors is not None:
            palette = {
                int(k): v for k, v in p.colors.palette.items() if k.isdigit() and int(k) < 256
            }
            run.terminal.set_colors(fg=p.colors.fg, bg=p.colors.bg, palette=palette)
        alt_screen = run.terminal.alt_screen
    result = {
        "attached": True,
        "task": f"{run.task_id}-{run.slug}",
        "pid": run.pid,
        "read_only": p.read_only,
        "alt_screen": alt_screen,
        "framing": "kind(1) length(4, big-endian) payload",
    }
    return result, (run, p)


# -- review: task.diff, task.merge, project.gc (orchestra/daemon/review.py) -------


@method("task.diff")
async def _diff(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.DiffParams)
    return await review.diff(await d.registry.get(p.project), p)


@method("task.merge")
async def _merge(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.MergeParams)
    return await review.merge(await d.registry.get(p.project), p)


@method("project.gc")
async def _gc(d: Daemon, _peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.GcParams)
    return await review.gc(await d.registry.get(p.project), p)


# -- events.* -------------------------------------------------------------------


@method("events.subscribe")
async def _subscribe(d: Daemon, peer: Peer, params: Any) -> Any:
    p = api.structure(params, api.SubscribeParams)
    project = None if p.project is None else (await d.registry.get(p.project)).root
    peer.forward(d.hub.subscribe(project))
    return {"subscribed": True, "project": project}
