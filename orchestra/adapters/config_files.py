"""Reading config files: the global one, the project one, the environment.

`raw_layers` is stdlib-only so the CLI can find the socket and `autostart`
without loading cattrs; `load` validates everything (daemon, `orchestra config`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.adapters import paths
from orchestra.core.errors import ConfigError

if TYPE_CHECKING:
    from orchestra.core.config import Effective


# Environment variables that override config keys.
ENV_KEYS = {
    "ORCHESTRA_SOCKET": "socket",
    "ORCHESTRA_LOG": "log_level",
    "ORCHESTRA_DETACH_KEYS": "detach_keys",
}


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    return {key: environ[var] for var, key in ENV_KEYS.items() if environ.get(var)}


def read_file(path: Path, *, nofollow: bool = False) -> dict[str, Any] | None:
    """A config file's table, None when it does not exist; bad TOML names the file and line.

    `nofollow`: refuse a symbolic link (the project's file comes with the repository,
    which could point it at any file of yours; the global one may well be a dotfile link).
    """
    try:
        opened = paths.open_nofollow(path, os.O_RDONLY) if nofollow else path
        f = open(opened, "rb")  # noqa: SIM115 - closed by the `with` below
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", file=str(path)) from None
    import tomllib  # only when a file exists: keeps it off a bare CLI call's start-up

    with f:
        raw = f.read()
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # TOML must be UTF-8
        message = f"{path}: invalid TOML: {_at_the_end(str(exc), raw)}"
        raise ConfigError(message, file=str(path)) from None


def _at_the_end(message: str, raw: bytes) -> str:
    """tomllib says "(at end of document)" where the file stops mid-value: give that line and
    column too, as for every other syntax error."""
    lines = raw.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it starts no new one
    if not lines:
        return message
    where = f"(at line {len(lines)}, column {len(lines[-1]) + 1}: the end of the file)"
    return message.replace("(at end of document)", where)


def raw_layers(
    project: Path | None, environ: Mapping[str, str] = os.environ
) -> list[tuple[str, dict[str, Any]]]:
    """(source, values) pairs, lowest precedence first, defaults excluded."""
    layers: list[tuple[str, dict[str, Any]]] = []
    files = [(paths.global_config_file(environ), False)]
    if project is not None:
        files.append((paths.ProjectPaths(project).config, True))
    for path, nofollow in files:
        values = read_file(path, nofollow=nofollow)
        if values is not None:
            layers.append((str(path), values))
    env = env_layer(environ)
    if env:
        layers.append(("environment", env))
    return layers


def load(project: Path | None, environ: Mapping[str, str] = os.environ) -> Effective:
    from orchestra.core.config import Layer, resolve

    layers = raw_layers(project, environ)
    try:
        return resolve([Layer(source=s, values=v) for s, v in layers])
    except ConfigError as exc:
        raise _located(exc) from None


def _located(exc: ConfigError) -> ConfigError:
    """The error in the words of the file: each bad key as it is written there
    (`agents.claude.command`, not cattrs' `$.agents['claude'].command`), with its line and
    column (as a TOML syntax error has them), so a person goes straight to it."""
    from orchestra.core.config import locate_key

    source, problems = exc.data.get("file"), exc.data.get("problems")
    if not isinstance(source, str) or not isinstance(problems, list):
        return exc
    try:
        text: str | None = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = None  # "merged config", or a file gone meanwhile: no lines to point at
    located = []
    for problem in map(str, problems):
        what, _, path = problem.partition(" @ $")
        key = ".".join(a or b for a, b in _PATH_PART.findall(path))
        if not key:
            located.append(problem)
            continue
        where = locate_key(text, key) if text is not None else None
        at = f" (at line {where[0]}, column {where[1]})" if where else ""
        located.append(f"{key}: {what}{at}")
    return ConfigError(f"{source}: " + "; ".join(located), file=source, problems=located)


_PATH_PART = re.compile(r"\['((?:[^'\\]|\\.)*)'\]|\.?([^.\[\]]+)")


def light_value(
    layers: list[tuple[str, dict[str, Any]]], key: str, kind: type, default: Any
) -> Any:
    """The topmost value of `key` (dotted for a table's key: "ui.keys") if it has the
    right type (the daemon validates the rest)."""
    *tables, name = key.split(".")
    for _source, values in reversed(layers):
        for table in tables:
            values = values.get(table)
            if not isinstance(values, dict):
                break
        else:
            value = values.get(name)
            if isinstance(value, kind):
                return value
    return default


MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with its NUL


def socket_path(layers: list[tuple[str, dict[str, Any]]], environ: Mapping[str, str]) -> Path:
    """The daemon's socket: an absolute path (after `~`) of at most 107 bytes, or a
    ConfigError naming where the setting came from. A relative one is refused: it would
    mean another socket, and another daemon, in each directory a command runs in (and
    put the socket and its lock in the repository)."""
    value = light_value(layers, "socket", str, None)
    if not value:
        path = paths.default_socket(environ)
        source = "the default socket (from XDG_RUNTIME_DIR or XDG_STATE_HOME)"
    else:
        source = next(s for s, v in reversed(layers) if v.get("socket") == value)
        source = "ORCHESTRA_SOCKET" if source == "environment" else source
        if "\x00" in value:  # no path can hold it: say which file, not a traceback
            raise ConfigError(
                f"{source}: socket must be a path (not empty, no NUL character), not {value!r}",
                file=source,
            )
        path = Path(value).expanduser()
        if not path.is_absolute():
            raise ConfigError(
                f"{source}: socket must be an absolute path (or start with ~/), not {value!r}",
                file=source,
            )
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"{source}: socket path {str(path)!r} is longer than {MAX_SOCKET_PATH} bytes (the"
            " limit of a Unix socket's path): set ORCHESTRA_SOCKET to a shorter one",
            file=source,
        )
    return path
