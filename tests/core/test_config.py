"""Config: defaults, layering, provenance, and errors that name the file, the key and the rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from orchestra.adapters import config_files
from orchestra.core.agents import BUILTIN_AGENTS
from orchestra.core.config import (
    DEFAULTS,
    AgentProfile,
    Config,
    Effective,
    Layer,
    deep_merge,
    describe,
    resolve,
)
from orchestra.core.detach import parse_detach_keys
from orchestra.core.errors import EXIT_USAGE, ConfigError

GLOBAL = "/home/sam/.config/orchestra/config.toml"
PROJECT = "/src/app/.orchestra/config.toml"


def rows(effective: Effective) -> dict[str, tuple[Any, str]]:
    """describe() as key -> (value, source)."""
    return {r["key"]: (r["value"], r["source"]) for r in describe(effective)}


def config_error(values: dict[str, Any], source: str = PROJECT) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        resolve([Layer(source=source, values=values)])
    return info.value


# --- defaults ---


def test_defaults() -> None:
    """With no layers the config is the documented defaults, every key sourced from 'default'."""
    effective = resolve([])
    assert effective.config == Config()
    c = effective.config
    assert (c.log_level, c.idle_timeout, c.idle_dwell, c.max_running) == ("info", 30.0, 3.0, 4)
    assert (c.confirm, c.detach_keys, c.default_agent) == ("ask", "ctrl-q", "claude")
    assert (c.base_branch, c.autostart, c.socket) == (None, True, None)
    assert c.agents == dict(BUILTIN_AGENTS)
    assert {source for _, source in rows(effective).values()} == {"default"}


def test_defaults_dict_matches_config() -> None:
    """DEFAULTS is the unstructured default Config, one entry per field."""
    assert set(DEFAULTS) == {
        "log_level",
        "idle_timeout",
        "idle_dwell",
        "max_running",
        "confirm",
        "detach_keys",
        "default_agent",
        "base_branch",
        "autostart",
        "socket",
        "setup",
        "teardown",
        "submodules",
        "scrollback",
        "stop_grace",
        "port_base",
        "port_block",
        "merge",
        "notify",
        "ui",
        "limits",
        "host",
        "ssh",
        "hosts",
        "agents",
    }
    assert DEFAULTS["max_running"] == 4


# --- layering ---


def test_layer_precedence() -> None:
    """Defaults < global < project < environment, key by key, with each key's source recorded."""
    effective = resolve(
        [
            Layer(source=GLOBAL, values={"max_running": 2, "log_level": "debug", "confirm": "no"}),
            Layer(source=PROJECT, values={"max_running": 3, "log_level": "warn"}),
            Layer(source="environment", values={"log_level": "trace"}),
        ]
    )
    c = effective.config
    assert (c.confirm, c.max_running, c.log_level, c.idle_timeout) == ("no", 3, "trace", 30.0)
    table = rows(effective)
    assert table["confirm"] == ("no", GLOBAL)
    assert table["max_running"] == (3, PROJECT)
    assert table["log_level"] == ("trace", "environment")
    assert table["idle_timeout"] == (30.0, "default")
    assert effective.origins["log_level"] == "environment"


def test_agent_tables_merge_key_by_key() -> None:
    """A project can override one field of one agent; the rest of that agent comes from below."""
    effective = resolve(
        [
            Layer(
                source=GLOBAL,
                values={
                    "agents": {
                        "claude": {"command": ["claude", "{prompt}"], "env": {"A": "1"}},
                        "codex": {"command": ["codex"]},
                    }
                },
            ),
            Layer(
                source=PROJECT,
                values={
                    "agents": {
                        "claude": {"resume": ["claude", "-r", "{session_id}"], "env": {"B": "2"}}
                    }
                },
            ),
        ]
    )
    agents = effective.config.agents
    assert agents["claude"] == AgentProfile(
        command=["claude", "{prompt}"],
        resume=["claude", "-r", "{session_id}"],
        env={"A": "1", "B": "2"},
        hooks="claude",  # the built-in's, kept: a table merges key by key
        screen_patterns=BUILTIN_AGENTS["claude"].screen_patterns,
    )
    assert agents["codex"] == attrs.evolve(BUILTIN_AGENTS["codex"], command=["codex"])
    table = rows(effective)
    assert table["agents.claude.command"] == (["claude", "{prompt}"], GLOBAL)
    assert table["agents.claude.resume"] == (["claude", "-r", "{session_id}"], PROJECT)
    assert table["agents.claude.env.A"] == ("1", GLOBAL)
    assert table["agents.claude.env.B"] == ("2", PROJECT)
    assert table["agents.codex.command"] == (["codex"], GLOBAL)
    assert table["agents.codex.resume"] == (BUILTIN_AGENTS["codex"].resume, "default")


def test_deep_merge_does_not_touch_its_inputs() -> None:
    """deep_merge builds a new dict; tables merge, anything else is replaced whole."""
    base = {"a": {"x": 1, "y": [1]}, "b": 1}
    over = {"a": {"y": [2]}, "b": {"t": 1}}
    assert deep_merge(base, over) == {"a": {"x": 1, "y": [2]}, "b": {"t": 1}}
    assert base == {"a": {"x": 1, "y": [1]}, "b": 1}


def test_int_accepted_for_float_keys() -> None:
    """`idle_timeout = 5` (a TOML integer) is read as 5.0 seconds."""
    assert resolve([Layer(source=PROJECT, values={"idle_timeout": 5})]).config.idle_timeout == 5.0


# --- errors: the file, the key, what is expected ---


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"max_running": "4"}, ["max_running", "expected an integer", "'4'"]),
        ({"max_running": True}, ["max_running", "expected an integer", "True"]),
        ({"max_running": 2.5}, ["max_running", "expected an integer", "2.5"]),
        ({"idle_timeout": "30s"}, ["idle_timeout", "expected a number", "'30s'"]),
        ({"autostart": "yes"}, ["autostart", "expected true or false", "'yes'"]),
        ({"log_level": 3}, ["log_level", "expected a string", "3"]),
        ({"socket": 3}, ["socket", "expected a string"]),
        ({"agents": []}, ["agents", "expected a table"]),
        ({"agents": {"x": "claude"}}, ["agents", "x", "expected a table"]),
        ({"agents": {"x": {"command": "claude"}}}, ["agents", "x", "command", "expected an array"]),
        ({"agents": {"x": {"command": ["a", 1]}}}, ["agents", "x", "command", "expected a string"]),
        ({"agents": {"x": {"env": {"A": 1}}}}, ["agents", "x", "env", "A", "expected a string"]),
    ],
)
def test_wrong_type(values: dict[str, Any], expected: list[str]) -> None:
    """A wrong type is refused, never coerced; the error names the file, the key and the type."""
    error = config_error(values)
    assert error.message.startswith(f"{PROJECT}: ")
    for part in expected:
        assert part in error.message
    assert error.data["file"] == PROJECT


def test_unknown_key() -> None:
    """An unknown top-level key is refused with the list of known keys."""
    error = config_error({"max_runing": 4})
    assert error.message.startswith(f"{PROJECT}: unknown key max_runing")
    assert "known keys: log_level, idle_timeout" in error.message
    assert "max_running" in error.message


def test_unknown_key_inside_agent_table() -> None:
    """An unknown key inside [agents.x] names the table and lists the keys an agent may have."""
    error = config_error({"agents": {"x": {"command": ["a"], "argv": ["b"]}}})
    assert PROJECT in error.message
    assert "unknown key argv" in error.message
    assert "known keys: command, resume, env" in error.message
    assert "agents['x']" in error.message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"log_level": "verbose"},
            "log_level must be one of off, warn, info, debug, trace, not 'verbose'",
        ),
        ({"confirm": "maybe"}, "confirm must be one of ask, yes, no, not 'maybe'"),
        ({"idle_timeout": -1}, "idle_timeout must be greater than 0, not -1.0"),
        ({"idle_timeout": 0}, "idle_timeout must be greater than 0"),
        ({"idle_dwell": -0.5}, "idle_dwell must be greater than 0"),
        ({"max_running": 0}, "max_running must be greater than 0, not 0"),
        ({"detach_keys": "ctrl-?"}, "detach_keys: invalid detach key 'ctrl-?': use ctrl-<letter"),
        ({"detach_keys": ""}, "detach_keys: invalid detach key ''"),
        ({"default_agent": "Claude Code"}, "default_agent: invalid agent name 'Claude Code'"),
        ({"base_branch": "-x"}, "base_branch: invalid branch name '-x'"),
        ({"base_branch": "a..b"}, "base_branch: invalid branch name 'a..b'"),
    ],
)
def test_bad_value(values: dict[str, Any], expected: str) -> None:
    """A well-typed value outside its rule is refused, naming the file, the key and the rule."""
    error = config_error(values)
    assert error.message.startswith(f"{PROJECT}: ")
    assert expected in error.message


def test_error_names_the_layer_that_holds_the_bad_value() -> None:
    """When only the global file is wrong, the error names the global file, not the project."""
    with pytest.raises(ConfigError) as info:
        resolve(
            [
                Layer(source=GLOBAL, values={"log_level": "loud"}),
                Layer(source=PROJECT, values={"max_running": 2}),
            ]
        )
    assert info.value.message.startswith(f"{GLOBAL}: ")
    assert PROJECT not in info.value.message


def test_environment_errors_name_the_environment() -> None:
    """A bad ORCHESTRA_LOG is reported as coming from the environment."""
    error = config_error({"log_level": "chatty"}, source="environment")
    assert error.message.startswith("environment: log_level must be one of")


def test_config_error_is_a_usage_error_with_details() -> None:
    """ConfigError exits with the usage code and lists every problem for scripts."""
    error = config_error({"max_running": "4", "bogus": 1})
    assert error.exit_code == EXIT_USAGE
    assert len(error.data["problems"]) == 2
    assert error.to_wire()["data"]["kind"] == "config"


# --- detach keys ---


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ctrl-]", b"\x1d"),
        ("ctrl-b,d", b"\x02d"),
        ("ctrl-b, d", b"\x02d"),
        ("CTRL-A", b"\x01"),
        ("ctrl-a", b"\x01"),
        ("ctrl-z", b"\x1a"),
        ("ctrl-@", b"\x00"),
        ("ctrl-[", b"\x1b"),
        ("ctrl-\\", b"\x1c"),
        ("ctrl-^", b"\x1e"),
        ("ctrl-_", b"\x1f"),
        ("q", b"q"),
        ("ctrl-p,ctrl-q", b"\x10\x11"),
    ],
)
def test_parse_detach_keys(spec: str, expected: bytes) -> None:
    """A detach spec becomes the bytes a terminal sends for that key sequence."""
    assert parse_detach_keys(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", ",", "ctrl-", "ctrl-?", "ctrl-é", "ab", "é", " ", "ctrl-b,", "alt-x"]
)
def test_parse_detach_keys_refuses(spec: str) -> None:
    """A spec other than ctrl-<key> or one printable character is refused with the rule."""
    with pytest.raises(
        ValueError, match=r"invalid detach key .*: use ctrl-<letter .*e\.g\. 'ctrl-\]'"
    ):
        parse_detach_keys(spec)


# --- config_files: the adapter that reads files and the environment ---


def test_read_file_missing_is_none(tmp_path: Path) -> None:
    """A config file that does not exist is no layer, not an error."""
    assert config_files.read_file(tmp_path / "config.toml") is None


def test_read_file_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    """Bad TOML is a ConfigError naming the file and the line of the mistake."""
    path = tmp_path / "config.toml"
    path.write_text('log_level = "info"\n\nmax_running = \n')
    with pytest.raises(ConfigError) as info:
        config_files.read_file(path)
    assert info.value.message.startswith(f"{path}: invalid TOML: ")
    assert "line 3" in info.value.message
    assert info.value.data["file"] == str(path)


def test_read_file_not_utf8(tmp_path: Path) -> None:
    """A config file that is not UTF-8 is a ConfigError naming the file, not a crash."""
    path = tmp_path / "config.toml"
    path.write_bytes(b'log_level = "\xff"\n')
    with pytest.raises(ConfigError, match=r"invalid TOML") as info:
        config_files.read_file(path)
    assert info.value.data["file"] == str(path)


def test_read_file_unreadable(tmp_path: Path) -> None:
    """A path that cannot be read (a directory here) is a ConfigError naming it."""
    path = tmp_path / "config.toml"
    path.mkdir()
    with pytest.raises(ConfigError, match=r"cannot read"):
        config_files.read_file(path)


def test_env_layer_maps_variables() -> None:
    """ORCHESTRA_SOCKET, _LOG and _DETACH_KEYS set socket, log_level and detach_keys."""
    environ = {
        "ORCHESTRA_SOCKET": "/tmp/o.sock",
        "ORCHESTRA_LOG": "debug",
        "ORCHESTRA_DETACH_KEYS": "ctrl-b,d",
        "ORCHESTRA_OTHER": "x",
        "HOME": "/home/sam",
    }
    assert config_files.env_layer(environ) == {
        "socket": "/tmp/o.sock",
        "log_level": "debug",
        "detach_keys": "ctrl-b,d",
    }


def test_env_layer_ignores_empty_variables() -> None:
    """An empty variable counts as unset."""
    assert config_files.env_layer({"ORCHESTRA_LOG": "", "ORCHESTRA_SOCKET": ""}) == {}


def test_load_from_real_files(tmp_path: Path) -> None:
    """load() layers the global file (XDG_CONFIG_HOME), the project file, then the environment."""
    xdg = tmp_path / "xdg"
    (xdg / "orchestra").mkdir(parents=True)
    global_file = xdg / "orchestra" / "config.toml"
    global_file.write_text(
        'max_running = 2\nlog_level = "debug"\n[agents.claude]\ncommand = ["claude"]\n'
    )
    project = tmp_path / "repo"
    (project / ".orchestra").mkdir(parents=True)
    project_file = project / ".orchestra" / "config.toml"
    project_file.write_text(
        '# the team\'s settings\nmax_running = 6\n[agents.claude]\nresume = ["r"]\n'
    )
    environ = {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(xdg),
        "ORCHESTRA_DETACH_KEYS": "ctrl-a",
    }
    layers = config_files.raw_layers(project, environ)
    assert [source for source, _ in layers] == [str(global_file), str(project_file), "environment"]
    effective = config_files.load(project, environ)
    c = effective.config
    assert (c.max_running, c.log_level, c.detach_keys) == (6, "debug", "ctrl-a")
    assert c.agents["claude"] == AgentProfile(
        command=["claude"],
        resume=["r"],
        hooks="claude",
        screen_patterns=BUILTIN_AGENTS["claude"].screen_patterns,
    )
    table = rows(effective)
    assert table["max_running"] == (6, str(project_file))
    assert table["log_level"] == ("debug", str(global_file))
    assert table["detach_keys"] == ("ctrl-a", "environment")
    assert table["agents.claude.command"] == (["claude"], str(global_file))
    assert table["agents.claude.resume"] == (["r"], str(project_file))


def test_load_error_names_the_real_file(tmp_path: Path) -> None:
    """A wrong type in the project file is reported with that file's path and the key."""
    project = tmp_path / "repo"
    (project / ".orchestra").mkdir(parents=True)
    project_file = project / ".orchestra" / "config.toml"
    project_file.write_text('max_running = "4"\n')
    environ = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "none")}
    with pytest.raises(ConfigError) as info:
        config_files.load(project, environ)
    assert info.value.message == (
        f"{project_file}: max_running: expected an integer, found str '4' (at line 1, column 1)"
    )


def test_load_error_names_the_key_as_written_and_where(tmp_path: Path) -> None:
    """Each bad key is named as the file writes it (dotted, not cattrs' path), with its line
    and column, in a table or as a dotted key, and a table-wide rule names the table."""
    project = tmp_path / "repo"
    (project / ".orchestra").mkdir(parents=True)
    project_file = project / ".orchestra" / "config.toml"
    project_file.write_text(
        '# mine\nagents.claude.env = "x"\n\n[merge]\n  strategy = "sideways"\n'
        "[agents.mine]\ncommand = []\n"
    )
    environ = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "none")}
    with pytest.raises(ConfigError) as info:
        config_files.load(project, environ)
    problems = info.value.data["problems"]
    assert any(
        p.startswith("agents.claude.env: ") and p.endswith("(at line 2, column 1)")
        for p in problems
    ), problems
    assert "@ $" not in info.value.message


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ("max_running", (2, 1)),
        ("agents.claude.env", (3, 1)),
        ("merge.strategy", (5, 3)),
        ("merge", (4, 1)),
        ("agents.mine.command", (7, 1)),
        ("agents.mine.quoted.key", (9, 1)),
        ("nope", None),
        ("agents.claude", None),
    ],
)
def test_locate_key(key: str, where: tuple[int, int] | None) -> None:
    """A key is found where the TOML sets it: top level, dotted, in a table, quoted."""
    from orchestra.core.config import locate_key

    text = (
        '# c\nmax_running = "x"\nagents.claude.env = {A = "1"}\n[merge]\n  strategy = 3\n'
        '[agents.mine]\ncommand = [\n "x"]\n"quoted".key = 1\n'
    )
    assert locate_key(text, key) == where
