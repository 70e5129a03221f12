"""The daemon's live runs: one child of the task nursery per running agent.

    root nursery
    └── task nursery (Supervisor.nursery)
        └── one run per running task (runner.run_task), each in its own cancel scope

Starting is `nursery.start(run_task)`: it returns once the agent is spawned, or
raises what went wrong before (worktree, setup, spawn). Stopping is cancelling
the run's scope and waiting for its shielded teardown to finish.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING

import attrs
import trio

from orchestra.adapters.procs import Reaper
from orchestra.core.errors import Conflict
from orchestra.daemon.runner import Run, run_task

if TYPE_CHECKING:
    from orchestra.daemon.project import Project


@attrs.define
class Supervisor:
    nursery: trio.Nursery
    reaper: Reaper
    python: str = sys.executable  # runs the demo agent and other {python} profiles
    runs: dict[tuple[str, int], Run] = attrs.field(factory=dict)

    def get(self, project: Project, task_id: int) -> Run | None:
        return self.runs.get((project.root, task_id))

    async def start(self, project: Project, task_id: int, slug: str, *, resume: bool) -> Run:
        key = (project.root, task_id)
        if key in self.runs:
            raise Conflict(f"task {task_id}-{slug} already has a running agent")
        run = Run(project=project, task_id=task_id, slug=slug)
        self.runs[key] = run
        try:
            started: Run = await self.nursery.start(functools.partial(run_task, run, resume=resume))
        except BaseException:
            self.runs.pop(key, None)
            raise
        return started

    async def stop(self, run: Run, reason: str) -> None:
        """Cancel the run and wait until every process of it is gone."""
        run.end_reason = reason
        run.scope.cancel()
        await run.done.wait()

    async def finished(self, run: Run) -> None:
        """Called by the run's teardown, shielded: record the outcome, free the slot."""
        self.runs.pop((run.project.root, run.task_id), None)
        try:
            await run.project.run_ended(run)
        finally:
            run.done.set()

    def active(self) -> int:
        return len(self.runs)
