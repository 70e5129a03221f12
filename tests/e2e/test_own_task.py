"""Inside a task's agent, the CLI's task argument defaults to that task (issue 14, item 10):
run as the agent runs it, in its worktree with its real environment, read from /proc."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestra.core.errors import EXIT_USAGE
from tests.conftest import TEST_AGENT_CONFIG, make_repo
from tests.e2e.support import Api, environ

# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = pytest.mark.shared_daemon

TYPER = {"ORCHESTRA_NO_FAST": "1"}


def agent_env(api: Api, task: str) -> tuple[dict[str, str], Path]:
    """The running agent's own environment and working directory."""
    api.wait_output(task, "sleeper ready")
    pid = api.pid(task)
    env = environ(pid)
    assert env.get("ORCHESTRA_TASK_SLUG") == task, env
    return env, Path(f"/proc/{pid}/cwd").resolve()


def as_agent(
    env: dict[str, str], cwd: Path, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI run as the agent would run it: its environment, in its worktree."""
    return subprocess.run(
        [sys.executable, "-m", "orchestra", *args],
        cwd=cwd,
        env={**env, **(extra or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("path", ["fast", "typer"])
def test_complete_without_a_task_completes_the_calling_task(api: Api, path: str) -> None:
    """`orchestra complete -m done` in an agent's worktree, with its environment, completes
    that task (and only it) with the summary, on the fast path and on the Typer path."""
    extra = TYPER if path == "typer" else {}
    api.new("other")
    api.new("mine")
    api("task.start", task="other")
    api("task.start", task="mine")
    env, cwd = agent_env(api, "mine")
    assert cwd == api.root / ".orchestra" / "worktrees" / "2-mine"

    shown = as_agent(env, cwd, "show", "--json", extra=extra)
    assert shown.returncode == 0, shown.stderr
    assert '"ref": "2-mine"' in shown.stdout

    done = as_agent(env, cwd, "complete", "-m", "done", extra=extra)
    assert (done.returncode, done.stdout, done.stderr) == (0, "task 2-mine is completed\n", "")
    assert api.status("mine") == "completed"
    assert api.status("other") == "running"
    [entry] = [e for e in api.events("task.status", 2) if e.get("status") == "completed"]
    assert entry["why"] == "`complete` reported: done"


def test_the_default_is_refused_for_another_project(api: Api) -> None:
    """A task variable names a task of its own project only: with another project (-C),
    `complete` without a task is a usage error and that project's task of the same id
    stays as it was."""
    api.new("mine")
    api("task.start", task="mine")
    env, cwd = agent_env(api, "mine")
    other = make_repo(api.env.base / "other")
    api.env.run("init", cwd=other, check=True)
    (other / ".orchestra" / "config.toml").open("a").write(TEST_AGENT_CONFIG)
    api.env.run("new", "theirs", "-m", "Theirs.", cwd=other, check=True)
    api.env.run("start", "theirs", cwd=other, check=True)
    for extra in ({}, TYPER):
        out = as_agent(env, cwd, "-C", str(other), "complete", extra=extra)
        assert out.returncode == EXIT_USAGE, out
        assert f"ORCHESTRA_TASK_ID=1 is a task of {api.root}, not of {other}" in out.stderr
        assert "`orchestra complete TASK`" in out.stderr
    with api.env.client() as c:
        theirs = c.call("task.get", {"project": str(other), "task": 1})
    assert theirs["status"] == "running"
    assert api.status("mine") == "running"


@pytest.mark.parametrize("args", [("complete",), ("fail", "-m", "x"), ("show",), ("peek",)])
def test_outside_a_task_a_missing_task_is_a_usage_error(api: Api, args: tuple[str, ...]) -> None:
    """Outside any task, leaving the task out is a one-line usage error naming the form."""
    for extra in ({}, TYPER):
        out = api.env.run(*args, cwd=api.root, extra=extra)
        assert out.returncode == EXIT_USAGE, out
        assert out.stderr == (
            f"orchestra: no task given: name the task (its id or slug): `orchestra {args[0]}"
            " TASK`; it defaults to the calling task only inside a task\n"
        )
