"""One task's run: worktree, setup, the agent in its PTY, its pumps and idle watchdog.

Theory of operation: `Supervisor.start` calls `nursery.start(run_task, run)`.
Before `task_status.started()` the run prepares the worktree, runs the setup
command and spawns the agent; any failure there propagates to the caller of
`start` (who marks the task failed and shows the error). After it, the run
lives in its own cancel scope inside the daemon's task nursery:

    run scope
    └── nursery: output pump (PTY -> viewers, terminal model, ring, activity clock)
                 idle watchdog (running <-> idle)
                 [typed prompt, for agents that take it as input]

The output pump's reading is done by the daemon's relay thread (daemon/relay.py
says why); the pump task owns it: cancelling the run stops the relay watching the
PTY before anything is closed. What the relay's thread shares with the event loop
(the terminal model, the viewers, the ring, the size) is guarded by `Run.lock`;
it hands the event loop what must happen there (waking a viewer's writer, the
watchdog, an attention event) through the relay's `soon`.

The run ends when the agent exits or the scope is cancelled (`stop`, daemon
shutdown). Either way the `finally` block, shielded, tears down every process of
the task (procs.terminate), closes the PTY fds, reaps, and records the outcome.
Cancelling the scope is the only teardown path.
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from orchestra.adapters import procs, worktrees
from orchestra.adapters.cgroups import Cgroup
from orchestra.adapters.faults import crash_point
from orchestra.adapters.pty import PtySession
from orchestra.adapters.terminal import Terminal
from orchestra.core.errors import InvalidTransition, OrchestraError
from orchestra.core.states import Status
from orchestra.daemon import forward
from orchestra.daemon.relay import Relay

if TYPE_CHECKING:
    from orchestra.daemon.attach import Viewer
    from orchestra.daemon.project import Project

ROWS, COLS = 30, 100  # until a client was ever seen (Supervisor.seen), or attaches
DAEMON_STOPPING = "daemon stopping"  # why every run ends when the daemon stops
DRAIN = 0.5  # seconds to read what an exited agent left in the PTY


class SetupFailed(OrchestraError):
    kind = "setup_failed"


# A process's start time in /proc is whole clock ticks, rounded down: one adopted a tick
# after its run began may read as born before it.
ADOPTION_SLACK = 0.05


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

    project: Project
    task_id: int
    slug: str
    run_id: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    ring: Ring = attrs.field(factory=lambda: Ring(limit=4 << 20))
    session: PtySession | None = None
    worktree: Path | None = None
    status: Status = Status.RUNNING  # mirrors the task file while the run lives
    sticky_idle: bool = False  # an explicit `idle` report: output alone does not undo it
    last_output: float = attrs.field(factory=time.monotonic)  # monotonic: the relay sets it
    last_input: float = -math.inf
    started_at: float = attrs.field(factory=time.time)
    exit_code: int | None = None
    end_reason: str = "agent exited"
    done: trio.Event = attrs.field(factory=trio.Event)
    pumped: trio.Event = attrs.field(factory=trio.Event)  # the PTY reached EOF
    _changed: trio.Event = attrs.field(factory=trio.Event)
    _status_changed: trio.Event = attrs.field(factory=trio.Event)
    viewers: list[Viewer] = attrs.field(factory=list)  # attached clients
    terminal: Terminal = attrs.field(factory=lambda: Terminal(COLS, ROWS))  # the agent's screen
    size: tuple[int, int] = (COLS, ROWS)
    attention: bool = False  # bell or notification since someone last looked
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
        """Wake whoever waits for activity (the watchdog)."""
        self._changed.set()
        self._changed = trio.Event()

    async def changed(self) -> None:
        await self._changed.wait()

    def poke_status(self) -> None:
        """Wake whoever waits for a change of the task's state (a move or a report)."""
        self._status_changed.set()
        self._status_changed = trio.Event()

    async def status_changed(self) -> None:
        await self._status_changed.wait()

    def idle_for(self) -> float:
        return max(0.0, time.monotonic() - max(self.last_output, self.last_input))

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
        self.last_input = time.monotonic()
        self.attention = False
        if self.status is not Status.RUNNING:  # only then does the watchdog wait for it
            self.project.supervisor.relay.soon(self.poke)

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

    def screen(self, lines: int | None) -> dict[str, Any]:
        with self.lock:
            return self._screen(lines)

    def _screen(self, lines: int | None) -> dict[str, Any]:
        term = self.terminal
        rows = term.text().split("\n") if lines is None else term.lines(lines)
        return {
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
            self.last_output = time.monotonic()
            attention = terminal.attention and not self.attention
            if attention:
                terminal.clear_attention()
                self.attention = True
            if written is None or late:  # what the relay may forward next has changed
                self._reroute()
        # The watchdog waits for output only when not running; the typed prompt, for the first.
        poke = first or self.status is not Status.RUNNING
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
        self.project.supervisor.relay.route_now(fd, dsts, stop or b"", straight)

    def _after_output(self, late: list[Viewer], attention: bool, poke: bool) -> None:
        for viewer in late:
            viewer.wake()
        if attention:
            self.project.attention(self)
        if poke:
            self.poke()


# What a shell sets for the command it runs, about where it runs: the daemon's own would
# tell the agent the daemon's directory (see `task_env`, `program_env`).
SHELL_VARS = ("PWD", "OLDPWD", "_")


def task_env(
    project: Project, run: Run, *, base: str, port: int, extra: dict[str, str]
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
            "ORCHESTRA_PROJECT": project.root,
            "ORCHESTRA_WORKTREE": str(run.worktree),
            "ORCHESTRA_BRANCH": f"orchestra/{run.task_id}-{run.slug}",
            "ORCHESTRA_BASE_BRANCH": base,
            "ORCHESTRA_SOCKET": str(project.socket),
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
    project = run.project
    supervisor = project.supervisor
    config = project.config()
    run.ring = Ring(limit=config.scrollback)
    loaded = await project.load(run.task_id)
    task = loaded.task
    git = project.git()
    if run.cgroup is not None and not run.cgroup.create():
        run.cgroup = None
    try:
        with run.scope:
            async with supervisor.worktree_lock(project):
                wt = await trio.to_thread.run_sync(
                    lambda: worktrees.prepare(
                        git,
                        project.paths,
                        task,
                        default_base=config.base_branch,
                        submodules=config.submodules,
                    )
                )
            run.worktree = wt.path
            project.note_worktree(task, wt)
            crash_point("start:worktree")
            port = config.port_base + ((task.id - 1) * config.port_block) % max(
                1, 65535 - config.port_base
            )
            from orchestra.core.agents import launch, profile_for

            profile = profile_for(config, task.agent)
            spec = launch(
                profile,
                prompt=task.description,
                session_id=task.session_id,
                resume=resume,
                python=supervisor.python,
                shell=os.environ.get("SHELL") or "/bin/sh",
            )
            env = task_env(project, run, base=wt.base, port=port, extra=dict(spec.env))
            if config.setup:
                await _setup(
                    project, run, task.ref, config.setup, wt.path, program_env(env, config.setup)
                )
            if spec.session_id is not None and spec.session_id != task.session_id:
                await project.record_session(task.id, spec.session_id)
            run.session = PtySession.spawn(
                spec.argv,
                cwd=wt.path,
                env=program_env(env, spec.argv),
                rows=run.size[1],  # the last client's (Supervisor.start), else ROWS x COLS
                cols=run.size[0],
                reaper=supervisor.reaper,
                cgroup=run.cgroup,
            )
            run.contained = run.cgroup is not None and run.cgroup.holds(run.session.pid)
            crash_point("start:spawned")
            project.log.info(
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
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump, run)
                nursery.start_soon(_watchdog, run, config.idle_timeout, config.idle_dwell)
                if spec.typed_prompt:
                    nursery.start_soon(_type_prompt, run, spec.typed_prompt)
                await run.session.exited.wait()
                run.exit_code = supervisor.reaper.statuses.get(run.session.pid)
                with trio.move_on_after(DRAIN):  # a helper may hold the PTY open
                    await run.pumped.wait()
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await _teardown(run)


async def _setup(
    project: Project, run: Run, ref: str, argv: list[str], cwd: Path, env: dict[str, str]
) -> None:
    """Run the config's setup command in the new worktree; failure fails the start."""
    try:
        result = await trio.to_thread.run_sync(
            lambda: project.supervisor.reaper.run(
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
    project.log.info(
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
    relay = run.project.supervisor.relay
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


async def _watchdog(run: Run, idle_timeout: float, idle_dwell: float) -> None:
    """running -> idle after `idle_timeout` without output; idle -> running on input, or on
    output that lasts `idle_dwell` (one blip does not count). An explicit `idle` report is
    undone only by input."""
    project = run.project
    while True:
        if run.status is Status.RUNNING:
            # Sleep to the deadline and look again: no wakeup per chunk of output.
            left = max(run.last_output, run.last_input) + idle_timeout - time.monotonic()
            if left <= 0:
                await project.auto_move(run, Status.IDLE, f"no output for {idle_timeout:g} s")
                continue
            with trio.move_on_after(left):
                await run.status_changed()
        elif run.status is Status.IDLE:
            mark_in, mark_out = run.last_input, run.last_output
            await run.changed()
            if run.last_input > mark_in:
                run.sticky_idle = False  # input undoes an `idle` report: the timer rules again
                await project.auto_move(run, Status.RUNNING, "input")
            elif run.last_output > mark_out and not run.sticky_idle:
                first = run.last_output
                with trio.move_on_after(idle_dwell):  # input during the dwell wins at once
                    while run.last_input <= mark_in:
                        await run.changed()
                if run.last_input > mark_in:
                    run.sticky_idle = False
                    await project.auto_move(run, Status.RUNNING, "input")
                elif run.last_output > first and run.status is Status.IDLE:
                    await project.auto_move(run, Status.RUNNING, "output again")
        else:
            await run.changed()


async def _teardown(run: Run) -> None:
    project = run.project
    supervisor = project.supervisor
    who = procs.Belonging(
        run.pid,
        run.run_id,
        cgroup=run.cgroup,
        since=None if run.contained else run.since,
        known=supervisor.reaper.spawned,
    )
    report = await procs.terminate(
        who,
        grace=project.config_or_default().stop_grace,
        tables=supervisor.process_tables,
    )
    if run.session is not None:
        with run.lock:
            run.session.close()
        if run.exit_code is None:
            # Killed by us: wait for the reaper to collect it (it is our child).
            with trio.move_on_after(5):
                await run.session.exited.wait()
            run.exit_code = supervisor.reaper.statuses.get(run.session.pid)
        supervisor.reaper.forget(run.session.pid)
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
    project.log.info(
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
    await supervisor.finished(run)
