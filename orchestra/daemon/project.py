"""One project as the daemon serves it: its config, its tasks (daemon/tasks.py), its log,
and the task operations clients call, except starting and stopping (daemon/scheduler.py).

It answers from the task files (through its task service) and, for live agents, from
the supervisor's runs; it announces every change of a task to event subscribers.
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path
from typing import Any

import attrs
import trio

from orchestra.adapters import config_files, logs, paths, worktrees
from orchestra.adapters.git import Git
from orchestra.adapters.paths import ProjectPaths
from orchestra.adapters.store import Broken, Loaded, now
from orchestra.core import api, hints, hooks, names
from orchestra.core.activity import Claim, Shown
from orchestra.core.config import Config, profile_for
from orchestra.core.errors import (
    ConfigError,
    Conflict,
    InvalidParams,
    InvalidTransition,
    NotFound,
    TaskFileError,
)
from orchestra.core.states import REPORTABLE, Status
from orchestra.core.tasks import new_task_document, parse_task_text
from orchestra.daemon import screens
from orchestra.daemon.events import EventHub
from orchestra.daemon.runner import Run
from orchestra.daemon.supervisor import Supervisor
from orchestra.daemon.tasks import Change, TaskService

_SLICE = 256 * 1024  # bytes of task.tail's output decoded at once


@attrs.frozen
class Outcome:
    """How a task's last run ended, shown with the task from then on."""

    exit_code: int | None
    reason: str


@attrs.define(eq=False)
class Project:
    paths: ProjectPaths
    hub: EventHub
    runs: Supervisor  # the live agents (looked up, never driven from here)
    socket: Path  # the daemon's, for agents to call back (ORCHESTRA_SOCKET)
    tasks: TaskService = attrs.field(init=False)
    log: logging.Logger = attrs.field(init=False)
    # (config file stats) -> Config: reload only when a file changed.
    _config: tuple[tuple[Any, ...], Config] | None = attrs.field(default=None, init=False)
    outcomes: dict[int, Outcome] = attrs.field(factory=dict, init=False)  # their last runs
    # branch -> (tip sha, commits ahead of base): recounted only when the tip moves.
    _ahead: dict[str, tuple[str, int | None]] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        self.log = logs.file_logger(f"orchestra.project.{self.root}", self.paths.log, "info")
        self.tasks = TaskService(self.paths, self.log)
        self.tasks.subscribe(self._changed)

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

    def config_or_default(self) -> Config:
        try:
            return self.config()
        except ConfigError:
            return Config()

    def _config_problem(self) -> dict[str, str]:
        """`config_error` for read methods, when the project's config does not parse or
        validate: they still answer (with no need of it), and say so."""
        try:
            self.config()
        except ConfigError as exc:
            return {"config_error": exc.message}
        return {}

    def git(self) -> Git:
        return Git(self.paths.root, runner=self.runs.reaper.run)

    def run(self, task_id: int) -> Run | None:
        return self.runs.get(self.root, task_id)

    # -- what clients are shown -------------------------------------------------

    def wire(self, loaded: Loaded, *, description: bool = True) -> dict[str, Any]:
        task = loaded.task
        data = api.task_to_wire(
            task,
            root=self.root,
            worktree=str(self.paths.worktree(task.stem)),
            path=str(loaded.path),
            description=description,
        )
        run = self.run(task.id)
        outcome = self.outcomes.get(task.id)
        data["run"] = None if run is None else run.describe()
        data["exit_code"] = None if outcome is None else outcome.exit_code
        data["end_reason"] = None if outcome is None else outcome.reason
        data["queue_position"] = self.tasks.position(task.id)
        data["ahead"] = self._ahead.get(task.branch, (None, None))[1]
        return data

    def _count_ahead(self, items: list[Loaded | Broken]) -> None:
        """Refresh commits-ahead counts (blocking git: call it in a thread)."""
        wanted = {
            i.task.branch: i.task.base_sha
            for i in items
            if isinstance(i, Loaded) and i.task.base_sha is not None
        }
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

    def _changed(self, change: Change) -> None:
        """A task file changed: wake its run's watchdog (its state may have moved) and
        tell subscribers."""
        run = self.run(change.loaded.task.id)
        if run is not None:
            run.poke()
        params: dict[str, Any] = {
            "project": self.root,
            "change": change.change,
            "task": self.wire(change.loaded, description=False),
        }
        if change.previous is not None:
            params["previous_status"] = str(change.previous)
        self.hub.publish(self.root, params)

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
        return self.wire(await self.tasks.create(p.slug, doc, agent=agent))

    async def list(self, p: api.ListParams) -> dict[str, Any]:
        items = await self.tasks.scan()
        # git after the project lock is released: other calls on the project need not wait.
        await trio.to_thread.run_sync(self._count_ahead, items)
        tasks, errors = [], []
        for n, item in enumerate(items, start=1):
            if n % 25 == 0:
                await trio.lowlevel.checkpoint()  # 200 tasks are ~10 ms: let others in
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
            tasks.append(self.wire(item, description=p.description))
        return {"project": self.root, "tasks": tasks, "errors": errors, **self._config_problem()}

    async def get(self, ref: api.TaskRef) -> dict[str, Any]:
        def find() -> Loaded:
            loaded = self.tasks.store.find(ref)
            self._count_ahead([loaded])
            return loaded

        loaded = await self.tasks.locked(find)
        return {**self.wire(loaded), **self._config_problem()}

    async def update(self, p: api.UpdateParams) -> dict[str, Any]:
        if p.base_branch:  # "" clears it: the task then starts from the default
            git = self.git()
            await trio.to_thread.run_sync(lambda: worktrees.check_base(git, p.base_branch))

        def edit(loaded: Loaded) -> Loaded:
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
            return self.tasks.store.save(loaded)

        return self.wire(await self.tasks.update(p.task, edit))

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
        return self.tasks.store.save_text(loaded, text)

    async def set_status(self, p: api.SetStatusParams) -> dict[str, Any]:
        target = REPORTABLE[p.status]
        why = f"`{p.status}` reported" + (f": {p.summary}" if p.summary else "")
        loaded, _ = await self.tasks.transition(p.task, target, why, summary=p.summary)
        run = self.run(loaded.task.id)
        if run is not None:
            run.sticky_idle = target is Status.IDLE  # a report wins over the idle timer
            run.sticky_at = None  # the watchdog notes it afresh
            run.poke()
        return self.wire(loaded)

    async def report(self, run: Run, p: api.ReportParams) -> dict[str, Any]:
        """One hook of the run's agent (task.report): its meaning feeds the run's
        activity, its session id (if any) is recorded on the task (the latest wins). A
        payload that is no object, or that its profile's reader cannot read, is logged
        and refused: it never moves the run."""
        kind = run.profile.hooks if run.profile is not None else ""
        context = {"task_id": run.task_id, "slug": run.slug, "hook_event": p.event, "kind": kind}
        if not isinstance(p.payload, dict):
            shown = repr(p.payload)[:200]
            self.log.warning(
                f"task {run.task_id}-{run.slug}: hook {p.event!r}: malformed payload {shown}",
                extra={"event": "task.report_malformed", **context},
            )
            raise InvalidParams(
                f"hook {p.event!r}: the payload must be a JSON object, not {shown:.60}",
                field="payload",
            )
        try:
            report = hooks.interpret(kind, p.event, p.payload)
        except Exception as exc:  # a reader's bug or a payload it did not expect
            self.log.warning(
                f"task {run.task_id}-{run.slug}: hook {p.event!r} not understood: {exc!r}",
                extra={"event": "task.report_malformed", **context},
                exc_info=True,
            )
            raise InvalidParams(
                f"hook {p.event!r}: the payload is not one {kind or 'no'} hooks send",
                field="payload",
            ) from None
        if report is None:
            return {"accepted": False, "activity": run.activity()}
        if report.activity is not None:
            run.report(Claim("hook", report.activity, report.reason, run.clock()))
        if report.session_id is not None and report.session_id != run.session_id:
            await self._record_session(run, report.session_id, context)
        return {"accepted": True, "activity": run.activity()}

    async def _record_session(self, run: Run, session_id: str, context: dict[str, Any]) -> None:
        try:
            names.check_session_id(session_id)
        except InvalidParams as exc:
            self.log.warning(
                f"task {run.task_id}-{run.slug}: session id not recorded: {exc.message}",
                extra={"event": "task.report_malformed", **context},
            )
            return
        run.session_id = session_id
        await self.session_set(
            api.SessionParams(project=self.root, task=run.task_id, session_id=session_id)
        )

    async def activity_changed(self, run: Run, previous: Shown) -> None:
        """The run's activity changed: log it, tell subscribers (events.task_changed with
        change "activity", the task as task.get shows it, and the activity before)."""
        now = run.activity()
        self.log.info(
            f"task {run.task_id}-{run.slug}: {previous.activity} -> {now['activity']}"
            f" ({now['reason'] or 'no reason'}, from {now['source']})",
            extra={
                "event": "task.activity",
                "task_id": run.task_id,
                "slug": run.slug,
                "activity": now["activity"],
                "previous_activity": previous.activity,
                "reason": now["reason"],
                "source": now["source"],
            },
        )
        try:
            loaded = await self.tasks.load(run.task_id)
        except (NotFound, TaskFileError):
            return
        self.hub.publish(
            self.root,
            {
                "project": self.root,
                "change": "activity",
                "task": self.wire(loaded, description=False),
                "previous_activity": previous.activity,
            },
        )

    async def session_set(self, p: api.SessionParams) -> dict[str, Any]:
        def edit(loaded: Loaded) -> Loaded:
            loaded.doc.set("session_id", p.session_id)
            return self.tasks.store.save(loaded)

        loaded = await self.tasks.update(
            p.task, edit, event="task.session", what="session set", session_id=p.session_id
        )
        return self.wire(loaded)

    async def path(self, ref: api.TaskRef) -> dict[str, Any]:
        loaded = await self.tasks.load(ref)
        worktree = self.paths.worktree(loaded.task.stem)
        return {
            "worktree": str(worktree),
            "exists": worktree.is_dir(),
            "branch": loaded.task.branch,
        }

    async def recover(self) -> None:
        """At daemon start no agent runs: running and idle tasks become stopped. Bases
        kept only in an older version's log move into their task files."""
        items = await self.tasks.scan()
        for item in items:
            if isinstance(item, Loaded) and item.task.status in (Status.RUNNING, Status.IDLE):
                await self.tasks.transition(item.task.id, Status.STOPPED, "daemon restart")
        await self.tasks.migrate_bases(items)

    # -- live agents ----------------------------------------------------------

    async def send_input(self, ref: api.TaskRef, text: str, *, stall: float) -> dict[str, Any]:
        """Type `text`; give up once the agent has read none of it for `stall` seconds
        (rather than hold its input, and every other writer, until it reads)."""
        loaded = await self.tasks.load(ref)
        run = self.run(loaded.task.id)
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
                current=str(self.tasks.status(loaded.task.id)),
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
        loaded = await self.tasks.load(ref)
        run = self.run(loaded.task.id)
        if run is None or run.session is None:
            raise InvalidTransition(
                f"task {loaded.task.ref} has no running agent (it is {loaded.task.status})",
                current=str(loaded.task.status),
                hint=hints.start_first(loaded.task.status, loaded.task.slug),
            )
        return run

    async def screen(self, p: api.ScreenParams) -> dict[str, Any]:
        run = await self.attachable(p.task)
        if p.after is not None:
            await screens.changed(run, p.after, p.wait)
            run = await self.attachable(p.task)  # it may have ended meanwhile
        return run.screen(p.lines, styled=p.styled)

    def attention(self, run: Run) -> None:
        """The agent rang the bell or sent a notification: tell subscribers, log it."""
        notification = run.notification
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
        loaded = await self.tasks.load(ref)
        run = self.run(loaded.task.id)
        if run is None:
            data = b""
        else:
            with run.lock:
                data = run.ring.tail(max_bytes)
        # 4 MiB decoded a slice at a time, letting other clients in between.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = []
        for at in range(0, len(data), _SLICE):
            text.append(decoder.decode(data[at : at + _SLICE], final=at + _SLICE >= len(data)))
            await trio.lowlevel.checkpoint()
        return {"running": run is not None, "text": "".join(text)}

    async def task_log(self, ref: api.TaskRef, lines: int) -> dict[str, Any]:
        """The task's last records in the project's event log, oldest first."""
        loaded = await self.tasks.load(ref)
        found = await trio.to_thread.run_sync(
            logs.task_lines, self.paths.log, loaded.task.id, lines
        )
        return {"task": loaded.task.ref, "lines": found}

    async def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in await self.tasks.scan():
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
