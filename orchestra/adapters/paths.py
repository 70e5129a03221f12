"""Where things live: XDG dirs, the socket, a project's `.orchestra/` tree.

Stdlib-only (the CLI's fast path uses it). Nothing here creates files except
`private_dir`, which makes the daemon's 0700 socket directory.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from orchestra.core.errors import NotAProject

DOT = ".orchestra"


def _xdg(environ: Mapping[str, str], var: str, fallback: str) -> Path:
    value = environ.get(var, "")
    # The XDG spec says relative values are invalid and must be ignored.
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(environ.get("HOME") or Path.home()) / fallback


def config_home(environ: Mapping[str, str] = os.environ) -> Path:
    return _xdg(environ, "XDG_CONFIG_HOME", ".config") / "orchestra"


def global_config_file(environ: Mapping[str, str] = os.environ) -> Path:
    return config_home(environ) / "config.toml"


def state_home(environ: Mapping[str, str] = os.environ) -> Path:
    return _xdg(environ, "XDG_STATE_HOME", ".local/state") / "orchestra"


def default_socket(environ: Mapping[str, str] = os.environ) -> Path:
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime and Path(runtime).is_absolute():
        return Path(runtime) / "orchestra" / "orchestra.sock"
    return state_home(environ) / "run" / "orchestra.sock"


def lock_file(socket: Path) -> Path:
    """The one-daemon-per-user lock sits beside the socket."""
    return socket.with_name(socket.name + ".lock")


def daemon_log_file(environ: Mapping[str, str] = os.environ) -> Path:
    return state_home(environ) / "daemon.log"


def known_projects_file(environ: Mapping[str, str] = os.environ) -> Path:
    return state_home(environ) / "projects.json"


def private_dir(path: Path) -> Path:
    """Create `path` as a 0700 directory we own, or refuse one someone else can enter."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(  # with its errno, so callers report it as a refusal
            errno.EACCES, f"{path} belongs to uid {info.st_uid}, not to us; refusing to use it"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
    return path


class ProjectPaths:
    """The files of one project, derived from its root (the main checkout)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dot = root / DOT
        self.config = self.dot / "config.toml"
        self.tasks = self.dot / "tasks"
        self.worktrees = self.dot / "worktrees"
        self.archive = self.dot / "archive"
        self.log = self.dot / "logs.jsonl"
        self.lock = self.dot / ".lock"
        self.next_id = self.dot / "next_id"

    def task_file(self, stem: str) -> Path:
        return self.tasks / f"{stem}.md"

    def worktree(self, stem: str) -> Path:
        return self.worktrees / stem


def find_project(start: Path) -> Path:
    """The project root holding `start`: the nearest dir with `.orchestra/`.

    Inside a task's worktree (`<root>/.orchestra/worktrees/<stem>/...`) that is the
    outer project, not a `.orchestra/` the worktree checked out of git.
    """
    start = start.resolve()
    parts = start.parts
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] == "worktrees" and parts[i - 1] == DOT:
            return Path(*parts[: i - 1])
    for candidate in (start, *start.parents):
        if (candidate / DOT).is_dir():
            return candidate
    raise NotAProject(
        f"{start} is not inside an Orchestra project: run `orchestra init` in a git repository",
        path=str(start),
    )


def check_project_root(raw: object) -> Path:
    """Validate a project root sent over the wire: absolute, existing, initialised."""
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise NotAProject(f"invalid project path {raw!r}: give an absolute path", path=str(raw))
    path = Path(raw)
    if not path.is_absolute():
        raise NotAProject(f"invalid project path {raw!r}: give an absolute path", path=raw)
    root = path.resolve()
    if not (root / DOT).is_dir():
        raise NotAProject(
            f"{raw} is not an Orchestra project (no {DOT}/ directory): run `orchestra init` there",
            path=raw,
        )
    return root
