"""Where things live: XDG dirs, the socket, a project's `.orchestra/` tree.

Stdlib-only (the CLI's fast path uses it). Nothing here creates files except
`private_dir`, which makes the daemon's 0700 socket and state directories.

A project's `.orchestra/` comes with the repository, so it is checked before it is
used (`check_dot`): no symbolic link in it (a committed `logs.jsonl -> ~/.bashrc` would
have the daemon append to that file), and nothing another user owns or may write (as
git's `safe.directory` refuses a repository another user owns). Files in it are opened
with O_NOFOLLOW (`open_nofollow`), so a link planted after the check is refused too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from orchestra.core.errors import NotAProject, UnsafeProject

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


def foreign(path: Path) -> str | None:
    """Why the existing `path` is not a directory of ours (lstat: a symbolic link is not
    followed), or None when it is; FileNotFoundError when there is nothing there."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    if info.st_uid != os.geteuid():
        return f"{path} belongs to uid {info.st_uid}, not to us (uid {os.geteuid()})"
    return None


def open_to_others(path: Path) -> int:
    """The group and other permission bits of `path` (0 for a private one)."""
    return stat.S_IMODE(os.lstat(path).st_mode) & 0o077


def private_dir(path: Path) -> Path:
    """Create `path` as a 0700 directory we own (tightening one of ours that is wider),
    or refuse one someone else owns, a symbolic link or a file."""
    with contextlib.suppress(FileExistsError):  # whatever is there is judged below
        path.mkdir(mode=0o700, parents=True)
    problem = foreign(path)
    if problem is not None:
        raise PermissionError(  # with its errno, so callers report it as a refusal
            errno.EACCES, f"{problem}; refusing to use it"
        )
    if open_to_others(path):
        path.chmod(0o700)
    return path


def tighten(path: Path) -> None:
    """Take the group and other bits off the file `path` if it exists (made before
    everything Orchestra writes was 0600). A symbolic link there is left alone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    finally:
        os.close(fd)


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

    @property
    def dirs(self) -> tuple[Path, ...]:
        """The directories of `.orchestra/` that Orchestra reads or writes in."""
        return (self.tasks, self.worktrees, self.archive)

    @property
    def files(self) -> tuple[Path, ...]:
        """The files directly in `.orchestra/` that Orchestra reads or writes."""
        return (self.config, self.log, self.lock, self.next_id)


def check_project_root(raw: object) -> Path:
    """Validate a project root sent over the wire: absolute, existing, initialised, and
    its `.orchestra/` safe to use (`check_dot`)."""
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise NotAProject(f"invalid project path {raw!r}: give an absolute path", path=str(raw))
    path = Path(raw)
    if not path.is_absolute():
        raise NotAProject(f"invalid project path {raw!r}: give an absolute path", path=raw)
    root = path.resolve()
    dot = root / DOT
    if not (dot.is_symlink() or dot.is_dir()):
        raise NotAProject(
            f"{raw} is not an Orchestra project (no {DOT}/ directory): run `orchestra init` there",
            path=raw,
        )
    check_dot(ProjectPaths(root))
    return root


def check_dot(paths: ProjectPaths) -> None:
    """Refuse a `.orchestra/` that Orchestra would not have made (see the module docstring).

    `.orchestra/` and each entry Orchestra uses in it (those that exist) must be a real
    directory or file, not a symbolic link, owned by us and writable by nobody else. A
    dozen lstat calls: cheap enough for every call that names the project.
    """
    _check_entry(paths.dot, paths.dot, directory=True)
    for path in paths.dirs:
        _check_entry(path, paths.dot, directory=True)
    for path in paths.files:
        _check_entry(path, paths.dot, directory=False)


def _check_entry(path: Path, dot: Path, *, directory: bool) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise symlink_refused(path)
    if directory != stat.S_ISDIR(info.st_mode) or not (directory or stat.S_ISREG(info.st_mode)):
        kind = "a directory" if directory else "a regular file"
        raise UnsafeProject(
            f"{path} is not {kind}: move it out of {dot}/ and run the command again",
            path=str(path),
        )
    if info.st_uid != os.geteuid():
        raise UnsafeProject(
            f"{path} belongs to {_user(info.st_uid)}, not to you ({_user(os.geteuid())}):"
            f" Orchestra only uses a {DOT}/ you own. If you trust it, take it over"
            f" (`chown -R {_user(os.geteuid(), bare=True)} {dot}`)",
            path=str(path),
            uid=info.st_uid,
        )
    if _writable_by_others(info):
        raise UnsafeProject(
            f"{path} can be written by other users (mode {stat.S_IMODE(info.st_mode):04o}):"
            f" Orchestra only uses a {DOT}/ nobody else can change; run `chmod go-w {path}`",
            path=str(path),
            mode=stat.S_IMODE(info.st_mode),
        )


def _writable_by_others(info: os.stat_result) -> bool:
    """World-writable, or writable by a group other than our own primary group (a umask of
    002 gives every file of a user-private group that bit: it lets nobody else in)."""
    if info.st_mode & stat.S_IWOTH:
        return True
    return bool(info.st_mode & stat.S_IWGRP) and info.st_gid != os.getegid()


def _user(uid: int, *, bare: bool = False) -> str:
    import pwd  # only on the error path

    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid) if bare else f"uid {uid}"
    return name if bare else f"{name} (uid {uid})"


def symlink_refused(path: Path) -> UnsafeProject:
    """The error for a symbolic link where Orchestra expects its own file or directory."""
    return UnsafeProject(
        f"{path} is a symbolic link{link_target(path)}; Orchestra never follows links in {DOT}/ (a"
        f" repository could point them anywhere): remove it (`rm {path}`) and run the"
        " command again",
        path=str(path),
    )


def link_target(path: Path) -> str:
    """ " (to 'target')" for a message about the symbolic link `path`."""
    try:
        return f" (to {str(path.readlink())!r})"
    except OSError:
        return ""


def open_nofollow(path: Path, flags: int, mode: int = 0o600) -> int:
    """`os.open` that refuses `path` if it is a symbolic link (UnsafeProject); the parents
    are `check_dot`'s. Created files get `mode` (0600: the log holds agents' output)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(path) from None
        raise
