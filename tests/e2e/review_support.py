"""Helpers for the merge, diff and gc tests: tasks with real commits, and the guard that
checks no commit was lost and the repository is sound after every test.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.conftest import GIT_ENV, git
from tests.e2e.support import Api

SKIP_IN_MAIN = (".git", ".orchestra/worktrees", ".orchestra/logs.jsonl", ".orchestra/.lock")


def commits(repo: Path) -> set[str]:
    """Every commit reachable from any ref or worktree HEAD."""
    return set(git("rev-list", "--all", cwd=repo).split())


class Guard:
    """Remembers every commit seen; at the end, checks they are all still reachable and
    `git fsck` finds nothing wrong."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.seen: set[str] = set()
        self.mark()

    def mark(self) -> None:
        """Add the commits that exist now (call it before the operation under test)."""
        self.seen |= commits(self.repo)

    def check(self) -> None:
        fsck = subprocess.run(
            ["git", "fsck", "--no-progress", "--no-dangling"],
            cwd=self.repo,
            capture_output=True,
            text=True,
            env={**os.environ, **GIT_ENV},
        )
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert not fsck.stdout.strip(), fsck.stdout
        lost = self.seen - commits(self.repo)
        assert not lost, f"commits no longer reachable: {sorted(lost)}"


@pytest.fixture(name="guard")
def guard_fixture(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    """Before every daemon call and CLI command of the test, remember the commits that exist;
    after the test, check `git fsck` is clean and every one of them is still reachable."""
    g = Guard(api.root)
    call, cli = Api.__call__, Api.cli

    def marked_call(self: Api, method: str, **params: Any) -> Any:
        g.mark()
        return call(self, method, **params)

    def marked_cli(self: Api, *args: str) -> subprocess.CompletedProcess[str]:
        g.mark()
        return cli(self, *args)

    monkeypatch.setattr(Api, "__call__", marked_call)
    monkeypatch.setattr(Api, "cli", marked_cli)
    yield g
    g.check()


def commit_in(path: Path, files: dict[str, str], message: str) -> str:
    """Write `files` in the checkout at `path` and commit them; the new commit's sha."""
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git("add", "--", *files, cwd=path)
    git("commit", "-q", "-m", message, cwd=path)
    return git("rev-parse", "HEAD", cwd=path).strip()


def worktree(api: Api, task: dict[str, Any]) -> Path:
    return Path(task["worktree"])


def finished(
    api: Api,
    slug: str,
    commits_: list[dict[str, str]] | None = None,
    *,
    status: str = "completed",
    **params: Any,
) -> dict[str, Any]:
    """A task whose agent made `commits_` (one dict of files per commit) and stopped; then
    reported `status` (completed, reviewed, or stopped as it is)."""
    task = api.new(slug, title=f"Work on {slug}", **params)
    api("task.start", task=slug)
    wt = worktree(api, task)
    for n, files in enumerate(commits_ or [{f"{slug}.txt": f"{slug}\n"}], 1):
        commit_in(wt, files, f"{slug}: step {n}")
    api("task.stop", task=slug)
    if status in ("completed", "reviewed"):
        api("task.set_status", task=slug, status="complete")
    if status == "reviewed":
        api("task.set_status", task=slug, status="reviewed")
    return api.get(slug)


def tip(repo: Path, ref: str) -> str:
    return git("rev-parse", "--verify", f"{ref}^{{commit}}", cwd=repo).strip()


def has_ref(repo: Path, ref: str) -> bool:
    return (
        subprocess.run(
            ["git", "show-ref", "--verify", "--quiet", ref], cwd=repo, check=False
        ).returncode
        == 0
    )


def files_of(root: Path, skip: tuple[str, ...] = (".git",)) -> dict[str, str]:
    """Relative path -> sha256 of every file under `root` (symlinks by target)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        if path.is_symlink():
            out[rel] = "link:" + str(path.readlink())
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@attrs.frozen
class RepoState:
    refs: str
    worktrees: dict[str, tuple[str, str, str, dict[str, str]]]  # path -> head, status, index, files


def state(repo: Path) -> RepoState:
    """Refs, and for each worktree: HEAD, `status --porcelain=v2`, the index and file bytes."""
    refs = git("for-each-ref", "--format=%(refname) %(objectname) %(symref)", cwd=repo)
    trees: dict[str, tuple[str, str, str, dict[str, str]]] = {}
    for line in git("worktree", "list", "--porcelain", cwd=repo).splitlines():
        if not line.startswith("worktree "):
            continue
        path = Path(line.removeprefix("worktree "))
        main = path.resolve() == repo.resolve()
        trees[str(path)] = (
            git("rev-parse", "--symbolic-full-name", "HEAD", cwd=path)
            + git("rev-parse", "HEAD", cwd=path),
            git("status", "--porcelain=v2", "--branch", "--untracked-files=all", cwd=path),
            git("ls-files", "--stage", cwd=path),
            files_of(path, SKIP_IN_MAIN if main else (".git",)),
        )
    return RepoState(refs=refs, worktrees=trees)


def checkout_view(path: Path) -> tuple[str, str, str, dict[str, str]]:
    """A checkout as its person sees it, without Orchestra's own `.orchestra/` files (whose
    task file records a merge): HEAD, status, index and file bytes."""
    status = git("status", "--porcelain=v2", "--branch", "--untracked-files=all", cwd=path)
    return (
        git("rev-parse", "--symbolic-full-name", "HEAD", cwd=path)
        + git("rev-parse", "HEAD", cwd=path),
        "".join(line for line in status.splitlines(True) if ".orchestra/" not in line),
        git("ls-files", "--stage", cwd=path),
        files_of(path, (".git", ".orchestra")),
    )
