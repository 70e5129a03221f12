"""The CLI and the daemon's lifecycle: start, status, stop, restart, autostart, --watch."""

from __future__ import annotations

import fcntl
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from orchestra.adapters import paths
from orchestra.client import lock_held
from orchestra.core.errors import EXIT_UNREACHABLE
from tests.cli.support import fails, json_error, ok
from tests.conftest import Env, daemon_gone


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an unreaped daemon has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_daemon_status_when_not_running(env: Env) -> None:
    """`daemon status` does not start a daemon: it exits 5 saying how to start one."""
    line = fails(env, EXIT_UNREACHABLE, "daemon", "status")
    assert "orchestra daemon start" in line
    error = json_error(env, EXIT_UNREACHABLE, "daemon", "status")
    assert error["data"]["kind"] == "unreachable"
    assert daemon_gone(env)
    assert ok(env, "daemon", "stop") == "daemon not running\n"


def test_daemon_start_status_restart_stop(env: Env, project: Path) -> None:
    """start reports pid and socket (twice: the same daemon); restart replaces it; stop ends it."""
    out = ok(env, "daemon", "start")
    pid = env.daemon_pid()
    assert pid is not None and alive(pid)
    assert out == f"daemon started: pid {pid}, socket {env.socket}\n"
    assert ok(env, "daemon", "start") == f"daemon already running: pid {pid}, socket {env.socket}\n"
    ok(env, "new", "one", "-m", "x", cwd=project)
    status = json.loads(ok(env, "daemon", "status", "--json"))
    assert (status["pid"], status["socket"]) == (pid, str(env.socket))
    assert status["projects"] == [{"root": str(project), "tasks": {"draft": 1}}]
    human = ok(env, "daemon", "status")
    assert f"pid      {pid}" in human and f"{project}: 1 draft" in human
    assert f"relay    {status['relay']}" in human and status["relay"] in ("c", "python")

    restarted = json.loads(ok(env, "daemon", "restart", "--json"))
    assert restarted["pid"] != pid and alive(restarted["pid"])
    assert env.daemon_pid() == restarted["pid"]
    assert not alive(pid)  # `daemon stop` waits for the old one to be gone
    # The restarted daemon remembers the project.
    again = json.loads(ok(env, "daemon", "status", "--json"))
    assert [p["root"] for p in again["projects"]] == [str(project)]

    assert ok(env, "daemon", "stop") == f"daemon stopped (pid {restarted['pid']})\n"
    assert daemon_gone(env)
    assert not env.socket.exists()
    fails(env, EXIT_UNREACHABLE, "daemon", "status")
    # stop returns once the old daemon has let go of its lock: a start right after it is a
    # fresh daemon, and a stop of that one leaves no lock held.
    assert ok(env, "daemon", "start").startswith("daemon started")
    assert ok(env, "daemon", "stop").startswith("daemon stopped")
    assert daemon_gone(env)


def test_lock_held_probes_the_daemon_lock(tmp_path: Path) -> None:
    sock = tmp_path / "orchestra.sock"
    assert not lock_held(sock)  # no lock file
    fd = os.open(paths.lock_file(sock), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert not lock_held(sock)  # a lock file nobody holds
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running daemon holds it
        assert lock_held(sock)
        assert lock_held(sock)  # the probe took nothing
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert not lock_held(sock)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the probe left it free to take
    finally:
        os.close(fd)


def test_any_command_autostarts_the_daemon(env: Env, project: Path) -> None:
    """With no daemon running, a task command starts one and succeeds."""
    assert daemon_gone(env)
    assert ok(env, "status", cwd=project) == "no tasks\n"
    pid = env.daemon_pid()
    assert pid is not None and alive(pid)
    assert json.loads(ok(env, "daemon", "status", "--json"))["pid"] == pid


def test_autostart_off_gives_unreachable(env: Env, project: Path) -> None:
    """With `autostart = false` in the global config, a command exits 5 and starts nothing."""
    config = env.base / "config" / "orchestra" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("autostart = false\n")
    line = fails(env, EXIT_UNREACHABLE, "status", cwd=project)
    assert "autostart is off" in line and "orchestra daemon start" in line
    assert "autostart is off" in fails(env, EXIT_UNREACHABLE, "new", "x", "-m", "y", cwd=project)
    error = json_error(env, EXIT_UNREACHABLE, "show", "1", cwd=project)
    assert error["code"] == -32010
    assert daemon_gone(env)


class Lines:
    """Lines of a child's stdout, read by a thread, waited on with deadlines."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.stdout = proc.stdout
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.stdout:
            self.queue.put(line)

    def next_json(self, deadline: float) -> Any:
        line = self.queue.get(timeout=max(deadline - time.monotonic(), 0.001))
        return json.loads(line)


def test_status_watch_json_prints_events(env: Env, project: Path) -> None:
    """`status --watch --json` prints the list, then a line per change made by another command."""
    ok(env, "daemon", "start")
    watch = subprocess.Popen(
        [sys.executable, "-m", "orchestra", "status", "--watch", "--json"],
        cwd=project,
        env=env.vars,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(watch)
        deadline = time.monotonic() + 20
        first = lines.next_json(deadline)  # printed once the subscription is in place
        assert first == {"project": str(project), "tasks": [], "errors": []}
        ok(env, "new", "watched", "-m", "x", cwd=project)
        event = lines.next_json(deadline)
        assert event["method"] == "events.task_changed"
        assert event["params"]["change"] == "created"
        assert event["params"]["task"]["slug"] == "watched"
        assert watch.poll() is None
    finally:
        watch.terminate()
        _, err = watch.communicate(timeout=10)
    assert "Traceback" not in err
