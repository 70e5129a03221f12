"""One-shot commands must not get slower: Textual is imported by `orchestra ui` alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_fast import imported
from tests.conftest import Env

pytestmark = pytest.mark.shared_daemon


@pytest.mark.parametrize(
    "args",
    [("--help",), ("status", "--json"), ("status", "--status", "draft"), ("ui", "--help")],
)
def test_no_other_command_imports_textual(
    env: Env, project: Path, daemon: Env, args: tuple[str, ...]
) -> None:
    """The fast path, the Typer path and even `ui --help` leave Textual (and Rich's
    renderer for it) unimported."""
    modules = imported(env, project, *args)
    assert "orchestra.cli.main" in modules or "orchestra.cli.fast" in modules
    assert not {m for m in modules if m == "textual" or m.startswith("textual.")}
    assert "orchestra.ui.app" not in modules


def test_plain_orchestra_off_a_terminal_prints_the_help(env: Env, project: Path) -> None:
    """`orchestra` alone opens the dashboard only on a terminal: from a script (no tty)
    it prints the help as it always did."""
    proc = env.run(cwd=project)
    assert proc.returncode in (0, 2) and "Usage" in proc.stdout + proc.stderr
    assert "orchestra.ui.app" not in imported(env, project)


def test_ui_is_served_without_typer_and_needs_a_terminal(env: Env, project: Path) -> None:
    """`orchestra ui` takes the fast path (no Typer: Textual's import is its budget), and
    off a terminal says so in one line, exit 2."""
    modules = imported(env, project, "ui")
    assert "orchestra.cli.dashboard" in modules and "typer" not in modules
    proc = env.run("ui", cwd=project)
    assert proc.returncode == 2
    assert proc.stderr == "orchestra: the dashboard needs a terminal on stdin and stdout\n"
