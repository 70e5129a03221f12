"""Hostile text: what a task file, the daemon or git says never drives the terminal.

A task file may come from anyone who can push to the repository. One whose title holds
an OSC 52 clipboard write, or whose labels hold `CSI 2 J`, is broken (the wire's rules
apply to files too), and `status` and `show` print the escapes visibly instead of sending
them to the terminal, on the fast path and the Typer path alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from orchestra.cli import output
from orchestra.core import names
from tests.conftest import Env, git

pytestmark = pytest.mark.shared_daemon

TYPER = {"ORCHESTRA_NO_FAST": "1"}
PATHS = [pytest.param({}, id="fast"), pytest.param(TYPER, id="typer")]
UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # what a terminal acts on or hides

OSC52 = "\\u001b]52;c;cm0gLXJmIH4K\\u0007"  # TOML escapes: "rm -rf ~" onto the clipboard
CLEAR = "\\u001b[2J\\u001b[H"


def inert(text: str, *, keep: str = "\n") -> bool:
    """Whether `text` holds no control, format or separator character but those in `keep`."""
    return all(c in keep or unicodedata.category(c) not in UNSAFE for c in text)


def task_file(title: str, labels: str, body: str) -> str:
    return (
        f'+++\ntitle = "{title}"\nstatus = "draft"\nagent = "sleeper"\nlabels = {labels}\n'
        f"created_at = 2026-11-27T10:00:00Z\n+++\n\n{body}"
    )


@pytest.fixture
def hostile(env: Env, project: Path) -> Path:
    """A project whose history holds hostile task files (1: CSI 2J in its labels and OSC 52
    in its title, 4: only the title), one with escapes only in its description (2, valid:
    free text), and one with a NUL in its base branch (3)."""
    tasks = project / ".orchestra" / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "1-pwn.md").write_text(
        task_file(f"Fix {OSC52} it", f'["ui", "{CLEAR}"]', "Nothing to see.\n")
    )
    (tasks / "2-prose.md").write_text(
        task_file(
            "Plain title", '["ui"]', "Clear: \x1b[2J, copy: \x1b]52;c;eA==\x07, \u202eevil\x85\n"
        )
    )
    (tasks / "3-nul.md").write_text(
        task_file("NUL base", "[]", "x\n").replace(
            "+++\n\n", 'base_branch = "ma\\u0000in"\n+++\n\n'
        )
    )
    (tasks / "4-osc.md").write_text(task_file(f"Fix {OSC52} it", '["ui"]', "x\n"))
    git("add", "-f", ".orchestra/tasks", cwd=project)
    git("commit", "-q", "-m", "tasks from someone else", cwd=project)
    return project


@pytest.mark.timeout(60)
@pytest.mark.parametrize("extra", PATHS)
def test_status_shows_hostile_files_as_broken_and_inert(
    env: Env, hostile: Path, extra: dict[str, str]
) -> None:
    """`status` lists the valid task and reports the hostile files broken, with the key and
    the rule they broke; nothing it prints is a control character."""
    proc = env.run("status", cwd=hostile, extra=extra)
    assert proc.returncode == 0, proc.stderr
    assert inert(proc.stdout) and inert(proc.stderr), repr(proc.stdout)
    broken = [line for line in proc.stdout.splitlines() if line.startswith("broken: ")]
    assert len(broken) == 3, proc.stdout
    assert "1-pwn.md: key 'labels': " in broken[0] and names.LABEL_RULE in broken[0]
    assert "'\\x1b[2J\\x1b[H'" in broken[0]  # the value, shown escaped
    assert "3-nul.md: key 'base_branch': invalid branch name 'ma\\x00in'" in broken[1]
    assert "4-osc.md: key 'title': " in broken[2] and names.TITLE_RULE in broken[2]
    assert "\\x1b]52;c;cm0gLXJmIH4K\\x07" in broken[2]
    assert "prose" in proc.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("extra", PATHS)
def test_show_escapes_a_description_and_refuses_a_broken_file(
    env: Env, hostile: Path, extra: dict[str, str]
) -> None:
    """`show` prints a description's escapes visibly (\\x1b, \\u202e, \\x85), and on a broken
    file fails (exit 1) with one inert line naming the file, the key and the rule."""
    shown = env.run("show", "prose", cwd=hostile, extra=extra)
    assert shown.returncode == 0, shown.stderr
    assert inert(shown.stdout), repr(shown.stdout)
    assert "Clear: \\x1b[2J, copy: \\x1b]52;c;eA==\\x07, \\u202eevil\\x85" in shown.stdout
    refused = env.run("show", "4", cwd=hostile, extra=extra)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert inert(refused.stderr) and refused.stderr.count("\n") == 1, repr(refused.stderr)
    assert "4-osc.md: key 'title'" in refused.stderr and names.TITLE_RULE in refused.stderr


@pytest.mark.timeout(60)
def test_a_nul_in_a_stored_base_branch_is_a_typed_error(env: Env, hostile: Path) -> None:
    """Starting the task whose file has a NUL in base_branch fails with the file's error
    (exit 1, -32004 task_file), not an internal error, and starts nothing."""
    proc = env.run("start", "3", "--json", cwd=hostile)
    assert proc.returncode == 1, proc
    error = json.loads(proc.stdout)["error"]
    assert (error["code"], error["data"]["kind"], error["data"]["key"]) == (
        -32004,
        "task_file",
        "base_branch",
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("extra", PATHS)
def test_json_output_escapes_what_json_leaves_raw(
    env: Env, hostile: Path, extra: dict[str, str]
) -> None:
    """`--json` keeps non-ASCII text readable but escapes DEL, C1 and bidi characters, which
    json.dumps would print raw; the JSON still reads back to the same values."""
    env.run("new", "uni", "-m", "Café \u202e\x85\x7f é ✓", "--title", "Café ✓", cwd=hostile)
    proc = env.run("show", "uni", "--json", cwd=hostile, extra=extra)
    assert proc.returncode == 0, proc.stderr
    assert inert(proc.stdout), repr(proc.stdout)
    assert "Café ✓" in proc.stdout and "\\u202e\\u0085\\u007f" in proc.stdout
    assert json.loads(proc.stdout)["description"] == "Café \u202e\x85\x7f é ✓\n"


def test_printable_escapes_exactly_what_a_terminal_would_act_on() -> None:
    """`printable` escapes every control, format, surrogate and separator code point this
    Python knows (Unicode categories Cc, Cf, Cs, Zl, Zp) and nothing else it knows."""
    for code in range(0x110000):
        char = chr(code)
        category = unicodedata.category(char)
        if category == "Cn":
            continue  # unassigned here; the class may know a newer Unicode's format characters
        assert (output.printable(char) != char) == (category in UNSAFE), (hex(code), category)


def test_printable_forms() -> None:
    """One-line fields escape line breaks too; blocks keep newlines, tabs and CRLF but not a
    lone CR (which would let a line overwrite itself); JSON stays valid JSON."""
    assert output.printable("a\x1b[2Jb\u202ec\x85\r\n\t\U000e0001") == (
        "a\\x1b[2Jb\\u202ec\\x85\\r\\n\\t\\U000e0001"
    )
    assert output.printable("one\r\ntwo\rthree\tfour\n", block=True) == "one\r\ntwo\\rthree\tfour\n"
    value = {"k\x9b": "\x1b\x7f\u2028\U000e0001\ud800é"}
    text = output.json_text(value)
    assert inert(text) and json.loads(text) == value


@pytest.mark.timeout(60)
@pytest.mark.parametrize("extra", PATHS)
@pytest.mark.parametrize("args", [("status", "--json"), ("show", "big"), ("show", "big", "--json")])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    env: Env, project: Path, extra: dict[str, str], args: tuple[str, ...]
) -> None:
    """Output into a pipe nobody reads any more (`| head -c0`) ends the command with exit
    status 1 and nothing on stderr: no BrokenPipeError traceback, small output or large."""
    env.run("new", "big", input="x" * 20_000, cwd=project, check=True)  # from stdin
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestra", *args],
        cwd=project,
        env={**env.vars, **extra},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the only read end: every write the command makes gets EPIPE
    try:
        err = proc.stderr.read()
    finally:
        proc.stderr.close()
        proc.wait(timeout=30)
    assert (proc.returncode, err) == (1, b"")
