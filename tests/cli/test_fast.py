"""The Typer-free fast path prints exactly what the Typer commands print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Env

# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = pytest.mark.shared_daemon

TYPER = {"ORCHESTRA_NO_FAST": "1"}


@pytest.fixture
def tasks(env: Env, project: Path) -> Path:
    for slug in ("alpha", "beta"):
        env.run("new", slug, "-m", f"Do {slug}", "-l", "x", cwd=project, check=True)
    return project


def durations_masked(text: str) -> str:
    # The AGE and IDLE columns may tick over a second between the two runs.
    return re.sub(r"\b\d+[smhd]\b", "<t>", text)


def both(env: Env, cwd: Path, *args: str, extra: dict[str, str] | None = None) -> None:
    fast = env.run(*args, cwd=cwd, extra=extra)
    slow = env.run(*args, cwd=cwd, extra={**(extra or {}), **TYPER})
    assert (fast.returncode, durations_masked(fast.stdout), fast.stderr) == (
        slow.returncode,
        durations_masked(slow.stdout),
        slow.stderr,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("status", "--json"),
        ("path", "alpha"),
        ("path", "1", "--json"),
        ("show", "beta"),
        ("show", "--json", "2"),
        ("show", "nope"),
        ("show", "nope", "--json"),
        ("path", "Bad Slug"),
        ("complete", "alpha"),  # draft cannot complete: an error on both paths
        ("complete", "alpha", "--json"),
        ("complete", "alpha", "-m", "done"),
        ("complete", "--summary=done", "alpha", "--json"),
        ("complete",),  # no task, outside a task: a usage error on both paths
        ("fail", "-m", "why", "--json"),
        ("show",),
        ("merge", "alpha", "-y"),  # a hint, worded as a command on both
    ],
)
def test_read_only_forms_match(env: Env, tasks: Path, args: tuple[str, ...]) -> None:
    """For each fast form, stdout, stderr and exit code equal the Typer path's."""
    both(env, tasks, *args)


@pytest.mark.parametrize(
    "args", [("show",), ("show", "--json"), ("complete", "-m", "x"), ("idle", "--json")]
)
def test_forms_without_a_task_match_inside_a_task(
    env: Env, tasks: Path, args: tuple[str, ...]
) -> None:
    """Inside a task (its id and project in the environment) a form without a task prints
    the same on both paths (and the calling task is the one shown or refused)."""
    both(env, tasks, *args, extra={"ORCHESTRA_TASK_ID": "1", "ORCHESTRA_PROJECT": str(tasks)})


def test_state_changing_forms_match(env: Env, tasks: Path) -> None:
    """`start` and the status words print the same on both paths, on twin tasks."""
    for verb in ("start", "idle", "complete", "reviewed"):
        fast = env.run(verb, "alpha", cwd=tasks)
        slow = env.run(verb, "beta", cwd=tasks, extra=TYPER)
        assert fast.returncode == slow.returncode == 0, (fast.stderr, slow.stderr)
        assert fast.stdout.replace("1-alpha", "X") == slow.stdout.replace("2-beta", "X")


def test_unknown_forms_fall_back_to_typer(env: Env, tasks: Path) -> None:
    """Forms the fast path does not know (options, --help) still work through Typer."""
    out = env.run("status", "--status", "draft", "--json", cwd=tasks, check=True).stdout
    assert '"alpha"' in out
    assert "Example:" in env.run("path", "--help", cwd=tasks, check=True).stdout
