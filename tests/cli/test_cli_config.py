"""`orchestra config`: effective values, where each came from, and errors naming file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.core.errors import EXIT_USAGE
from tests.cli.support import fails, json_error, ok
from tests.conftest import Env


def global_config(env: Env, text: str) -> Path:
    path = env.base / "config" / "orchestra" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_config_shows_sources(env: Env, project: Path) -> None:
    """Each key's source is the project file, the global file, the environment or the default."""
    project_file = project / ".orchestra" / "config.toml"
    with project_file.open("a") as f:
        f.write("max_running = 2\n")
    global_file = global_config(env, 'confirm = "yes"\nmax_running = 9\n')
    extra = {"ORCHESTRA_LOG": "debug"}
    rows = json.loads(ok(env, "config", "--json", cwd=project, extra=extra))
    assert rows["project"] == str(project)
    by_key = {r["key"]: (r["value"], r["source"]) for r in rows["config"]}
    assert by_key["max_running"] == (2, str(project_file))  # project over global
    assert by_key["confirm"] == ("yes", str(global_file))
    assert by_key["log_level"] == ("debug", "environment")
    assert by_key["idle_timeout"] == (30.0, "default")
    assert by_key["socket"] == (str(env.socket), "environment")

    lines = ok(env, "config", cwd=project, extra=extra).splitlines()
    assert lines[0].split() == ["KEY", "VALUE", "SOURCE"]
    assert ["max_running", "2", str(project_file)] in [line.split() for line in lines]
    assert ["log_level", '"debug"', "environment"] in [line.split() for line in lines]
    assert ["idle_timeout", "30.0", "default"] in [line.split() for line in lines]


def test_config_outside_a_project(env: Env) -> None:
    """Outside a project `config` shows the global and environment layers only."""
    rows = json.loads(ok(env, "config", "--json", cwd=env.base))
    assert rows["project"] is None
    assert {r["source"] for r in rows["config"]} <= {"default", "environment"}


def test_config_bad_type_names_file_and_key(env: Env, project: Path) -> None:
    """A value of the wrong type is an error naming the file, the key and what is expected."""
    project_file = project / ".orchestra" / "config.toml"
    with project_file.open("a") as f:
        f.write('idle_timeout = "soon"\n')
    line = fails(env, EXIT_USAGE, "config", cwd=project)
    assert str(project_file) in line and "idle_timeout" in line and "a number" in line
    error = json_error(env, EXIT_USAGE, "config", cwd=project)
    assert error["data"]["kind"] == "config" and error["data"]["file"] == str(project_file)
    # The daemon refuses to create tasks from a broken config, with the same message.
    line = fails(env, EXIT_USAGE, "new", "x", "-m", "y", cwd=project)
    assert str(project_file) in line and "idle_timeout" in line


def test_config_unknown_key_and_bad_toml(env: Env, project: Path) -> None:
    """An unknown key lists the known ones; broken TOML names the file and the line."""
    global_file = global_config(env, "max_runing = 3\n")
    line = fails(env, EXIT_USAGE, "config", cwd=project)
    assert str(global_file) in line and "max_runing" in line and "max_running" in line
    global_config(env, "max_running = \n")
    line = fails(env, EXIT_USAGE, "config", cwd=project)
    assert str(global_file) in line and "invalid TOML" in line and "line 1" in line


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("max_running = [\n", "invalid TOML: "),
        ('max_running = "4"\n', "max_running: expected an integer, found str '4' (at line "),
    ],
    ids=["syntax", "type"],
)
@pytest.mark.parametrize("path", ["fast", "typer"])
def test_a_broken_project_config_leaves_read_commands_working(
    env: Env, project: Path, bad: str, says: str, path: str
) -> None:
    """A project config with a TOML syntax error or a wrong type alike: `status` and `show`
    work (exit 0) and warn on stderr with the file, line and column; `start` is refused
    with the same problem (exit 2)."""
    ok(env, "new", "alpha", "-m", "Do alpha.", cwd=project)
    project_file = project / ".orchestra" / "config.toml"
    with project_file.open("a") as f:
        f.write(bad)
    line_no = project_file.read_text().count("\n")
    extra = {"ORCHESTRA_NO_FAST": "1"} if path == "typer" else {}
    for args in (["status"], ["show", "alpha"], ["status", "--json"]):
        proc = env.run(*args, cwd=project, extra=extra)
        assert proc.returncode == 0, (args, proc.stderr)
        assert "alpha" in proc.stdout
        first = proc.stderr.splitlines()[0]
        assert first.startswith(f"orchestra: warning: {project_file}: "), first
        assert says in first and f"line {line_no}" in first, first
    line = fails(env, EXIT_USAGE, "start", "alpha", cwd=project)
    assert str(project_file) in line and says in line
