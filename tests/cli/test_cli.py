"""The CLI end to end: the real `orchestra` in a subprocess, a real git repo, a real daemon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

import orchestra
from orchestra.core.errors import (
    EXIT_INVALID_STATE,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
)
from orchestra.core.names import SLUG_RULE
from tests.cli.support import fails, json_error, ok, run, run_on_tty, script, show
from tests.conftest import Env, git

# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = pytest.mark.shared_daemon

# -- init -------------------------------------------------------------------------


def test_init_outside_git_refuses(env: Env) -> None:
    """`init` outside a git repository fails with one line naming the problem, creating nothing."""
    plain = env.base / "plain"
    plain.mkdir()
    line = fails(env, EXIT_NOT_FOUND, "init", cwd=plain)
    assert "not inside a git repository" in line
    assert not (plain / ".orchestra").exists()


def test_init_is_idempotent(env: Env, repo: Path) -> None:
    """A second `init` changes nothing: same ignore lines, the person's config kept."""
    (repo / "sub").mkdir()
    first = ok(env, "init", cwd=repo / "sub")  # from a subdirectory: the root gets .orchestra/
    assert "initialised" in first
    dot = repo / ".orchestra"
    assert (dot / "config.toml").is_file()
    assert (dot / "tasks").is_dir()
    assert (dot / "worktrees").is_dir()
    assert "# log_level" in (dot / "config.toml").read_text()  # commented defaults
    (dot / "config.toml").write_text("max_running = 2\n")
    exclude = repo / ".git" / "info" / "exclude"
    before = exclude.read_text()
    assert "already initialised" in ok(env, "init", cwd=repo)
    assert exclude.read_text() == before
    assert before.count("/.orchestra/worktrees/") == 1
    assert (dot / "config.toml").read_text() == "max_running = 2\n"


def test_init_keeps_local_files_out_of_git_status(env: Env, project: Path) -> None:
    """After a task, a worktree dir and a log exist, `git status` shows only the files meant to
    be committed (the config and the task files), none of the local ones (next_id among them)."""
    ok(env, "new", "fix-login", "-m", "Fix it", cwd=project)
    worktree = project / ".orchestra" / "worktrees" / "1-fix-login"
    worktree.mkdir()
    (worktree / "scratch.txt").write_text("work in progress\n")
    assert (project / ".orchestra" / "logs.jsonl").is_file()
    status = git("status", "--porcelain", "--untracked-files=all", cwd=project)
    paths = [line[3:] for line in status.splitlines()]
    # Only what is meant to be committed (docs/task-files.md): the config and the tasks.
    assert sorted(paths) == [".orchestra/config.toml", ".orchestra/tasks/1-fix-login.md"]


def test_init_gitignore_option(env: Env, repo: Path) -> None:
    """`init --gitignore` writes the ignore lines to .gitignore instead of .git/info/exclude."""
    result = json.loads(ok(env, "init", "--gitignore", "--json", cwd=repo))
    assert result["ignored_in"] == str(repo / ".gitignore")
    assert "/.orchestra/logs.jsonl" in (repo / ".gitignore").read_text()


# -- new ---------------------------------------------------------------------------


def test_new_with_message(env: Env, project: Path) -> None:
    """`new -m` creates a draft with the given agent, base branch, labels and description."""
    out = ok(
        env,
        "new",
        "fix-login",
        "-m",
        "Fix the login form",
        "--agent",
        "codex",
        "--base",
        "main",
        "-l",
        "ui",
        "-l",
        "bug",
        cwd=project,
    )
    assert out.startswith("created task 1-fix-login (draft)")
    task = show(env, "fix-login", project)
    assert (task["agent"], task["base_branch"], task["labels"]) == ("codex", "main", ["ui", "bug"])
    assert task["description"] == "Fix the login form\n"


def test_new_reads_piped_stdin(env: Env, project: Path) -> None:
    """Without -m and with stdin piped, the description is read from stdin."""
    ok(env, "new", "from-pipe", input="# Title\n\nFrom a pipe.\n", cwd=project)
    assert show(env, "from-pipe", project)["description"] == "# Title\n\nFrom a pipe.\n"


def test_new_opens_editor_on_a_terminal(env: Env, project: Path) -> None:
    """Without -m and with stdin a terminal, the description is what $EDITOR wrote."""
    editor = script(env, "write.py", "open(path, 'w').write('Written in the editor.\\n')\n")
    proc = run_on_tty(env, "new", "edited", cwd=project, extra={"EDITOR": editor})
    assert proc.returncode == 0, proc.stderr
    assert show(env, "edited", project)["description"] == "Written in the editor.\n"


def test_new_refuses_an_empty_description(env: Env, project: Path) -> None:
    """An empty description (from -m, a pipe or the editor) is refused and creates nothing."""
    for args in (["-m", "  \n"], []):
        line = fails(env, EXIT_USAGE, "new", "empty", *args, cwd=project)
        assert "description is empty" in line
    editor = script(env, "noop.py", "pass\n")
    proc = run_on_tty(env, "new", "empty", cwd=project, extra={"EDITOR": editor})
    assert proc.returncode == EXIT_USAGE and "description is empty" in proc.stderr
    assert "no tasks" in ok(env, "status", cwd=project)


def test_new_invalid_slug_states_the_rule(env: Env, project: Path) -> None:
    """An invalid slug exits 2 with the slug rule; `--json` gives the same as an object."""
    line = fails(env, EXIT_USAGE, "new", "Bad_Slug", "-m", "x", cwd=project)
    assert "'Bad_Slug'" in line and SLUG_RULE in line
    error = json_error(env, EXIT_USAGE, "new", "42", "-m", "x", cwd=project)
    assert error["data"]["kind"] == "invalid_params"
    assert SLUG_RULE in error["message"]


def test_new_duplicate_slug_conflicts(env: Env, project: Path) -> None:
    """A slug already in use is refused with the conflict exit code."""
    ok(env, "new", "twice", "-m", "one", cwd=project)
    assert "already exists" in fails(env, 6, "new", "twice", "-m", "two", cwd=project)


# -- status, show, path ---------------------------------------------------------


def test_status_table_and_json(env: Env, project: Path) -> None:
    """`status` prints a table of tasks; `--json` the same tasks as data; filters apply."""
    ok(env, "new", "alpha", "-m", "A", "-l", "ui", "-t", "The alpha task", cwd=project)
    ok(env, "new", "beta", "-m", "B", cwd=project)
    ok(env, "start", "beta", cwd=project)
    lines = [line.split() for line in ok(env, "status", cwd=project).splitlines()]
    assert lines[0][:5] == ["ID", "SLUG", "STATUS", "ACTIVITY", "AGENT"] and "LABELS" in lines[0]
    assert lines[1][:5] == ["1", "alpha", "draft", "-", "sleeper"]  # no agent: no activity
    assert lines[1][-4:] == ["ui", "The", "alpha", "task"]  # labels, then the title
    assert lines[2][:5] == ["2", "beta", "running", "working", "sleeper"]
    assert len(lines) == 3
    data = json.loads(ok(env, "status", "--json", cwd=project))
    assert data["project"] == str(project)
    assert [(t["slug"], t["status"]) for t in data["tasks"]] == [
        ("alpha", "draft"),
        ("beta", "running"),
    ]
    running = json.loads(ok(env, "status", "-s", "running", "--json", cwd=project))
    assert [t["slug"] for t in running["tasks"]] == ["beta"]
    labelled = json.loads(ok(env, "status", "-l", "ui", "--json", cwd=project))
    assert [t["slug"] for t in labelled["tasks"]] == ["alpha"]


def test_status_refuses_an_unknown_state(env: Env, project: Path) -> None:
    """`status -s bogus` is a usage error listing the states, not an empty list."""
    line = fails(env, EXIT_USAGE, "status", "-s", "bogus", cwd=project)
    assert "'bogus'" in line and "running" in line


def test_show_prints_fields_and_description(env: Env, project: Path) -> None:
    """`show` prints the task's fields, its branch and worktree, then its description."""
    ok(env, "new", "fix-login", "-m", "Fix the login form.", "-l", "ui", cwd=project)
    out = ok(env, "show", "1", cwd=project)
    assert "ref:          1-fix-login" in out
    assert "status:       draft" in out
    assert "branch:       orchestra/1-fix-login" in out
    assert f"worktree:     {project}/.orchestra/worktrees/1-fix-login" in out
    assert out.rstrip().endswith("Fix the login form.")


def test_path_prints_the_worktree(env: Env, project: Path) -> None:
    """`path` prints only the worktree path, for `cd "$(orchestra path ...)"`."""
    ok(env, "new", "fix-login", "-m", "x", cwd=project)
    assert (
        ok(env, "path", "fix-login", cwd=project) == f"{project}/.orchestra/worktrees/1-fix-login\n"
    )
    data = json.loads(ok(env, "path", "1", "--json", cwd=project))
    assert data["branch"] == "orchestra/1-fix-login" and data["exists"] is False


def test_not_found_task_exits_3(env: Env, project: Path) -> None:
    """A task that does not exist gives exit 3 with one line, or a JSON error with --json."""
    for cmd in ("show", "path", "start", "complete", "edit"):
        assert "no task 'nope'" in fails(env, EXIT_NOT_FOUND, cmd, "nope", cwd=project)
    error = json_error(env, EXIT_NOT_FOUND, "show", "99", cwd=project)
    assert error["code"] == -32001 and error["data"]["kind"] == "not_found"


def test_outside_a_project_exits_3(env: Env) -> None:
    """A task command outside any project says to run `orchestra init`."""
    assert "orchestra init" in fails(env, EXIT_NOT_FOUND, "status", cwd=env.base)
    assert "orchestra init" in fails(env, EXIT_NOT_FOUND, "new", "x", "-m", "y", cwd=env.base)


def test_broken_task_file_is_reported(env: Env, project: Path) -> None:
    """A task file with bad TOML is named with its line; the other tasks keep working."""
    ok(env, "new", "good", "-m", "x", cwd=project)
    ok(env, "new", "bad", "-m", "y", cwd=project)
    file = project / ".orchestra" / "tasks" / "2-bad.md"
    file.write_text(file.read_text().replace('status = "draft"', "status = draft"))
    out = ok(env, "status", cwd=project)
    assert "good" in out and f"broken: {file}:2: invalid TOML front matter" in out
    assert fails(env, 1, "show", "bad", cwd=project).startswith(f"orchestra: {file}:2: ")
    assert show(env, "good", project)["status"] == "draft"


def test_project_option_works_from_anywhere(env: Env, project: Path) -> None:
    """`-C PATH` and $ORCHESTRA_PROJECT name the project from outside it."""
    ok(env, "-C", str(project), "new", "remote", "-m", "x", cwd=env.base)
    assert "remote" in ok(env, "status", cwd=env.base, extra={"ORCHESTRA_PROJECT": str(project)})


# -- edit ---------------------------------------------------------------------------

ADD_LABELS_AND_COMMENT = """\
text = open(path).read()
text = text.replace('labels = []', '# chosen by a person\\nlabels = ["ui", "urgent"]')
open(path, 'w').write(text)
"""


def test_edit_changes_labels_and_keeps_comments(env: Env, project: Path) -> None:
    """An edit through $EDITOR changes the labels; the person's comment survives later writes."""
    ok(env, "new", "fix-login", "-m", "Fix it", cwd=project)
    editor = script(env, "labels.py", ADD_LABELS_AND_COMMENT)
    extra = {"EDITOR": editor, "TMPDIR": str(env.base)}
    assert "updated" in ok(env, "edit", "fix-login", cwd=project, extra=extra)
    assert show(env, "fix-login", project)["labels"] == ["ui", "urgent"]
    ok(env, "start", "fix-login", cwd=project)  # a daemon write after the edit
    text = (project / ".orchestra" / "tasks" / "1-fix-login.md").read_text()
    assert '# chosen by a person\nlabels = ["ui", "urgent"]' in text
    assert 'status = "running"' in text
    assert not list(env.base.glob("orchestra-*.md"))  # the copy is cleaned up


def test_edit_cannot_change_status(env: Env, project: Path) -> None:
    """An edit that changes the status is refused (exit 4) and the edited copy is kept."""
    ok(env, "new", "fix-login", "-m", "Fix it", cwd=project)
    file = project / ".orchestra" / "tasks" / "1-fix-login.md"
    before = file.read_text()
    editor = script(
        env,
        "status.py",
        "t = open(path).read().replace('\"draft\"', '\"merged\"')\nopen(path, 'w').write(t)\n",
    )
    proc = run(env, "edit", "1", cwd=project, extra={"EDITOR": editor, "TMPDIR": str(env.base)})
    assert proc.returncode == EXIT_INVALID_STATE
    assert "status cannot be edited" in proc.stderr
    copies = list(env.base.glob("orchestra-1-fix-login-*.md"))
    assert len(copies) == 1 and str(copies[0]) in proc.stderr
    assert 'status = "merged"' in copies[0].read_text()
    assert file.read_text() == before


def test_edit_without_changes_and_failing_editor(env: Env, project: Path) -> None:
    """An editor that changes nothing updates nothing; one that fails is reported in one line."""
    ok(env, "new", "fix-login", "-m", "Fix it", cwd=project)
    noop = script(env, "noop.py", "pass\n")
    extra = {"EDITOR": noop, "TMPDIR": str(env.base)}
    assert "no changes" in ok(env, "edit", "fix-login", cwd=project, extra=extra)
    line = fails(env, 1, "edit", "fix-login", cwd=project, extra={"TMPDIR": str(env.base)})
    assert "the editor exited with status 1" in line  # EDITOR=false


# -- state changes ---------------------------------------------------------------


def test_moves_follow_the_state_table(env: Env, project: Path) -> None:
    """start/idle/complete/reviewed/fail move a task; an illegal move exits 4 naming the moves."""
    ok(env, "new", "one", "-m", "x", cwd=project)
    ok(env, "new", "two", "-m", "y", cwd=project)
    assert "complete" in fails(env, EXIT_INVALID_STATE, "complete", "one", cwd=project)
    for verb, state in (
        ("start", "running"),
        ("idle", "idle"),
        ("complete", "completed"),
        ("reviewed", "reviewed"),
    ):
        assert ok(env, verb, "one", cwd=project) == f"task 1-one is {state}\n"
    ok(env, "start", "two", cwd=project)
    ok(env, "fail", "two", "-m", "tests broke", cwd=project)
    line = fails(env, EXIT_INVALID_STATE, "reviewed", "two", cwd=project)
    assert line == (
        "orchestra: task 2-two is failed; it cannot become reviewed"
        " (allowed from failed: running, merged)"
    )
    error = json_error(env, EXIT_INVALID_STATE, "idle", "two", cwd=project)
    assert error["data"] == {
        "kind": "invalid_transition",
        "current": "failed",
        "target": "idle",
        "allowed": ["running", "merged"],
    }
    assert show(env, "two", project)["status"] == "failed"


def test_stop_needs_confirmation(env: Env, project: Path) -> None:
    """`stop` without -y and without a terminal refuses (exit 2); `stop -y` stops."""
    ok(env, "new", "one", "-m", "x", cwd=project)
    ok(env, "start", "one", cwd=project)
    assert "pass -y" in fails(env, EXIT_USAGE, "stop", "one", cwd=project)
    assert show(env, "one", project)["status"] == "running"
    assert json_error(env, EXIT_USAGE, "stop", "one", cwd=project)["message"].endswith("pass -y")
    assert ok(env, "stop", "one", "-y", cwd=project) == "task 1-one is stopped\n"


def test_session_set_and_clear(env: Env, project: Path) -> None:
    """`session set` records a session id, `session clear` forgets it; a bad id is refused."""
    ok(env, "new", "one", "-m", "x", cwd=project)
    assert (
        ok(env, "session", "set", "one", "abc-123", cwd=project) == "task 1-one session abc-123\n"
    )
    assert show(env, "one", project)["session_id"] == "abc-123"
    assert ok(env, "session", "clear", "1", cwd=project) == "task 1-one has no session\n"
    assert show(env, "one", project)["session_id"] is None
    assert "invalid session id" in fails(
        env, EXIT_USAGE, "session", "set", "one", "has space", cwd=project
    )


# -- help and version --------------------------------------------------------------


def _command_paths() -> list[list[str]]:
    """Every command and group of the CLI, as argv prefixes."""
    from orchestra.cli.main import COMMANDS, register

    root = typer.main.get_command(register(list(COMMANDS)))
    found: list[list[str]] = [[]]

    def walk(cmd: Any, prefix: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():  # a group's subcommands
            found.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(root, [])
    return found


def test_every_help_has_an_example(env: Env) -> None:
    """`--help` of the CLI, every group and every command shows an example."""
    paths = _command_paths()
    assert ["daemon", "status"] in paths and ["session", "set"] in paths
    procs = {
        " ".join(p): subprocess.Popen(
            [sys.executable, "-m", "orchestra", *p, "--help"],
            env={**env.vars, "COLUMNS": "100"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in paths
    }
    missing = []
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "Traceback" not in err, (name, err)
        if "Example:" not in out:
            missing.append(name or "(root)")
    assert missing == []


def test_version(env: Env) -> None:
    """`--version` prints the package version."""
    assert ok(env, "--version") == f"orchestra {orchestra.__version__}\n"
