"""Config schema and layering, without file I/O.

Layers, lowest first: built-in defaults, the global file
(`$XDG_CONFIG_HOME/orchestra/config.toml`), the project file
(`.orchestra/config.toml`), then the environment (`ORCHESTRA_SOCKET`,
`ORCHESTRA_LOG`, `ORCHESTRA_DETACH_KEYS`). Tables merge key by key, so a project
can override one field of one agent. Every layer is validated on its own first,
so an error names the file (or variable) that holds the bad value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.gen import make_mapping_structure_fn
from cattrs.v import transform_error

from orchestra.core import names
from orchestra.core.agents import BUILTIN_AGENTS, ScreenPattern, builtin_agents
from orchestra.core.agents import AgentProfile as AgentProfile  # re-exported
from orchestra.core.detach import DEFAULT_DETACH_KEYS, parse_detach_keys
from orchestra.core.errors import ConfigError, InvalidParams
from orchestra.core.remote import check_destination

LOG_LEVELS: Final = ("off", "warn", "info", "debug", "trace")
CONFIRM: Final = ("ask", "yes", "no")
MERGE_STRATEGIES: Final = ("squash", "merge", "rebase")


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ValueError(f"{attr.name} must be one of {', '.join(choices)}, not {value!r}")

    return check


def _positive(_inst: object, attr: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attr.name} must be greater than 0, not {value!r}")


def _port(_inst: object, attr: attrs.Attribute[Any], value: int) -> None:
    if not 1024 <= value <= 65000:
        raise ValueError(f"{attr.name} must be between 1024 and 65000, not {value!r}")


def _detach(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    try:
        parse_detach_keys(value)
    except ValueError as exc:
        raise ValueError(f"{attr.name}: {exc}") from None  # name the key, as the others do


def _agent_name(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    try:
        names.check_agent(value)
    except ValueError as exc:
        raise ValueError(f"{attr.name}: {exc}") from None


def _branch(_inst: object, attr: attrs.Attribute[Any], value: str | None) -> None:
    try:
        if value is not None:
            names.check_branch(value)
    except ValueError as exc:
        raise ValueError(f"{attr.name}: {exc}") from None


def _path(_inst: object, attr: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and (not value or "\x00" in value):
        raise ValueError(f"{attr.name} must be a path (not empty, no NUL character), not {value!r}")


def _agent_names(_inst: object, attr: attrs.Attribute[Any], value: dict[str, Any]) -> None:
    for name in value:
        try:
            names.check_agent(name)
        except ValueError as exc:
            raise ValueError(f"{attr.name}: {exc}") from None


@attrs.frozen(kw_only=True)
class MergeConfig:
    """`[merge]`: how `orchestra merge` takes a task's branch back (docs/config.md)."""

    strategy: str = attrs.field(default="squash", validator=_one_of(MERGE_STRATEGIES))
    cleanup: bool = True  # after a merge: teardown, remove the worktree, delete the branch


def _argv(_inst: object, attr: attrs.Attribute[Any], value: list[str]) -> None:
    if value and (not value[0] or any("\x00" in arg for arg in value)):
        raise ValueError(
            f"{attr.name} must be an argv (a non-empty program, no NUL character),"
            f' e.g. ["notify-me", "--urgent"], not {value!r}'
        )


@attrs.frozen(kw_only=True)
class NotifyConfig:
    """`[notify]`: telling the person when a task needs them or ends (docs/config.md)."""

    # A desktop notification (notify-send on Linux, osascript on macOS) where one exists.
    desktop: bool = True
    # An argv run (never through a shell) on every change to waiting, completed or failed,
    # with ORCHESTRA_TASK, _SLUG, _PROJECT, _ACTIVITY, _PREVIOUS, _REASON in its environment.
    command: list[str] = attrs.field(factory=list, validator=_argv)
    # Ring the terminal of every attached client when another task starts waiting.
    bell: bool = True
    # Seconds a notifier may take before it is killed (and logged).
    timeout: float = attrs.field(default=10.0, validator=_positive)


# What the dashboard's keys do, by name (`[ui.keys]` maps a name to its keys).
UI_ACTIONS: Final = (
    "quit", "attach", "new", "start", "stop", "complete", "fail", "reviewed", "type",
    "merge", "gc", "edit", "filter", "order", "down", "up", "help",
)  # fmt: skip
_UI_KEY: Final = re.compile(r"[a-z0-9_+\-]+|[^\s,]")  # a Textual key name, or one character


def _ui_keys(_inst: object, attr: attrs.Attribute[Any], value: dict[str, str]) -> None:
    for action, keys in value.items():
        if action not in UI_ACTIONS:
            raise ValueError(
                f"{attr.name}: unknown action {action!r}: use one of {', '.join(UI_ACTIONS)}"
            )
        if not isinstance(keys, str) or not all(
            _UI_KEY.fullmatch(k.strip()) for k in keys.split(",")
        ):
            raise ValueError(f'{attr.name}.{action}: {keys!r} is not a list of keys such as "k,up"')


def _ui_hosts(_inst: object, attr: attrs.Attribute[Any], value: list[str]) -> None:
    for host in value:
        try:
            check_destination(host, f"ui.{attr.name}")
        except InvalidParams as exc:
            raise ValueError(exc.message) from None


@attrs.frozen(kw_only=True)
class UiConfig:
    """`[ui]`: the dashboard (`orchestra ui`; docs/cli.md)."""

    # action -> its keys, comma separated, in Textual's names ("ctrl+s", "k,up")
    keys: dict[str, str] = attrs.field(factory=dict, validator=_ui_keys)
    # the daemons shown by default: host names ([hosts] or ssh destinations), "local"
    hosts: list[str] = attrs.field(factory=list, validator=_ui_hosts)


@attrs.frozen(kw_only=True)
class LimitsConfig:
    """`[limits]`: what the daemon grants each client connection (docs/config.md, and
    docs/api.md "Limits"). Read from the global file and the environment at daemon start."""

    connections: int = attrs.field(default=1000, validator=_positive)  # open at once
    idle_timeout: float = attrs.field(default=300.0, validator=_positive)  # s without a call
    stall_timeout: float = attrs.field(default=10.0, validator=_positive)  # s stuck mid-line


def _destination(_inst: object, attr: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None:
        try:
            check_destination(value, attr.name)
        except InvalidParams as exc:
            raise ValueError(exc.message) from None


def _absolute(_inst: object, attr: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not (value.startswith("/") and "\x00" not in value):
        raise ValueError(f"{attr.name} must be an absolute path on that host, not {value!r}")


def _command(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if not value or "\x00" in value or not value.isprintable():
        raise ValueError(f"{attr.name} must be a command name or path, not {value!r}")


@attrs.frozen(kw_only=True)
class HostConfig:
    """`[hosts.NAME]`: a machine whose daemon clients reach over SSH (docs/remote.md)."""

    address: str | None = attrs.field(default=None, validator=_destination)  # default: NAME
    project: str | None = attrs.field(default=None, validator=_absolute)  # its default project
    orchestra: str = attrs.field(default="orchestra", validator=_command)  # run there by ssh
    ssh: list[str] = attrs.field(factory=list, validator=_argv)  # default: the global `ssh`


@attrs.frozen(kw_only=True)
class Config:
    log_level: str = attrs.field(default="info", validator=_one_of(LOG_LEVELS))
    idle_timeout: float = attrs.field(default=30.0, validator=_positive)  # seconds
    idle_dwell: float = attrs.field(default=3.0, validator=_positive)  # seconds
    max_running: int = attrs.field(default=4, validator=_positive)
    confirm: str = attrs.field(default="ask", validator=_one_of(CONFIRM))
    detach_keys: str = attrs.field(default=DEFAULT_DETACH_KEYS, validator=_detach)
    default_agent: str = attrs.field(default="claude", validator=_agent_name)
    base_branch: str | None = attrs.field(default=None, validator=_branch)
    autostart: bool = True  # start the daemon when a command needs it
    # default: $XDG_RUNTIME_DIR/orchestra/orchestra.sock
    socket: str | None = attrs.field(default=None, validator=_path)
    # -- running agents --
    setup: list[str] = attrs.field(factory=list)  # argv run in a new worktree before the agent
    teardown: list[str] = attrs.field(factory=list)  # argv run before a worktree is removed
    submodules: bool = True  # init submodules in new worktrees
    scrollback: int = attrs.field(default=4 << 20, validator=_positive)  # bytes kept per agent
    stop_grace: float = attrs.field(default=5.0, validator=_positive)  # SIGTERM -> SIGKILL, s
    port_base: int = attrs.field(default=20000, validator=_port)  # ORCHESTRA_PORT of task 1
    port_block: int = attrs.field(default=10, validator=_positive)  # ports per task
    merge: MergeConfig = attrs.field(factory=MergeConfig)
    notify: NotifyConfig = attrs.field(factory=NotifyConfig)
    ui: UiConfig = attrs.field(factory=UiConfig)
    limits: LimitsConfig = attrs.field(factory=LimitsConfig)
    # -- other hosts (docs/remote.md) --
    host: str | None = attrs.field(default=None, validator=_destination)  # default: this one
    ssh: list[str] = attrs.field(factory=lambda: ["ssh"], validator=_argv)  # the ssh command
    hosts: dict[str, HostConfig] = attrs.field(factory=dict)
    # The built-in profiles; `[agents.NAME]` tables merge over them field by field.
    agents: dict[str, AgentProfile] = attrs.field(factory=builtin_agents, validator=_agent_names)


def make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def strict(kind: type, name: str) -> Any:
        def hook(value: Any, _type: Any) -> Any:
            # TOML already typed the value: refuse "4" for an int instead of coercing.
            ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if not ok:
                raise TypeError(f"expected {name}, found {type(value).__name__} {value!r}")
            return value

        return hook

    conv.register_structure_hook(str, strict(str, "a string"))
    conv.register_structure_hook(int, strict(int, "an integer"))
    conv.register_structure_hook(float, strict(float, "a number"))
    conv.register_structure_hook(bool, strict(bool, "true or false"))

    def strict_list(value: Any, type_: Any) -> list[Any]:
        if not isinstance(value, list):
            raise TypeError(f"expected an array, found {type(value).__name__} {value!r}")
        return [conv.structure(item, type_.__args__[0]) for item in value]

    def strict_dict(type_: Any) -> Any:
        inner = make_mapping_structure_fn(type_, conv, detailed_validation=True)

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, Mapping):
                raise TypeError(f"expected a table, found {type(value).__name__} {value!r}")
            return inner(value, _type)

        return hook

    conv.register_structure_hook_func(lambda t: getattr(t, "__origin__", None) is list, strict_list)
    conv.register_structure_hook_factory(
        lambda t: getattr(t, "__origin__", None) is dict, strict_dict
    )
    agent_hook = conv.get_structure_hook(AgentProfile)

    def agent_table(value: Any, type_: Any) -> Any:
        if not isinstance(value, Mapping):  # else cattrs reports a bare AttributeError
            raise TypeError(f"expected a table, found {type(value).__name__} {value!r}")
        return agent_hook(value, type_)

    conv.register_structure_hook(AgentProfile, agent_table)
    merge_hook = conv.get_structure_hook(MergeConfig)

    def merge_table(value: Any, type_: Any) -> Any:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a table, found {type(value).__name__} {value!r}")
        return merge_hook(value, type_)

    conv.register_structure_hook(MergeConfig, merge_table)
    for table in (NotifyConfig, ScreenPattern, LimitsConfig, HostConfig):
        conv.register_structure_hook(table, _table_hook(conv.get_structure_hook(table)))
    return conv


def _table_hook(inner: Any) -> Any:
    def hook(value: Any, type_: Any) -> Any:
        if not isinstance(value, Mapping):  # else cattrs reports a bare AttributeError
            raise TypeError(f"expected a table, found {type(value).__name__} {value!r}")
        return inner(value, type_)

    return hook


_CONVERTER: Final = make_converter()
DEFAULTS: Final = _CONVERTER.unstructure(Config())


def structure(raw: Mapping[str, Any], *, source: str) -> Config:
    """Validate a merged dict into a Config; errors name `source`, the key and what is expected."""
    try:
        return _CONVERTER.structure(dict(raw), Config)
    except cattrs.BaseValidationError as exc:
        problems = [_describe(p) for p in transform_error(exc, path="$", format_exception=_format)]
        raise ConfigError(
            f"{source}: " + "; ".join(problems), file=source, problems=problems
        ) from None


_TABLE = re.compile(r"^\s*\[\[?\s*(?P<name>[^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_.\"' -]+?)\s*=")


def _key_parts(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in text.split(".")]


def locate_key(text: str, dotted: str) -> tuple[int, int] | None:
    """Where the TOML `text` sets the key `dotted` (`max_running`, `agents.claude.command`):
    its (line, column), both from 1, or None. Enough of TOML for config files (tables,
    dotted and quoted keys); a value spread over lines is found by its first line."""
    want = dotted.split(".")
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            table = _key_parts(header["name"])
            if table == want:
                return number, line.index("[") + 1
            continue
        assign = _ASSIGN.match(line)
        if assign and table + _key_parts(assign["key"]) == want:
            return number, len(assign["indent"]) + 1
    return None


def _format(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        cls = exc.cl if attrs.has(exc.cl) else Config
        allowed = ", ".join(f.name for f in attrs.fields(cls))
        return f"unknown key {', '.join(sorted(exc.extra_fields))} (known keys: {allowed})"
    if isinstance(exc, (TypeError, ValueError)) and str(exc):
        return str(exc)  # our hooks' and validators' messages say what is expected
    if isinstance(exc, KeyError):
        return "required key missing"
    return f"invalid value ({type(exc).__name__})"


def _describe(problem: str) -> str:
    # Validators run on the whole class, so cattrs places them at "$"; they name their key.
    return problem.removesuffix(" @ $")


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@attrs.frozen(kw_only=True)
class Layer:
    source: str  # a file path, "defaults" or "environment"
    values: dict[str, Any]


@attrs.frozen(kw_only=True)
class Effective:
    config: Config
    origins: dict[str, str]  # dotted key -> the source that set it


def resolve(layers: list[Layer]) -> Effective:
    """Merge layers (lowest first) after validating each one alone over the defaults."""
    merged: dict[str, Any] = dict(DEFAULTS)
    origins = dict.fromkeys(_flatten(DEFAULTS), "default")
    for layer in layers:
        structure(deep_merge(DEFAULTS, layer.values), source=layer.source)
        merged = deep_merge(merged, layer.values)
        origins.update(dict.fromkeys(_flatten(layer.values), layer.source))
    config = structure(merged, source="merged config")
    return Effective(config=config, origins=origins)


def _flatten(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in values.items():
        if isinstance(value, Mapping) and value:
            keys += _flatten(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def describe(effective: Effective) -> list[dict[str, Any]]:
    """Rows of (key, value, source) for `orchestra config`."""
    flat: dict[str, Any] = {}

    def walk(values: Mapping[str, Any], prefix: str) -> None:
        for key, value in values.items():
            if isinstance(value, Mapping) and value:
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(_CONVERTER.unstructure(effective.config), "")
    return [
        {"key": key, "value": value, "source": effective.origins.get(key, "default")}
        for key, value in flat.items()
    ]


def known_agents(config: Config) -> list[str]:
    """Every agent name a task may use: the built-ins and those added in config."""
    return sorted({*BUILTIN_AGENTS, *config.agents})


def profile_for(config: Config, name: str) -> AgentProfile:
    """The profile named `name`, from config (which holds the built-ins, overridden)."""
    profile = config.agents.get(name) or BUILTIN_AGENTS.get(name)
    if profile is None:
        known = known_agents(config)
        raise InvalidParams(
            f"unknown agent {name!r}: use one of {', '.join(known)},"
            f" or add it to config as [agents.{name}] with a command",
            field="agent",
            value=name,
            known=known,
        )
    return profile
