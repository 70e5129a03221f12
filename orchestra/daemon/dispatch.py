"""The method table and the one place exceptions become JSON-RPC errors."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
import trio

import orchestra
from orchestra.adapters.terminal import parse_color
from orchestra.core import api, jsonrpc
from orchestra.core.errors import Conflict, InvalidParams, OrchestraError
from orchestra.daemon import review
from orchestra.daemon.events import EventHub, Subscription
from orchestra.daemon.registry import Registry

if TYPE_CHECKING:
    from orchestra.daemon.project import Project
    from orchestra.daemon.scheduler import Scheduler

log = logging.getLogger("orchestra.daemon")

COSTLY: Final = 4  # costly calls at once, daemon-wide (docs/api.md "Limits")


class Peer(Protocol):
    """What a method may ask of the connection that called it."""

    def forward(self, sub: Subscription) -> None: ...

    def upgrade(self, run: Any, params: Any) -> None:
        """Once this call's reply is out, hand the rest of the connection to `run`'s attach
        stream (`pty.attach`)."""


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
    # Held by a call of a costly method from its start until its reply is sent (the
    # server takes it): however many clients call them, only this many run at once, as
    # many threads contend with the loop, and as many large replies wait to be read.
    costly: trio.CapacityLimiter = attrs.field(factory=lambda: trio.CapacityLimiter(COSTLY))


Handler = Callable[[Daemon, Peer, Any], Awaitable[Any]]  # called with the structured params


@attrs.frozen
class Method:
    """A JSON-RPC method: the class its params are structured into (unknown keys and bad
    types are refused there), and what runs it with them."""

    params: type[Any]
    run: Handler
    # Its reply ends JSON-RPC on the connection (pty.attach): only a call of its own may.
    upgrades: bool = False
    # It runs git, reads every task file or replies at length: under `Daemon.costly`.
    costly: bool = False


def _on_project(call: Callable[[Project, Any], Awaitable[Any]]) -> Handler:
    """A method on one project: find it (the params name it), then `call(project, params)`."""

    async def run(d: Daemon, _peer: Peer, p: Any) -> Any:
        return await call(await d.registry.get(p.project), p)

    return run


def _on_scheduler(call: Callable[[Scheduler, Project, Any], Awaitable[Any]]) -> Handler:
    """A method of the scheduler on one project (starting and stopping its tasks)."""

    async def run(d: Daemon, _peer: Peer, p: Any) -> Any:
        return await call(d.registry.scheduler, await d.registry.get(p.project), p)

    return run


async def dispatch(
    daemon: Daemon, peer: Peer, request: jsonrpc.Request, *, alone: bool = True
) -> jsonrpc.Reply | None:
    """Run one request; the exception-to-wire boundary. Notifications get no reply.
    `alone`: the request is a message of its own, not a member of a batch."""
    method = METHODS.get(request.method)
    try:
        if method is None:
            raise _NoMethod(request.method)
        if method.upgrades and (request.notification or not alone):
            if request.notification:
                return None  # an attach nobody hears the answer to is no attach: not run
            raise InvalidRequest(
                f"{request.method} must be sent on its own, not in a batch: its reply turns"
                " the connection into the terminal stream"
            )
        value = await method.run(daemon, peer, api.structure(request.params, method.params))
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


class InvalidRequest(OrchestraError):
    """A request the JSON-RPC envelope allows but this method cannot be sent as."""

    code = jsonrpc.INVALID_REQUEST
    kind = "invalid_request"


# -- daemon.* -------------------------------------------------------------------


async def _ping(d: Daemon, _peer: Peer, _p: api.NoParams) -> Any:
    return {"pong": True}


async def _status(d: Daemon, _peer: Peer, _p: api.NoParams) -> Any:
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
        "relay": "c" if d.registry.scheduler.supervisor.relay.native else "python",
        # Where each run's processes get a cgroup (None: the subreaper catches escapes).
        "cgroups": None if (h := d.registry.scheduler.supervisor.cgroups) is None else str(h.base),
    }


async def _shutdown(d: Daemon, peer: Peer, _p: api.NoParams) -> Any:
    d.stopping = peer
    return {"stopping": True, "pid": os.getpid()}


# -- pty.* ------------------------------------------------------------------------


# pty.attach's reply upgrades the connection to the terminal stream (daemon/attach.py):
# the method asks its peer to, and the server does once the reply is out.
ATTACH = "pty.attach"


async def _attach(d: Daemon, peer: Peer, p: api.AttachParams) -> Any:
    """Validate an attach and find its run; the connection is the run's once this replies."""
    palette = None if p.colors is None else _checked_colors(p.colors)
    project = await d.registry.get(p.project)
    run = await project.attachable(p.task)
    with run.lock:
        if p.colors is not None:
            run.terminal.set_colors(fg=p.colors.fg, bg=p.colors.bg, palette=palette)
        alt_screen = run.terminal.alt_screen
    # What a person's terminal is like, for agents started later (valid: the run took it).
    seen: dict[str, Any] = {} if p.read_only else {"size": (p.cols, p.rows)}
    if p.colors is not None:
        seen.update(fg=p.colors.fg, bg=p.colors.bg, palette=palette)
    await d.registry.scheduler.supervisor.remember(**seen)
    result = {
        "attached": True,
        "task": f"{run.task_id}-{run.slug}",
        "pid": run.pid,
        "read_only": p.read_only,
        "alt_screen": alt_screen,
        "framing": "kind(1) length(4, big-endian) payload",
    }
    peer.upgrade(run, p)
    return result


def _checked_colors(colors: api.Colors) -> dict[int, str]:
    """The palette by index, once every spec parses: a bad one is the client's error
    (-32602), refused before anything is looked up or changed."""
    specs: dict[str, str | None] = {"colors.fg": colors.fg, "colors.bg": colors.bg}
    palette: dict[int, str] = {}
    for key, spec in colors.palette.items():
        if not (len(key) <= 3 and key.isascii() and key.isdigit() and int(key) < 256):
            raise InvalidParams(
                f"invalid palette index {key!r:.40}: use 0 to 255", field="colors.palette"
            )
        specs[f"colors.palette.{key}"] = palette[int(key)] = spec
    for field, value in specs.items():
        if value is None:
            continue
        try:
            parse_color(value)
        except ValueError:
            raise InvalidParams(
                f"invalid colour {value!r:.60} for {field}: use rgb:RRRR/GGGG/BBBB or #RRGGBB",
                field=field,
            ) from None
    return palette


# -- task.report ------------------------------------------------------------------


async def _report(d: Daemon, _peer: Peer, p: api.ReportParams) -> Any:
    """A hook of a running agent: its run marker (ORCHESTRA_RUN_ID) names the run; one
    that names no live run of the task (its agent ended, or was started again) is stale."""
    runs = d.registry.scheduler.supervisor.runs.values()
    run = next((r for r in runs if r.run_id == p.run and p.task in (r.task_id, r.slug)), None)
    if run is None or (p.project is not None and p.project != run.host.root):
        raise Conflict(
            f"run {p.run!r:.40} is not a live run of task {p.task}: its agent ended or was"
            " started again, so its hooks are no longer heard",
            task=p.task,
        )
    project = await d.registry.get(run.host.root)
    return {"task": run.task_id, **await project.report(run, p)}


# -- events.* -------------------------------------------------------------------


async def _subscribe(d: Daemon, peer: Peer, p: api.SubscribeParams) -> Any:
    project = None if p.project is None else (await d.registry.get(p.project)).root
    peer.forward(d.hub.subscribe(project))
    return {"subscribed": True, "project": project}


# The method table. Methods on one project find it and call it (task.diff, task.merge and
# project.gc through daemon/review.py).
METHODS: Final[dict[str, Method]] = {
    "daemon.ping": Method(api.NoParams, _ping),
    "daemon.status": Method(api.NoParams, _status, costly=True),
    "daemon.shutdown": Method(api.NoParams, _shutdown),
    "task.new": Method(api.NewParams, _on_project(lambda project, p: project.new(p))),
    "task.list": Method(
        api.ListParams, _on_project(lambda project, p: project.list(p)), costly=True
    ),
    "task.get": Method(api.TaskParams, _on_project(lambda project, p: project.get(p.task))),
    "task.update": Method(api.UpdateParams, _on_project(lambda project, p: project.update(p))),
    "task.set_status": Method(
        api.SetStatusParams, _on_project(lambda project, p: project.set_status(p))
    ),
    "task.session_set": Method(
        api.SessionParams, _on_project(lambda project, p: project.session_set(p))
    ),
    "task.report": Method(api.ReportParams, _report),
    "task.path": Method(api.TaskParams, _on_project(lambda project, p: project.path(p.task))),
    "task.start": Method(
        api.TaskParams, _on_scheduler(lambda s, project, p: s.start(project, p.task))
    ),
    "task.stop": Method(
        api.TaskParams, _on_scheduler(lambda s, project, p: s.stop(project, p.task))
    ),
    "task.send_input": Method(
        api.InputParams,
        _on_project(lambda project, p: project.send_input(p.task, p.text, stall=p.timeout)),
    ),
    "task.tail": Method(
        api.TailParams,
        _on_project(lambda project, p: project.tail(p.task, p.bytes)),
        costly=True,
    ),
    "task.log": Method(
        api.LogParams, _on_project(lambda project, p: project.task_log(p.task, p.lines))
    ),
    "pty.screen": Method(api.ScreenParams, _on_project(lambda project, p: project.screen(p))),
    "task.diff": Method(api.DiffParams, _on_project(review.diff), costly=True),
    "task.merge": Method(api.MergeParams, _on_project(review.merge)),
    "project.gc": Method(api.GcParams, _on_project(review.gc)),
    "events.subscribe": Method(api.SubscribeParams, _subscribe),
    ATTACH: Method(api.AttachParams, _attach, upgrades=True),
}
