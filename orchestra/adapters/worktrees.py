"""A task's worktree: create it (or find the consistent one from an earlier run).

`.orchestra/worktrees/{id}-{slug}` on branch `orchestra/{id}-{slug}`, made from
the base branch's tip, which is recorded (`base_sha`) so diffs and "commits
ahead" measure what the agent did, not what moved on the base since. Anything
in the way that does not match (a folder that is not our worktree, the branch
checked out elsewhere) is a clear error: we never overwrite.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import attrs

from orchestra.adapters.git import Git, GitError
from orchestra.adapters.paths import DOT, ProjectPaths
from orchestra.core.errors import Conflict
from orchestra.core.tasks import Task

INCLUDE_FILE = ".worktreeinclude"


@attrs.frozen(kw_only=True)
class Worktree:
    path: Path
    branch: str
    base: str  # the base branch's name
    base_sha: str  # its tip when the worktree was made (or the merge-base on reuse)
    created: bool
    copied: tuple[str, ...] = ()


def choose_base(git: Git, task: Task, default: str | None) -> tuple[str, str]:
    """(base branch, its tip): the task's, else config's, else the checkout's branch."""
    if not git.has_commits():
        raise GitError(f"{git.root} has no commits yet: make a first commit, then start the task")
    base = task.base_branch or default or git.current_branch()
    if base is None:
        raise GitError(
            "the main checkout is on a detached HEAD: give the task a base branch"
            " (orchestra edit, base_branch = ...) or set base_branch in config"
        )
    sha = git.commit_of(base)
    if sha is None:
        raise GitError(f"base branch {base!r} does not exist in {git.root}", base=base)
    return base, sha


def prepare(
    git: Git, paths: ProjectPaths, task: Task, *, default_base: str | None, submodules: bool
) -> Worktree:
    """Make the task's worktree, or reuse the one an earlier start made."""
    path = paths.worktree(task.stem)
    branch = task.branch
    base, base_sha = choose_base(git, task, default_base)
    by_path = {w["path"]: w for w in git.worktrees()}
    existing = by_path.get(path)
    if existing is not None:
        if existing.get("branch") != branch:
            raise Conflict(
                f"{path} is a worktree on {existing.get('branch') or 'a detached HEAD'},"
                f" not {branch}: remove it (git worktree remove) or move it away",
                path=str(path),
            )
        if "prunable" in existing or not path.is_dir():
            raise Conflict(f"the worktree record for {path} is stale: run `git worktree prune`")
        merge_base = git.run("merge-base", base_sha, branch).strip()
        return Worktree(path=path, branch=branch, base=base, base_sha=merge_base, created=False)
    if path.exists():
        raise Conflict(
            f"{path} exists but is not a worktree of this repository: move it away first",
            path=str(path),
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if git.branch_exists(branch):
        holder = next((w for w in by_path.values() if w.get("branch") == branch), None)
        if holder is not None:
            raise Conflict(
                f"branch {branch} is checked out in {holder['path']}: switch that checkout"
                " to another branch first",
                branch=branch,
            )
        git.run("worktree", "add", "--", str(path), branch)
        base_sha = git.run("merge-base", base_sha, branch).strip()
    else:
        git.run("worktree", "add", "-b", branch, "--", str(path), base_sha)
    if submodules and (path / ".gitmodules").exists():
        git.run("submodule", "update", "--init", "--recursive", cwd=path)
    copied = copy_included(git, paths.root, path)
    return Worktree(
        path=path, branch=branch, base=base, base_sha=base_sha, created=True, copied=copied
    )


def copy_included(git: Git, root: Path, dest: Path) -> tuple[str, ...]:
    """Copy the ignored files `.worktreeinclude` names (gitignore syntax) into `dest`.

    Git itself matches the patterns (`ls-files --others --ignored --exclude-from`),
    so the syntax is exactly gitignore's. As in the convention other tools share,
    a file is copied only if git also ignores it: untracked files git does not
    ignore (`ls-files --others --exclude-standard`) are left out, like tracked ones.
    """
    include = root / INCLUDE_FILE
    if not include.is_file():
        return ()
    out = git.run("ls-files", "--others", "--ignored", "-z", f"--exclude-from={include}", "--", ".")
    unignored = set(
        git.run("ls-files", "--others", "--exclude-standard", "-z", "--", ".").split("\0")
    )
    copied = []
    for rel in filter(None, out.split("\0")):
        if rel in unignored or rel.startswith(f"{DOT}/") or ".." in Path(rel).parts:
            continue
        src, dst = root / rel, dest / rel
        if src.is_symlink() or not src.is_file() or dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        copied.append(rel)
    return tuple(copied)


def remove(git: Git, path: Path) -> None:
    """Remove a task's worktree (clean ones only: git refuses a dirty worktree)."""
    git.run("worktree", "remove", "--", str(path))
