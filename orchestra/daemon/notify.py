"""The notifier: tells the person when a task starts waiting for them, or ends.

A daemon service (started with the daemon, main.py). It reads every project's
`events.task_changed` from the event hub; core/notify.py's Tracker turns them into one
Notice per transition; for each, by the task's project's `[notify]` config: a desktop
notification, the configured command, and a bell to every client attached to another
task. Each notifier runs in a task of its own with a deadline (adapters/notify.py), at
most `PARALLEL` at once, so a slow or hung one never holds up the events or the daemon.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import trio

from orchestra.adapters import notify as notifiers
from orchestra.core import notify
from orchestra.core.config import Config, NotifyConfig
from orchestra.daemon.events import EventHub
from orchestra.daemon.registry import Registry
from orchestra.daemon.runner import Run

log = logging.getLogger("orchestra.daemon")

PARALLEL = 8  # notifier processes at once; more wait their turn


async def serve(
    registry: Registry, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Notify until cancelled (the daemon stopping)."""
    await Notifier(registry.hub, _lookup(registry), _runs(registry)).serve(task_status=task_status)


def _lookup(registry: Registry) -> Callable[[str], tuple[NotifyConfig, logging.Logger]]:
    def lookup(root: str) -> tuple[NotifyConfig, logging.Logger]:
        project = registry.projects.get(root)
        if project is None:
            return Config().notify, log
        return project.config_or_default().notify, project.log

    return lookup


def _runs(registry: Registry) -> Callable[[], list[Run]]:
    return lambda: list(registry.scheduler.supervisor.runs.values())


class Notifier:
    """One per daemon. `lookup(root)` gives a project's `[notify]` and its log; `runs()`
    the live runs (whose attached clients a bell reaches)."""

    def __init__(
        self,
        hub: EventHub,
        lookup: Callable[[str], tuple[NotifyConfig, logging.Logger]],
        runs: Callable[[], list[Run]],
        *,
        system: str = sys.platform,
    ) -> None:
        self.hub = hub
        self.lookup = lookup
        self.runs = runs
        self.system = system
        self.tracker = notify.Tracker()
        self.limit = trio.CapacityLimiter(PARALLEL)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            started = False
            while True:
                sub = self.hub.subscribe(None, internal=True)
                try:
                    if not started:
                        task_status.started()
                        started = True
                    async for line in sub.receive:
                        sub.taken(line)  # the hub's queue holds each event encoded, once
                        params = json.loads(line)["params"]
                        notice = self.tracker.observe(params)
                        if notice is not None:
                            self.tell(nursery, notice)
                finally:
                    self.hub.unsubscribe(sub)
                # Dropped for falling behind (the hub's queue was full): subscribe again.
                log.warning(
                    "notifier fell behind the events; some may be missed",
                    extra={"event": "notify.behind"},
                )

    def tell(self, nursery: trio.Nursery, notice: notify.Notice) -> None:
        """Start every notifier the project's config asks for (none is waited for)."""
        config, project_log = self.lookup(notice.project)
        if config.bell and notice.activity == "waiting":
            self.ring(notice)
        env = {**os.environ, **notice.env()}
        cwd = Path(notice.project) if Path(notice.project).is_dir() else None
        if config.desktop:
            argv = notify.desktop_argv(self.system, notice)
            if argv is not None and notifiers.available(argv, env):
                nursery.start_soon(
                    self._run, "desktop notifier", argv, env, cwd, config, project_log
                )
        if config.command:
            nursery.start_soon(
                self._run, "notify command", config.command, env, cwd, config, project_log
            )

    async def _run(
        self,
        what: str,
        argv: list[str],
        env: dict[str, str],
        cwd: Path | None,
        config: NotifyConfig,
        project_log: logging.Logger,
    ) -> None:
        async with self.limit:
            outcome = await notifiers.run(argv, env=env, cwd=cwd, limit=config.timeout)
        notifiers.log_outcome(project_log, what, argv, outcome)

    def ring(self, notice: notify.Notice) -> None:
        """A bell to the clients attached to every other task's run. Written from the relay's
        thread between two of its reads (never inside a chunk of the agent's output being
        forwarded), and only where the model's scanner holds no partial sequence."""
        for run in self.runs():
            if (run.host.root, run.task_id) == (notice.project, notice.task_id):
                continue
            if run.viewers:
                run.host.relay.post(partial(_bell, run))


def _bell(run: Run) -> None:
    """(In the relay's thread.) BEL to each attached client of `run` shown its stream."""
    woken = []
    with run.lock:
        if run.closed or run.terminal.pending():
            return
        for viewer in run.viewers:
            if not viewer.cropped and viewer.push(notify.BELL):
                woken.append(viewer)
    for viewer in woken:
        run.host.relay.soon(viewer.wake)
