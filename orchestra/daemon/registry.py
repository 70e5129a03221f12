"""Every project this daemon serves, remembered across restarts.

A project joins the first time a call names it. The list is kept in the state
dir so that after a restart (or a crash) the daemon finds tasks left `running`
and marks them `stopped`, even in projects nobody has touched yet.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import attrs
import trio

from orchestra.adapters import paths
from orchestra.adapters.store import write_atomic
from orchestra.core.errors import NotAProject, OrchestraError, UnsafeProject
from orchestra.daemon.events import EventHub
from orchestra.daemon.project import Project
from orchestra.daemon.scheduler import Scheduler

log = logging.getLogger("orchestra.daemon")


@attrs.define
class Registry:
    state_file: Path
    hub: EventHub
    scheduler: Scheduler
    projects: dict[str, Project] = attrs.field(factory=dict)
    _lock: trio.Lock = attrs.field(factory=trio.Lock)

    async def get(self, raw: object) -> Project:
        root = paths.check_project_root(raw)
        project = self.projects.get(str(root))
        if project is not None:
            return project
        async with self._lock:
            project = self.projects.get(str(root))
            if project is None:
                project = Project(
                    paths=paths.ProjectPaths(root),
                    hub=self.hub,
                    runs=self.scheduler.supervisor,
                    socket=self.scheduler.socket,
                )
                await project.recover()
                self.projects[str(root)] = project
                await trio.to_thread.run_sync(self._save)
                # Its queue is served from now on, in the background: loading a project
                # never waits for agents to start.
                self.scheduler.watch(project)
        return project

    async def load_known(self) -> None:
        for root in await trio.to_thread.run_sync(self._read):
            try:
                await self.get(root)
            except OrchestraError as exc:
                if isinstance(exc, NotAProject) and not isinstance(exc, UnsafeProject):
                    continue  # the project was deleted or moved: forget it quietly
                log.warning(  # refused (until fixed: the next call names it again)
                    f"project {root} not loaded: {exc.message}",
                    extra={"event": "project.load_failed", "project": root},
                )

    def _read(self) -> list[str]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return []
        return (
            [r for r in data.get("projects", []) if isinstance(r, str)]
            if isinstance(data, dict)
            else []
        )

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(
            self.state_file, json.dumps({"projects": sorted(self.projects)}, indent=2) + "\n"
        )

    def close(self) -> None:
        for project in self.projects.values():
            project.close()
