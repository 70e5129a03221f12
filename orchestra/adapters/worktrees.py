"""A task's worktree: create it (or find the consistent one from an earlier run).

`.orchestra/worktrees/{id}-{slug}` on branch `orchestra/{id}-{slug}`, made from
the base branch's tip, which is recorded (`base_sha`) so diffs and "commits
ahead" measure what the agent did, not what moved on the base since. Anything
in the way that does not match (a folder that is not our worktree, the branch
checked out elsewhere) is a clear error: we never overwrite.

A worktree's path is always a real directory directly in the real
`.orchestra/worktrees/` (`check_path`, before git adds or removes one): a symbolic
link there would have git make the worktree elsewhere, or empty the link's target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

import attrs

from orchestra.adapters.git import Git, GitError
from orchestra.adapters.paths import DOT, ProjectPaths, link_target, symlink_refused
from orchestra.core.errors import Conflict, NotFound
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
    not_copied: tuple[str, ...] = ()  # "{file}: why", for the log


def choose_base(git: Git, task: Task, default: str | None) -> tuple[str, str]:
    """(base branch, its tip): the task's, else config's, else the checkout's branch."""
    if not git.has_commits():
        raise GitError(f"{git.root} has no commits yet: make a first commit, then start the task")
    base = task.base_branch or default or git.current_branch()
    if base is None:
        raise GitError(
            "the main checkout is on a detached HEAD, so the task has no branch to start"
            " from: give it a base branch (its base_branch field), or set base_branch in the"
            " project's config"
        )
    sha = git.commit_of(base)
    if sha is None:
        raise missing_base(git, base)
    return base, sha


def missing_base(git: Git, base: str) -> NotFound:
    return NotFound(
        f"base branch {base!r} does not exist in {git.root}: create it, or give the task a"
        " branch that exists",
        base=base,
    )


def check_base(git: Git, base: str | None) -> None:
    """Refuse a base branch that does not exist, where the repository has commits (in a new
    one no branch exists yet: its start says to make the first commit)."""
    if base is not None and git.has_commits() and git.commit_of(base) is None:
        raise missing_base(git, base)


def prepare(
    git: Git, paths: ProjectPaths, task: Task, *, default_base: str | None, submodules: bool
) -> Worktree:
    """Make the task's worktree, or reuse the one an earlier start made."""
    path = paths.worktree(task.stem)
    check_path(paths.worktrees, path)
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
    copied, not_copied = copy_included(git, paths.root, path)
    return Worktree(
        path=path,
        branch=branch,
        base=base,
        base_sha=base_sha,
        created=True,
        copied=copied,
        not_copied=not_copied,
    )


def check_path(worktrees: Path, path: Path) -> None:
    """Refuse a worktree `path` that is not a real directory (or nothing yet) directly in
    the real `worktrees` directory. `worktrees` is under a root that was resolved."""
    if path.parent != worktrees or path.name in ("", ".", ".."):
        raise Conflict(f"{path} is not a folder of {worktrees}: refused", path=str(path))
    for part in (worktrees.parent, worktrees):
        if part.is_symlink():
            raise symlink_refused(part)
    if path.is_symlink():
        raise link_refused(path)


def link_refused(path: Path) -> Conflict:
    """The error for a task's worktree that is a symbolic link: used, or removed, never."""
    return Conflict(
        f"{path} is a symbolic link{link_target(path)}, not a worktree Orchestra made:"
        " it and what it points to are left as they are; remove the link"
        f" (`rm {path}`), then run `git worktree prune`",
        path=str(path),
    )


def copy_included(git: Git, root: Path, dest: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Copy the ignored files `.worktreeinclude` names (gitignore syntax) into `dest`;
    (the files copied, "{file}: why" for those that were not).

    Git itself matches the patterns (`ls-files --others --ignored --exclude-from`),
    so the syntax is exactly gitignore's. As in the convention other tools share,
    a file is copied only if git also ignores it: untracked files git does not
    ignore (`ls-files --others --exclude-standard`) are left out, like tracked ones.
    A file already in `dest` is left as it is. No symbolic link is followed, on either
    side: the base branch may commit `cfg -> /elsewhere`, which must not have a
    secret `cfg/.env` written to `/elsewhere/.env` (see `_copy_one`).
    """
    include = root / INCLUDE_FILE
    if include.is_symlink() or not include.is_file():
        return (), ()
    out = git.run("ls-files", "--others", "--ignored", "-z", f"--exclude-from={include}", "--", ".")
    unignored = set(
        git.run("ls-files", "--others", "--exclude-standard", "-z", "--", ".").split("\0")
    )
    copied, refused = [], []
    for rel in filter(None, out.split("\0")):
        parts = Path(rel).parts
        if rel in unignored or rel.startswith(f"{DOT}/") or ".." in parts or "/" in parts:
            continue
        try:
            if _copy_one(root, dest, parts):
                copied.append(rel)
        except _Refused as exc:
            refused.append(f"{rel}: {exc}")
    return tuple(copied), tuple(refused)


class _Refused(Exception):
    """Why one included file was not copied."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _copy_one(root: Path, dest: Path, parts: Sequence[str]) -> bool:
    """Copy `root/parts` to `dest/parts` (mode and times too), each directory opened
    relative to the one before with O_NOFOLLOW: nothing is read from outside `root` or
    written outside `dest`. False if the file is already in `dest` or is no longer there."""
    *dirs, name = parts
    with contextlib.ExitStack() as stack:
        src_dir = _descend(root, dirs, create=False, stack=stack)
        try:
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_dir)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _Refused(_why(src_dir, name, root, dirs, exc)) from None
        fsrc = stack.enter_context(os.fdopen(src, "rb"))
        info = os.fstat(src)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"{root.joinpath(*dirs, name)} is not a regular file")
        dst_dir = _descend(dest, dirs, create=True, stack=stack)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        try:
            out = os.open(name, flags, 0o600, dir_fd=dst_dir)
        except FileExistsError:
            return False  # a file (or a link) the branch has there: kept
        with os.fdopen(out, "wb") as fdst:
            shutil.copyfileobj(fsrc, fdst)
            fdst.flush()
            os.fchmod(out, stat.S_IMODE(info.st_mode) & 0o777)
            os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))
    return True


def _descend(top: Path, dirs: Sequence[str], *, create: bool, stack: contextlib.ExitStack) -> int:
    """An fd of `top/dirs...`, opened one level at a time, never through a symbolic link;
    missing directories are made if `create`."""
    fd = os.open(top, _DIR_FLAGS)
    stack.callback(os.close, fd)
    for i, part in enumerate(dirs):
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o777, dir_fd=fd)
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise _Refused(_why(fd, part, top, dirs[:i], exc)) from None
        stack.callback(os.close, child)
        fd = child
    return fd


def _why(dir_fd: int, name: str, top: Path, dirs: Sequence[str], exc: OSError) -> str:
    path = top.joinpath(*dirs, name)
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
            return (
                f"{path} is a symbolic link (to {os.readlink(name, dir_fd=dir_fd)!r}): not followed"
            )
    if exc.errno == errno.ENOTDIR:
        return f"{path} is not a directory"
    return f"{path}: {exc.strerror}"
