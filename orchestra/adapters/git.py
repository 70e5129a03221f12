"""Git, through its command line: always an argument list, never a shell."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orchestra.core.errors import NotAProject, OrchestraError


class GitError(OrchestraError):
    kind = "git"


def run(args: list[str], cwd: Path) -> str:
    """Run `git <args>` in `cwd`; return stdout, or raise GitError with git's own message."""
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    if proc.returncode != 0:
        message = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise GitError(f"git {args[0]} failed: {message[0]}", args=args, stderr=proc.stderr)
    return proc.stdout


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
    out = run(["rev-parse", "--path-format=absolute", "--git-path", name], root).strip()
    return Path(out)
