"""The error vocabulary shared by the daemon, the wire and every front end.

Each error kind carries two stable numbers: its JSON-RPC application code (what
scripts match on) and the CLI exit code (what shells match on). Both tables are
documented in docs/api.md and docs/cli.md; a test keeps them in step.

This module is stdlib-only: the CLI imports it on its fast path.
"""

from __future__ import annotations

from typing import Any, ClassVar

# CLI exit codes.
EXIT_OK = 0
EXIT_ERROR = 1  # anything not listed below
EXIT_USAGE = 2  # bad command line or bad value (also what Click uses)
EXIT_NOT_FOUND = 3  # no such task, project or file
EXIT_INVALID_STATE = 4  # the task's state does not allow the action
EXIT_UNREACHABLE = 5  # the daemon cannot be reached or started
EXIT_CONFLICT = 6  # the name or resource is taken / already exists


class OrchestraError(Exception):
    """Base of every error Orchestra reports on purpose.

    `code` is the JSON-RPC error code, `exit_code` the CLI exit status, and
    `data` a JSON-able dict of details for scripts.
    """

    code: ClassVar[int] = -32000
    exit_code: ClassVar[int] = EXIT_ERROR
    kind: ClassVar[str] = "error"

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "data": {"kind": self.kind, **self.data},
        }


class InvalidParams(OrchestraError, ValueError):
    """A value sent by a client breaks a rule (slug, label, type...)."""

    code = -32602
    exit_code = EXIT_USAGE
    kind = "invalid_params"


class NotFound(OrchestraError, LookupError):
    """No task, project or file by that name."""

    code = -32001
    exit_code = EXIT_NOT_FOUND
    kind = "not_found"


class InvalidTransition(OrchestraError):
    """The task's current state does not allow the requested move."""

    code = -32002
    exit_code = EXIT_INVALID_STATE
    kind = "invalid_transition"


class Conflict(OrchestraError):
    """The name is taken, or the resource exists and does not match."""

    code = -32003
    exit_code = EXIT_CONFLICT
    kind = "conflict"


class TaskFileError(OrchestraError):
    """A task file on disk cannot be read (a person broke its TOML, say)."""

    code = -32004
    kind = "task_file"


class ConfigError(OrchestraError):
    """A config file has a bad value, a wrong type or an unknown key."""

    code = -32005
    exit_code = EXIT_USAGE
    kind = "config"


class NotAProject(OrchestraError):
    """The directory is not a git repository or has no `.orchestra/`."""

    code = -32006
    exit_code = EXIT_NOT_FOUND
    kind = "not_a_project"


class UnsafeProject(NotAProject):
    """`.orchestra/` holds what Orchestra never makes: a symbolic link, or an entry another
    user owns or may write. Refused as a whole, as git refuses a repository another user owns."""

    kind = "unsafe_project"


class Unwritable(OrchestraError):
    """A file or directory of `.orchestra/` that a write needs does not let us write it."""

    kind = "unwritable"


class DaemonUnreachable(OrchestraError, ConnectionError):
    """Client side only: the daemon's socket does not answer."""

    code = -32010
    exit_code = EXIT_UNREACHABLE
    kind = "unreachable"


class HostUnreachable(DaemonUnreachable):
    """Client side only: ssh could not reach the host (or the link to it dropped)."""

    kind = "host_unreachable"


class HostRefused(DaemonUnreachable):
    """Client side only: the host refused the ssh login (key, host key)."""

    kind = "host_refused"


class NotOnHost(DaemonUnreachable):
    """Client side only: the host has no `orchestra` command for ssh to run."""

    kind = "orchestra_missing"


class VersionMismatch(DaemonUnreachable):
    """Client side only: the host's orchestra is another version than this one."""

    kind = "version_mismatch"


class UntrustedSocket(OrchestraError):
    """Client side only: the socket's directory or its listener is not the user's own, so
    nothing was sent (and no daemon is started there)."""

    code = -32011
    exit_code = EXIT_UNREACHABLE
    kind = "untrusted_socket"


class RemoteError(OrchestraError):
    """Client side: an error the daemon answered, kept with its code and data."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message, **(data or {}))
        self.remote_code = code

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.remote_code, "message": self.message, "data": self.data}

    @property
    def cli_exit_code(self) -> int:
        return EXIT_BY_CODE.get(self.remote_code, EXIT_ERROR)


# Every application error kind, for docs and for mapping remote codes back.
ERROR_KINDS: tuple[type[OrchestraError], ...] = (
    InvalidParams,
    NotFound,
    InvalidTransition,
    Conflict,
    TaskFileError,
    ConfigError,
    NotAProject,
    DaemonUnreachable,
    UntrustedSocket,
)

EXIT_BY_CODE: dict[int, int] = {
    **{kind.code: kind.exit_code for kind in ERROR_KINDS},
    -32700: EXIT_ERROR,
    -32600: EXIT_ERROR,
    -32601: EXIT_ERROR,
}
