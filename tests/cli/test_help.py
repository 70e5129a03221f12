"""Every command's --help reads as wrapped prose at any width: paragraphs wrapped once, to
the terminal, not the source's line breaks wrapped again."""

from __future__ import annotations

import importlib
import inspect
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from orchestra.cli.main import COMMANDS, KEEP_LINES, help_text, register

PANEL = ("│", "╭", "╰")  # rich's boxes: arguments, options, commands (rich wraps their cells)


def commands() -> dict[str, Callable[..., Any] | None]:
    """Every command line with a --help of its own, with its function (None: a group)."""
    found: dict[str, Callable[..., Any] | None] = {"": None}
    for name, (module, attr, group) in COMMANDS.items():
        target = getattr(importlib.import_module(module), attr)
        if not group:
            found[name] = target
            continue
        found[name] = None
        for info in target.registered_commands:
            sub = info.name or info.callback.__name__.replace("_", "-")
            found[f"{name} {sub}"] = info.callback
    return found


COMMAND_LINES = commands()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """The CLI with every command (registered once: each registration adds them again)."""
    return register(list(COMMANDS))


def kept_lines(function: Callable[..., Any] | None) -> list[str]:
    """The lines of the docstring's paragraphs marked to keep their lines."""
    doc = inspect.getdoc(function) if function is not None else None
    paragraphs = (doc or "").split("\n\n")
    return [
        line.strip()
        for p in paragraphs
        if p.startswith(KEEP_LINES + "\n")
        for line in p.splitlines()[1:]
    ]


def ragged(text: str, width: int, kept: list[str]) -> list[tuple[str, str]]:
    """Pairs of prose lines where the second's first word would have fitted on the first:
    a line broken early, inside a paragraph (a kept line may start anywhere)."""
    lines = [line.rstrip() for line in text.splitlines()]
    found = []
    for line, after in itertools.pairwise(lines):
        if not line.strip() or not after.strip() or after.lstrip().startswith(PANEL):
            continue
        if line.lstrip().startswith(PANEL) or any(k.startswith(after.strip()) for k in kept):
            continue
        # Rich pads one column each side: the text ends at width - 1 at most.
        if len(line) + 1 + len(after.split()[0]) <= width - 1:
            found.append((line, after))
    return found


@pytest.mark.parametrize("command", list(COMMAND_LINES), ids=lambda c: c or "orchestra")
def test_help_is_not_ragged(app: typer.Typer, command: str) -> None:
    """`orchestra COMMAND --help` at 60, 80 and 100 columns breaks no paragraph's line
    before the terminal's edge, and keeps blank lines between paragraphs."""
    for width in (60, 80, 100):
        shown = CliRunner().invoke(app, [*command.split(), "--help"], env={"COLUMNS": str(width)})
        assert shown.exit_code == 0, shown.output
        assert "\n \n" in shown.output or "\n\n" in shown.output  # paragraphs stay apart
        bad = ragged(shown.output, width, kept_lines(COMMAND_LINES[command]))
        assert not bad, f"at {width} columns:\n" + "\n".join(f"{a}\n{b}\n" for a, b in bad)


def test_help_text_joins_each_paragraph_and_keeps_marked_ones() -> None:
    """A docstring's paragraphs become one line each, except one marked with \\b, whose
    lines stay as they are (without the mark)."""
    doc = """First line
        of the summary.

        A paragraph
        on two lines.

        \b
        kept: one
        kept: two
        """
    assert help_text(doc) == (
        "First line of the summary.\n\nA paragraph on two lines.\n\nkept: one\nkept: two"
    )
    assert help_text(None) is None
