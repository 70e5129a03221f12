"""Pathological agents: the daemon stays responsive, its memory bounded, and stop works.

Each agent is a small Python script run as an agent profile. While it misbehaves a
`PingProbe` pings the daemon from its own connection; every test asserts a median
round trip under 50 ms and a worst one under 250 ms, and prints the figures
(`pytest -s` shows them).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestra.client import Client
from orchestra.core.errors import RemoteError
from tests.daemon.wire import alive, wait_until
from tests.e2e.support import Api, add_agent, configure, ptys, run_id, with_run_id, zombies
from tests.faults.support import PingProbe, daemon_pid, fd_count, rss

# One daemon for the module, a fresh project for each test (tests/conftest.py): the
# figures each test takes of the daemon (memory, fds, PTYs, pings) are relative to where it
# found it, and every test ends with all its agents stopped.
pytestmark = pytest.mark.shared_daemon

MiB = 1 << 20

# Writes `argv[1]` MiB of coloured lines as fast as the terminal takes them (or until
# `argv[2]` seconds pass), says how much, then waits.
FLOOD = r"""
import os, sys, time
chunk = (b"\x1b[32mflood\x1b[0m " + b"x" * 100 + b"\r\n") * 512
goal, end = int(sys.argv[1]) << 20, time.monotonic() + float(sys.argv[2])
total = 0
while total < goal and time.monotonic() < end:
    total += os.write(1, chunk)
os.write(1, b"flood done %d\r\n" % total)
time.sleep(3600)
"""

# Raw mode, never reads its input, and asks its terminal for its attributes (DA1)
# every 50 ms: the answers must not wait behind the input it does not read.
DEAF = r"""
import os, time, tty
tty.setraw(0)
os.write(1, b"deaf ready\r\n")
while True:
    time.sleep(0.05)
    os.write(1, b"\x1b[c")
"""

# Closes its terminal, then lives on.
CLOSES_PTY = """
import os, time
print("closing my terminal", flush=True)
for fd in (0, 1, 2):
    os.close(fd)
time.sleep(3600)
"""

EXITS = "import sys; sys.exit(3)\n"

# Ignores SIGHUP and SIGTERM, and so does the child it starts: only SIGKILL ends them.
STUBBORN = """
import signal, subprocess, sys, time
for s in (signal.SIGHUP, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
print("stubborn ready", flush=True)
while True:
    time.sleep(60)
"""


def quick_stop(api: Api) -> None:
    configure(api.root, "stop_grace = 0.5")


def timed_stop(api: Api, task: str, within: float) -> dict[str, Any]:
    start = time.monotonic()
    stopped: dict[str, Any] = api("task.stop", task=task)
    took = time.monotonic() - start
    assert stopped["status"] == "stopped", stopped
    assert took < within, f"stop took {took:.2f} s"
    return stopped


@pytest.mark.timeout(60)
def test_flood(api: Api) -> None:
    """An agent writing 128 MiB as fast as it can leaves pings fast, and the daemon's
    memory grows by less than 64 MiB (the scrollback ring is bounded)."""
    quick_stop(api)
    add_agent(api.env, api.root, "flood", FLOOD, args=("128", "15"))
    api.new("flood", agent="flood")
    pid = daemon_pid(api.env)
    before = peak = rss(pid)
    with PingProbe(api.env) as probe:
        start = time.monotonic()
        api("task.start", task="flood")
        while "flood done" not in api.tail("flood")[-200:]:
            peak = max(peak, rss(pid))
            assert time.monotonic() - start < 20, "the flood did not end"
            time.sleep(0.02)
        took = time.monotonic() - start
        figures = probe.check("an agent floods its terminal")
    run = api.get("flood")["run"]
    mb = run["output_bytes"] / 1e6
    print(
        f"flood: {mb:.0f} MB in {took:.1f} s ({mb / took:.0f} MB/s); daemon RSS"
        f" {before / MiB:.0f} -> peak {peak / MiB:.0f} MiB; ping {figures}"
    )
    assert run["output_bytes"] >= 128 * MiB
    assert peak - before < 64 * MiB
    assert len(api("task.tail", task="flood", bytes=4 << 20)["text"]) <= 4 << 20
    timed_stop(api, "flood", within=5)


@pytest.mark.timeout(60)
def test_never_reads_input(api: Api) -> None:
    """Three clients typing 768 KiB into an agent that never reads (and keeps asking its
    terminal questions) stall only themselves; stop ends their calls with a clean error,
    and the daemon and its other agents carry on."""
    quick_stop(api)
    add_agent(api.env, api.root, "deaf", DEAF)
    api.new("deaf", agent="deaf")
    api.new("bystander")
    api("task.start", task="bystander")
    api("task.start", task="deaf")
    api.wait_output("deaf", "deaf ready")
    outcomes: list[Any] = []

    def typist() -> None:
        with Client(api.env.socket, timeout=30) as c:
            for _ in range(4):
                try:
                    params = {"project": str(api.root), "task": "deaf", "text": "y" * 65536}
                    outcomes.append(c.call("task.send_input", params))
                except RemoteError as exc:
                    outcomes.append(exc)

    typists = [threading.Thread(target=typist) for _ in range(3)]
    with PingProbe(api.env) as probe:
        for t in typists:
            t.start()
        time.sleep(1.5)
        assert all(t.is_alive() for t in typists)  # blocked: the agent reads nothing
        assert api.status("deaf") in ("running", "idle")
        figures = probe.check("three clients type into an agent that never reads")
        timed_stop(api, "deaf", within=5)
        for t in typists:
            t.join(timeout=10)
        assert not any(t.is_alive() for t in typists)
    print(f"never reads input: {len(outcomes)} calls answered; ping {figures}")
    assert len(outcomes) == 12
    for outcome in outcomes:  # written before the buffer filled, or refused: no -32603
        assert isinstance(outcome, dict) or outcome.remote_code == -32002, outcome
    assert api("task.send_input", task="bystander", text="still here\r") == {"sent": 11}
    assert api.status("bystander") in ("running", "idle")


@pytest.mark.timeout(60)
def test_typing_into_an_agent_that_never_reads_gives_up(api: Api) -> None:
    """With `timeout`, a call gives up once the agent has read nothing for that long: a
    clear -32003 saying how much was typed, and the agent's input is free for the next
    writer (which is not stuck behind the first)."""
    quick_stop(api)
    add_agent(api.env, api.root, "deaf", DEAF)
    api.new("deaf", agent="deaf")
    api("task.start", task="deaf")
    api.wait_output("deaf", "deaf ready")
    for _ in range(2):
        began = time.monotonic()
        with pytest.raises(RemoteError) as caught:
            api("task.send_input", task="deaf", text="y" * 65536, timeout=0.5)
        assert 0.5 <= time.monotonic() - began < 5
        error = caught.value
        assert error.remote_code == -32003, error
        assert "read none of its input for 0.5 s" in error.message
        assert error.data["total"] == 65536
        assert 0 <= error.data["sent"] < 65536
    assert api.status("deaf") in ("running", "idle")
    for bad in (0, -1, 3601, "1", True, None):
        with pytest.raises(RemoteError) as caught:
            api("task.send_input", task="deaf", text="y", timeout=bad)
        assert caught.value.remote_code == -32602, bad
    timed_stop(api, "deaf", within=5)


@pytest.mark.timeout(60)
def test_closes_its_terminal(api: Api) -> None:
    """An agent that closes its PTY and lives on stays a running task that takes input
    without harm, and stop ends it."""
    quick_stop(api)
    add_agent(api.env, api.root, "closer", CLOSES_PTY)
    api.new("closer", agent="closer")
    with PingProbe(api.env) as probe:
        api("task.start", task="closer")
        agent = api.pid("closer")
        api.wait_output("closer", "closing my terminal")
        time.sleep(0.5)
        assert alive(agent)
        assert api.status("closer") in ("running", "idle")
        assert api("pty.screen", task="closer")["text"].startswith("closing my terminal")
        for _ in range(4):  # taken by the kernel's buffer, or refused: never -32603
            try:
                api("task.send_input", task="closer", text="y" * 65536)
            except RemoteError as error:
                assert error.remote_code == -32002, error
        figures = probe.check("an agent closed its terminal")
        timed_stop(api, "closer", within=5)
    print(f"closes its PTY: ping {figures}")
    assert not alive(agent)
    assert ptys(daemon_pid(api.env)) == 0


@pytest.mark.timeout(60)
def test_exits_instantly(api: Api) -> None:
    """An agent that exits at once, started ten times, ends stopped with its exit code
    each time, and leaves no zombie, PTY or other fd behind."""
    quick_stop(api)
    add_agent(api.env, api.root, "quitter", EXITS)
    api.new("quitter", agent="quitter")
    pid = daemon_pid(api.env)
    api("task.list")  # the test's own connection is open before the baseline
    baseline = fd_count(pid)
    with PingProbe(api.env) as probe:
        for _ in range(10):
            api("task.start", task="quitter")
            task = api.wait_status("quitter", "stopped")
            assert task["exit_code"] == 3
        figures = probe.check("an agent exits at once, ten times")
    print(f"exits instantly: ping {figures}")
    wait_until(lambda: not zombies(pid), "the daemon to reap its agents")
    assert ptys(pid) == 0
    wait_until(lambda: fd_count(pid) <= baseline + 1, f"the daemon's fds back to {baseline}")


@pytest.mark.timeout(60)
def test_ignores_sigterm_and_sighup(api: Api) -> None:
    """An agent (and its child) ignoring SIGHUP and SIGTERM is killed within stop_grace,
    with pings fast throughout."""
    quick_stop(api)
    add_agent(api.env, api.root, "stubborn", STUBBORN)
    api.new("stubborn", agent="stubborn")
    api("task.start", task="stubborn")
    api.wait_output("stubborn", "stubborn ready")
    run = run_id(api.pid("stubborn"))
    assert len(with_run_id(run)) == 2
    with PingProbe(api.env) as probe:
        mark = probe.mark()
        stopped = timed_stop(api, "stubborn", within=3)
        time.sleep(0.2)
        figures = probe.check("an agent ignoring SIGTERM is stopped", since=mark)
    print(f"ignores SIGTERM and SIGHUP: ping {figures}")
    assert stopped["exit_code"] == -signal.SIGKILL
    assert not with_run_id(run)


@pytest.mark.timeout(60)
@pytest.mark.own_daemon  # reads the daemon's log
def test_task_file_broken_or_deleted_while_running(api: Api) -> None:
    """A running task whose file a person breaks, then deletes, then restores keeps its
    agent (the idle watchdog waits for a readable file), and the daemon and its other
    agents carry on."""
    configure(api.root, "stop_grace = 0.5\nidle_timeout = 0.3")
    api.new("victim")
    api.new("bystander")
    for slug in ("victim", "bystander"):
        api("task.start", task=slug)
        api.wait_output(slug, "sleeper ready")
    agent = api.pid("victim")
    path = Path(api.get("victim")["file"])
    original = path.read_text()
    with PingProbe(api.env) as probe:
        path.write_text('+++\nstatus = "running\n')  # broken TOML
        time.sleep(1.0)  # the idle watchdog wants to move it to idle meanwhile
        assert alive(agent)
        path.unlink()
        time.sleep(1.0)
        assert alive(agent)
        path.write_text(original)
        wait_until(lambda: api.status("victim") == "idle", "the victim to go idle")
        figures = probe.check("a running task's file is broken, then deleted")
    print(f"task file broken while running: ping {figures}")
    assert api.status("bystander") == "idle"
    timed_stop(api, "victim", within=5)
    assert not alive(agent)
    assert not [x for x in daemon_log(api) if x.get("level") == "error"]


def daemon_log(api: Api) -> list[dict[str, Any]]:
    path = api.env.base / "state" / "orchestra" / "daemon.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
