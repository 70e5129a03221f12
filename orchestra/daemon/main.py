"""The daemon's entry point: take the per-user locks, bind the socket, serve until told to stop.

One daemon per user, whatever its socket: an exclusive flock on `daemon.lock` in the
state dir (holding our pid and socket), since the state dir's files (the live runs a
restart must end, the known projects whose queues it fills) are one daemon's. Then one
per socket: an flock on `<socket>.lock` (holding our pid). Whoever holds that lock owns
the socket path, so a socket file left by a killed daemon is stale by definition and is
replaced; a live daemon's socket is never deleted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import gc
import logging
import os
import resource
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import trio

from orchestra.adapters import cgroups, config_files, logs, paths, procs
from orchestra.adapters.procs import Reaper
from orchestra.core.errors import EXIT_CONFLICT, ConfigError, OrchestraError
from orchestra.daemon import forward, server
from orchestra.daemon import notify as notifier
from orchestra.daemon.dispatch import Daemon
from orchestra.daemon.events import EventHub
from orchestra.daemon.registry import Registry
from orchestra.daemon.relay import Relay
from orchestra.daemon.runner import DAEMON_STOPPING
from orchestra.daemon.scheduler import Scheduler
from orchestra.daemon.supervisor import Supervisor

log = logging.getLogger("orchestra.daemon")

MAX_SOCKET_PATH = config_files.MAX_SOCKET_PATH


class AlreadyRunning(OrchestraError):
    kind = "already_running"
    exit_code = EXIT_CONFLICT  # a service manager must not restart us in a loop


@contextlib.contextmanager
def one_per_user(state: Path, socket: Path) -> Iterator[None]:
    """Hold the state dir's daemon lock, or raise AlreadyRunning naming the daemon that
    holds it and its socket: a second daemon of this user, on another socket, would take
    the first one's live runs for leftovers of a crash and end them."""

    def refused(holder: str) -> AlreadyRunning:
        pid, _, theirs = holder.partition(" ")
        if theirs == str(socket):
            return running_on(pid, socket)
        return AlreadyRunning(
            f"another daemon of yours (pid {pid or '?'}) serves {theirs or '?'}: one daemon"
            f" serves every project of a user; point ORCHESTRA_SOCKET at {theirs or 'it'},"
            " or stop that daemon first (`orchestra daemon stop` with its socket)",
            pid=pid,
            socket=theirs,
        )

    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _exclusive(state / "daemon.lock", f"{os.getpid()} {socket}\n", refused):
        yield


@contextlib.contextmanager
def single_instance(socket: Path) -> Iterator[None]:
    """Hold the per-user daemon lock, or raise AlreadyRunning naming the holder's pid."""
    with _exclusive(
        paths.lock_file(socket), f"{os.getpid()}\n", lambda pid: running_on(pid, socket)
    ):
        yield


def running_on(pid: str, socket: Path) -> AlreadyRunning:
    return AlreadyRunning(
        f"a daemon is already running (pid {pid or '?'}) on {socket}", pid=pid, socket=str(socket)
    )


@contextlib.contextmanager
def _exclusive(
    path: Path, content: str, refused: Callable[[str], AlreadyRunning]
) -> Iterator[None]:
    """An exclusive flock on `path` holding `content` while we run; `refused(what the
    holder wrote)` is raised when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise refused(os.pread(fd, 4096, 0).decode(errors="replace").strip()) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, content.encode(), 0)
        yield
    finally:
        os.close(fd)


async def bind(socket: Path) -> trio.socket.SocketType:
    if len(os.fsencode(socket)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"socket path {socket} is longer than {MAX_SOCKET_PATH} bytes; set ORCHESTRA_SOCKET"
            " to a shorter path"
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket)  # we hold the lock: any socket file here is stale
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is born 0600, no window where others could connect
    try:
        await sock.bind(os.fspath(socket))
    finally:
        os.umask(old)
    os.chmod(socket, 0o600)  # noqa: PTH101 - belt and braces after the umask
    sock.listen(128)
    return sock


def raise_descriptor_limit() -> int | None:
    """Raise the soft limit on open files to the hard one (1024 is a common soft limit, and
    every client connection, agent PTY and git pipe is a descriptor); return it, None if
    unlimited."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        with contextlib.suppress(ValueError, OSError):  # macOS refuses more than OPEN_MAX
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return None if soft == resource.RLIM_INFINITY else soft


async def serve(
    socket: Path,
    environ: Mapping[str, str],
    *,
    ready: trio.Event | None = None,
    umask: int | None = None,
    limits: server.Limits | None = None,
) -> int:
    """The nursery tree: reaper and signals at the root; runs in their own nursery,
    which is cancelled (and fully torn down) before the reaper stops. `umask`: the one
    the daemon was started with, for the agents and commands it runs; `limits`: what
    each client connection may hold (docs/api.md "Limits"). Returns the exit status: 1
    when the daemon stopped because its listening socket failed."""
    hub = EventHub()
    listener_failed = trio.Event()
    reaper = Reaper(umask=umask)
    procs.become_subreaper()
    sock = await bind(socket)
    listener = trio.SocketListener(sock)
    limits = limits or server.Limits()
    log.info(
        "listening on %s (at most %d connections)",
        socket,
        limits.connections,
        extra={"event": "daemon.started", "pid": os.getpid(), "connections": limits.connections},
    )
    try:
        async with trio.open_nursery() as root:
            await root.start(reaper.serve)
            relay = Relay(native=False if environ.get(forward.NO_NATIVE_ENV) else None)
            await root.start(relay.serve)  # outlives the runs: their teardown unwatches
            async with trio.open_nursery() as runs:
                supervisor = Supervisor(
                    nursery=runs,
                    reaper=reaper,
                    relay=relay,
                    state_file=paths.state_home(environ) / "runs.json",
                    seen_file=paths.state_home(environ) / "terminal.json",
                    cgroups=cgroups.Hierarchy.find(environ),
                )
                await supervisor.clean_leftovers()
                await supervisor.load_seen()
                engine_ready = trio.Event()
                scheduler = Scheduler(
                    supervisor=supervisor, socket=socket, engine_ready=engine_ready
                )
                await runs.start(scheduler.serve)
                registry = Registry(
                    state_file=paths.known_projects_file(environ),
                    hub=hub,
                    scheduler=scheduler,
                )
                await runs.start(notifier.serve, registry)  # [notify]: daemon/notify.py
                daemon = Daemon(socket=socket, registry=registry, hub=hub)
                root.start_soon(_signals, daemon)
                server_scope = trio.CancelScope()
                runs.start_soon(
                    _serve_until, server_scope, daemon, listener, listener_failed, limits
                )
                await registry.load_known()
                if ready is not None:
                    ready.set()
                root.start_soon(_warm_up, engine_ready)
                await daemon.shutdown.wait()
                server_scope.cancel()
                supervisor.stopping = True  # the queue waits for the next daemon
                for run in list(supervisor.runs.values()):
                    run.end_reason = DAEMON_STOPPING
                runs.cancel_scope.cancel()
            registry.close()
            root.cancel_scope.cancel()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(socket)
        log.info("stopped", extra={"event": "daemon.stopped", "pid": os.getpid()})
    return 1 if listener_failed.is_set() else 0


async def _warm_up(done: trio.Event) -> None:
    """Load the terminal engine now, in a thread: importing pyghostty and its first
    terminal (cffi builds its types lazily) take 0.2-0.5 s, which the first
    `task.start` would otherwise spend blocking the event loop. `done` is set after (starts
    wait for it: Scheduler.engine_ready), whether the engine loaded or not."""
    from orchestra.adapters.terminal import Terminal

    # What is loaded by now lives as long as the daemon: out of the collector's full
    # passes, which would otherwise walk it all (~50 ms with many clients connected), and
    # which the warm-up's imports set off while clients are served.
    gc.freeze()

    def warm() -> None:
        term = Terminal(80, 24)
        try:
            term.feed(b"\x1b[1mwarm\x1b[0m\r\n\x1b[6n")
            term.take_answers()
            term.snapshot()
            term.text()
        finally:
            term.close()

    try:
        with contextlib.suppress(Exception):  # no engine: the first start reports it
            # Abandoned if the daemon stops meanwhile: a stop need not wait for it.
            await trio.to_thread.run_sync(warm, abandon_on_cancel=True)
    finally:
        done.set()
    # And so does the engine. Not collected first: a full pass holds the loop 15-30 ms,
    # for the few cycles imports leave (frozen, they stay: some KiB).
    gc.freeze()


async def _serve_until(
    scope: trio.CancelScope,
    daemon: Daemon,
    listener: trio.SocketListener,
    failed: trio.Event,
    limits: server.Limits | None,
) -> None:
    with scope:
        await server.serve(daemon, listener, limits)
        failed.set()  # serve returns only when the listener failed (it stops the daemon)


async def _signals(daemon: Daemon) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            log.info("signal %s: stopping", signum, extra={"event": "daemon.signal"})
            daemon.shutdown.set()


def _private_state(environ: Mapping[str, str]) -> None:
    """The state dir 0700, and its logs from before the umask 0600."""
    state = paths.private_dir(paths.state_home(environ))
    paths.tighten(paths.daemon_log_file(environ))
    paths.tighten(state / "daemon.out")  # the client opens it for our output (spawn_daemon)


def run(environ: Mapping[str, str] = os.environ) -> int:
    """`orchestra daemon run`: serve in the foreground until stopped. Returns an exit code."""
    # Everything the daemon writes (logs, state, task files, the project's log) is the
    # user's alone: it holds prompts' summaries, setup output, session ids and paths.
    # What agents, setup and git write in worktrees is the user's code: their umask.
    user_umask = os.umask(0o077)
    # A worker thread busy in Python (parsing task files, a heavy line) gives the GIL back
    # to the event loop within this, not CPython's default 5 ms: every client waits on it.
    sys.setswitchinterval(0.001)
    try:
        layers = config_files.raw_layers(None, environ)
        effective = config_files.load(None, environ)
        socket = config_files.socket_path(layers, environ)
    except ConfigError as exc:
        print(f"orchestra: {exc.message}", file=sys.stderr)
        return exc.exit_code
    try:
        _private_state(environ)
    except OSError as exc:
        print(f"orchestra: cannot keep state there: {exc.strerror}", file=sys.stderr)
        return 1
    daemon_log = logs.file_logger(
        "orchestra.daemon", paths.daemon_log_file(environ), effective.config.log_level
    )
    try:
        paths.private_dir(socket.parent)
        with one_per_user(paths.state_home(environ), socket), single_instance(socket):
            print(
                f"orchestra daemon {os.getpid()} listening on {socket}", file=sys.stderr, flush=True
            )
            limits = server.Limits.from_config(effective.config.limits, raise_descriptor_limit())
            status = trio.run(
                functools.partial(serve, socket, environ, umask=user_umask, limits=limits)
            )
    except AlreadyRunning as exc:
        print(f"orchestra: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except OrchestraError as exc:
        print(f"orchestra: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EADDRINUSE):
            print(f"orchestra: cannot serve on {socket}: {exc.strerror}", file=sys.stderr)
            return 1
        raise
    finally:
        logs.close(daemon_log)
    return status
