"""One project's tasks as a service: the only code that reads or writes its task files.

Every read and write runs in a worker thread while holding the project's trio lock, so
the project's operations are serialised (ids never collide, a read never sees half an
update) while other projects and the socket stay responsive.

The task file is the one owner of a task's state: `transition` is the only way a status
changes (checked against the state table, logged, announced). What others need to know
fast is derived from the files as last read or written (`status`, `queue`), never kept
beside them. Listeners (`subscribe`) hear of every change, after it is on disk: the
project announces them to clients, the scheduler fills the slots they free.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import trio

from orchestra.adapters import paths
from orchestra.adapters.paths import ProjectPaths
from orchestra.adapters.store import Broken, Loaded, TaskStore
from orchestra.core import api, names
from orchestra.core.errors import Conflict, OrchestraError
from orchestra.core.states import Status, check_transition
from orchestra.core.tasks import Task, TaskDocument

T = TypeVar("T")


class Skip(Exception):
    """A transition's chooser decided to leave the task as it is."""


Target = Status | Callable[[Loaded], Status]


@attrs.frozen
class Change:
    """A task file changed: `created`, `updated`, `status` (with the status before),
    `archived` (`loaded.path` is then where the file went)."""

    change: str
    loaded: Loaded
    previous: Status | None = None


@attrs.define(eq=False)
class TaskService:
    paths: ProjectPaths
    log: logging.Logger
    store: TaskStore = attrs.field(init=False)
    lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)
    # Every task as last read or written (id -> Task): what `status` and `queue` answer
    # from. Invariant: updated by every read and write below, so never older than the
    # last change the daemon made or saw.
    _index: dict[int, Task] = attrs.field(factory=dict, init=False)
    _listeners: list[Callable[[Change], None]] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        self.store = TaskStore(self.paths)

    @property
    def root(self) -> str:
        return str(self.paths.root)

    def subscribe(self, listener: Callable[[Change], None]) -> None:
        """Call `listener` (synchronously, in the event loop) after each change."""
        self._listeners.append(listener)

    # -- reads ------------------------------------------------------------------------

    async def locked(self, fn: Callable[[], T]) -> T:
        """Run blocking `fn` in a thread under the project lock (the store's callers)."""
        async with self.lock:
            return await trio.to_thread.run_sync(fn)

    async def load(self, ref: api.TaskRef) -> Loaded:
        loaded = await self.locked(lambda: self.store.find(ref))
        self._index[loaded.task.id] = loaded.task
        return loaded

    async def scan(
        self, also: Callable[[list[Loaded | Broken]], None] | None = None
    ) -> list[Loaded | Broken]:
        """Every task file; `also(items)` runs in the same thread and lock (git counts)."""

        def read() -> list[Loaded | Broken]:
            items = self.store.scan()
            if also is not None:
                also(items)
            return items

        items = await self.locked(read)
        self._reindex(items)
        return items

    def _reindex(self, items: list[Loaded | Broken]) -> None:
        self._index = {i.task.id: i.task for i in items if isinstance(i, Loaded)}

    def status(self, task_id: int) -> Status | None:
        task = self._index.get(task_id)
        return None if task is None else task.status

    def queue(self) -> list[int]:
        """Queued task ids, the next to start first: by the time they were queued."""
        queued = [t for t in self._index.values() if t.status is Status.QUEUED]
        epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
        return [t.id for t in sorted(queued, key=lambda t: (t.queued_at or epoch, t.id))]

    def position(self, task_id: int) -> int | None:
        queue = self.queue()
        return queue.index(task_id) + 1 if task_id in queue else None

    # -- writes -----------------------------------------------------------------------

    async def create(self, slug: str, doc: TaskDocument, **context: Any) -> Loaded:
        loaded = await self.locked(lambda: self.store.create(slug, doc))
        self._index[loaded.task.id] = loaded.task
        self.log.info(
            f"task {loaded.task.ref} created",
            extra=_context(loaded.task, "task.created", **context),
        )
        self._announce(Change("created", loaded))
        return loaded

    async def update(
        self,
        ref: api.TaskRef,
        edit: Callable[[Loaded], Loaded],
        *,
        event: str | None = "task.updated",
        what: str = "updated",
        **context: Any,
    ) -> Loaded:
        """Apply `edit(loaded) -> saved` (blocking: it edits the document and saves it
        with `store.save`) under the lock, log it and announce it (`event` None: neither,
        for facts the daemon notes for itself). The status is not `edit`'s to change:
        that is `transition`'s."""

        def apply() -> Loaded:
            loaded = self.store.find(ref)
            saved = edit(loaded)
            if saved.task.status is not loaded.task.status:
                raise Conflict(f"task {loaded.task.ref}: an update cannot change its status")
            return saved

        loaded = await self.locked(apply)
        self._index[loaded.task.id] = loaded.task
        if event is not None:
            self.log.info(
                f"task {loaded.task.ref} {what}", extra=_context(loaded.task, event, **context)
            )
            self._announce(Change("updated", loaded))
        return loaded

    async def transition(
        self, ref: api.TaskRef, target: Target, why: str, **context: Any
    ) -> tuple[Loaded, Status]:
        """Apply one move of the state table to the file, log it, announce it.

        `target` may choose the state from the task as it is on disk: it runs under the
        project lock, with the write, so racing starts cannot both take the last slot. It
        may raise `Skip` to leave the task as it is."""

        def apply() -> tuple[Loaded, Status, Status]:
            loaded = self.store.find(ref)
            to = target if isinstance(target, Status) else target(loaded)
            previous = loaded.task.status
            check_transition(previous, to, task=f"task {loaded.task.ref}")
            loaded.doc.set("status", str(to))
            # To the microsecond: the queue's order is the order of these writes.
            queued = dt.datetime.now(dt.UTC) if to is Status.QUEUED else None
            loaded.doc.set("queued_at", queued)
            return self.store.save(loaded), previous, to

        loaded, previous, to = await self.locked(apply)
        self._index[loaded.task.id] = loaded.task
        self.log.info(
            f"task {loaded.task.ref}: {previous} -> {to} ({why})",
            extra=_context(
                loaded.task,
                "task.status",
                previous=str(previous),
                status=str(to),
                why=why,
                **{k: v for k, v in context.items() if v is not None},
            ),
        )
        self._announce(Change("status", loaded, previous))
        return loaded, previous

    async def record_base(self, task_id: int, forked_from: str, base_sha: str) -> None:
        """The task's worktree was made from `base_sha` on `forked_from`: a durable fact
        of the task, kept in its front matter (unchanged: not rewritten). Not announced
        nor logged again: the run logs its worktree (`task.worktree`) with them."""
        task = self._index.get(task_id)
        if task is not None and (task.forked_from, task.base_sha) == (forked_from, base_sha):
            return

        def edit(loaded: Loaded) -> Loaded:
            loaded.doc.set("forked_from", forked_from)
            loaded.doc.set("base_sha", base_sha)
            return self.store.save(loaded)

        await self.update(task_id, edit, event=None)

    async def archive(self, task_id: int, check: Callable[[Task], None]) -> Path:
        """Move the task's file to `.orchestra/archive/` (its id stays taken), once
        `check(task as on disk)` passes."""

        def move() -> tuple[Loaded, Path]:
            loaded = self.store.find(task_id)
            check(loaded.task)
            self.paths.archive.mkdir(parents=True, exist_ok=True)
            dest = self.paths.archive / loaded.path.name
            if dest.exists():
                raise Conflict(
                    f"{dest} already exists: task {loaded.task.ref} kept", path=str(dest)
                )
            os.replace(loaded.path, dest)
            return loaded, dest

        loaded, dest = await self.locked(move)
        self._index.pop(task_id, None)
        self.log.info(
            f"task {loaded.task.ref} archived to {dest}",
            extra=_context(loaded.task, "task.archived", path=str(dest)),
        )
        self._announce(Change("archived", attrs.evolve(loaded, path=dest)))
        return dest

    def _announce(self, change: Change) -> None:
        for listener in self._listeners:
            listener(change)

    # -- migration --------------------------------------------------------------------

    async def migrate_bases(self, items: list[Loaded | Broken]) -> None:
        """Projects of older versions kept a task's base only in the event log (and only
        at log level info): read it once, for tasks that had a worktree and whose file
        does not say its base yet, and write what it says into their files."""
        wanted = {
            i.task.id
            for i in items
            if isinstance(i, Loaded)
            and i.task.base_sha is None
            and i.task.status not in (Status.DRAFT, Status.QUEUED)
        }
        if not wanted:
            return
        records = await trio.to_thread.run_sync(self._log_records, wanted)
        for task_id, (base, sha) in records.items():
            try:
                await self.record_base(task_id, base, sha)
            except OrchestraError as exc:  # a file broken since: it keeps no base
                self.log.warning(
                    f"task {task_id}: its base from the log not kept: {exc.message}",
                    extra={"event": "task.migrate_failed", "task_id": task_id},
                )

    def _log_records(self, wanted: set[int]) -> dict[int, tuple[str, str]]:
        """Each wanted task's last `task.worktree` entry (base, base_sha) in the log."""
        found: dict[int, tuple[str, str]] = {}
        try:
            fd = paths.open_nofollow(self.paths.log, os.O_RDONLY)
            with open(fd, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if '"task.worktree"' not in line:
                        continue
                    try:
                        entry = json.loads(line)
                        task_id = int(entry["task_id"])
                        base, sha = entry["base"], entry["base_sha"]
                        if task_id in wanted:  # a hand-edited line's values are checked
                            found[task_id] = (names.check_branch(base), names.check_sha(sha))
                    except (ValueError, KeyError, TypeError, OrchestraError):
                        continue
        except (OSError, OrchestraError):  # no log, or a link: nothing to migrate
            pass
        return found


def _context(task: Task, event: str, **extra: Any) -> dict[str, Any]:
    return {"event": event, "task_id": task.id, "slug": task.slug, **extra}
