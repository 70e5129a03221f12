"""Git, through its command line: always an argument list, never a shell, and `--`
before any name derived from user input.

Inside the daemon, commands run through the Reaper (`procs.Reaper.run`) so the
reaper of orphaned agent processes never steals git's exit status.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from orchestra.core.errors import NotAProject, OrchestraError

Runner = Callable[..., "subprocess.CompletedProcess[bytes]"]


class GitError(OrchestraError):
    kind = "git"


def plain_run(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


@attrs.define
class Git:
    """Git commands for one repository (its main checkout at `root`)."""

    root: Path
    runner: Runner = plain_run

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        """`git <args>`; stdout as text, or GitError carrying git's own last line."""
        argv = ["git", *args]
        try:
            proc = self.runner(argv, cwd=cwd or self.root)
        except FileNotFoundError:
            raise GitError("git is not installed (or not on PATH)") from None
        if check and proc.returncode != 0:
            err = (proc.stderr or b"").decode(errors="replace").strip().splitlines()
            last = err[-1] if err else f"exit {proc.returncode}"
            raise GitError(f"git {args[0]} failed: {last}", args=list(args), exit=proc.returncode)
        return (proc.stdout or b"").decode(errors="replace")

    def ok(self, *args: str, cwd: Path | None = None) -> bool:
        proc = self.runner(["git", *args], cwd=cwd or self.root)
        return proc.returncode == 0

    def commit_of(self, ref: str) -> str | None:
        """The commit `ref` names, or None (`--end-of-options` keeps it from being an option)."""
        if not self.ok("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"):
            return None
        return self.run("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}").strip()

    def has_commits(self) -> bool:
        return self.ok("rev-parse", "--verify", "--quiet", "HEAD^{commit}")

    def current_branch(self) -> str | None:
        out = self.runner(["git", "symbolic-ref", "--quiet", "--short", "HEAD"], cwd=self.root)
        if out.returncode != 0:
            return None  # detached HEAD
        return out.stdout.decode().strip() or None

    def branch_exists(self, branch: str) -> bool:
        return self.ok("show-ref", "--verify", "--quiet", f"refs/heads/{branch}")

    def worktrees(self) -> list[dict[str, Any]]:
        """`git worktree list --porcelain`, parsed: path, head, branch (short), flags."""
        entries: list[dict[str, Any]] = []
        for block in self.run("worktree", "list", "--porcelain", "-z").split("\0\0"):
            entry: dict[str, Any] = {}
            for field in block.split("\0"):
                key, _, value = field.partition(" ")
                if key == "worktree":
                    entry["path"] = Path(value)
                elif key == "HEAD":
                    entry["head"] = value
                elif key == "branch":
                    entry["branch"] = value.removeprefix("refs/heads/")
                elif key:
                    entry[key] = value or True
            if "path" in entry:
                entries.append(entry)
        return entries

    def ahead(self, base: str, branch: str) -> int | None:
        """Commits on `branch` not on `base` (None when either is unknown)."""
        try:
            out = self.run("rev-list", "--count", f"{base}..{branch}", "--")
        except GitError:
            return None
        return int(out.strip() or 0)


def run(args: list[str], cwd: Path) -> str:
    """One-off git call outside the daemon (the CLI's `init`)."""
    return Git(cwd).run(*args)


def toplevel(path: Path) -> Path:
    """The root of the main checkout holding `path` (not of a linked worktree)."""
    try:
        common = run(["rev-parse", "--path-format=absolute", "--git-common-dir"], path).strip()
        bare = run(["rev-parse", "--is-bare-repository"], path).strip() == "true"
    except GitError:
        raise NotAProject(
            f"{path} is not inside a git repository: run `git init` first", path=str(path)
        ) from None
    if bare:
        raise NotAProject(
            f"{path} is a bare repository: Orchestra needs a checkout", path=str(path)
        )
    common_dir = Path(common)
    if common_dir.name == ".git":
        return common_dir.parent
    return Path(run(["rev-parse", "--show-toplevel"], path).strip())


def git_path(root: Path, name: str) -> Path:
    """`git rev-parse --git-path NAME`, absolute (info/exclude, hooks...)."""
    return Path(run(["rev-parse", "--path-format=absolute", "--git-path", name], root).strip())
