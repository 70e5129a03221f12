"""Cleaning up after merged tasks: plan everything first, then do only what was planned.

Theory of operation. `plan()` looks at the tasks, `git worktree list` and the
`orchestra/*` branches and changes nothing. It plans, for each merged task:
remove its worktree (only a clean one: uncommitted files are never lost), delete
its branch (only if checked out nowhere else, and only if every commit on it is
also on another branch, a tag, or a ref Orchestra keeps — unless `force`, which
first keeps the tip under `refs/orchestra/merged/{stem}`), then archive its task
file once both are gone. It also plans removing the scratch worktrees of merges that
were interrupted (`.merge-*`: gc and merges hold the same lock, so none is in use;
they never hold work of their own), and `git worktree prune` for records whose
folders are gone (a detached one whose commits are on no branch is kept as
`refs/orchestra/pruned/...` first), and lists `orchestra/*` branches and worktree
folders that belong to no task. Those are reported, never touched.

Every action has a key (a branch's key includes its tip), and the executing
functions check their preconditions again: a branch that moved after the plan
was shown, or a worktree that got dirty, is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from orchestra.adapters import merging, worktrees
from orchestra.adapters.git import Git, GitError
from orchestra.adapters.merging import (
    SCRATCH_PREFIX,
    DirtyWorktree,
    changed_files,
    first_lines,
    heads,
    keep_ref,
    unique_commits,
)
from orchestra.adapters.paths import ProjectPaths
from orchestra.core.errors import Conflict
from orchestra.core.states import Status
from orchestra.core.tasks import Task

PRUNED_PREFIX = "refs/orchestra/pruned/"

# The order actions run in: a branch is deleted once its worktree is gone, a task
# archived once both are.
KINDS = ("remove_worktree", "drop_scratch", "prune_worktrees", "delete_branch", "archive_task")


@attrs.frozen(kw_only=True)
class Action:
    kind: str  # one of KINDS
    key: str  # what the person confirms; a branch's key includes its tip
    task: str | None = None  # the task's ref, `{id}-{slug}`
    path: str | None = None
    branch: str | None = None
    sha: str | None = None
    unique: int = 0  # commits on no other branch: kept as a ref before the branch goes
    paths: tuple[str, ...] = ()  # prune: the records' folders

    def describe(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["paths"] = list(self.paths)
        return data


@attrs.frozen(kw_only=True)
class Skipped:
    task: str
    what: str  # "worktree" or "branch"
    reason: str


@attrs.frozen(kw_only=True)
class Orphan:
    kind: str  # "branch" or "worktree"
    name: str  # the branch, or the folder's path
    detail: str


@attrs.frozen(kw_only=True)
class GcPlan:
    actions: tuple[Action, ...]
    skipped: tuple[Skipped, ...]
    orphans: tuple[Orphan, ...]

    def describe(self) -> dict[str, Any]:
        return {
            "actions": [a.describe() for a in self.actions],
            "skipped": [attrs.asdict(s) for s in self.skipped],
            "orphans": [attrs.asdict(o) for o in self.orphans],
        }


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def plan(
    git: Git,
    paths: ProjectPaths,
    tasks: Sequence[Task],
    *,
    known_stems: Iterable[str],
    force: bool,
) -> GcPlan:
    """What gc would do now (see the module docstring). Changes nothing."""
    entries = git.worktrees()
    by_path = {Path(e["path"]).resolve(): e for e in entries}
    holders = {e["branch"]: Path(e["path"]) for e in entries if e.get("branch")}
    actions: list[Action] = []
    skipped: list[Skipped] = []
    prunable = [e for e in entries if "prunable" in e and "locked" not in e]

    for task in tasks:
        if task.status is not Status.MERGED:
            continue
        ref, wt = task.ref, paths.worktree(task.stem)
        clear = True
        removing = False
        entry = by_path.get(wt.resolve())
        if wt.is_symlink():  # never removed through: git would empty what it points to
            skipped.append(
                Skipped(task=ref, what="worktree", reason=worktrees.link_refused(wt).message)
            )
            clear = False
        elif entry is not None and "prunable" not in entry and wt.is_dir():
            dirty = changed_files(git, wt)
            if "locked" in entry:
                skipped.append(Skipped(task=ref, what="worktree", reason=f"{wt} is locked"))
                clear = False
            elif dirty:
                skipped.append(
                    Skipped(
                        task=ref,
                        what="worktree",
                        reason=f"{wt} has uncommitted changes in {len(dirty)} file(s):"
                        f" {first_lines(dirty)}; commit or remove them yourself",
                    )
                )
                clear = False
            else:
                actions.append(
                    Action(kind="remove_worktree", key=f"worktree:{wt}", task=ref, path=str(wt))
                )
                removing = True
        elif entry is None and wt.exists():
            skipped.append(
                Skipped(
                    task=ref,
                    what="worktree",
                    reason=f"{wt} is not a worktree of this repository: move it away yourself",
                )
            )
            clear = False
        sha = git.commit_of(heads(task.branch))
        if sha is not None:
            holder = holders.get(task.branch)
            own = holder is not None and _same(holder, wt)
            if holder is not None and not own:
                skipped.append(
                    Skipped(
                        task=ref,
                        what="branch",
                        reason=f"{task.branch} is checked out in {holder}: switch that"
                        " checkout to another branch first",
                    )
                )
                clear = False
            elif own and not removing and not _prunable(by_path, wt):
                clear = False  # its worktree stays (said above), so does its branch
            else:
                unique = unique_commits(git, heads(task.branch), besides=task.branch)
                if unique and not force:
                    skipped.append(
                        Skipped(
                            task=ref,
                            what="branch",
                            reason=f"{task.branch} has {unique} commit(s) on no other branch;"
                            f" --force deletes it after keeping its tip as {keep_ref(task.stem)}",
                        )
                    )
                    clear = False
                else:
                    actions.append(
                        Action(
                            kind="delete_branch",
                            key=f"branch:{task.branch}@{sha}",
                            task=ref,
                            branch=task.branch,
                            sha=sha,
                            unique=unique,
                        )
                    )
        if clear:
            actions.append(
                Action(
                    kind="archive_task",
                    key=f"archive:{task.stem}",
                    task=ref,
                    path=str(paths.archive / f"{task.stem}.md"),
                )
            )
    scratch = scratches(paths)
    actions += [
        Action(kind="drop_scratch", key=f"scratch:{path.name}", path=str(path)) for path in scratch
    ]
    if prunable:
        folders = tuple(sorted(str(e["path"]) for e in prunable))
        actions.append(
            Action(kind="prune_worktrees", key="prune:" + "\0".join(folders), paths=folders)
        )
    actions.sort(key=lambda a: KINDS.index(a.kind))
    return GcPlan(
        actions=tuple(actions),
        skipped=tuple(skipped),
        orphans=tuple(orphans(git, paths, set(known_stems), entries, set(scratch))),
    )


def scratches(paths: ProjectPaths) -> list[Path]:
    """Scratch worktrees of merges that did not finish (a daemon killed during one)."""
    if not paths.worktrees.is_dir():
        return []
    return [
        child
        for child in sorted(paths.worktrees.iterdir())
        if child.name.startswith(SCRATCH_PREFIX) and child.is_dir() and not child.is_symlink()
    ]


def drop_scratch(git: Git, paths: ProjectPaths, path: Path) -> None:
    """Remove an interrupted merge's scratch worktree, if `path` is still one."""
    if path not in scratches(paths):
        raise Conflict(f"{path} is not a merge's scratch worktree (any more)", path=str(path))
    merging.drop_scratch(git, path)
    if path.exists():
        raise Conflict(f"could not remove {path}", path=str(path))


def _prunable(by_path: dict[Path, dict[str, Any]], wt: Path) -> bool:
    entry = by_path.get(wt.resolve())
    return entry is not None and "prunable" in entry and "locked" not in entry


def orphans(
    git: Git,
    paths: ProjectPaths,
    stems: set[str],
    entries: list[dict[str, Any]],
    planned: set[Path],
) -> list[Orphan]:
    """`orchestra/*` branches and worktree folders that belong to no task (and that gc
    does not plan to remove: `planned`, the scratch worktrees)."""
    holders = {e["branch"]: Path(e["path"]) for e in entries if e.get("branch")}
    found: list[Orphan] = []
    out = git.run("for-each-ref", "--format=%(refname)", "refs/heads/orchestra/")
    for refname in out.splitlines():
        branch = refname.removeprefix("refs/heads/")
        if branch.removeprefix("orchestra/") in stems:
            continue
        unique = unique_commits(git, refname, besides=branch)
        detail = f"no task; {unique} commit(s) on no other branch"
        if branch in holders:
            detail += f"; checked out in {holders[branch]}"
        found.append(Orphan(kind="branch", name=branch, detail=detail))
    if paths.worktrees.is_dir():
        registered = {Path(e["path"]).resolve() for e in entries}
        for child in sorted(paths.worktrees.iterdir()):
            if child.name in stems or child in planned:
                continue
            what = "a git worktree" if child.resolve() in registered else "not a git worktree"
            found.append(Orphan(kind="worktree", name=str(child), detail=f"no task; {what}"))
    return found


# -- doing ------------------------------------------------------------------------


def remove_worktree(git: Git, path: Path) -> None:
    """Remove a clean linked worktree at `path`; anything else is refused, a symbolic link
    first of all (`git worktree remove` would empty its target, ignored files included)."""
    worktrees.check_path(ProjectPaths(git.root).worktrees, path)
    entry = next((e for e in git.worktrees() if _same(Path(e["path"]), path)), None)
    if entry is None:
        raise Conflict(f"{path} is not a worktree of this repository", path=str(path))
    if _same(Path(entry["path"]), git.root):
        raise Conflict(f"{path} is the main checkout: never removed", path=str(path))
    dirty = changed_files(git, path)
    if dirty:
        raise DirtyWorktree(
            f"{path} has uncommitted changes in {len(dirty)} file(s): {first_lines(dirty)}",
            path=str(path),
            files=dirty,
        )
    git.run("worktree", "remove", "--", str(path))  # git refuses a dirty one itself, too


def delete_branch(git: Git, branch: str, sha: str, *, keep_as: str, force: bool) -> None:
    """Delete `branch` if it is still at `sha` and checked out nowhere. Commits on no other
    branch are refused unless `force`, and then kept as `keep_as` first."""
    current = git.commit_of(heads(branch))
    if current != sha:
        raise Conflict(
            f"{branch} moved (now {str(current)[:12]}, planned {sha[:12]}): kept",
            branch=branch,
        )
    holder = next((e for e in git.worktrees() if e.get("branch") == branch), None)
    if holder is not None:
        raise Conflict(f"{branch} is checked out in {holder['path']}: kept", branch=branch)
    unique = unique_commits(git, heads(branch), besides=branch)
    if unique:
        if not force:
            raise Conflict(f"{branch} has {unique} commit(s) on no other branch: kept")
        git.run("update-ref", "-m", f"orchestra: tip of {branch}", keep_as, sha)
    git.run("branch", "--delete", "--force", "--end-of-options", branch)


def prune(git: Git, folders: Sequence[str]) -> list[str]:
    """`git worktree prune`, if the prunable records are still exactly `folders`; a detached
    record's commits that are on no branch are kept as a ref first. Returns the kept refs."""
    entries = [e for e in git.worktrees() if "prunable" in e and "locked" not in e]
    if sorted(str(e["path"]) for e in entries) != sorted(folders):
        raise Conflict("the worktree records to prune changed since the plan: run gc again")
    kept: list[str] = []
    for entry in entries:
        head = entry.get("head")
        if entry.get("branch") or not isinstance(head, str) or git.commit_of(head) is None:
            continue
        if unique_commits(git, head):
            ref = f"{PRUNED_PREFIX}{Path(entry['path']).name}-{head[:12]}"
            try:
                git.run("update-ref", "-m", "orchestra gc: detached worktree pruned", ref, head)
            except GitError:
                ref = f"{PRUNED_PREFIX}{head}"
                git.run("update-ref", "-m", "orchestra gc: detached worktree pruned", ref, head)
            kept.append(ref)
    git.run("worktree", "prune")
    return kept
