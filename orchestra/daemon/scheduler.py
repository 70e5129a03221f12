"""Who runs when: starting and stopping tasks, the queue, and the bookkeeping of run ends.

One scheduler serves every project of the daemon. `max_running` is a project's: its
running and idle tasks hold its slots (states.md). A start when the slots are full
queues a draft task; the queue is the project's queued task files, oldest first
(daemon/tasks.py derives it), so it survives any restart as it was.

The scheduler is a service (`serve`, started with `nursery.start`) fed by a memory
channel: a project is sent to it whenever one of its slots may have freed (a task left
running or idle, a run ended, the project was loaded). It then starts queued tasks while
slots are free, each start a task of its own: so nothing that frees a slot (a stop, a
report, a run's end) waits for the next task's worktree or setup.

Runs report to it (`_Events`, the runner's `RunEvents`): their end is recorded (the exit
code and why, the task stopped) inside the run's shielded teardown, before `stop` returns.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from orchestra.adapters import worktrees
from orchestra.adapters.faults import crash_point
from orchestra.adapters.store import Broken, Loaded
from orchestra.adapters.worktrees import Worktree
from orchestra.core import activity, api
from orchestra.core.config import Config
from orchestra.core.errors import (
    ConfigError,
    Conflict,
    InvalidTransition,
    NotFound,
    OrchestraError,
    TaskFileError,
)
from orchestra.core.states import ACTIVE, Status
from orchestra.core.tasks import Task
from orchestra.daemon.project import Outcome, Project
from orchestra.daemon.runner import Run, RunHost
from orchestra.daemon.supervisor import Supervisor
from orchestra.daemon.tasks import Change, Skip


def _set(event: trio.Event) -> trio.Event:
    event.set()
    return event


class _NoSlot(Exception):
    """No running slot is free."""


@attrs.define(eq=False)
class Scheduler:
    supervisor: Supervisor
    socket: Path  # the daemon's, given to agents (ORCHESTRA_SOCKET)
    # Set once the terminal engine is loaded (main._warm_up): a run's terminal model made
    # before would wait for cffi's lock, held by the loading thread, blocking the event
    # loop up to 0.3 s; a start waits for it here instead, and clients are served.
    engine_ready: trio.Event = attrs.field(factory=lambda: _set(trio.Event()))
    _send: trio.MemorySendChannel[Project] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[Project] = attrs.field(init=False)
    _pending: set[str] = attrs.field(factory=set, init=False)  # roots sent, not yet served
    _launches: trio.Nursery | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        # Unbounded, but never more than one entry per project (`_pending`).
        self._send, self._receive = trio.open_memory_channel(math.inf)

    # -- the service ------------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as launches:
            self._launches = launches
            task_status.started()
            async for project in self._receive:
                self._pending.discard(project.root)
                try:
                    await self._fill(project)
                except Exception:
                    project.log.exception(
                        "serving the queue failed", extra={"event": "task.queue_failed"}
                    )

    def watch(self, project: Project) -> None:
        """Serve `project`'s queue from now on: whenever its tasks may free a slot."""
        project.tasks.subscribe(lambda change: self._changed(project, change))
        self.wake(project)  # queued tasks whose slots the last daemon's end freed

    def _changed(self, project: Project, change: Change) -> None:
        if change.previous in ACTIVE and change.loaded.task.status not in ACTIVE:
            self.wake(project)

    def wake(self, project: Project) -> None:
        """Look at `project`'s queue soon (in the service's own task)."""
        if project.root not in self._pending:
            self._pending.add(project.root)
            self._send.send_nowait(project)

    # -- task.start, task.stop ----------------------------------------------------------

    async def start(self, project: Project, ref: api.TaskRef) -> dict[str, Any]:
        """Run the task's agent, or queue the task when max_running agents already run.
        A repository that cannot host it (no commit yet, its base gone) is refused first,
        with the task left as it was: it did not fail, it never ran."""
        config = project.config()
        task = (await project.tasks.load(ref)).task
        git = project.git()
        await trio.to_thread.run_sync(lambda: worktrees.choose_base(git, task, config.base_branch))

        def decide(loaded: Loaded) -> Status:
            task = loaded.task
            if project.run(task.id) is not None:
                raise Conflict(f"task {task.ref} already has a running agent")
            if self._occupied(project, project.tasks.store.scan()) >= config.max_running:
                if task.status is Status.DRAFT:
                    return Status.QUEUED
                raise InvalidTransition(
                    f"task {task.ref} cannot start: max_running ({config.max_running}) agents"
                    " already run; stop one or raise max_running",
                    current=str(task.status),
                )
            return Status.RUNNING

        loaded, previous = await project.tasks.transition(ref, decide, "start")
        if loaded.task.status is Status.RUNNING:
            crash_point("start:running")
            await self._launch(project, config, loaded.task, resume=previous is not Status.DRAFT)
        return await project.get(loaded.task.id)

    async def stop(self, project: Project, ref: api.TaskRef) -> dict[str, Any]:
        """Stop the agent (its whole process tree) and wait until it is gone. A running or
        idle task becomes stopped; a completed, failed or reviewed one keeps its state (its
        report stands: only its agent goes); a queued one goes back to draft."""
        loaded = await project.tasks.load(ref)
        run = project.run(loaded.task.id)
        if run is not None:
            await self.supervisor.stop(run, "stopped on request")
            return {**await project.get(loaded.task.id), "stopped_agent": True}

        def decide(current: Loaded) -> Status:
            status = current.task.status
            if status is Status.QUEUED:
                return Status.DRAFT
            if status not in ACTIVE:
                raise InvalidTransition(
                    f"task {current.task.ref} is {status} and has no running agent:"
                    " there is nothing to stop",
                    current=str(status),
                    target=str(Status.STOPPED),
                )
            return Status.STOPPED

        loaded, _ = await project.tasks.transition(ref, decide, "stop")
        return {**project.wire(loaded), "stopped_agent": False}

    async def _launch(self, project: Project, config: Config, task: Task, *, resume: bool) -> None:
        """Start the agent of a task that just became running; on failure the task fails."""
        host = RunHost(
            root=project.root,
            paths=project.paths,
            socket=self.socket,
            config=config,
            log=project.log,
            relay=self.supervisor.relay,
            reaper=self.supervisor.reaper,
            tables=self.supervisor.process_tables,
            python=self.supervisor.python,
            worktree_lock=self.supervisor.worktree_lock(project.root),
            events=_Events(project, self),
        )
        try:
            await self.engine_ready.wait()
            await self.supervisor.start(host, task.id, task.slug, resume=resume)
        except Exception as exc:
            message = exc.message if isinstance(exc, OrchestraError) else repr(exc)
            await project.tasks.transition(task.id, Status.FAILED, f"start failed: {message}")
            raise

    # -- the queue ----------------------------------------------------------------------

    def _occupied(self, project: Project, items: Sequence[Loaded | Broken]) -> int:
        """Running slots in use: tasks running or idle. The agent of a completed, failed or
        reviewed task may live on (until stopped or merged) but holds none; a live agent
        whose task file cannot be read holds one (its state is unknown)."""
        states = {i.task.id: i.task.status for i in items if isinstance(i, Loaded)}
        ids = {task_id for task_id, status in states.items() if status in ACTIVE}
        ids |= {
            run.task_id for run in self.supervisor.of(project.root) if run.task_id not in states
        }
        return len(ids)

    async def _fill(self, project: Project) -> None:
        """Start queued tasks, oldest first, while slots are free (not while the daemon
        stops: its runs end, and the queue is the next daemon's)."""
        if self.supervisor.stopping:
            return
        try:
            config = project.config()
        except ConfigError:
            return
        await project.tasks.scan()  # the queue as the files say now
        for task_id in project.tasks.queue():

            def take_slot(loaded: Loaded) -> Status:
                # Checked again under the lock: a racing start may have moved first.
                if loaded.task.status is not Status.QUEUED:
                    raise Skip
                if self._occupied(project, project.tasks.store.scan()) >= config.max_running:
                    raise _NoSlot
                return Status.RUNNING

            try:
                loaded, _ = await project.tasks.transition(
                    task_id, take_slot, "a running slot freed"
                )
            except _NoSlot:
                return
            except (Skip, NotFound, TaskFileError):
                continue
            assert self._launches is not None
            self._launches.start_soon(self._launch_queued, project, config, loaded.task)

    async def _launch_queued(self, project: Project, config: Config, task: Task) -> None:
        try:
            await self._launch(project, config, task, resume=False)
        except Exception as exc:  # the task is failed and the error logged: go on
            project.log.warning(
                f"task {task.ref}: queued start failed: {exc}",
                extra={"event": "task.start_failed", "task_id": task.id},
            )


@attrs.define(eq=False)
class _Events:
    """A run's reports (runner.RunEvents), applied to its project's tasks."""

    project: Project
    scheduler: Scheduler

    async def load(self, task_id: int) -> Task:
        return (await self.project.tasks.load(task_id)).task

    async def worktree_ready(self, task: Task, wt: Worktree) -> None:
        try:
            await self.project.tasks.record_base(task.id, wt.base, wt.base_sha)
        except OrchestraError as exc:  # the file broke meanwhile: the run goes on
            self.project.log.warning(
                f"task {task.ref}: its base not recorded: {exc.message}",
                extra={"event": "task.base_failed", "task_id": task.id},
            )

    async def session_started(self, task_id: int, session_id: str | None) -> None:
        await self.project.session_set(
            api.SessionParams(project=self.project.root, task=task_id, session_id=session_id)
        )

    def status(self, task_id: int) -> Status | None:
        return self.project.tasks.status(task_id)

    async def auto_move(self, task_id: int, expected: Status, to: Status, why: str) -> None:
        """A move the daemon makes by itself (the idle watchdog): skipped if the task
        moved on meanwhile (its file is then read again, so the watchdog sees where)."""

        def decide(loaded: Loaded) -> Status:
            if loaded.task.status is not expected:
                raise Skip
            return to

        tasks = self.project.tasks
        try:
            await tasks.transition(task_id, decide, why)
            return
        except (Skip, InvalidTransition, NotFound, TaskFileError):
            pass
        with contextlib.suppress(NotFound, TaskFileError):
            await tasks.load(task_id)
        if tasks.status(task_id) is expected:
            await trio.sleep(1)  # a person broke or removed the file: retry, not in a loop

    def attention(self, run: Run) -> None:
        self.project.attention(run)

    async def activity_changed(self, run: Run, previous: activity.Shown) -> None:
        await self.project.activity_changed(run, previous)

    async def ended(self, run: Run) -> None:
        """The agent is gone: record how, and a running or idle task becomes stopped."""
        if not run.started:
            return  # its start failed: start() reports the error and fails the task
        self.project.outcomes[run.task_id] = Outcome(run.exit_code, run.end_reason)

        def decide(loaded: Loaded) -> Status:
            if loaded.task.status not in ACTIVE:
                raise Skip  # it reached completed/failed/...: keep that
            return Status.STOPPED

        with contextlib.suppress(Skip, NotFound, TaskFileError):
            await self.project.tasks.transition(
                run.task_id,
                decide,
                f"{run.end_reason}, exit code {run.exit_code}",
                exit_code=run.exit_code,
            )
        self.scheduler.wake(self.project)  # a run whose file is broken held a slot too
