"""The docs stay in step with the code they describe: tables, methods, codes, keys, commands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs
import pytest
import typer

from orchestra.adapters.config_files import ENV_KEYS
from orchestra.core import errors
from orchestra.core.config import AgentProfile, Config
from orchestra.core.states import Status, transition_table_markdown
from orchestra.daemon.dispatch import METHODS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def headings(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"#{1,6} ", line)]


def test_states_doc_quotes_the_transition_table() -> None:
    """docs/states.md contains the state table exactly as the code renders it."""
    assert transition_table_markdown() in doc("states.md")


def test_states_doc_describes_every_state() -> None:
    """docs/states.md has a line for each state."""
    text = doc("states.md")
    for state in Status:
        assert f"- **{state}**:" in text, state


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_has_a_heading_in_api_doc(method: str) -> None:
    """Each JSON-RPC method the daemon serves has its own heading in docs/api.md."""
    assert f"### `{method}`" in headings(doc("api.md"))


def test_every_error_code_is_in_api_doc() -> None:
    """docs/api.md tables every application error's code with its kind, and the standard codes."""
    text = doc("api.md")
    rows = [line for line in text.splitlines() if line.startswith("| -32")]
    for kind in errors.ERROR_KINDS:
        assert any(
            row.startswith(f"| {kind.code} |") and f"`{kind.kind}`" in row for row in rows
        ), kind.__name__
    for code in (-32700, -32600, -32601, -32602, -32603):
        assert f"| {code} |" in text, code


def test_every_exit_code_is_in_cli_doc() -> None:
    """docs/cli.md tables every EXIT_* code with its name."""
    text = doc("cli.md")
    exits = {
        name: value
        for name, value in vars(errors).items()
        if name.startswith("EXIT_") and isinstance(value, int)
    }
    assert len(exits) >= 7
    for name, value in exits.items():
        assert f"| {value} | `{name}` |" in text, name


def test_every_config_key_is_in_config_doc() -> None:
    """docs/config.md has a row for every config key, every agent field and env variable."""
    text = doc("config.md")
    for field in attrs.fields(Config):
        assert f"| `{field.name}` |" in text, field.name
    for field in attrs.fields(AgentProfile):
        assert f"| `{field.name}` |" in text, f"agents.NAME.{field.name}"
    for variable, key in ENV_KEYS.items():
        assert f"| `{variable}` | `{key}` |" in text, variable


def _commands() -> list[str]:
    from orchestra.cli.main import COMMANDS, register

    root: Any = typer.main.get_command(register(list(COMMANDS)))
    found: list[str] = []
    for name, cmd in root.commands.items():
        subs = getattr(cmd, "commands", None)
        found += [f"{name} {sub}" for sub in subs] if subs else [name]
    return found


def test_every_command_has_a_heading_in_cli_doc() -> None:
    """Each CLI command (and subcommand) appears in a heading of docs/cli.md."""
    heads = headings(doc("cli.md"))
    commands = _commands()
    assert "daemon status" in commands and "new" in commands
    for command in commands:
        pattern = re.compile(rf"`{re.escape(command)}[ `]")
        assert any(pattern.search(h) for h in heads), command


def test_task_file_doc_lists_stored_fields() -> None:
    """docs/task-files.md has a row for every stored front-matter field."""
    from orchestra.core.tasks import STORED_FIELDS

    text = doc("task-files.md")
    for key in STORED_FIELDS:
        assert f"| `{key}` |" in text, key
