"""The notifier: real notifier processes (environment, deadline, failure) and the daemon
service turning a real event hub's task changes into one command run per transition."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from orchestra.adapters import notify as notifiers
from orchestra.core.config import NotifyConfig
from orchestra.core.notify import Notice
from orchestra.daemon.events import EventHub
from orchestra.daemon.notify import Notifier

ROOT = "/src/app"
DUMP_ENV = (
    "import json, os, sys\n"
    "env = {k: v for k, v in os.environ.items() if k.startswith('ORCHESTRA_')}\n"
    "env['cwd'] = os.getcwd()\n"
    "with open(sys.argv[1], 'a') as f:\n"
    "    f.write(json.dumps(env) + '\\n')\n"
)


async def until(condition: Callable[[], object]) -> None:
    """Wait (30 s at most) until `condition()` holds: what it waits for is a separate
    process's file, which no trio event reports."""
    with trio.fail_after(30):
        while not condition():  # noqa: ASYNC110 - see above
            await trio.sleep(0.02)


def notice(task_id: int = 1, activity: str = "waiting", reason: str = "permission") -> Notice:
    """A transition of task `task_id` of ROOT."""
    return Notice(
        task_id=task_id,
        slug=f"t{task_id}",
        project=ROOT,
        activity=activity,
        previous="working",
        reason=reason,
    )


async def test_the_command_runs_with_the_transition_in_its_environment(tmp_path: Path) -> None:
    """A real child process sees ORCHESTRA_TASK ... ORCHESTRA_REASON and runs in `cwd`."""
    out = tmp_path / "env.jsonl"
    # The test's own ORCHESTRA_* (CI sets ORCHESTRA_TEST_NPM) are not the notice's.
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRA_")}
    env = {**base, **notice(7, reason="question").env()}
    outcome = await notifiers.run(
        [sys.executable, "-c", DUMP_ENV, str(out)], env=env, cwd=tmp_path, limit=30
    )
    assert outcome == notifiers.Outcome(ok=True, exit_code=0, output="")
    seen = json.loads(out.read_text())
    assert seen == {
        "ORCHESTRA_TASK": "7",
        "ORCHESTRA_SLUG": "t7",
        "ORCHESTRA_PROJECT": ROOT,
        "ORCHESTRA_ACTIVITY": "waiting",
        "ORCHESTRA_PREVIOUS": "working",
        "ORCHESTRA_REASON": "question",
        "cwd": str(tmp_path),
    }


def _gone(pid: int) -> bool:
    """The process `pid` has exited (or is a zombie nobody reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


async def test_a_slow_command_and_its_children_are_killed_at_the_deadline(tmp_path: Path) -> None:
    """A command still running at its deadline is killed with its whole process group (a
    child holding its output pipe too), and the run returns at once, marked timed out."""
    pidfile = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    began = time.monotonic()
    outcome = await notifiers.run(
        [sys.executable, "-c", script, str(pidfile)], env=dict(os.environ), cwd=None, limit=1.5
    )
    took = time.monotonic() - began
    assert outcome.timed_out and not outcome.ok and outcome.exit_code is None
    assert took < 5, took
    child = int(pidfile.read_text())
    await until(lambda: _gone(child))


async def test_a_failing_or_missing_command_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A command that exits non-zero is logged with its status and output; one that cannot
    start is logged with why; neither raises."""
    log = logging.getLogger("tests.notify")
    failing = [sys.executable, "-c", "print('no route to pager'); raise SystemExit(3)"]
    outcome = await notifiers.run(failing, env=dict(os.environ), cwd=None, limit=30)
    assert (outcome.ok, outcome.exit_code) == (False, 3)
    assert "no route to pager" in outcome.output
    missing = await notifiers.run(
        [str(tmp_path / "no-such-notifier")], env=dict(os.environ), cwd=None, limit=30
    )
    assert missing.exit_code is None and "no-such-notifier" in missing.error
    with caplog.at_level(logging.WARNING, logger="tests.notify"):
        notifiers.log_outcome(log, "notify command", failing, outcome)
        notifiers.log_outcome(log, "notify command", ["x"], missing)
        notifiers.log_outcome(log, "notify command", ["x"], notifiers.Outcome(ok=True, exit_code=0))
    records = [r for r in caplog.records if r.name == "tests.notify"]
    assert [getattr(r, "event", None) for r in records] == ["notify.failed", "notify.failed"]
    assert "exited with status 3" in records[0].getMessage()
    assert getattr(records[0], "output", "").startswith("no route to pager")
    assert "could not start" in records[1].getMessage()


def changed(task_id: int, status: str, activity: str | None, reason: str = "") -> dict[str, Any]:
    """An events.task_changed params as the daemon publishes them."""
    run = None if activity is None else {"activity": {"activity": activity, "reason": reason}}
    return {
        "project": ROOT,
        "change": "updated",
        "task": {"id": task_id, "slug": f"t{task_id}", "status": status, "run": run},
    }


async def test_the_service_runs_the_command_once_per_transition(tmp_path: Path) -> None:
    """Through a real event hub: working -> waiting -> waiting (another reason) -> working
    -> completed runs the command twice (waiting, completed), in order, nothing more."""
    out = tmp_path / "runs.jsonl"
    config = NotifyConfig(
        desktop=False, bell=False, command=[sys.executable, "-c", DUMP_ENV, str(out)]
    )
    hub = EventHub()
    notifier = Notifier(hub, lambda root: (config, logging.getLogger("tests.notify")), list)
    notifier.limit = trio.CapacityLimiter(1)  # FIFO: runs finish in the order they began

    def lines() -> list[dict[str, str]]:
        return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

    async with trio.open_nursery() as nursery:
        await nursery.start(notifier.serve)
        assert len(hub) == 0  # the notifier's subscription is no client's (daemon.status)
        for params in [
            changed(1, "running", "working"),
            changed(1, "running", "waiting", "permission"),
            changed(1, "running", "waiting", "turn-done"),
            changed(1, "running", "working"),
            changed(1, "completed", "exited"),
            changed(99, "running", "waiting", "question"),  # the last: when it ran, all had
        ]:
            hub.publish(ROOT, params)
        await until(lambda: any(line["ORCHESTRA_TASK"] == "99" for line in lines()))
        nursery.cancel_scope.cancel()
    seen = [
        (r["ORCHESTRA_TASK"], r["ORCHESTRA_ACTIVITY"], r["ORCHESTRA_PREVIOUS"]) for r in lines()
    ]
    assert seen == [
        ("1", "waiting", "working"),
        ("1", "completed", "working"),
        ("99", "waiting", ""),
    ]
    assert lines()[0]["ORCHESTRA_REASON"] == "permission"


async def test_a_hung_command_never_holds_up_the_next_notice(tmp_path: Path) -> None:
    """While one notifier hangs (until its deadline), the next transition's runs at once."""
    out = tmp_path / "runs.jsonl"
    hang = tmp_path / "hang"
    script = (
        "import os, sys, time\n"
        "if os.environ['ORCHESTRA_TASK'] == '1':\n"
        "    open(sys.argv[2], 'w').close(); time.sleep(60)\n"
        "open(sys.argv[1], 'a').write(os.environ['ORCHESTRA_TASK'] + '\\n')\n"
    )
    config = NotifyConfig(
        desktop=False,
        bell=False,
        timeout=60,
        command=[sys.executable, "-c", script, str(out), str(hang)],
    )
    hub = EventHub()
    notifier = Notifier(hub, lambda root: (config, logging.getLogger("tests.notify")), list)
    async with trio.open_nursery() as nursery:
        await nursery.start(notifier.serve)
        hub.publish(ROOT, changed(1, "running", "waiting"))
        await until(hang.exists)
        hub.publish(ROOT, changed(2, "running", "waiting"))
        await until(lambda: out.exists() and out.read_text() == "2\n")
        nursery.cancel_scope.cancel()  # the daemon stopping ends the hung one too
