"""The daemon's live runs: one child of the task nursery per running agent.

    root nursery
    └── task nursery (Supervisor.nursery)
        └── one run per running task (runner.run_task), each in its own cancel scope

Starting is `nursery.start(run_task)`: it returns once the agent is spawned, or
raises what went wrong before (worktree, setup, spawn). Stopping is cancelling
the run's scope and waiting for its shielded teardown to finish: the processes are
gone and the run's end is reported (`RunEvents.ended`, which records the outcome).

The supervisor knows runs, not projects or tasks: what a run needs of its project
comes in its `RunHost`, and what it reports goes out through `RunEvents`.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from orchestra.adapters import cgroups, procs, seen_terminal
from orchestra.adapters.faults import crash_point
from orchestra.adapters.procs import Reaper
from orchestra.adapters.store import write_atomic
from orchestra.core.errors import Conflict
from orchestra.daemon.coalesce import Coalesced
from orchestra.daemon.relay import Relay
from orchestra.daemon.runner import Run, RunHost, run_task

log = logging.getLogger("orchestra.daemon")

RunTask = Callable[..., Awaitable[None]]  # (run, *, resume, task_status)


@attrs.define
class Supervisor:
    nursery: trio.Nursery
    reaper: Reaper
    relay: Relay  # moves the runs' terminal bytes (daemon/relay.py)
    # Live runs, persisted so that a daemon killed with -9 can, at its next start, end
    # whatever its agents left behind (found by their ORCHESTRA_RUN_ID marker, never by
    # a pid that may have been reused).
    state_file: Path
    # Where runs get a cgroup of their own (adapters/cgroups.py); None: the system gives
    # none, and adopted orphans are told apart by their birth instead.
    cgroups: cgroups.Hierarchy | None = None
    python: str = sys.executable  # runs the demo agent and other {python} profiles
    # A run's whole life (runner.run_task); the scheduler's tests give their own.
    run_task: RunTask = run_task
    stopping: bool = False  # the daemon is stopping: no run starts any more
    # Shared by the teardowns that ask at once (daemon/coalesce.py).
    process_tables: Coalesced[procs.ProcessTable] = attrs.field(
        factory=lambda: Coalesced(procs.scan_in_thread)
    )
    # The person's terminal as the last attaching client reported it, kept in `seen_file`
    # across restarts (adapters/seen_terminal.py): every new run's terminal answers its
    # agent's colour queries with its colours, and its agent starts at its size.
    seen_file: Path | None = None
    seen: seen_terminal.SeenTerminal = attrs.field(factory=seen_terminal.SeenTerminal)
    _seen_lock: trio.Lock = attrs.field(factory=trio.Lock)  # one save at a time, in order
    runs: dict[tuple[str, int], Run] = attrs.field(factory=dict)
    # Project root -> lock held while a run makes or checks its worktree: git reads every
    # worktree's files, and concurrent `git worktree add`s see each other half-made.
    worktree_locks: dict[str, trio.Lock] = attrs.field(factory=dict)
    # runs.json rewrites: never two at once (a slower save never replaces a newer one),
    # and one shared by the runs that end together.
    _save_records: Coalesced[None] = attrs.field(
        init=False,
        default=attrs.Factory(lambda self: Coalesced(self._write_records), takes_self=True),
    )

    async def clean_leftovers(self) -> None:
        """End every process of runs a previous daemon did not tear down."""
        records = await trio.to_thread.run_sync(self._read_records)
        for run_id, record in records.items():
            group = cgroups.recorded(record.get("cgroup"))
            who = procs.Belonging(None, run_id, cgroup=group)
            report = await procs.terminate(who, grace=1.0, tables=self.process_tables)
            if report.signalled:
                log.warning(
                    "ended %d leftover process(es) of task %s in %s",
                    len(report.signalled),
                    record.get("task_id"),
                    record.get("project"),
                    extra={"event": "daemon.leftovers", "run_id": run_id, **record},
                )
        if records:
            await self._save_records()

    def _read_records(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    async def _write_records(self) -> None:
        """Use `_save_records`."""
        records = {
            run.run_id: {
                "project": run.host.root,
                "task_id": run.task_id,
                "pid": run.pid,
                "cgroup": None if run.cgroup is None else str(run.cgroup.path),
            }
            for run in self.runs.values()
        }
        text = json.dumps(records, indent=1) + "\n"

        def save() -> None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.state_file, text)

        await trio.to_thread.run_sync(save)

    async def load_seen(self) -> None:
        if self.seen_file is not None:
            self.seen = await trio.to_thread.run_sync(seen_terminal.load, self.seen_file)

    async def remember(self, **reported: Any) -> None:
        """An attaching client reported its terminal (`SeenTerminal.merged`'s arguments;
        valid: its run took them): runs started from now on get them, also after a
        restart. A failed save is logged; the attach goes on."""
        seen = self.seen.merged(**reported)
        if seen == self.seen:
            return
        self.seen = seen
        path = self.seen_file
        if path is None:
            return
        async with self._seen_lock:
            latest = self.seen  # a later attach's, if it came meanwhile
            try:
                await trio.to_thread.run_sync(seen_terminal.save, path, latest)
            except OSError as exc:
                log.warning("could not save the terminal last seen to %s: %s", path, exc)

    def worktree_lock(self, root: str) -> trio.Lock:
        return self.worktree_locks.setdefault(root, trio.Lock())

    def get(self, root: str, task_id: int) -> Run | None:
        return self.runs.get((root, task_id))

    def of(self, root: str) -> list[Run]:
        return [run for (r, _), run in self.runs.items() if r == root]

    async def start(self, host: RunHost, task_id: int, slug: str, *, resume: bool) -> Run:
        key = (host.root, task_id)
        if self.stopping:
            raise Conflict(f"task {task_id}-{slug} was not started: the daemon is stopping")
        if key in self.runs:
            raise Conflict(f"task {task_id}-{slug} already has a running agent")
        run = Run(host=host, task_id=task_id, slug=slug)
        self.seen.apply(run.terminal)  # before its agent can ask
        if self.seen.size is not None:
            run.resize(*self.seen.size)  # before its agent is spawned
        if self.cgroups is not None:
            run.cgroup = self.cgroups.for_run(run.run_id)
        self.runs[key] = run
        try:
            # Recorded before anything runs with its marker (setup, the agent): a daemon
            # killed from here on leaves processes the next start can find and end.
            await self._save_records()
            started: Run = await self.nursery.start(
                functools.partial(self._guarded, run, resume=resume)
            )
        except BaseException:
            self.runs.pop(key, None)
            raise
        await self._save_records()
        crash_point("start:recorded")
        return started

    async def stop(self, run: Run, reason: str) -> None:
        """Cancel the run and wait until every process of it is gone and its end is
        recorded (not for what its end sets off: a queued task starting is not ours)."""
        run.end_reason = reason
        run.scope.cancel()
        await run.done.wait()

    async def _finished(self, run: Run) -> None:
        """After the run's teardown, shielded: forget it, report its end, free its record."""
        self.runs.pop((run.host.root, run.task_id), None)
        try:
            try:
                await run.host.events.ended(run)  # notes the outcome before it awaits
            finally:
                await self._save_records()
        finally:
            run.done.set()

    def active(self) -> int:
        return len(self.runs)

    async def _guarded(
        self,
        run: Run,
        *,
        resume: bool,
        task_status: trio.TaskStatus[Run] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """`run_task`, except that once the agent has started, a bug in one of its run's
        tasks ends that run (torn down by run_task's own `finally`) and is logged: it must
        never reach the task nursery, whose failure would stop the daemon and every other
        agent. Whatever happens, the run's end is reported (`_finished`)."""
        started = False

        class Status:
            def started(self, value: Any = None) -> None:
                nonlocal started
                started = run.started = True
                task_status.started(value)

        try:
            await self.run_task(run, resume=resume, task_status=Status())
        except Exception:
            if not started:
                raise  # before the agent started: the caller of start reports it
            log.exception(
                "the run of task %d-%s failed",
                run.task_id,
                run.slug,
                extra={
                    "event": "daemon.run_failed",
                    "project": run.host.root,
                    "task_id": run.task_id,
                },
            )
        finally:
            with trio.CancelScope(shield=True):
                await self._finished(run)
