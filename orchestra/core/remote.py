"""Reaching a daemon on another machine over SSH: the pure part (no process, no socket).

The transport is the system's `ssh`, run as a child: `ssh -T HOST orchestra bridge`, whose
remote end connects its stdin and stdout to that host's daemon (`cli/bridge.py`). Here:
which host a name means (`[hosts.NAME]`, else the name is an ssh destination), the ssh
command line (with a shared control connection, when the user's own ssh config sets none),
the bridge's greeting (it says its version first), and what a failed `ssh` means, in one
line a person can act on. `client/remote.py` runs it.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from orchestra.core.errors import (
    ConfigError,
    DaemonUnreachable,
    HostRefused,
    HostUnreachable,
    InvalidParams,
    NotOnHost,
    OrchestraError,
    VersionMismatch,
)

HELLO = "bridge.hello"  # the bridge's first line: a JSON-RPC notification
LOCAL = "local"  # `--host local`: this machine's daemon, whatever the default host is
CONNECT_TIMEOUT = 15  # s for ssh's TCP connect
CONTROL_PERSIST = "10m"  # how long a shared connection outlives its last command
SSH_FAILED = 255  # ssh's own exit status for a failure of its own (not the remote command's)
COMMAND_NOT_FOUND = 127  # the remote shell's, for a command it cannot find
MAX_GREETING_NOISE = 100  # lines a remote shell may print before the greeting


class Target(NamedTuple):
    """A host as the client reaches it: `name` as the user gave it, `destination` as ssh
    takes it, the default `project` there, the `orchestra` command there, the `ssh` argv."""

    name: str
    destination: str
    project: str | None
    orchestra: str
    ssh: tuple[str, ...]


def check_destination(value: str, what: str = "host") -> str:
    """An ssh destination (`box`, `user@box`, `ssh://user@box:2222`): one word, not an option."""
    if (
        not value
        or value.startswith("-")
        or any(c.isspace() or not c.isprintable() for c in value)
        or len(value) > 1024
    ):
        raise InvalidParams(
            f"{what} must be an ssh destination (user@box, an alias from ~/.ssh/config,"
            f" ssh://user@box:2222): one word not starting with '-', not {value!r}",
            field=what,
        )
    return value


def target(name: str, hosts: Mapping[str, Any], ssh: Sequence[str]) -> Target:
    """The host `name` means: its `[hosts.NAME]` table if there is one (its `address`
    defaults to the name), else `name` itself as the ssh destination. The client reads
    these keys itself (no daemon of ours validates them), so their types are checked here."""
    table = hosts.get(name, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"hosts.{name} must be a table", key=f"hosts.{name}")

    def text(key: str, default: str | None) -> str | None:
        value = table.get(key, default)
        if value is not None and not (isinstance(value, str) and value and "\x00" not in value):
            raise ConfigError(f"hosts.{name}.{key} must be a string", key=f"hosts.{name}.{key}")
        return value

    argv = table.get("ssh") or ssh or ["ssh"]
    if not (isinstance(argv, list | tuple) and all(isinstance(a, str) and a for a in argv)):
        raise ConfigError(
            f'hosts.{name}.ssh (or ssh) must be an argv such as ["ssh", "-F", "cfg"]',
            key=f"hosts.{name}.ssh",
        )
    project = text("project", None)
    if project is not None and not project.startswith("/"):
        raise ConfigError(
            f"hosts.{name}.project must be an absolute path on {name}, not {project!r}",
            key=f"hosts.{name}.project",
        )
    return Target(
        name=name,
        destination=check_destination(text("address", None) or name),
        project=project,
        orchestra=text("orchestra", "orchestra") or "orchestra",
        ssh=tuple(argv),
    )


NO_START = "--no-start"  # `orchestra bridge --no-start`: never start the daemon there


def remote_command(t: Target, *, start: bool = True) -> str:
    """What ssh asks the remote shell to run (ssh joins its words with spaces for that
    shell, so the command is quoted for it)."""
    return f"{shlex.quote(t.orchestra)} bridge" + ("" if start else f" {NO_START}")


def control_name(t: Target) -> str:
    """The file name of our shared connection to `t`: one per ssh command and destination
    (a hash: no character of either reaches the path)."""
    import hashlib

    key = "\0".join([*t.ssh, t.destination])
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def uses_control(effective: str) -> bool:
    """Whether the user's ssh config (`ssh -G`'s output) already shares connections: then
    their settings are theirs, and we add none."""
    settings = dict(
        line.split(" ", 1) for line in effective.lower().splitlines() if " " in line.strip()
    )
    return settings.get("controlmaster", "false") != "false" or settings.get(
        "controlpath", "none"
    ) not in ("none", "")


def ssh_argv(t: Target, control_path: str | None, *, start: bool = True) -> list[str]:
    """The ssh command line: no terminal (`-T`: the bridge speaks JSON-RPC, the attach
    stream is ours), keep-alives and a connect timeout, our shared connection when
    `control_path` is given, then the destination after `--`, so that no host name is
    taken for an option."""
    argv = [*t.ssh, "-T", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3"]
    argv += ["-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
    if control_path is not None:
        argv += ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_path}"]
        argv += ["-o", f"ControlPersist={CONTROL_PERSIST}"]
    return [*argv, "--", t.destination, remote_command(t, start=start)]


def hello(version: str, error: OrchestraError | None = None) -> bytes:
    """The bridge's greeting: its version, and the error when it could not reach its daemon."""
    params: dict[str, Any] = {"version": version}
    if error is not None:
        params["error"] = error.to_wire()
    return json.dumps({"jsonrpc": "2.0", "method": HELLO, "params": params}).encode() + b"\n"


def greeting(line: bytes) -> dict[str, Any] | None:
    """The greeting's params if `line` is one, else None (a remote shell's startup file
    may print a banner first)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not (isinstance(message, dict) and message.get("method") == HELLO):
        return None
    params = message.get("params")
    return params if isinstance(params, dict) and isinstance(params.get("version"), str) else None


def check_greeting(t: Target, params: Mapping[str, Any], version: str) -> None:
    """Refuse a bridge of another version, or one that could not reach its daemon."""
    theirs = params["version"]
    if theirs != version:
        raise VersionMismatch(
            f"{t.name} runs orchestra {theirs}, this machine {version}: install the same"
            " version on both sides",
            host=t.name,
            remote_version=theirs,
            local_version=version,
        )
    error = params.get("error")
    if isinstance(error, Mapping):
        message = str(error.get("message") or "the daemon cannot be reached")
        raise DaemonUnreachable(f"on {t.name}: {message}", host=t.name)


def failure(t: Target, code: int | None, stderr: str) -> OrchestraError:
    """What it means that ssh ended (`code`; None: still running) before the greeting."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    said = " ".join(lines[-3:])
    data = {"host": t.name, "exit_code": code, "ssh": last}
    if code == COMMAND_NOT_FOUND or "command not found" in said or "not found" in last:
        return NotOnHost(
            f"`{t.orchestra}` is not found on {t.name}: install orchestra there (on the PATH"
            f" of non-interactive ssh sessions), or set hosts.{t.name}.orchestra to its path",
            **data,
        )
    if code == SSH_FAILED:
        lowered = said.lower()
        if "permission denied" in lowered or "too many authentication failures" in lowered:
            return HostRefused(
                f"{t.name} refused the login ({last}): `ssh {t.destination} true` must work"
                " without a prompt (load your key with ssh-add, or add it to the host's"
                " authorized_keys)",
                **data,
            )
        if "host key verification failed" in lowered:
            return HostRefused(
                f"{t.name}: host key verification failed: connect once with"
                f" `ssh {t.destination}` to check and accept its key",
                **data,
            )
        return HostUnreachable(f"cannot reach {t.name}: {last or 'ssh failed'}", **data)
    if code is None:
        return HostUnreachable(
            f"{t.name} did not answer in time: {last or 'no greeting from orchestra bridge'}",
            **data,
        )
    return HostUnreachable(
        f"ssh {t.destination} ended (exit {code}) before orchestra answered"
        + (f": {last}" if last else ""),
        **data,
    )
