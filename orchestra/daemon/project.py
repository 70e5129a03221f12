"""One project as the daemon serves it: its config, task store, log and task operations.

All task-file I/O runs in a worker thread while holding the project's trio lock,
so operations on one project are serialised (ids never collide, a read never
sees half an update) while other projects and the socket stay responsive.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import trio

from orchestra.adapters import config_files, logs, paths, worktrees
from orchestra.adapters.faults import crash_point
from orchestra.adapters.git import Git
from orchestra.adapters.paths import ProjectPaths
from orchestra.adapters.store import Broken, Loaded, TaskStore, now
from orchestra.adapters.worktrees import Worktree
from orchestra.core import api, hints
from orchestra.core.agents import profile_for
from orchestra.core.config import Config
from orchestra.core.errors import (
    ConfigError,
    Conflict,
    InvalidTransition,
    NotFound,
    OrchestraError,
    TaskFileError,
)
from orchestra.core.states import ACTIVE, REPORTABLE, Status, check_transition
from orchestra.core.tasks import Task, new_task_document, parse_task_text
from orchestra.daemon.events import EventHub

if TYPE_CHECKING:
    from orchestra.daemon.runner import Run
    from orchestra.daemon.supervisor import Supervisor

T = TypeVar("T")


@attrs.define(eq=False)
class Project:
    paths: ProjectPaths
    hub: EventHub
    supervisor: Supervisor
    socket: Path  # the daemon's, for agents to call back (ORCHESTRA_SOCKET)
    store: TaskStore = attrs.field(init=False)
    lock: trio.Lock = attrs.field(factory=trio.Lock, init=False)
    log: logging.Logger = attrs.field(init=False)
    # (config file stats) -> Config: reload only when a file changed.
    _config: tuple[tuple[Any, ...], Config] | None = attrs.field(default=None, init=False)
    queue: list[int] = attrs.field(factory=list, init=False)  # queued task ids, FIFO
    base_shas: dict[int, str] = attrs.field(factory=dict, init=False)  # from the event log
    exit_codes: dict[int, int | None] = attrs.field(factory=dict, init=False)  # last runs
    end_reasons: dict[int, str] = attrs.field(factory=dict, init=False)  # why they ended
    # branch -> (tip sha, commits ahead of base): recounted only when the tip moves.
    _ahead: dict[str, tuple[str, int | None]] = attrs.field(factory=dict, init=False)

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
        data = api.task_to_wire(
            task,
            root=self.root,
            worktree=str(self.paths.worktree(task.stem)),
            path=str(loaded.path),
            description=description,
        )
        run = self.supervisor.get(self, task.id)
        data["run"] = None if run is None else run.describe()
        data["exit_code"] = self.exit_codes.get(task.id)
        data["end_reason"] = self.end_reasons.get(task.id)
        data["queue_position"] = self.queue.index(task.id) + 1 if task.id in self.queue else None
        data["base_sha"] = self.base_shas.get(task.id)
        data["ahead"] = self._ahead.get(task.branch, (None, None))[1]
        return data

    def _count_ahead(self, tasks: list[Task]) -> None:
        """Refresh commits-ahead counts (blocking git: call under the lock, in a thread)."""
        wanted = {t.branch: self.base_shas[t.id] for t in tasks if t.id in self.base_shas}
        if not wanted:
            return
        git = self.git()
        out = git.run(
            "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/orchestra/"
        )
        tips = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        for branch, base in wanted.items():
            tip = tips.get(branch)
            if tip is None:
                self._ahead.pop(branch, None)
            elif self._ahead.get(branch, ("", None))[0] != tip:
                self._ahead[branch] = (tip, git.ahead(base, tip))

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
        profile_for(config, agent)  # an unknown agent is refused now, not at start
        base = p.base_branch or config.base_branch
        git = self.git()
        await trio.to_thread.run_sync(lambda: worktrees.check_base(git, base))
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
        def scan() -> list[Loaded | Broken]:
            items = self.store.scan()
            self._count_ahead([i.task for i in items if isinstance(i, Loaded)])
            return items

        items = await self._locked(scan)
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
        return {"project": self.root, "tasks": tasks, "errors": errors, **self._config_problem()}

    async def get(self, ref: api.TaskRef) -> dict[str, Any]:
        def find() -> Loaded:
            loaded = self.store.find(ref)
            self._count_ahead([loaded.task])
            return loaded

        return {**self._wire(await self._locked(find)), **self._config_problem()}

    def _config_problem(self) -> dict[str, str]:
        """`config_error` for read methods, when the project's config does not parse or
        validate: they still answer (with no need of it), and say so."""
        try:
            self.config()
        except ConfigError as exc:
            return {"config_error": exc.message}
        return {}

    async def update(self, p: api.UpdateParams) -> dict[str, Any]:
        if p.base_branch:  # "" clears it: the task then starts from the default
            git = self.git()
            await trio.to_thread.run_sync(lambda: worktrees.check_base(git, p.base_branch))

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
        if edited.base_branch and edited.base_branch != loaded.task.base_branch:
            worktrees.check_base(self.git(), edited.base_branch)
        return self.store.save_text(loaded, text)

    async def set_status(self, p: api.SetStatusParams) -> dict[str, Any]:
        target = REPORTABLE[p.status]
        why = f"`{p.status}` reported" + (f": {p.summary}" if p.summary else "")
        loaded, _ = await self._transition(p.task, target, why, summary=p.summary)
        run = self.supervisor.get(self, loaded.task.id)
        if run is not None:
            run.sticky_idle = target is Status.IDLE  # a report wins over the idle timer
        return self._wire(loaded)

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
        """Run the task's agent, or queue the task when max_running agents already run.
        A repository that cannot host it (no commit yet, its base gone) is refused first,
        with the task left as it was: it did not fail, it never ran."""
        config = self.config()
        task = (await self._locked(lambda: self.store.find(ref))).task
        git = self.git()
        await trio.to_thread.run_sync(lambda: worktrees.choose_base(git, task, config.base_branch))

        def decide(loaded: Loaded) -> Status:
            task = loaded.task
            if self.supervisor.get(self, task.id) is not None:
                raise Conflict(f"task {task.ref} already has a running agent")
            if self._occupied(self.store.scan()) >= config.max_running:
                if task.status is Status.DRAFT:
                    return Status.QUEUED
                raise InvalidTransition(
                    f"task {task.ref} cannot start: max_running ({config.max_running}) agents"
                    " already run; stop one or raise max_running",
                    current=str(task.status),
                )
            return Status.RUNNING

        loaded, previous = await self._transition(ref, decide, "start")
        if loaded.task.status is Status.RUNNING:
            crash_point("start:running")
            await self._launch(
                loaded.task.id, loaded.task.slug, resume=previous is not Status.DRAFT
            )
        return await self.get(loaded.task.id)

    async def _launch(self, task_id: int, slug: str, *, resume: bool) -> None:
        """Start the agent of a task that just became running; on failure the task fails."""
        try:
            await self.supervisor.start(self, task_id, slug, resume=resume)
        except Exception as exc:
            message = exc.message if isinstance(exc, OrchestraError) else repr(exc)
            await self._transition(task_id, Status.FAILED, f"start failed: {message}")
            raise

    async def stop(self, ref: api.TaskRef) -> dict[str, Any]:
        """Stop the agent (its whole process tree) and wait until it is gone. A running or
        idle task becomes stopped; a completed, failed or reviewed one keeps its state (its
        report stands: only its agent goes); a queued one goes back to draft."""
        loaded = await self.load(ref)
        run = self.supervisor.get(self, loaded.task.id)
        if run is not None:
            await self.supervisor.stop(run, "stopped on request")
            return {**await self.get(loaded.task.id), "stopped_agent": True}

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

        return {**await self.move(ref, decide, "stop"), "stopped_agent": False}

    async def move(
        self, ref: api.TaskRef, target: Target, why: str, **context: Any
    ) -> dict[str, Any]:
        loaded, _ = await self._transition(ref, target, why, **context)
        return self._wire(loaded)

    async def _transition(
        self, ref: api.TaskRef, target: Target, why: str, **context: Any
    ) -> tuple[Loaded, Status]:
        """Apply one transition from the table, log it, announce it, then fill a freed slot.

        `target` may be a function choosing the state from the task as it is on disk: it
        runs under the project lock, together with the write, so racing starts cannot both
        take the last slot. It may raise `_Skip` to leave the task as it is.
        """

        def apply() -> tuple[Loaded, Status, Status]:
            loaded = self.store.find(ref)
            to = target if isinstance(target, Status) else target(loaded)
            previous = loaded.task.status
            check_transition(previous, to, task=f"task {loaded.task.ref}")
            loaded.doc.set("status", str(to))
            return self.store.save(loaded), previous, to

        loaded, previous, to = await self._locked(apply)
        if to is Status.QUEUED:
            self.queue.append(loaded.task.id)
        elif previous is Status.QUEUED and loaded.task.id in self.queue:
            self.queue.remove(loaded.task.id)
        run = self.supervisor.get(self, loaded.task.id)
        if run is not None:
            run.status = to
            run.poke()
            run.poke_status()
        self.log.info(
            f"task {loaded.task.ref}: {previous} -> {to} ({why})",
            extra=self._logctx(
                loaded,
                "task.status",
                previous=str(previous),
                status=str(to),
                why=why,
                **{k: v for k, v in context.items() if v is not None},
            ),
        )
        self._event("status", loaded, previous)
        if previous in ACTIVE and to not in ACTIVE:
            await self.fill_slots()
        return loaded, previous

    async def auto_move(self, run: Run, target: Status, why: str) -> None:
        """A move the daemon makes by itself (idle watchdog): skipped if the task moved on."""
        expected = run.status

        def decide(loaded: Loaded) -> Status:
            if loaded.task.status is not expected:
                raise _Skip
            return target

        try:
            await self._transition(run.task_id, decide, why)
        except (_Skip, InvalidTransition, NotFound, TaskFileError):
            try:
                run.status = (await self.load(run.task_id)).task.status
            except (NotFound, TaskFileError):
                await trio.sleep(1)  # a person broke or removed the file: retry, not in a loop

    def note_exit(self, run: Run) -> None:
        """The agent's exit code and why it ended, shown with its task from now on."""
        if run.session is not None:  # else it never started: start() reports the error
            self.exit_codes[run.task_id] = run.exit_code
            self.end_reasons[run.task_id] = run.end_reason

    async def run_ended(self, run: Run) -> None:
        """The agent is gone: a running or idle task becomes stopped; free its slot."""
        if run.session is None:
            return  # it never started: start() reports the error and fails the task

        def decide(loaded: Loaded) -> Status:
            if loaded.task.status not in ACTIVE:
                raise _Skip  # it reached completed/failed/...: keep that
            return Status.STOPPED

        with contextlib.suppress(_Skip, NotFound, TaskFileError):
            await self._transition(
                run.task_id,
                decide,
                f"{run.end_reason}, exit code {run.exit_code}",
                exit_code=run.exit_code,
            )
        await self.fill_slots()

    def _occupied(self, items: Sequence[Loaded | Broken]) -> int:
        """Running slots in use: tasks running or idle. The agent of a completed, failed or
        reviewed task may live on (until stopped or merged) but holds none; a live agent
        whose task file cannot be read holds one (its state is unknown)."""
        states = {i.task.id: i.task.status for i in items if isinstance(i, Loaded)}
        ids = {task_id for task_id, status in states.items() if status in ACTIVE}
        ids |= {
            task_id
            for (root, task_id) in self.supervisor.runs
            if root == self.root and task_id not in states
        }
        return len(ids)

    async def serve_queue(self) -> None:
        """`fill_slots` as a task of its own: a failure is logged, never raised."""
        try:
            await self.fill_slots()
        except Exception:
            self.log.exception("serving the queue failed", extra={"event": "task.queue_failed"})

    async def fill_slots(self) -> None:
        """Start queued tasks in the order they were queued, while slots are free (not
        while the daemon stops: its runs end, and the queue is the next daemon's)."""
        if self.supervisor.stopping:
            return
        try:
            limit = self.config().max_running
        except ConfigError:
            return
        for task_id in list(self.queue):

            def take_slot(loaded: Loaded) -> Status:
                # Checked again under the lock: a racing start or fill may have moved first.
                if loaded.task.status is not Status.QUEUED:
                    raise _Skip
                if self._occupied(self.store.scan()) >= limit:
                    raise _NoSlot
                return Status.RUNNING

            try:
                loaded, _ = await self._transition(task_id, take_slot, "a running slot freed")
            except _NoSlot:
                return
            except (_Skip, NotFound, TaskFileError):
                if task_id in self.queue:
                    self.queue.remove(task_id)
                continue
            try:
                await self._launch(loaded.task.id, loaded.task.slug, resume=False)
            except Exception as exc:  # the task is failed and the error logged: go on
                self.log.warning(
                    f"task {loaded.task.ref}: queued start failed: {exc}",
                    extra={"event": "task.start_failed", "task_id": task_id},
                )

    async def recover(self) -> None:
        """At daemon start no agent runs: running and idle tasks become stopped; the queue
        is rebuilt (by id), to be served (`serve_queue`)."""
        items = await self._locked(self.store.scan)
        for item in items:
            if isinstance(item, Loaded) and item.task.status in ACTIVE:
                await self.move(item.task.id, Status.STOPPED, "daemon restart")
        self.queue = [
            i.task.id for i in items if isinstance(i, Loaded) and i.task.status is Status.QUEUED
        ]
        self.base_shas = await trio.to_thread.run_sync(self._read_base_shas)

    # -- for runs -------------------------------------------------------------

    async def load(self, ref: api.TaskRef) -> Loaded:
        return await self._locked(lambda: self.store.find(ref))

    def git(self) -> Git:
        return Git(self.paths.root, runner=self.supervisor.reaper.run)

    def config_or_default(self) -> Config:
        try:
            return self.config()
        except ConfigError:
            return Config()

    def note_worktree(self, task: Task, wt: Worktree) -> None:
        self.base_shas[task.id] = wt.base_sha
        self.log.info(
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
            self.log.warning(
                f"task {task.ref}: .worktreeinclude file not copied: {why}",
                extra={"event": "task.copy_refused", "task_id": task.id, "slug": task.slug},
            )

    def worktree_records(self) -> dict[int, dict[str, Any]]:
        """Each task's last `task.worktree` event (base branch, base_sha, path), from the
        event log. Blocking: call it from a worker thread."""
        records: dict[int, dict[str, Any]] = {}
        try:
            fd = paths.open_nofollow(self.paths.log, os.O_RDONLY)
            with open(fd, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if '"task.worktree"' not in line:
                        continue
                    try:
                        entry = json.loads(line)
                        records[int(entry["task_id"])] = entry
                    except (ValueError, KeyError, TypeError):
                        continue
        except (OSError, OrchestraError):  # none yet, or a link: the records are gone
            pass
        return records

    def _read_base_shas(self) -> dict[int, str]:
        return {
            task_id: str(entry["base_sha"])
            for task_id, entry in self.worktree_records().items()
            if entry.get("base_sha")
        }

    async def record_session(self, task_id: int, session_id: str) -> None:
        await self.session_set(
            api.SessionParams(project=self.root, task=task_id, session_id=session_id)
        )

    async def send_input(self, ref: api.TaskRef, text: str, *, stall: float) -> dict[str, Any]:
        """Type `text`; give up once the agent has read none of it for `stall` seconds
        (rather than hold its input, and every other writer, until it reads)."""
        loaded = await self.load(ref)
        run = self.supervisor.get(self, loaded.task.id)
        if run is None:
            raise InvalidTransition(
                f"task {loaded.task.ref} has no running agent (it is {loaded.task.status})",
                current=str(loaded.task.status),
                hint=hints.start_first(loaded.task.status, loaded.task.slug),
            )
        data = text.encode()
        try:
            sent = await run.send_input(data, stall=stall)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            raise InvalidTransition(
                f"task {loaded.task.ref}: its agent closed its terminal or exited before"
                " the input was written",
                current=str(run.status),
            ) from None
        if sent < len(data):
            raise Conflict(
                f"task {loaded.task.ref}: its agent read none of its input for"
                f" {stall:g} s; {sent} of {len(data)} bytes were typed, the rest dropped",
                sent=sent,
                total=len(data),
            )
        return {"sent": sent}

    async def attachable(self, ref: api.TaskRef) -> Run:
        """The live run of a task, or a clear error saying why there is none."""
        loaded = await self.load(ref)
        run = self.supervisor.get(self, loaded.task.id)
        if run is None or run.session is None:
            raise InvalidTransition(
                f"task {loaded.task.ref} has no running agent (it is {loaded.task.status})",
                current=str(loaded.task.status),
                hint=hints.start_first(loaded.task.status, loaded.task.slug),
            )
        return run

    async def screen(self, ref: api.TaskRef, lines: int | None) -> dict[str, Any]:
        run = await self.attachable(ref)
        return run.screen(lines)

    def attention(self, run: Run) -> None:
        """The agent rang the bell or sent a notification: tell subscribers, log it."""
        with run.lock:
            notification = getattr(run.terminal, "notification", None)
        self.log.info(
            f"task {run.task_id}-{run.slug} needs attention",
            extra={
                "event": "task.attention",
                "task_id": run.task_id,
                "slug": run.slug,
                "notification": notification,
            },
        )
        self.hub.publish(
            self.root,
            {
                "project": self.root,
                "change": "attention",
                "task": {
                    "id": run.task_id,
                    "slug": run.slug,
                    "ref": f"{run.task_id}-{run.slug}",
                    "attention": True,
                },
            },
        )

    async def tail(self, ref: api.TaskRef, max_bytes: int) -> dict[str, Any]:
        loaded = await self.load(ref)
        run = self.supervisor.get(self, loaded.task.id)
        if run is None:
            data = b""
        else:
            with run.lock:
                data = run.ring.tail(max_bytes)
        return {"running": run is not None, "text": data.decode(errors="replace")}

    async def counts(self) -> dict[str, int]:
        items = await self._locked(self.store.scan)
        counts: dict[str, int] = {}
        for item in items:
            key = "broken" if isinstance(item, Broken) else str(item.task.status)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def close(self) -> None:
        logs.close(self.log)


class _NoSlot(Exception):
    """fill_slots: no running slot is free."""


class _Skip(Exception):
    """A transition chooser decided to leave the task as it is."""


Target = Status | Callable[[Loaded], Status]


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)
