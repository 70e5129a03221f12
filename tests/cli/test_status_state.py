"""The status column of `orchestra status`: how a stopped task's agent ended, in words."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestra.cli.output import _state
from tests.cli.support import ok
from tests.conftest import Env
from tests.daemon.wire import wait_until
from tests.e2e.support import Api, configure

pytestmark = pytest.mark.shared_daemon


def stopped(exit_code: Any, end_reason: Any) -> dict[str, Any]:
    return {"status": "stopped", "exit_code": exit_code, "end_reason": end_reason}


@pytest.mark.parametrize(
    ("exit_code", "end_reason", "shown"),
    [
        (-signal.SIGHUP, "stopped on request", "stopped (on request, killed by SIGHUP)"),
        (0, "stopped on request", "stopped (on request, exited 0)"),
        (-signal.SIGKILL, "stopped on request", "stopped (on request, killed by SIGKILL)"),
        (None, "stopped on request", "stopped (on request)"),
        (0, "agent exited", "stopped (exited 0)"),
        (3, "agent exited", "stopped (exited 3)"),
        (-signal.SIGSEGV, "agent exited", "stopped (killed by SIGSEGV)"),
        (-77, "agent exited", "stopped (killed by signal 77)"),
        (-signal.SIGHUP, "daemon stopping", "stopped (daemon stopped, killed by SIGHUP)"),
        (1, "stopped to merge the task", "stopped (to merge, exited 1)"),
        (1, "a reason of a newer daemon", "stopped (a reason of a newer daemon, exited 1)"),
        (-1, None, "stopped (killed by SIGHUP)"),  # a daemon that does not say why
        (None, None, "stopped"),  # the daemon restarted since: it does not know
    ],
)
def test_a_stopped_task_says_how_its_agent_ended(
    exit_code: Any, end_reason: Any, shown: str
) -> None:
    """A stopped task's state says why its agent ended and how (its exit code, or the
    signal that killed it, by name), never a bare negative number."""
    assert _state(stopped(exit_code, end_reason)) == shown


@pytest.mark.parametrize("status", ["running", "completed", "failed", "draft"])
def test_only_a_stopped_task_says_how_its_agent_ended(status: str) -> None:
    """Other states are shown as they are, whatever the last agent's exit code."""
    assert _state({"status": status, "exit_code": 3, "end_reason": "agent exited"}) == status


def test_status_says_a_task_was_stopped_on_request(env: Env, project: Path) -> None:
    """`orchestra status` (fast path and Typer path alike) shows a task stopped with
    `orchestra stop` as stopped on request, with the signal that ended its agent, and one
    that exited by itself with its exit code."""
    configure(project, f'agents.seven.command = ["{sys.executable}", "-c", "exit(7)"]')
    api = Api(env, project)
    try:
        api.new("alpha")
        api.new("beta", agent="seven")
        api("task.start", task="alpha")
        api("task.start", task="beta")
        wait_until(lambda: api.get("alpha")["run"], "alpha's agent to start")
        ok(env, "stop", "alpha", "-y", cwd=project)
        api.wait_status("alpha", "stopped")
        api.wait_status("beta", "stopped")
    finally:
        api.close()
    for extra in ({}, {"ORCHESTRA_NO_FAST": "1"}):
        text = ok(env, "status", cwd=project, extra=extra)
        rows = {line.split()[1]: line for line in text.splitlines()[1:]}
        assert " stopped (on request, killed by SIGHUP) " in rows["alpha"], rows
        assert " stopped (exited 7) " in rows["beta"], rows
