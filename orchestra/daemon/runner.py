"""One task's run: worktree, setup, the agent in its PTY, its pumps and idle watchdog.

Theory of operation: `Supervisor.start` calls `nursery.start(run_task, run)`. A run
knows the daemon only through its `RunHost`: the relay, the reaper, the project's
paths and a snapshot of its config, and `RunEvents`, the callbacks by which it reports
what happened (the scheduler implements them, daemon/scheduler.py).
Before `task_status.started()` the run prepares the worktree, runs the setup
command and spawns the agent; any failure there propagates to the caller of
`start` (who marks the task failed and shows the error). After it, the run
lives in its own cancel scope inside the daemon's task nursery:

    run scope
    └── nursery: output pump (PTY -> viewers, terminal model, ring, activity clock)
                 watchdog (the run's activity, core/activity.py decides; the task's
                           running <-> idle follows it)
                 [typed prompt, for agents that take it as input]

The watchdog hears every signal of the agent's activity: its hooks (`task.report`,
`Run.report`), the bell and notifications the terminal model sees, the profile's screen
patterns (core/screen.py, checked on the model's screen at most every SCREEN_EVERY
seconds while output comes), and output and input times (silence).

The output pump's reading is done by the daemon's relay thread (daemon/relay.py
says why); the pump task owns it: cancelling the run stops the relay watching the
PTY before anything is closed. What the relay's thread shares with the event loop
(the terminal model, the viewers, the ring, the size) is guarded by `Run.lock`;
it hands the event loop what must happen there (waking a viewer's writer, the
watchdog, an attention event) through the relay's `soon`.

The run ends when the agent exits or the scope is cancelled (`stop`, daemon
shutdown). Either way the `finally` block, shielded, tears down every process of
the task (procs.terminate), closes the PTY fds, reaps, and reports the end
(`RunEvents.ended`, then the supervisor forgets the run and sets `done`). Cancelling
the scope is the only teardown path.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import attrs
import trio

from orchestra.adapters import hooks as agent_hooks
from orchestra.adapters import procs, worktrees
from orchestra.adapters.cgroups import Cgroup
from orchestra.adapters.faults import crash_point
from orchestra.adapters.git import Git
from orchestra.adapters.paths import ProjectPaths
from orchestra.adapters.pty import PtySession
from orchestra.adapters.terminal import Terminal
from orchestra.adapters.worktrees import Worktree
from orchestra.core import activity, screen
from orchestra.core.activity import Claim
from orchestra.core.agents import AgentProfile, Launch, launch
from orchestra.core.config import Config, profile_for
from orchestra.core.errors import InvalidTransition, OrchestraError
from orchestra.core.states import Status
from orchestra.core.tasks import Task
from orchestra.daemon import forward
from orchestra.daemon.coalesce import Coalesced
from orchestra.daemon.relay import Relay

ROWS, COLS = 30, 100  # until a client was ever seen (Supervisor.seen), or attaches
DAEMON_STOPPING = "daemon stopping"  # why every run ends when the daemon stops
DRAIN = 0.5  # seconds to read what an exited agent left in the PTY
SCREEN_EVERY = 0.5  # seconds between two checks of the screen for a waiting prompt
# A resumed agent that fails this soon did not find its session (docs/agents.md): the
# run says so and starts the agent afresh, rather than end or resume another session.
RESUME_GRACE = 5.0


class Viewer(Protocol):
    """An attached client as its run sees it (`attach.Viewer` is the one there is). The
    run owns this interface, so attach.py depends on the run and never the other way."""

    fd: int  # where the relay may write its output straight (see `reroute`)
    cropped: bool  # of another size than the PTY: shown pictures, not the stream
    attached_on_alt: bool
    resync: bool
    routed: bool

    def push(self, data: bytes) -> bool: ...
    def took(self, data: bytes, sent: int) -> bool: ...
    def direct(self) -> bool: ...
    def changed(self, now: float) -> bool: ...
    def wake(self) -> None: ...
    def end(self, info: dict[str, Any]) -> None: ...


class SetupFailed(OrchestraError):
    kind = "setup_failed"


# A process's start time in /proc is whole clock ticks, rounded down: one adopted a tick
# after its run began may read as born before it.
ADOPTION_SLACK = 0.05


class RunEvents(Protocol):
    """What a run tells the daemon, and the little it asks of it (the scheduler answers)."""

    async def load(self, task_id: int) -> Task:
        """The task as its file says now."""

    async def worktree_ready(self, task: Task, wt: Worktree) -> None:
        """The task's worktree is made (or reused): its base is a fact to keep."""

    async def session_started(self, task_id: int, session_id: str | None) -> None:
        """The agent was started with a new session id (to resume it later); None: the
        recorded one is no good (a resume did not find it)."""

    def status(self, task_id: int) -> Status | None:
        """The task's state, as its file says (last read or written)."""

    async def auto_move(self, task_id: int, expected: Status, to: Status, why: str) -> None:
        """The watchdog's move, made only if the task is still in `expected`."""

    def attention(self, run: Run) -> None:
        """The agent rang the bell or sent a notification."""

    async def activity_changed(self, run: Run, previous: activity.Shown) -> None:
        """The run's activity changed (after its dwell): `run.tracker.shown` is the new."""

    async def ended(self, run: Run) -> None:
        """The run is torn down (shielded: its outcome is recorded before `stop` returns)."""


@attrs.frozen
class RunHost:
    """Everything a run may use of the daemon: a narrow interface, not the project."""

    root: str
    paths: ProjectPaths
    socket: Path  # the daemon's, for agents to call back (ORCHESTRA_SOCKET)
    config: Config  # the project's, as it was when the run started
    log: logging.Logger  # the project's event log
    relay: Relay
    reaper: procs.Reaper
    tables: Coalesced[procs.ProcessTable]  # shared process-table scans for teardowns
    python: str  # runs the demo agent and other {python} profiles
    worktree_lock: trio.Lock  # held while a worktree of the project is made or checked
    events: RunEvents

    def git(self) -> Git:
        return Git(self.paths.root, runner=self.reaper.run)


@attrs.define
class Ring:
    """The last `limit` bytes of output (the scrollback kept for attach and `tail`)."""

    limit: int
    data: bytearray = attrs.field(factory=bytearray)
    total: int = 0  # bytes ever written: lets a reader tell what it missed

    def append(self, chunk: bytes) -> None:
        self.data += chunk
        self.total += len(chunk)
        excess = len(self.data) - self.limit
        if excess > 0:
            del self.data[:excess]

    def tail(self, n: int) -> bytes:
        return bytes(self.data[-n:]) if n > 0 else b""


@attrs.define(eq=False)
class Run:
    """A live agent of one task. Mutated from the daemon's trio thread, except what the
    relay's thread (daemon/relay.py) touches under `lock` (see the module
    docstring): the terminal, the viewers, the ring, the size."""

    host: RunHost
    task_id: int
    slug: str
    run_id: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    ring: Ring = attrs.field(factory=lambda: Ring(limit=4 << 20))
    session: PtySession | None = None
    worktree: Path | None = None
    sticky_idle: bool = False  # an explicit `idle` report: output alone does not undo it
    sticky_at: float | None = None  # when the watchdog saw the report (its input ends it)
    profile: AgentProfile | None = None  # the agent's, once known (hooks, screen patterns)
    screen_checked: float = -math.inf  # when the screen was last matched (SCREEN_EVERY)
    screen_due: bool = False  # the next output wakes the watchdog, for a screen check
    resume_failed: str | None = None  # why the recorded session could not be resumed
    session_id: str | None = None  # the agent's session as last recorded on the task
    # The activity clock: `clock()` times (monotonic; a test's own), set from any thread.
    clock: Callable[[], float] = time.monotonic
    last_output: float = attrs.field(
        default=attrs.Factory(lambda self: self.clock(), takes_self=True)
    )
    last_input: float = -math.inf
    # What the agent does (core/activity.py): changed in the event loop only.
    tracker: activity.Tracker = attrs.field(
        default=attrs.Factory(lambda self: activity.start(self.clock()), takes_self=True)
    )
    # The watchdog asks to be woken by output and input (core/idle.py: when not running).
    wake_on_activity: bool = False
    screen_watchers: int = 0  # clients waiting for the screen to change (daemon/screens.py)
    started_at: float = attrs.field(factory=time.time)
    exit_code: int | None = None
    end_reason: str = "agent exited"
    started: bool = False  # its agent was spawned (else its start failed: no end to record)
    done: trio.Event = attrs.field(factory=trio.Event)
    pumped: trio.Event = attrs.field(factory=trio.Event)  # the PTY reached EOF
    _changed: trio.Event = attrs.field(factory=trio.Event)
    viewers: list[Viewer] = attrs.field(factory=list)  # attached clients
    terminal: Terminal = attrs.field(factory=lambda: Terminal(COLS, ROWS))  # the agent's screen
    size: tuple[int, int] = (COLS, ROWS)
    attention: bool = False  # bell or notification since someone last looked
    notification: str | None = None  # the text of the last one (None: the bell)
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    closed: bool = False  # the terminal model is gone (under `lock`)
    pump_fd: int | None = None  # the PTY the relay reads for this run (set in its thread)
    # Its processes' cgroup (adapters/cgroups.py), None where the system gives none; and
    # whether its agent is in it: if not, orphans adopted since `since` are its own too.
    cgroup: Cgroup | None = None
    contained: bool = False
    since: float = attrs.field(factory=lambda: procs.boot_clock() - ADOPTION_SLACK)

    @property
    def pid(self) -> int | None:
        return None if self.session is None else self.session.pid

    def poke(self) -> None:
        """Wake whoever waits for the run (the watchdog, the typed prompt): activity it
        asked for, or its task's state moved."""
        self._changed.set()
        self._changed = trio.Event()

    async def changed(self) -> None:
        await self._changed.wait()

    def idle_for(self) -> float:
        return max(0.0, self.clock() - max(self.last_output, self.last_input))

    def report(self, claim: Claim) -> None:
        """A signal of the agent's activity (in the event loop): the watchdog weighs it."""
        self.tracker = activity.claim(self.tracker, claim)
        self.poke()

    def activity(self) -> dict[str, Any]:
        """The activity as clients see it (`run.activity`), `since` in Unix time."""
        shown = self.tracker.shown
        return {
            "activity": shown.activity,
            "reason": shown.reason,
            "since": round(time.time() - max(0.0, self.clock() - shown.since), 3),
            "source": shown.source,
        }

    async def send_input(self, data: bytes, *, stall: float = math.inf) -> int:
        """Keys from a person (or a tool): they count as activity (once written: a
        keystroke's round trip does not wait for the bookkeeping). Returns how much was
        written: less only if the agent read none of it for `stall` seconds."""
        sent = await self.send_raw(data, stall=stall)
        if sent:
            self.note_input()
        return sent

    def note_input(self) -> None:
        """Input reached the agent (from any thread)."""
        self.last_input = self.clock()
        self.attention = False
        if self.wake_on_activity:
            self.host.relay.soon(self.poke)

    async def send_raw(self, data: bytes, *, stall: float = math.inf) -> int:
        if self.session is None:
            raise InvalidTransition(f"task {self.task_id}-{self.slug} has no running agent")
        return await self.session.write(data, stall=stall)

    def resize(self, cols: int, rows: int) -> None:
        """Under `lock`."""
        if self.closed:
            return
        self.size = (cols, rows)
        self.terminal.resize(cols, rows)
        if self.session is not None:
            self.session.resize(rows, cols)

    def terminal_focus_events(self) -> bool:
        with self.lock:  # the program asked for focus in/out reports (and still runs)
            return not self.closed and self.terminal.mode(1004)

    def screen(self, lines: int | None, *, styled: bool = False) -> dict[str, Any]:
        with self.lock:
            found = self._screen(lines)
            if styled:
                found["ansi"] = self.terminal.styled_lines()
            return found

    def screen_version(self) -> int:
        """Changes whenever the screen may have (every output byte counts)."""
        return self.ring.total

    def _screen(self, lines: int | None) -> dict[str, Any]:
        term = self.terminal
        rows = term.text().split("\n") if lines is None else term.lines(lines)
        return {
            "version": self.screen_version(),
            "text": "\n".join(rows),
            "lines": rows,
            "cursor": list(term.cursor),
            "cols": self.size[0],
            "rows": self.size[1],
            "title": term.title,
            "alt_screen": term.alt_screen,
            "attention": self.attention,
            "viewers": len(self.viewers),
        }

    def describe(self) -> dict[str, Any]:
        with self.lock:
            title, output_bytes = self.terminal.title, self.ring.total
        return {
            "pid": self.pid,
            "idle_for": round(self.idle_for(), 3),
            "started_at": self.started_at,
            "output_bytes": output_bytes,
            "viewers": len(self.viewers),
            "attention": self.attention,
            "title": title,
            "activity": self.activity(),
            "resume_failed": self.resume_failed,
        }

    def take_output(
        self, data: bytes, written: Mapping[Viewer, int] | None = None
    ) -> Callable[[], None] | None:
        """In the relay's thread: what the agent wrote goes to the viewers (the query-free
        bytes, written at once: a keystroke's echo waits for nothing else), then to the
        model (its answers straight back to the PTY), the ring and the activity clock.
        `written`: the relay wrote `data` to these viewers already (its route, see
        `reroute`), and each took that many bytes of it. Returns what the event loop
        must then do, if anything."""
        with self.lock:
            terminal = self.terminal
            clean = terminal.strip(data)  # `data` itself, when the relay forwarded it
            late, due = [], []
            for viewer in self.viewers:
                if viewer.cropped:  # of another size: shown a picture instead (attach.py)
                    if viewer.changed(time.monotonic()):
                        due.append(viewer)
                    continue
                took = None if written is None else written.get(viewer)
                if viewer.push(clean) if took is None else viewer.took(clean, took):
                    late.append(viewer)
            was_alt = terminal.alt_screen
            terminal.apply(data)
            answers = terminal.take_answers()
            if answers and self.session is not None:
                # Never wait behind input the agent does not read.
                self.session.write_nowait(answers)
            if was_alt and not terminal.alt_screen:
                # Left the alternate screen: viewers that attached on it are shown the
                # primary screen again (their own shell is underneath).
                for viewer in self.viewers:
                    if viewer.attached_on_alt:
                        viewer.attached_on_alt = False
                        viewer.resync = True
                        late.append(viewer)
            first = self.ring.total == 0
            self.ring.append(data)
            self.last_output = self.clock()
            attention = terminal.attention and not self.attention
            if attention:
                self.notification = terminal.notification  # None: the bell
                terminal.clear_attention()
                self.attention = True
            if written is None or late:  # what the relay may forward next has changed
                self._reroute()
        # The watchdog waits for output only when it asked (or for a screen check), and so
        # does whoever watches the screen (daemon/screens.py); the typed prompt, for the first.
        poke = first or self.wake_on_activity or self.screen_due or self.screen_watchers > 0
        self.screen_due = False
        if not (late or due or attention or poke):
            return None
        return partial(self._after_output, late + due, attention, poke)

    def reroute(self) -> None:
        """In the relay's thread: see `_reroute`."""
        with self.lock:
            self._reroute()

    def _reroute(self) -> None:
        """(Under the lock.) The relay forwards the agent's output itself, before
        `take_output`, to the viewers that can take it straight (`Viewer.direct`), as
        long as the model's scanner would pass it unchanged (see Terminal.stop_bytes)."""
        fd = self.pump_fd
        if fd is None or self.closed:  # not read (yet, or any more): the fd may be another's
            return
        stop = self.terminal.stop_bytes
        straight = () if stop is None else tuple(v for v in self.viewers if v.direct())
        straight = straight[: forward.MAX_DSTS]
        for viewer in self.viewers:
            viewer.routed = viewer in straight
        dsts = tuple(v.fd for v in straight)
        self.host.relay.route_now(fd, dsts, stop or b"", straight)

    def _after_output(self, late: list[Viewer], attention: bool, poke: bool) -> None:
        for viewer in late:
            viewer.wake()
        if attention:
            reason = "notification" if self.notification else "bell"
            self.report(Claim("osc", "waiting", reason, self.clock()))
            self.host.events.attention(self)
        if poke:
            self.poke()


# What a shell sets for the command it runs, about where it runs: the daemon's own would
# tell the agent the daemon's directory (see `task_env`, `program_env`).
SHELL_VARS = ("PWD", "OLDPWD", "_")


def task_env(
    host: RunHost, run: Run, *, base: str, port: int, extra: dict[str, str]
) -> dict[str, str]:
    """The environment of the run's setup command and agent: the daemon's, less its own
    ORCHESTRA_* and shell variables, with the profile's, the task's, and PWD the worktree
    (they run there). `program_env` adds `_` for each program."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ORCHESTRA_") and k not in SHELL_VARS
    }
    env.update(extra)
    env.update(
        {
            "ORCHESTRA_TASK_ID": str(run.task_id),
            "ORCHESTRA_TASK_SLUG": run.slug,
            "ORCHESTRA_PROJECT": host.root,
            "ORCHESTRA_WORKTREE": str(run.worktree),
            "ORCHESTRA_BRANCH": f"orchestra/{run.task_id}-{run.slug}",
            "ORCHESTRA_BASE_BRANCH": base,
            "ORCHESTRA_SOCKET": str(host.socket),
            "ORCHESTRA_PORT": str(port),
            procs.RUN_ID_VAR: run.run_id,
            "TERM": "xterm-256color",
            "PWD": str(run.worktree),
        }
    )
    return env


def program_env(env: Mapping[str, str], argv: list[str]) -> dict[str, str]:
    """`env` to run `argv` with: `_` is the program's path, as a shell sets it."""
    found = shutil.which(argv[0], path=env.get("PATH")) if argv else None
    return {**env, "_": found or (argv[0] if argv else "")}


async def run_task(
    run: Run, *, resume: bool, task_status: trio.TaskStatus[Run] = trio.TASK_STATUS_IGNORED
) -> None:
    """The whole life of one run (see the module docstring)."""
    host = run.host
    config = host.config
    run.ring = Ring(limit=config.scrollback)
    task = await host.events.load(run.task_id)
    git = host.git()
    if run.cgroup is not None and not run.cgroup.create():
        run.cgroup = None
    try:
        with run.scope:
            async with host.worktree_lock:
                wt = await trio.to_thread.run_sync(
                    lambda: worktrees.prepare(
                        git,
                        host.paths,
                        task,
                        default_base=config.base_branch,
                        submodules=config.submodules,
                    )
                )
            run.worktree = wt.path
            _log_worktree(host.log, task, wt)
            await host.events.worktree_ready(task, wt)
            crash_point("start:worktree")
            port = config.port_base + ((task.id - 1) * config.port_block) % max(
                1, 65535 - config.port_base
            )
            profile = run.profile = profile_for(config, task.agent)

            def agent_launch(resume: bool) -> Launch:  # the agent's Launch, with our hooks
                spec = launch(
                    profile,
                    prompt=task.description,
                    session_id=task.session_id,
                    resume=resume,
                    python=host.python,
                    shell=os.environ.get("SHELL") or "/bin/sh",
                )
                return agent_hooks.install(
                    spec, profile.hooks, run_id=run.run_id, python=host.python
                )

            spec = agent_launch(resume)
            env = task_env(host, run, base=wt.base, port=port, extra=dict(spec.env))
            if config.setup:
                await _setup(
                    host, run, task.ref, config.setup, wt.path, program_env(env, config.setup)
                )
            if spec.session_id is not None and spec.session_id != task.session_id:
                await host.events.session_started(task.id, spec.session_id)
            run.session_id = spec.session_id or task.session_id
            await _spawn(run, spec, env)
            crash_point("start:spawned")
            host.log.info(
                f"task {task.ref}: agent started (pid {run.pid})",
                extra={
                    "event": "agent.started",
                    "task_id": task.id,
                    "slug": task.slug,
                    "pid": run.pid,
                    "argv": spec.argv[:1],
                    "resume": resume and bool(task.session_id),
                },
            )
            task_status.started(run)
            while True:
                began = trio.current_time()
                await _live(run, spec)
                if not _resume_refused(run, spec, trio.current_time() - began):
                    break
                spec = agent_launch(False)  # afresh: never another session than ours
                env = task_env(host, run, base=wt.base, port=port, extra=dict(spec.env))
                await _start_afresh(run, task, spec, env)
    finally:
        with trio.CancelScope(shield=True):
            await _teardown(run)


async def _spawn(run: Run, spec: Launch, env: dict[str, str]) -> None:
    """Spawn the agent in a new PTY (the run's `session`), in a worker thread: the fork and
    the child's way to its exec take 10-30 ms of a large daemon, which every client would
    wait. Shielded: once forked the agent is the run's, to be torn down with it; a stop
    meanwhile takes effect at the run's next checkpoint, once it has started (so the task
    ends stopped, as if the stop came a moment later)."""
    host = run.host
    assert run.worktree is not None
    cols, rows = run.size  # the last client's (Supervisor.start), else ROWS x COLS
    spawn = partial(
        PtySession.spawn,
        spec.argv,
        cwd=run.worktree,
        env=program_env(env, spec.argv),
        rows=rows,
        cols=cols,
        reaper=host.reaper,
        cgroup=run.cgroup,
    )
    with trio.CancelScope(shield=True):
        session = await trio.to_thread.run_sync(spawn)
    with run.lock:
        run.session = session
        if run.size != (cols, rows) and not run.closed:  # resized meanwhile
            session.resize(run.size[1], run.size[0])
    run.contained = run.cgroup is not None and run.cgroup.holds(session.pid)


async def _live(run: Run, spec: Launch) -> None:
    """The agent's life in its PTY: the pump, the watchdog, the typed prompt, until it
    exits (and its PTY is drained)."""
    host, config, session = run.host, run.host.config, run.session
    assert session is not None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_pump, run)
        nursery.start_soon(watchdog, run, config.idle_timeout, config.idle_dwell)
        if spec.typed_prompt:
            nursery.start_soon(_type_prompt, run, spec.typed_prompt)
        await session.exited.wait()
        run.exit_code = host.reaper.statuses.get(session.pid)
        with trio.move_on_after(DRAIN):  # a helper may hold the PTY open
            await run.pumped.wait()
        nursery.cancel_scope.cancel()


def _resume_refused(run: Run, spec: Launch, lived: float) -> bool:
    """A resume by a recorded session id failed at once: its session is not found (an
    agent that resumed, worked and then failed lived longer)."""
    return (
        spec.resumed
        and "{session_id}" in " ".join(run.profile.resume if run.profile else [])
        and lived < RESUME_GRACE
        and run.exit_code not in (None, 0)
        and not run.scope.cancel_called
    )


async def _start_afresh(run: Run, task: Task, spec: Launch, env: dict[str, str]) -> None:
    """The recorded session could not be resumed: say so (the log, `run.resume_failed`),
    forget it, and start the agent afresh in the same run, with the profile's command."""
    host, old = run.host, run.session
    assert old is not None
    run.resume_failed = (
        f"session {task.session_id} was not resumed (the agent exited {run.exit_code} within"
        f" {RESUME_GRACE:g} s); started afresh"
    )
    host.log.warning(
        f"task {task.ref}: {run.resume_failed}",
        extra={
            "event": "agent.resume_failed",
            "task_id": task.id,
            "slug": task.slug,
            "session_id": task.session_id,
            "exit_code": run.exit_code,
        },
    )
    with run.lock:
        old.close()
    host.reaper.forget(old.pid)
    await host.events.session_started(task.id, spec.session_id)
    run.session_id = spec.session_id
    run.exit_code, run.pumped = None, trio.Event()
    run.tracker = activity.start(run.clock())
    await _spawn(run, spec, env)
    host.log.info(
        f"task {task.ref}: agent started afresh (pid {run.pid})",
        extra={"event": "agent.started", "task_id": task.id, "slug": task.slug, "pid": run.pid},
    )


def _log_worktree(log: logging.Logger, task: Task, wt: Worktree) -> None:
    log.info(
        f"task {task.ref}: worktree {'created' if wt.created else 'reused'} at {wt.path}",
        extra={
            "event": "task.worktree",
            "task_id": task.id,
            "slug": task.slug,
            "path": str(wt.path),
            "branch": wt.branch,
            "base": wt.base,
            "base_sha": wt.base_sha,
            "worktree_created": wt.created,
            "copied": list(wt.copied),
            "not_copied": list(wt.not_copied),
        },
    )
    for why in wt.not_copied:
        log.warning(
            f"task {task.ref}: .worktreeinclude file not copied: {why}",
            extra={"event": "task.copy_refused", "task_id": task.id, "slug": task.slug},
        )


async def _setup(
    host: RunHost, run: Run, ref: str, argv: list[str], cwd: Path, env: dict[str, str]
) -> None:
    """Run the config's setup command in the new worktree; failure fails the start."""
    try:
        result = await trio.to_thread.run_sync(
            lambda: host.reaper.run(
                argv, cwd=cwd, env=env, merge_stderr=True, timeout=600, cgroup=run.cgroup
            )
        )
    except OSError as exc:  # not found, not executable: the start fails with the reason
        raise SetupFailed(
            f"setup command {argv[0]!r} cannot run: {exc.strerror or exc};"
            " fix `setup` in the project's config",
            exit_code=None,
            tail="",
        ) from None
    output = (result.stdout or b"").decode(errors="replace")
    host.log.info(
        f"task {ref}: setup exited {result.returncode}",
        extra={
            "event": "task.setup",
            "task_id": run.task_id,
            "slug": run.slug,
            "exit_code": result.returncode,
            "output": output[-16384:],
        },
    )
    if result.returncode != 0:
        tail = "\n".join(output.rstrip().splitlines()[-20:])
        raise SetupFailed(
            f"setup command {argv[0]!r} exited {result.returncode} in {cwd}:\n{tail}",
            exit_code=result.returncode,
            tail=tail,
        )


async def _pump(run: Run) -> None:
    """The relay reads the agent's PTY (`_on_output`) and this task owns that: it returns
    at EOF, and when cancelled it stops the relay watching before anything is closed."""
    session = run.session
    assert session is not None
    relay = run.host.relay
    eof = trio.Event()
    fd = session.fileno()
    failure: list[Exception] = []

    def failed(exc: Exception) -> None:
        failure.append(exc)
        relay.soon(eof.set)

    def start() -> None:
        relay.receive_now(fd, partial(_on_output, run, relay, fd, eof), failed=failed)
        run.pump_fd = fd
        run.reroute()

    await relay.call(start)
    try:
        await eof.wait()
    finally:
        await relay.call(partial(_stop_reading, run, relay, fd))  # not cancellable
    if failure:
        raise failure[0]  # the run fails, as if the pump had raised here
    run.pumped.set()


def _on_output(
    run: Run,
    relay: Relay,
    fd: int,
    eof: trio.Event,
    data: bytes,
    routed: tuple[Viewer, ...] | None,
    sent: tuple[int, ...] | None,
) -> None:
    """In the relay's thread: what the agent wrote (the relay read it; if `sent`, it wrote
    it to the `routed` viewers too). Always read, attached or not, so an agent never
    blocks on a full terminal buffer and its queries are answered at once."""
    assert run.session is not None
    if not data:
        _stop_reading(run, relay, fd)
        relay.soon(eof.set)
        return
    written = None if sent is None or routed is None else dict(zip(routed, sent, strict=True))
    then = run.take_output(data, written)
    if then is not None:
        relay.soon(then)
    if len(data) == forward.CHUNK:
        # A big write: what else is there already goes in one piece (one wakeup per
        # chunk would cap a fast agent at what a wakeup costs).
        more = run.session.read_now()
        if more:
            then = run.take_output(more)
            if then is not None:
                relay.soon(then)


def _stop_reading(run: Run, relay: Relay, fd: int) -> None:
    """In the relay's thread: the relay lets go of the run's PTY (it may be closed after)."""
    run.pump_fd = None
    relay.unwatch_now(fd)


async def _type_prompt(run: Run, text: str) -> None:
    """For agents that take the first prompt as typed input: wait for them to draw, type it."""
    with trio.move_on_after(10):
        while run.ring.total == 0:
            await run.changed()
    await trio.sleep(0.5)
    await run.send_input(text.encode() + b"\r")


async def watchdog(run: Run, idle_timeout: float, idle_dwell: float) -> None:
    """Keeps the run's activity (core/activity.py decides) and moves the task running <->
    idle as it follows, looking again at the deadline it gives, or when woken (a signal,
    activity it asked for, a move of the task)."""
    events = run.host.events
    dwell = min(activity.DWELL, idle_dwell)
    while True:
        now = run.clock()
        status = events.status(run.task_id)
        _sticky(run, now)
        wake = _check_screen(run, now)
        step = activity.look(
            run.tracker,
            now=now,
            status=status,
            last_output=run.last_output,
            last_input=run.last_input,
            idle_timeout=idle_timeout,
            idle_dwell=idle_dwell,
            dwell=dwell,
        )
        run.tracker = step.tracker
        if step.changed:
            await events.activity_changed(run, step.previous)
        shown = run.tracker.shown
        move = activity.lifecycle(status, shown, sticky=run.sticky_idle)
        if move is not None and status is not None:
            await events.auto_move(run.task_id, status, move, activity.why(shown, idle_timeout))
            continue
        run.wake_on_activity = step.wake_on_activity or run.sticky_idle
        # Not below 0: the deadline may have passed meanwhile (the activity change was
        # recorded, the loop was busy): a ValueError here failed the run.
        with trio.move_on_after(max(0.0, min(step.wake, wake) - run.clock())):
            await run.changed()


def _sticky(run: Run, now: float) -> None:
    """An explicit `idle` report is the agent's word that it waits (until the person's
    input after it, which also ends the report)."""
    if not run.sticky_idle:
        run.sticky_at = None
    elif run.sticky_at is None:
        run.sticky_at = now
        run.tracker = activity.claim(run.tracker, Claim("hook", "waiting", "reported", now))
    elif run.last_input > run.sticky_at:
        run.sticky_idle, run.sticky_at = False, None


def _check_screen(run: Run, now: float) -> float:
    """Match the profile's patterns on the screen if output came since the last check and
    SCREEN_EVERY has passed; return when to check again (inf: at the next output)."""
    if run.profile is None or run.last_output <= run.screen_checked:
        run.screen_due = True  # the next output wakes the watchdog
        return math.inf
    due = run.screen_checked + SCREEN_EVERY
    if now < due:
        return due
    with run.lock:
        text = None if run.closed else run.terminal.text()
    run.screen_checked = now
    reason = None if text is None else screen.waiting_reason(run.profile, text)
    if reason is None:
        run.tracker = activity.forget(run.tracker, "screen")
    else:
        run.tracker = activity.claim(run.tracker, Claim("screen", "waiting", reason, now))
    run.screen_due = True
    return math.inf


async def _teardown(run: Run) -> None:
    host = run.host
    run.tracker = activity.exited(run.tracker, run.clock())
    who = procs.Belonging(
        run.pid,
        run.run_id,
        cgroup=run.cgroup,
        since=None if run.contained else run.since,
        known=host.reaper.spawned,
    )
    report = await procs.terminate(who, grace=host.config.stop_grace, tables=host.tables)
    if run.session is not None:
        with run.lock:
            run.session.close()
        if run.exit_code is None:
            # Killed by us: wait for the reaper to collect it (it is our child).
            with trio.move_on_after(5):
                await run.session.exited.wait()
            run.exit_code = host.reaper.statuses.get(run.session.pid)
        host.reaper.forget(run.session.pid)
    with run.lock:
        for viewer in list(run.viewers):
            viewer.end(
                {
                    "reason": run.end_reason,
                    "exit_code": run.exit_code,
                    "alt_screen": run.terminal.alt_screen,
                }
            )
        run.terminal.close()
        run.closed = True
    agent_hooks.remove(run.run_id)  # its hook files (adapters/hooks.py)
    run.poke()  # whoever watches the screen (daemon/screens.py) hears the end
    host.log.info(
        f"task {run.task_id}-{run.slug}: {run.end_reason} (exit code {run.exit_code})",
        extra={
            "event": "agent.exited",
            "task_id": run.task_id,
            "slug": run.slug,
            "exit_code": run.exit_code,
            "reason": run.end_reason,
            "signalled": list(report.signalled),
            "killed": list(report.killed),
            "survivors": list(report.survivors),
        },
    )
