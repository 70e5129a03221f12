"""One project as the daemon serves it: its config, task store, log and task operations.

All task-file I/O runs in a worker thread while holding the project's trio lock,
so operations on one project are serialised (ids never collide, a read never
sees half an update) while other projects and the socket stay responsive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio

from orchestra.adapters import config_files, logs, paths
from orchestra.adapters.paths import ProjectPaths
from orchestra.adapters.store import Broken, Loaded, TaskStore, now
from orchestra.core import api
from orchestra.core.config import Config
from orchestra.core.errors import ConfigError, InvalidTransition
from orchestra.core.states import ACTIVE, REPORTABLE, Status, check_transition
from orchestra.core.tasks import new_task_document, parse_task_text
from orchestra.daemon.events import EventHub

T = TypeVar("T")


@attrs.define(eq=False)
class Project:
    paths: ProjectPaths
    hub: EventHub
    store: TaskStore = attrs.field(init=False)
    lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)
    log: logging.Logger = attrs.field(init=False)
    # (config file stats) -> Config: reload only when a file changed.
    _config: tuple[tuple[Any, ...], Config] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        self.store = TaskStore(self.paths)
        self.log = logs.file_logger(f"orchestra.project.{self.root}", self.paths.log, "info")

    @property
    def root(self) -> str:
        return str(self.paths.root)

    # -- config ---------------------------------------------------------------

    def config(self) -> Config:
        files = [paths.global_config_file(), self.paths.config]
        key = tuple(_stat_key(f) for f in files)
        if self._config is None or self._config[0] != key:
            config = config_files.load(self.paths.root).config
            self.log.setLevel(logs.LEVELS[config.log_level])
            self._config = (key, config)
        return self._config[1]

    # -- plumbing -------------------------------------------------------------

    async def _locked(self, fn: Callable[[], T]) -> T:
        async with self.lock:
            return await trio.to_thread.run_sync(fn)

    def _wire(self, loaded: Loaded, *, description: bool = True) -> dict[str, Any]:
        task = loaded.task
        return api.task_to_wire(
            task,
            root=self.root,
            worktree=str(self.paths.worktree(task.stem)),
            path=str(loaded.path),
            description=description,
        )

    def _event(self, change: str, loaded: Loaded, previous: Status | None = None) -> None:
        params: dict[str, Any] = {
            "project": self.root,
            "change": change,
            "task": self._wire(loaded, description=False),
        }
        if previous is not None:
            params["previous_status"] = str(previous)
        self.hub.publish(self.root, params)

    def _logctx(self, loaded: Loaded, event: str, **extra: Any) -> dict[str, Any]:
        return {"event": event, "task_id": loaded.task.id, "slug": loaded.task.slug, **extra}

    # -- operations -----------------------------------------------------------

    async def new(self, p: api.NewParams) -> dict[str, Any]:
        config = self.config()
        agent = p.agent or config.default_agent
        base = p.base_branch or config.base_branch
        doc = new_task_document(
            status=Status.DRAFT,
            agent=agent,
            base_branch=base,
            labels=p.labels,
            created_at=now(),
            title=p.title,
            description=p.description,
        )
        loaded = await self._locked(lambda: self.store.create(p.slug, doc))
        self.log.info(
            f"task {loaded.task.ref} created",
            extra=self._logctx(loaded, "task.created", agent=agent),
        )
        self._event("created", loaded)
        return self._wire(loaded)

    async def list(self, p: api.ListParams) -> dict[str, Any]:
        items = await self._locked(self.store.scan)
        tasks, errors = [], []
        for item in items:
            if isinstance(item, Broken):
                errors.append(
                    {"file": str(item.path), "message": item.error.message, **item.error.data}
                )
                continue
            task = item.task
            if p.status is not None and task.status not in p.status:
                continue
            if p.label is not None and p.label not in task.labels:
                continue
            tasks.append(self._wire(item, description=p.description))
        return {"project": self.root, "tasks": tasks, "errors": errors}

    async def get(self, ref: api.TaskRef) -> dict[str, Any]:
        return self._wire(await self._locked(lambda: self.store.find(ref)))

    async def update(self, p: api.UpdateParams) -> dict[str, Any]:
        def apply() -> Loaded:
            loaded = self.store.find(p.task)
            if p.text is not None:
                return self._replace_text(loaded, p.text)
            doc = loaded.doc
            for key in ("title", "agent", "base_branch"):
                value = getattr(p, key)
                if value is not None:
                    doc.set(key, value or None)
            if p.labels is not None:
                doc.set("labels", p.labels)
            if p.description is not None:
                doc.body = p.description
            return self.store.save(loaded)

        loaded = await self._locked(apply)
        self.log.info(f"task {loaded.task.ref} updated", extra=self._logctx(loaded, "task.updated"))
        self._event("updated", loaded)
        return self._wire(loaded)

    def _replace_text(self, loaded: Loaded, text: str) -> Loaded:
        """A whole file from `orchestra edit`: validate it like a file on disk, keep it verbatim."""
        source = f"edited copy of {loaded.path.name}"
        doc = parse_task_text(text, source=source)
        edited = doc.to_task(loaded.task.id, loaded.task.slug, source=source)
        if edited.status is not loaded.task.status:
            raise InvalidTransition(
                f"status cannot be edited (it is {loaded.task.status}, the copy says"
                f" {edited.status}); change it with start, stop, idle, complete, fail or reviewed",
                current=str(loaded.task.status),
            )
        api.structure(
            {
                "project": self.root,
                "task": edited.id,
                "agent": edited.agent,
                "labels": list(edited.labels),
                **({"base_branch": edited.base_branch} if edited.base_branch else {}),
                **({"title": edited.title} if edited.title else {}),
            },
            api.UpdateParams,
        )  # the same name rules as every other write
        return self.store.save_text(loaded, text)

    async def set_status(self, p: api.SetStatusParams) -> dict[str, Any]:
        target = REPORTABLE[p.status]
        why = f"`{p.status}` reported" + (f": {p.summary}" if p.summary else "")
        return await self.move(p.task, target, why, summary=p.summary)

    async def session_set(self, p: api.SessionParams) -> dict[str, Any]:
        def apply() -> Loaded:
            loaded = self.store.find(p.task)
            loaded.doc.set("session_id", p.session_id)
            return self.store.save(loaded)

        loaded = await self._locked(apply)
        self.log.info(
            f"task {loaded.task.ref} session set",
            extra=self._logctx(loaded, "task.session", session_id=p.session_id),
        )
        self._event("updated", loaded)
        return self._wire(loaded)

    async def path(self, ref: api.TaskRef) -> dict[str, Any]:
        loaded = await self._locked(lambda: self.store.find(ref))
        worktree = self.paths.worktree(loaded.task.stem)
        return {
            "worktree": str(worktree),
            "exists": worktree.is_dir(),
            "branch": loaded.task.branch,
        }

    async def start(self, ref: api.TaskRef) -> dict[str, Any]:
        """Run the task, or queue it when max_running agents already run."""
        config = self.config()

        def decide() -> Status:
            items = self.store.scan()
            target = self.store.find(ref).task
            active = sum(1 for i in items if isinstance(i, Loaded) and i.task.status in ACTIVE)
            if active >= config.max_running and target.status is Status.DRAFT:
                return Status.QUEUED
            if active >= config.max_running:
                raise InvalidTransition(
                    f"task {target.ref} cannot start: max_running ({config.max_running}) agents"
                    " already run; stop one or raise max_running",
                    current=str(target.status),
                )
            return Status.RUNNING

        async with self.lock:
            target = await trio.to_thread.run_sync(decide)
        return await self.move(ref, target, "start")

    async def stop(self, ref: api.TaskRef) -> dict[str, Any]:
        loaded = await self._locked(lambda: self.store.find(ref))
        target = Status.DRAFT if loaded.task.status is Status.QUEUED else Status.STOPPED
        return await self.move(ref, target, "stop")

    async def move(
        self, ref: api.TaskRef, target: Status, why: str, **context: Any
    ) -> dict[str, Any]:
        """Apply one transition from the table, log it, announce it, then fill a freed slot."""

        def apply() -> tuple[Loaded, Status]:
            loaded = self.store.find(ref)
            previous = loaded.task.status
            check_transition(previous, target, task=f"task {loaded.task.ref}")
            loaded.doc.set("status", str(target))
            return self.store.save(loaded), previous

        loaded, previous = await self._locked(apply)
        self.log.info(
            f"task {loaded.task.ref}: {previous} -> {target} ({why})",
            extra=self._logctx(
                loaded,
                "task.status",
                previous=str(previous),
                status=str(target),
                why=why,
                **{k: v for k, v in context.items() if v is not None},
            ),
        )
        self._event("status", loaded, previous)
        if previous in ACTIVE and target not in ACTIVE:
            await self.fill_slots()
        return self._wire(loaded)

    async def fill_slots(self) -> None:
        """Start queued tasks, oldest first, while fewer than max_running are active."""
        try:
            limit = self.config().max_running
        except ConfigError:
            return
        items = await self._locked(self.store.scan)
        tasks = [i.task for i in items if isinstance(i, Loaded)]
        free = limit - sum(1 for t in tasks if t.status in ACTIVE)
        for task in [t for t in tasks if t.status is Status.QUEUED][: max(free, 0)]:
            await self.move(task.id, Status.RUNNING, "a running slot freed")

    async def recover(self) -> None:
        """After a daemon (re)start no agent runs: running and idle tasks become stopped."""
        items = await self._locked(self.store.scan)
        for item in items:
            if isinstance(item, Loaded) and item.task.status in ACTIVE:
                await self.move(item.task.id, Status.STOPPED, "daemon restart")

    async def counts(self) -> dict[str, int]:
        items = await self._locked(self.store.scan)
        counts: dict[str, int] = {}
        for item in items:
            key = "broken" if isinstance(item, Broken) else str(item.task.status)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def close(self) -> None:
        logs.close(self.log)


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)
