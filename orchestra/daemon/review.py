"""Review, merge and clean up, daemon side: `task.diff`, `task.merge`, `project.gc`.

The git work lives in adapters/merging.py and adapters/cleanup.py: blocking
functions run in a worker thread, every git command through the reaper
(`project.git()`). Here are the state checks, the locks, the log and the
cleanup after a merge. Task files are read, moved and changed only through the
project's task service (`project.tasks`: load, scan, transition, archive).

Locks: the supervisor's worktree lock of the project is held around every git
step that adds, checks or removes worktrees, so a start cannot make a worktree
while a merge or gc removes one.
Once a merge has begun, it and its record run shielded from cancellation: a
client hanging up cannot leave the target merged and the task not.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from orchestra.adapters import cleanup, merging, worktrees
from orchestra.adapters.faults import crash_point
from orchestra.adapters.git import Git
from orchestra.adapters.store import Broken, Loaded
from orchestra.core import api, hints
from orchestra.core.config import Config
from orchestra.core.errors import (
    Conflict,
    InvalidParams,
    InvalidTransition,
    NotFound,
    OrchestraError,
    TaskFileError,
)
from orchestra.core.states import MERGEABLE, Status, check_transition
from orchestra.core.tasks import Task, title_from_description

if TYPE_CHECKING:
    from orchestra.daemon.project import Project
    from orchestra.daemon.runner import Run

TEARDOWN_TIMEOUT = 600.0  # seconds


# -- where a task started ----------------------------------------------------------


def _base_branch(git: Git, task: Task, config: Config) -> str:
    base = task.base_branch or task.forked_from or config.base_branch or git.current_branch()
    if not base:
        raise InvalidParams(
            f"task {task.ref} has no base branch (the main checkout is on a detached HEAD),"
            " so where to merge it must be said",
            field="into",
            hint=[hints.move("merge", task.slug, into=hints.BRANCH)],
        )
    return base


def _task_base(git: Git, task: Task, config: Config, tip: str) -> str:
    """The commit the task started from: its worktree's base_sha (its task file keeps it),
    else where its branch leaves its base branch. Blocking: call it in a thread."""
    commit = git.commit_of(task.base_sha) if task.base_sha else None
    if commit is not None:
        return commit
    base_branch = _base_branch(git, task, config)
    return git.run("merge-base", merging.heads(base_branch), tip, "--").strip()


# -- task.diff --------------------------------------------------------------------


async def diff(project: Project, p: api.DiffParams) -> dict[str, Any]:
    """The task's changes since its base_sha, and its checkout's uncommitted changes."""
    task = (await project.tasks.load(p.task)).task
    git = project.git()
    config = project.config_or_default()

    def work() -> merging.Diff:
        on_branch = git.commit_of(merging.heads(task.branch)) is not None
        tip = merging.heads(task.branch) if on_branch else merging.keep_ref(task.stem)
        if git.commit_of(tip) is None:
            raise InvalidTransition(
                f"task {task.ref} has no branch yet (it is {task.status})",
                current=str(task.status),
                hint=hints.start_first(task.status, task.slug),
            )
        base = _task_base(git, task, config, tip)
        holder = None
        if on_branch:
            try:
                holder = merging.checkout_of(git, task.branch)
            except Conflict:
                holder = None  # checked out in a worktree whose folder is gone
        return merging.diff(
            git,
            base=base,
            tip=tip,
            checkout=holder,
            stat=p.stat,
            name_only=p.name_only,
            color=p.color,
        )

    d = await trio.to_thread.run_sync(work)
    return {
        "task": task.ref,
        "branch": task.branch,
        "base_sha": d.base,
        "tip": d.tip,
        "tip_sha": d.tip_sha,
        "committed": d.committed,
        "checkout": None if d.checkout is None else str(d.checkout),
        "uncommitted": d.uncommitted,
        "untracked": list(d.untracked),
        "truncated": d.truncated,
    }


# -- task.merge -------------------------------------------------------------------


def default_message(task: Task, strategy: str) -> str:
    """The commit message: the task's title, its description, and a trailer naming it."""
    title = task.title or title_from_description(task.description) or task.slug
    head = title if strategy == "squash" else f"Merge task {task.ref}: {title}"
    body = task.description.strip()
    trailer = f"Orchestra-Task: {task.ref}"
    return f"{head}\n\n{body}\n\n{trailer}\n" if body else f"{head}\n\n{trailer}\n"


def _check_mergeable(task: Task, force: bool) -> None:
    if task.status is Status.MERGED:
        raise InvalidTransition(
            f"task {task.ref} is already merged", current=str(task.status), target="merged"
        )
    if task.status not in MERGEABLE and not force:
        raise InvalidTransition(
            f"task {task.ref} is {task.status}; only a completed or reviewed task is merged",
            current=str(task.status),
            target="merged",
            hint=hints.to_merge(task.status, task.slug),
        )
    check_transition(task.status, Status.MERGED, task=f"task {task.ref}")


async def merge(project: Project, p: api.MergeParams) -> dict[str, Any]:
    """Merge the task's branch into its target (see adapters/merging.py), mark it merged,
    then clean up (config merge.cleanup): teardown, worktree, branch. A live agent of the
    task is stopped first: its worktree is about to go, and its work is done."""
    task = (await project.tasks.load(p.task)).task
    _check_mergeable(task, p.force)
    config = project.config()
    strategy = p.strategy or config.merge.strategy
    if p.message is not None and strategy == "rebase":
        raise InvalidParams(
            "a commit message does not apply to the rebase strategy (the task's commits keep"
            " their own)",
            field="message",
        )
    tidy = config.merge.cleanup if p.cleanup is None else p.cleanup
    message = p.message if p.message is not None else default_message(task, strategy)
    git = project.git()
    scratch = project.paths.worktrees
    make_plan = functools.partial(_plan, project, task, p, config, strategy)
    with trio.CancelScope(shield=True):
        run = project.run(task.id)
        async with project.runs.worktree_lock(project.root):
            plan = await trio.to_thread.run_sync(make_plan)
            if p.dry_run:
                return {
                    "dry_run": True,
                    "task": task.ref,
                    **plan.describe(),
                    "stops_agent": run is not None,
                    "cleanup": tidy,
                    "message": None if strategy == "rebase" else message,
                }
            if run is not None:
                # Tried with the agent still running: a merge refused (a conflict) leaves
                # it be, to resolve the conflict if asked.
                with _refusal_logged(project, task, plan):
                    await trio.to_thread.run_sync(
                        lambda: merging.try_merge(git, plan, message=message, scratch_dir=scratch)
                    )
        if run is not None:
            # Outside the worktree lock: the slot it frees may start a queued task.
            await _stop_agent(project, task, run)
        async with project.runs.worktree_lock(project.root):
            if run is not None:
                plan = await trio.to_thread.run_sync(make_plan)  # it may have committed
            task = (await project.tasks.load(task.id)).task  # it may have moved meanwhile
            _check_mergeable(task, p.force)
            if project.run(task.id) is not None:
                raise Conflict(
                    f"task {task.ref}: its agent started again while merging; nothing was"
                    " merged: merge again",
                )
            with _refusal_logged(project, task, plan):
                done = await trio.to_thread.run_sync(
                    lambda: merging.merge(git, plan, message=message, scratch_dir=scratch)
                )
        await _record(project, task, done, p.force)
        crash_point("merge:recorded")
        report = await clean_task(project, task, config) if tidy else None
    return {
        "task": await project.get(task.id),
        "merge": {**done.describe(), "stopped_agent": run is not None},
        "cleanup": report,
    }


def _plan(
    project: Project, task: Task, p: api.MergeParams, config: Config, strategy: str
) -> merging.MergePlan:
    """The merge's checks and plan (blocking: call it in a thread, under the worktree lock)."""
    git = project.git()
    target = p.into or _base_branch(git, task, config)
    tip = merging.heads(task.branch)
    try:
        return merging.plan_merge(
            git,
            stem=task.stem,
            branch=task.branch,
            target=target,
            strategy=strategy,
            base=_task_base(git, task, config, tip),
            worktree=project.paths.worktree(task.stem),
            include_uncommitted=p.include_uncommitted,
        )
    except OrchestraError as exc:
        raise hints.for_task(exc, task.slug) from None


@contextlib.contextmanager
def _refusal_logged(project: Project, task: Task, plan: merging.MergePlan) -> Iterator[None]:
    """Log a merge refused (a conflict, a checkout in the way), then let the error go on."""
    try:
        yield
    except OrchestraError as exc:
        project.log.warning(
            f"task {task.ref}: merge into {plan.target} refused: {exc.message}",
            extra={
                "event": "task.merge_failed",
                "task_id": task.id,
                "slug": task.slug,
                "target": plan.target,
                "strategy": plan.strategy,
                "error": exc.to_wire()["data"],
            },
        )
        raise


async def _stop_agent(project: Project, task: Task, run: Run) -> None:
    """Stop the agent of a task about to be merged (it keeps its state), and log it."""
    await project.runs.stop(run, "stopped to merge the task")
    project.log.info(
        f"task {task.ref}: agent stopped to merge it",
        extra={"event": "task.merge_stopped_agent", "task_id": task.id, "slug": task.slug},
    )


async def _record(project: Project, task: Task, done: merging.Merged, force: bool) -> None:
    plan = done.plan
    how = f"merged into {plan.target} ({plan.strategy})" + (" with --force" if force else "")
    try:
        await project.tasks.transition(
            task.id,
            Status.MERGED,
            how,
            merge_sha=done.after,
            into=plan.target,
            strategy=plan.strategy,
            branch_sha=done.source,
        )
    except (InvalidTransition, NotFound, TaskFileError) as exc:
        raise Conflict(
            f"the work of task {task.ref} is in {plan.target} ({done.after[:12]}), but the task"
            f" could not be marked merged: {exc.message}; its worktree and branch are kept",
            merge_sha=done.after,
            target=plan.target,
        ) from None
    project.log.info(
        f"task {task.ref}: {how}, {plan.target} at {done.after}",
        extra={
            "event": "task.merged",
            "task_id": task.id,
            "slug": task.slug,
            **done.describe(),
        },
    )


# -- cleanup ------------------------------------------------------------------------


def _teardown_env(project: Project, task: Task, wt: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRA_")}
    env.update(
        {
            "ORCHESTRA_TASK_ID": str(task.id),
            "ORCHESTRA_TASK_SLUG": task.slug,
            "ORCHESTRA_PROJECT": project.root,
            "ORCHESTRA_WORKTREE": str(wt),
            "ORCHESTRA_BRANCH": task.branch,
            "ORCHESTRA_SOCKET": str(project.socket),
        }
    )
    return env


async def _teardown(project: Project, task: Task, wt: Path, argv: list[str]) -> int:
    """Run the config's teardown command in the worktree; its exit code (logged)."""
    try:
        result = await trio.to_thread.run_sync(
            lambda: project.runs.reaper.run(
                argv,
                cwd=wt,
                env=_teardown_env(project, task, wt),
                merge_stderr=True,
                timeout=TEARDOWN_TIMEOUT,
            )
        )
        code, output = result.returncode, (result.stdout or b"").decode(errors="replace")
    except OSError as exc:
        code, output = 127, f"cannot run {argv[0]!r}: {exc.strerror or exc}"
    project.log.info(
        f"task {task.ref}: teardown exited {code}",
        extra={
            "event": "task.teardown",
            "task_id": task.id,
            "slug": task.slug,
            "exit_code": code,
            "output": output[-16384:],
        },
    )
    return code


async def _remove_worktree(project: Project, task: Task, config: Config) -> dict[str, Any]:
    """Teardown, then `git worktree remove` (clean worktrees only); what happened."""
    git = project.git()
    wt = project.paths.worktree(task.stem)
    out: dict[str, Any] = {"path": str(wt), "teardown_exit_code": None, "removed": False}
    if project.run(task.id) is not None:
        out["kept"] = "an agent is running in it"
        return out

    def check() -> None:
        worktrees.check_path(project.paths.worktrees, wt)  # a link: no teardown, no removal
        entry = next(
            (e for e in git.worktrees() if Path(e["path"]).resolve() == wt.resolve()), None
        )
        if entry is None or not wt.is_dir():
            raise NotFound(f"{wt} is not a worktree of this repository", path=str(wt))
        dirty = merging.changed_files(git, wt)
        if dirty:
            raise merging.DirtyWorktree(
                f"{wt} has uncommitted changes in {len(dirty)} file(s):"
                f" {merging.first_lines(dirty)}; commit or remove them yourself",
                path=str(wt),
                files=dirty,
            )

    try:
        await trio.to_thread.run_sync(check)
    except OrchestraError as exc:
        out["kept"] = exc.message
        return out
    if config.teardown:
        code = out["teardown_exit_code"] = await _teardown(project, task, wt, config.teardown)
        if code != 0:
            out["kept"] = (
                f"the teardown command {config.teardown[0]!r} exited {code} (its output is in"
                " the project log): run it yourself, then `orchestra gc`"
            )
            return out
    try:
        await trio.to_thread.run_sync(lambda: cleanup.remove_worktree(git, wt))
    except OrchestraError as exc:
        out["kept"] = exc.message
        return out
    out["removed"] = True
    project.log.info(
        f"task {task.ref}: worktree {wt} removed",
        extra={"event": "task.worktree_removed", "task_id": task.id, "path": str(wt)},
    )
    return out


async def _delete_branch(project: Project, task: Task, sha: str, force: bool) -> dict[str, Any]:
    git = project.git()
    keep = merging.keep_ref(task.stem)
    out: dict[str, Any] = {"branch": task.branch, "sha": sha, "deleted": False, "kept_ref": keep}
    try:
        await trio.to_thread.run_sync(
            lambda: cleanup.delete_branch(git, task.branch, sha, keep_as=keep, force=force)
        )
    except OrchestraError as exc:
        out["kept"] = exc.message
        return out
    out["deleted"] = True
    project.log.info(
        f"task {task.ref}: branch {task.branch} deleted (was {sha})",
        extra={
            "event": "task.branch_deleted",
            "task_id": task.id,
            "branch": task.branch,
            "sha": sha,
            "kept_ref": keep,
        },
    )
    return out


async def clean_task(project: Project, task: Task, config: Config) -> dict[str, Any]:
    """After a merge: the worktree (teardown first), then the branch, if both can go safely."""
    git = project.git()
    async with project.runs.worktree_lock(project.root):
        wt = project.paths.worktree(task.stem)
        worktree: dict[str, Any] | None = None
        if wt.exists():
            worktree = await _remove_worktree(project, task, config)
        branch: dict[str, Any] | None = None
        sha = await trio.to_thread.run_sync(lambda: git.commit_of(merging.heads(task.branch)))
        if sha is not None and (worktree is None or worktree["removed"]):
            branch = await _delete_branch(project, task, sha, force=False)
        elif sha is not None:
            kept = "its worktree is kept"
            branch = {"branch": task.branch, "sha": sha, "deleted": False, "kept": kept}
    return {"worktree": worktree, "branch": branch}


# -- project.gc ---------------------------------------------------------------------


async def gc(project: Project, p: api.GcParams) -> dict[str, Any]:
    """Plan (and unless dry_run, do) the cleanup of merged tasks; see adapters/cleanup.py."""
    config = project.config()
    items = await project.tasks.scan()
    tasks = {i.task.ref: i.task for i in items if isinstance(i, Loaded)}
    stems = [*tasks, *(i.path.stem for i in items if isinstance(i, Broken))]
    git = project.git()
    with trio.CancelScope(shield=True):
        async with project.runs.worktree_lock(project.root):
            plan = await trio.to_thread.run_sync(
                lambda: cleanup.plan(
                    git, project.paths, list(tasks.values()), known_stems=stems, force=p.force
                )
            )
            result: dict[str, Any] = {"project": project.root, "dry_run": p.dry_run}
            result.update(plan.describe())
            if p.dry_run:
                return result
            result["results"] = await _execute(project, plan, tasks, config, p)
    return result


async def _execute(
    project: Project,
    plan: cleanup.GcPlan,
    tasks: dict[str, Task],
    config: Config,
    p: api.GcParams,
) -> list[dict[str, Any]]:
    git = project.git()
    wanted = None if p.only is None else set(p.only)
    held: set[str] = set()  # tasks with a step not done: their later steps wait
    results: list[dict[str, Any]] = []
    for action in plan.actions:
        res: dict[str, Any] = {"key": action.key, "kind": action.kind, "task": action.task}
        results.append(res)
        task = tasks.get(action.task) if action.task else None
        if wanted is not None and action.key not in wanted:
            res.update(done=False, error="not in the confirmed plan: run gc again")
            held.add(str(action.task))
            continue
        if action.task in held:
            res.update(done=False, error="kept: an earlier step for this task was not done")
            continue
        try:
            if action.kind == "remove_worktree" and task is not None:
                out = await _remove_worktree(project, task, config)
                if not out["removed"]:
                    raise Conflict(str(out.get("kept")))
                res["teardown_exit_code"] = out["teardown_exit_code"]
            elif action.kind == "drop_scratch" and action.path:
                drop = functools.partial(
                    cleanup.drop_scratch, git, project.paths, Path(action.path)
                )
                await trio.to_thread.run_sync(drop)
            elif action.kind == "prune_worktrees":
                prune = functools.partial(cleanup.prune, git, action.paths)
                kept = await trio.to_thread.run_sync(prune)
                res["kept_refs"] = kept
            elif action.kind == "delete_branch" and task is not None and action.sha:
                out = await _delete_branch(project, task, action.sha, force=p.force)
                if not out["deleted"]:
                    raise Conflict(str(out.get("kept")))
            elif action.kind == "archive_task" and task is not None:
                res["path"] = str(await _archive(project, task))
            else:
                raise Conflict(f"unknown gc action {action.kind!r}")
        except (OrchestraError, OSError) as exc:
            res.update(done=False, error=getattr(exc, "message", None) or str(exc))
            if action.task:
                held.add(action.task)
            continue
        res["done"] = True
        crash_point(f"gc:{action.kind}")
    return results


async def _archive(project: Project, task: Task) -> Path:
    """Move a merged task's file to `.orchestra/archive/` (its id stays taken)."""

    def still_merged(now: Task) -> None:
        if now.status is not Status.MERGED:
            raise Conflict(f"task {task.ref} is {now.status} now, not merged: kept")

    return await project.tasks.archive(task.id, still_merged)
