"""The daemon's life: start, status, one per user, socket permissions, shutdown, kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import orchestra
from orchestra.core.errors import EXIT_UNREACHABLE, EXIT_USAGE
from tests.conftest import Env, call
from tests.daemon.wire import Raw, alive, log_lines, stop_and_forget, wait_until
from tests.e2e.support import configure, toml


@pytest.fixture
def running(daemon: Env, project: Path) -> Iterator[Env]:
    """A started daemon and an initialised project; the daemon is stopped quickly afterwards."""
    yield daemon
    stop_and_forget(daemon)


@pytest.fixture
def user(env: Env) -> Iterator[Env]:
    """A private user with no daemon yet; any daemon a test starts is stopped afterwards."""
    yield env
    stop_and_forget(env)


def status(env: Env) -> dict[str, Any]:
    result: dict[str, Any] = call(env, "daemon.status")
    return result


def tasks_of(env: Env, project: Path) -> dict[str, str]:
    """slug -> status for every task in `project`."""
    listed = call(env, "task.list", {"project": str(project)})
    return {t["slug"]: t["status"] for t in listed["tasks"]}


def task_files(project: Path) -> list[str]:
    return sorted(p.name for p in (project / ".orchestra" / "tasks").glob("*.md"))


def kill9(env: Env) -> int:
    """SIGKILL the daemon (pid from daemon.status) and wait until it is gone."""
    pid: int = status(env)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), f"daemon {pid} to die")
    return pid


def restart_lines(project: Path) -> list[dict[str, Any]]:
    return [
        line
        for line in log_lines(project)
        if line.get("event") == "task.status" and line.get("why") == "daemon restart"
    ]


def test_status_fields(running: Env, project: Path) -> None:
    """daemon.status reports pid, version, uptime, socket, subscribers and per-project counts."""
    call(running, "task.new", {"project": str(project), "slug": "one"})
    first = status(running)
    assert first["pid"] == running.daemon_pid()
    assert alive(first["pid"])
    assert first["version"] == orchestra.__version__
    assert isinstance(first["uptime"], float | int)
    assert first["uptime"] >= 0
    assert first["socket"] == str(running.socket)
    assert first["subscribers"] == 0
    assert first["projects"] == [{"root": str(project), "tasks": {"draft": 1}}]
    wait_until(lambda: status(running)["uptime"] > first["uptime"], "uptime to grow")
    later = status(running)
    assert later["started_at"] == first["started_at"]


def test_daemon_log(running: Env) -> None:
    """The daemon writes its own JSON-lines log in the user's state dir."""
    log = running.base / "state" / "orchestra" / "daemon.log"
    pid = status(running)["pid"]
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    started = [x for x in lines if x["event"] == "daemon.started"]
    assert [x["pid"] for x in started] == [pid]
    assert started[0]["level"] == "info"
    assert str(running.socket) in started[0]["message"]


def test_status_cli_json_matches_the_method(running: Env) -> None:
    """`orchestra daemon status --json` prints the daemon.status result."""
    out = running.run("daemon", "status", "--json", check=True).stdout
    data = json.loads(out)
    assert data["pid"] == status(running)["pid"]
    assert data["socket"] == str(running.socket)


def test_socket_permissions(user: Env) -> None:
    """The socket's directory is 0700 (the daemon tightens one that existed looser, which
    clients refuse until then) and the socket 0600."""
    user.socket.parent.mkdir(mode=0o755, parents=True)
    user.socket.parent.chmod(0o755)
    refused = user.run("daemon", "start")
    assert refused.returncode == EXIT_UNREACHABLE and "run `chmod 700" in refused.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestra", "daemon", "run"],
        env=user.vars,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_until(lambda: user.socket.exists(), "the daemon's socket")
    user.run("daemon", "status", check=True)
    dir_mode = user.socket.parent.stat().st_mode
    sock_mode = user.socket.stat().st_mode
    assert stat.S_IMODE(dir_mode) == 0o700
    assert stat.S_ISSOCK(sock_mode)
    assert stat.S_IMODE(sock_mode) == 0o600
    user.run("daemon", "stop", check=True)
    assert proc.wait(timeout=30) == 0


def test_second_daemon_run_is_refused(running: Env) -> None:
    """A second `orchestra daemon run` exits non-zero naming the running daemon's pid."""
    pid = status(running)["pid"]
    proc = running.run("daemon", "run")
    assert proc.returncode != 0
    assert "already running" in proc.stderr
    assert f"pid {pid}" in proc.stderr
    assert status(running)["pid"] == pid  # the first one is untouched and still serves


def test_a_second_daemon_on_another_socket_is_refused(running: Env, project: Path) -> None:
    """A daemon started on another socket by the same user is refused,
    naming the running one and its socket; the first daemon's agents live on, and its record
    of them is intact: after a kill -9 of it, the next daemon still ends their leftovers."""
    root = str(project)
    # It outlives the hung-up terminal a killed daemon leaves: only the next daemon's
    # clean-up of the runs recorded ends it.
    stubborn = [
        "/bin/sh", "-c", 'trap "" HUP; exec "$0" "$@"', "{python}", "-c",
        "import time; print('stubborn ready', flush=True); time.sleep(3600)",
    ]  # fmt: skip
    configure(project, f"agents.stubborn.command = {toml(stubborn)}")
    call(running, "task.new", {"project": root, "slug": "alpha", "agent": "stubborn"})
    call(running, "task.start", {"project": root, "task": "alpha"})
    pid = status(running)["pid"]
    agent = call(running, "task.get", {"project": root, "task": "alpha"})["run"]["pid"]
    other = str(running.base / "run2" / "o.sock")
    proc = running.run("daemon", "start", cwd=project, extra={"ORCHESTRA_SOCKET": other})
    assert proc.returncode != 0
    assert f"another daemon of yours (pid {pid}) serves {running.socket}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert alive(agent), "the second daemon ended the first one's agent"
    assert status(running)["pid"] == pid

    kill9(running)
    assert alive(agent)
    running.run("daemon", "start", check=True)
    wait_until(lambda: not alive(agent), "the killed daemon's agent to be ended")


@pytest.mark.parametrize(
    ("socket", "code", "says"),
    [
        ("rel/o.sock", EXIT_USAGE, "ORCHESTRA_SOCKET: socket must be an absolute path"),
        ("/tmp/" + "a" * 110 + "/o.sock", EXIT_USAGE, "is longer than 107 bytes"),
        ("/etc/passwd/o.sock", EXIT_UNREACHABLE, "/etc/passwd is not a directory"),
    ],
    ids=["relative", "too-long", "under-a-file"],
)
def test_a_bad_socket_setting_is_one_line(
    user: Env, project: Path, socket: str, code: int, says: str
) -> None:
    """A relative socket, one over the Unix socket limit, or one under a file gets one
    clear line and its exit code from every command, creates nothing, starts no daemon."""
    before = sorted(p.name for p in project.iterdir())
    for args in (["status"], ["daemon", "start"], ["daemon", "run"], ["new", "x", "-m", "y"]):
        proc = user.run(*args, cwd=project, extra={"ORCHESTRA_SOCKET": socket})
        # `daemon run` is no client: a place it cannot serve on is its exit 1.
        serving = args == ["daemon", "run"] and code == EXIT_UNREACHABLE
        assert proc.returncode == (1 if serving else code), (args, proc.stderr)
        [line] = proc.stderr.splitlines()
        assert says in line and "Traceback" not in line, (args, line)
    assert sorted(p.name for p in project.iterdir()) == before
    assert user.daemon_pid() is None


def test_daemon_start_when_running_reports_it(running: Env) -> None:
    """`orchestra daemon start` with a daemon up reports that one instead of starting another."""
    pid = status(running)["pid"]
    proc = running.run("daemon", "start", check=True)
    assert proc.stdout.strip() == f"daemon already running: pid {pid}, socket {running.socket}"
    data = json.loads(running.run("daemon", "start", "--json", check=True).stdout)
    assert (data["pid"], data["started"]) == (pid, False)


def test_racing_starts_make_one_daemon(user: Env) -> None:
    """Several `daemon start` at once all succeed and all report the same single daemon."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "orchestra", "daemon", "start", "--json"],
            env=user.vars,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    pids = {json.loads(out)["pid"] for out, _ in outputs}
    assert pids == {status(user)["pid"]}


def test_shutdown_method(running: Env) -> None:
    """daemon.shutdown answers, then the process exits, hanging up on idle and subscribed
    clients, and its socket is removed."""
    pid = status(running)["pid"]
    with Raw(running.socket) as idle, Raw(running.socket) as sub, Raw(running.socket) as c:
        idle.ping()
        sub.request("events.subscribe")
        reply = c.request("daemon.shutdown")
        assert reply["result"] == {"stopping": True, "pid": pid}
        for conn in (c, idle, sub):
            assert conn.line() == b""  # the daemon hangs up once it stops
    wait_until(lambda: not running.socket.exists(), "the socket to be removed")
    wait_until(lambda: not alive(pid), f"daemon {pid} to exit")
    proc = running.run("daemon", "status")
    assert proc.returncode == EXIT_UNREACHABLE
    assert "not running" in proc.stderr


def test_daemon_stop_cli(running: Env) -> None:
    """`orchestra daemon stop` stops it gracefully, says which pid stopped, and returns
    only once that process has ended."""
    pid = status(running)["pid"]
    proc = running.run("daemon", "stop", check=True)
    assert proc.stdout.strip() == f"daemon stopped (pid {pid})"
    assert not running.socket.exists()
    assert not alive(pid), f"daemon {pid} still runs after `daemon stop` returned"
    assert running.run("daemon", "stop", check=True).stdout.strip() == "daemon not running"


def test_kill9_loses_nothing_and_start_replaces_the_socket(running: Env, project: Path) -> None:
    """After kill -9 every task file is intact, `daemon start` replaces the stale socket, and
    tasks that were running or idle are stopped, each with a log line."""
    root = str(project)
    for slug in ("alpha", "beta", "gamma", "delta"):
        call(running, "task.new", {"project": root, "slug": slug, "description": f"Do {slug}."})
    call(running, "task.start", {"project": root, "task": "alpha"})
    call(running, "task.start", {"project": root, "task": "beta"})
    call(running, "task.set_status", {"project": root, "task": "beta", "status": "idle"})
    call(running, "task.start", {"project": root, "task": "gamma"})
    call(running, "task.set_status", {"project": root, "task": "gamma", "status": "complete"})
    before = {p.name: p.read_text() for p in (project / ".orchestra" / "tasks").glob("*.md")}

    old = kill9(running)
    assert running.socket.exists()  # stale: nobody listens on it any more
    with pytest.raises(ConnectionRefusedError):
        Raw(running.socket)
    after = {p.name: p.read_text() for p in (project / ".orchestra" / "tasks").glob("*.md")}
    assert after == before

    proc = running.run("daemon", "start", check=True)
    new = status(running)["pid"]
    assert new != old
    assert proc.stdout.strip() == f"daemon started: pid {new}, socket {running.socket}"
    # The known project is recovered at start-up, before anyone asks about it.
    wait_until(lambda: len(restart_lines(project)) == 2, "two daemon-restart log lines")
    lines = restart_lines(project)
    assert sorted((x["slug"], x["previous"], x["status"]) for x in lines) == [
        ("alpha", "running", "stopped"),
        ("beta", "idle", "stopped"),
    ]
    assert all("daemon restart" in x["message"] for x in lines)
    assert tasks_of(running, project) == {
        "alpha": "stopped",
        "beta": "stopped",
        "gamma": "completed",
        "delta": "draft",
    }
    assert task_files(project) == sorted(before)
    assert (project / ".orchestra" / "tasks" / "4-delta.md").read_text() == before["4-delta.md"]
    # Ids carry on after the crash; none is handed out twice.
    assert call(running, "task.new", {"project": root, "slug": "epsilon"})["id"] == 5


def test_kill9_then_autostart(running: Env, project: Path) -> None:
    """After kill -9 any command autostarts a new daemon, which has stopped the running task."""
    call(running, "task.new", {"project": str(project), "slug": "alpha"})
    call(running, "task.start", {"project": str(project), "task": 1})
    old = kill9(running)
    proc = running.run("status", "--json", cwd=project, check=True)
    tasks = json.loads(proc.stdout)["tasks"]
    assert [(t["slug"], t["status"]) for t in tasks] == [("alpha", "stopped")]
    new = status(running)["pid"]
    assert new != old
    assert alive(new)
    assert len(restart_lines(project)) == 1


def test_restart_cli_stops_running_tasks(running: Env, project: Path) -> None:
    """`orchestra daemon restart` stops the agents first (tasks become stopped, logged as
    "daemon stopping"), then brings up a new daemon."""
    call(running, "task.new", {"project": str(project), "slug": "alpha"})
    call(running, "task.start", {"project": str(project), "task": "alpha"})
    old = status(running)["pid"]
    proc = running.run("daemon", "restart", check=True)
    new = status(running)["pid"]
    assert new != old
    assert proc.stdout.strip() == f"daemon restarted: pid {new}, socket {running.socket}"
    assert tasks_of(running, project) == {"alpha": "stopped"}
    stops = [
        x for x in log_lines(project) if x["event"] == "task.status" and x["status"] == "stopped"
    ]
    assert len(stops) == 1 and stops[0]["why"].startswith("daemon stopping")
    assert restart_lines(project) == []  # nothing was left running for recovery


def test_kill9_during_writes_leaves_every_file_whole(running: Env, project: Path) -> None:
    """A kill -9 while another client is rewriting task files leaves each file old or new,
    never half written, and no task missing."""
    root = str(project)
    for i in range(5):
        call(running, "task.new", {"project": root, "slug": f"t{i}"})
    written = threading.Semaphore(0)

    def hammer() -> None:
        try:
            with running.client() as c:
                for n in range(100_000):
                    text = f"Revision {n}.\n" + "x" * 50_000
                    c.call("task.update", {"project": root, "task": n % 5 + 1, "description": text})
                    written.release()
        except Exception:
            return  # the daemon dying under us is the point

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        for _ in range(20):
            assert written.acquire(timeout=10), "updates stalled before the kill"
        kill9(running)
    finally:
        thread.join(timeout=10)
    assert not thread.is_alive()

    assert task_files(project) == [f"{i + 1}-t{i}.md" for i in range(5)]
    running.run("daemon", "start", check=True)
    listed = call(running, "task.list", {"project": root, "description": True})
    assert listed["errors"] == []
    for task in listed["tasks"]:
        head, _, tail = task["description"].partition("\n")
        whole = re.fullmatch(r"Revision \d+\.", head) and tail == "x" * 50_000 + "\n"
        assert task["description"] == "" or whole, task["description"][:80]
