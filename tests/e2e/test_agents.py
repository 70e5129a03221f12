"""Agents at work: concurrency limits, teardown of whole process trees, idle detection,
agent exit, kill -9 of the daemon and recovery — real agents in real PTYs, checked in /proc."""

from __future__ import annotations

import functools
import json
import os
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from orchestra.core.errors import EXIT_ERROR
from tests.conftest import call, git
from tests.daemon.wire import Raw, alive, log_lines, wait_until
from tests.e2e.support import (
    Api,
    add_agent,
    agents_of,
    cmdline,
    configure,
    fds,
    ptys,
    run_id,
    stat,
    with_marker,
    with_run_id,
    zombies,
)

# Runs a moment, then exits.
BRIEF = """
import time
print("hi", flush=True)
time.sleep(0.3)
"""

# Two children in its own process group, then waits.
FAMILY = """
import subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)]
print("family", *(k.pid for k in kids), "ready", flush=True)  # the marker last: the pids came
time.sleep(60)
"""

# Ignores SIGHUP and SIGTERM: only SIGKILL ends it.
STUBBORN = """
import signal, time
signal.signal(signal.SIGHUP, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("stubborn ready", flush=True)
while True:
    time.sleep(60)
"""

# Forks a grandchild that ignores SIGHUP and writes its pid to argv[1]; once it is
# ready, exits.
FORKS_AND_EXITS = """
import subprocess, sys
code = (
    "import os, signal, sys, time; signal.signal(signal.SIGHUP, signal.SIG_IGN);"
    " open(sys.argv[1], 'w').write(str(os.getpid())); print('ready', flush=True); time.sleep(60)"
)
grandchild = subprocess.Popen([sys.executable, "-c", code, sys.argv[1]], stdout=subprocess.PIPE)
assert grandchild.stdout is not None and grandchild.stdout.readline() == b"ready\\n"
print("agent exits, leaving", grandchild.pid, flush=True)
"""

# Starts a helper the way Codex starts its app-server: fork, setsid, fork again, the
# middle process exits; the helper, with no terminal, ignores SIGHUP. Then it waits.
SETSID_HELPER = """
import os, signal, sys, time
marker = sys.argv[1]
middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        argv = [sys.executable, "-c", "import time; time.sleep(60)", marker + "-app-server"]
        os.execv(sys.executable, argv)
    os._exit(0)
os.waitpid(middle, 0)
print("helper started", flush=True)
time.sleep(60)
"""

# Prints, goes quiet, and echoes each line it is sent.
ECHO = """
import sys
print("echo ready", flush=True)
for line in sys.stdin:
    print("echo:", line.strip(), flush=True)
"""

# Talks until it gets a line of input; then quiet for a second, a burst of output, quiet.
CHATTY = """
import select, sys, time
n = 0
while not select.select([sys.stdin], [], [], 0.02)[0]:
    n += 1
    print("tick", n, flush=True)
sys.stdin.readline()
print("quiet now", flush=True)
time.sleep(1.0)
for i in range(15):
    print("burst", i, flush=True)
    time.sleep(0.05)
time.sleep(60)
"""

# Says how it was started; records any SIGHUP in hup.log next to this script.
RESUMABLE = """
import os, signal, sys, time
from pathlib import Path
def hup(signum, frame):
    with open(Path(__file__).with_name("hup.log"), "a") as f:
        f.write(os.environ["ORCHESTRA_TASK_SLUG"] + " got SIGHUP\\n")
    sys.exit(129)
signal.signal(signal.SIGHUP, hup)
print("argv", *sys.argv[1:], flush=True)
while True:
    time.sleep(60)
"""


def exited_line(api: Api, task_id: int) -> dict[str, Any]:
    [line] = api.events("agent.exited", task_id)
    return line


def daemon_pid(api: Api) -> int:
    pid = api.env.daemon_pid()
    assert pid is not None
    return pid


def no_zombies(pid: int) -> None:
    wait_until(lambda: not zombies(pid), f"the zombies of {pid} to be reaped")


@pytest.mark.shared_daemon  # one project's queue: any daemon will do (tests/conftest.py)
async def test_twenty_tasks_never_run_more_than_max_running(api: Api) -> None:
    """20 tasks started at once with max_running = 4: never more than 4 agents alive, the
    rest queued and started in the order they queued, and all 20 run and end stopped."""
    configure(api.root, "max_running = 4")
    add_agent(api.env, api.root, "brief", BRIEF)
    slugs = [f"task-{i:02d}" for i in range(1, 21)]
    for slug in slugs:
        api.new(slug, agent="brief")
    seen: list[int] = []
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            seen.append(len(agents_of(api.env)))

    def all_stopped() -> bool:
        return all(t["status"] == "stopped" for t in api("task.list")["tasks"])

    start = functools.partial(call, api.env, "task.start")
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, watch)
            try:
                async with trio.open_nursery() as starts:
                    for slug in slugs:
                        starts.start_soon(
                            trio.to_thread.run_sync, start, {"project": str(api.root), "task": slug}
                        )
                await trio.to_thread.run_sync(wait_until, all_stopped, "all 20 to stop", 30.0)
            finally:
                finished.set()

    assert seen and max(seen) <= 4, max(seen)
    assert max(seen) >= 2  # they did run side by side
    started = api.events("agent.started")
    assert sorted(x["slug"] for x in started) == slugs
    queued = [x["slug"] for x in api.events("task.status") if x["status"] == "queued"]
    freed = [x["slug"] for x in api.events("task.status") if x["why"] == "a running slot freed"]
    assert len(queued) == 16 and freed == queued
    assert all(x["exit_code"] == 0 for x in api.events("agent.exited"))
    assert agents_of(api.env) == {}


@pytest.mark.shared_daemon  # its fds and PTYs are counted from where it found them
def test_stop_leaves_no_process_zombie_or_fd(api: Api) -> None:
    """After `stop -y` no process of the task is alive, the daemon has no zombie child, and
    its open fds (PTY masters included) are back to what they were before the start."""
    add_agent(api.env, api.root, "family", FAMILY)
    api.new("alpha", agent="family")
    daemon = daemon_pid(api)
    baseline = len(fds(daemon))
    assert ptys(daemon) == 0

    api("task.start", task="alpha")
    out = api.wait_output("alpha", " ready")
    agent = api.pid("alpha")
    run = run_id(agent)
    kids = {int(x) for x in out.split("family", 1)[1].split(" ready", 1)[0].split()}
    assert len(kids) == 2, out
    assert with_run_id(run) == {agent, *kids}
    assert all((st := stat(k)) is not None and st[2] == agent for k in kids)  # same session
    assert ptys(daemon) >= 1

    proc = api.cli("stop", "-y", "alpha")
    assert (proc.returncode, proc.stdout) == (0, "task 1-alpha is stopped\n")
    assert with_run_id(run) == set()  # gone before `stop` returned
    assert not any(alive(p) for p in (agent, *kids))
    no_zombies(daemon)
    assert ptys(daemon) == 0
    wait_until(lambda: len(fds(daemon)) == baseline, "the daemon's fds to return to baseline")
    line = exited_line(api, 1)
    assert sorted(line["signalled"]) == sorted({agent, *kids})
    assert line["killed"] == [] and line["survivors"] == []
    assert line["reason"] == "stopped on request"


def test_daemon_stop_ends_every_agent(api: Api) -> None:
    """`daemon stop` stops every agent first, escaped helpers included: afterwards no process
    of any task is alive and each task is logged stopped."""
    marker = f"e2e-helper-{uuid.uuid4().hex}"
    add_agent(api.env, api.root, "helper", SETSID_HELPER, args=(marker,))
    api.new("alpha")
    api.new("beta", agent="helper")
    api("task.start", task="alpha")
    api("task.start", task="beta")
    api.wait_output("beta", "helper started")
    runs = [run_id(api.pid("alpha")), run_id(api.pid("beta"))]
    [helper] = wait_until(lambda: with_marker(f"{marker}-app-server"), "the helper to start")
    daemon = daemon_pid(api)

    proc = api.cli("daemon", "stop")
    assert proc.returncode == 0, proc.stderr
    wait_until(lambda: not alive(daemon), "the daemon to exit")
    assert all(with_run_id(r) == set() for r in runs)
    assert not alive(helper)
    stops = [x for x in api.events("task.status") if x["status"] == "stopped"]
    assert sorted(x["slug"] for x in stops) == ["alpha", "beta"]
    assert all(x["why"].startswith("daemon stopping") for x in stops)
    assert len(api.events("agent.exited")) == 2


@pytest.mark.shared_daemon  # one task's states and log: any daemon will do (tests/conftest.py)
def test_an_agent_that_ignores_sigterm_is_killed(api: Api) -> None:
    """An agent that ignores SIGHUP and SIGTERM is SIGKILLed after stop_grace; the log says
    it was killed."""
    configure(api.root, "stop_grace = 0.5")
    add_agent(api.env, api.root, "stubborn", STUBBORN)
    api.new("alpha", agent="stubborn")
    api("task.start", task="alpha")
    api.wait_output("alpha", "stubborn ready")
    agent = api.pid("alpha")

    assert api("task.stop", task="alpha")["status"] == "stopped"
    assert not alive(agent)
    line = exited_line(api, 1)
    assert line["killed"] == [agent] and line["survivors"] == []
    assert line["exit_code"] == -signal.SIGKILL
    assert api.get("alpha")["exit_code"] == -signal.SIGKILL
    no_zombies(daemon_pid(api))


@pytest.mark.shared_daemon  # one task's states and log: any daemon will do (tests/conftest.py)
def test_a_grandchild_left_by_an_exited_agent_is_killed(api: Api) -> None:
    """When an agent forks a grandchild and exits, the grandchild (which ignores SIGHUP) is
    killed with the rest of the task, and the task ends stopped with the agent's exit code."""
    configure(api.root, "stop_grace = 0.5")
    pidfile = api.env.base / "grandchild.pid"
    add_agent(api.env, api.root, "forker", FORKS_AND_EXITS, args=(str(pidfile),))
    api.new("alpha", agent="forker")

    api("task.start", task="alpha")
    api.wait_status("alpha", "stopped")
    grandchild = int(pidfile.read_text())
    assert not alive(grandchild)
    line = exited_line(api, 1)
    assert grandchild in line["signalled"] and line["survivors"] == []
    assert (line["exit_code"], line["reason"]) == (0, "agent exited")
    no_zombies(daemon_pid(api))


@pytest.mark.shared_daemon  # one task's states and log: any daemon will do (tests/conftest.py)
def test_a_setsid_double_forked_helper_is_stopped_with_its_agent(api: Api) -> None:
    """A helper that left the agent's session by setsid and a double fork (like Codex's
    app-server) is adopted by the daemon and killed by `stop` with its agent."""
    marker = f"e2e-helper-{uuid.uuid4().hex}"
    add_agent(api.env, api.root, "helper", SETSID_HELPER, args=(marker,))
    api.new("alpha", agent="helper")
    daemon = daemon_pid(api)

    api("task.start", task="alpha")
    api.wait_output("alpha", "helper started")
    agent = api.pid("alpha")
    [helper] = wait_until(lambda: with_marker(f"{marker}-app-server"), "the helper to start")
    helper_stat, agent_stat = stat(helper), stat(agent)
    assert helper_stat is not None and agent_stat is not None
    assert helper_stat[2] != agent_stat[2]  # another session: no SIGHUP from the terminal
    assert helper_stat[1] == daemon  # the daemon (a child subreaper) adopted it
    assert run_id(helper) == run_id(agent)

    proc = api.cli("stop", "-y", "alpha")
    assert proc.returncode == 0, proc.stderr
    assert not alive(helper) and not alive(agent)
    assert with_marker(f"{marker}-app-server") == set()
    assert helper in exited_line(api, 1)["signalled"]
    no_zombies(daemon)


@pytest.mark.shared_daemon  # one task's states and log: any daemon will do (tests/conftest.py)
def test_idle_after_quiet_running_again_on_input(api: Api) -> None:
    """An agent that prints then goes quiet becomes idle after idle_timeout (an event and a
    log line); input it echoes makes it running again, and quiet makes it idle again."""
    configure(api.root, "idle_timeout = 0.3\nidle_dwell = 0.2")
    add_agent(api.env, api.root, "echo", ECHO)
    api.new("alpha", agent="echo")
    with Raw(api.env.socket) as events:
        assert events.request("events.subscribe", {"project": str(api.root)})["result"]
        api("task.start", task="alpha")
        api.wait_output("alpha", "echo ready")
        api.wait_status("alpha", "idle")
        while (note := events.recv())["params"]["task"]["status"] != "idle":
            pass
        assert note["method"] == "events.task_changed"
        assert note["params"]["previous_status"] == "running"

        assert api("task.send_input", task="alpha", text="ping\r") == {"sent": 5}
        api.wait_output("alpha", "echo: ping")
        moves = wait_until(lambda: idle_moves(api, 3), "idle again")

    assert moves[:3] == [
        ("running", "idle", "no output for 0.3 s"),
        ("idle", "running", "input"),
        ("running", "idle", "no output for 0.3 s"),
    ]
    assert api.get("alpha")["run"]["idle_for"] >= 0.3


def idle_moves(api: Api, at_least: int) -> list[tuple[str, str, str]] | None:
    """Task 1's moves between running and idle, once there are `at_least` of them."""
    moves = [
        (x["previous"], x["status"], x["why"])
        for x in api.events("task.status", 1)
        if {x["previous"], x["status"]} == {"running", "idle"}
    ]
    return moves if len(moves) >= at_least else None


@pytest.mark.shared_daemon  # one task's states and log: any daemon will do (tests/conftest.py)
def test_explicit_idle_wins_over_output_until_input(api: Api) -> None:
    """`orchestra idle` makes a running task idle and its output does not undo that; input
    does, and from then on the timer and output move it again as usual."""
    configure(api.root, "idle_timeout = 0.3\nidle_dwell = 0.2")
    add_agent(api.env, api.root, "chatty", CHATTY)
    api.new("alpha", agent="chatty")
    api("task.start", task="alpha")
    api.wait_output("alpha", "tick 2")

    proc = api.cli("idle", "alpha", "-m", "waiting for review")
    assert (proc.returncode, proc.stdout) == (0, "task 1-alpha is idle\n")
    mark = api.get("alpha")["run"]["output_bytes"]
    # Output for several times idle_dwell: the task stays idle.
    wait_until(lambda: api.get("alpha")["run"]["output_bytes"] > mark + 400, "more output")
    assert api.status("alpha") == "idle"

    api("task.send_input", task="alpha", text="go\r")

    def since_report() -> list[tuple[str, str, str]] | None:
        # A slow start (a loaded machine) may add a silence and its end before the report.
        moves = idle_moves(api, 1) or []
        reported = [i for i, m in enumerate(moves) if m[2].startswith("`idle` reported")]
        return moves[reported[0] :] if reported and len(moves) - reported[0] >= 4 else None

    moves = wait_until(since_report, "quiet, then a burst of output")
    assert moves[:4] == [
        ("running", "idle", "`idle` reported: waiting for review"),
        ("idle", "running", "input"),
        ("running", "idle", "no output for 0.3 s"),
        ("idle", "running", "output again"),
    ]


@pytest.mark.shared_daemon  # one task's states and log: any daemon will do (tests/conftest.py)
def test_agent_exit_code_is_logged_and_the_task_stops(api: Api) -> None:
    """When the agent exits by itself its exit code is logged and shown, and the task
    becomes stopped."""
    add_agent(api.env, api.root, "quitter", "import sys\nprint('bye', flush=True)\nsys.exit(7)\n")
    api.new("alpha", agent="quitter")
    api("task.start", task="alpha")

    task = api.wait_status("alpha", "stopped")
    assert (task["exit_code"], task["run"]) == (7, None)
    line = exited_line(api, 1)
    assert (line["exit_code"], line["reason"]) == (7, "agent exited")
    [stop] = [x for x in api.events("task.status", 1) if x["status"] == "stopped"]
    assert (stop["why"], stop["exit_code"]) == ("agent exited, exit code 7", 7)


@pytest.mark.shared_daemon  # one task's states and log: any daemon will do (tests/conftest.py)
def test_demo_agent_reports_done_and_quitting_keeps_it_completed(api: Api) -> None:
    """The demo agent works, reports completion when told `done`, and when it then exits the
    task stays completed (with the exit code logged and its commit counted)."""
    configure(api.root, 'agents.demo.env = {ORCHESTRA_DEMO_STEP_DELAY = "0"}')
    api.new("alpha", agent="demo")
    api("task.start", task="alpha")
    api.wait_output("alpha", "type `done`")

    api("task.send_input", task="alpha", text="done\r")
    task = api.wait_status("alpha", "completed")
    assert task["run"] is not None  # reporting does not end the agent
    api("task.send_input", task="alpha", text="quit\r")
    wait_until(lambda: api.get("alpha")["run"] is None, "the demo agent to exit")

    task = api.get("alpha")
    assert (task["status"], task["exit_code"]) == ("completed", 0)
    assert exited_line(api, 1)["exit_code"] == 0
    assert [t["ahead"] for t in api("task.list")["tasks"]] == [1]
    assert git("log", "-1", "--format=%s", "orchestra/1-alpha", cwd=api.root).strip()


@pytest.mark.shared_daemon  # one project's queue: any daemon will do (tests/conftest.py)
def test_a_completed_tasks_agent_frees_its_slot(api: Api) -> None:
    """With max_running = 1, when the running demo agent is told `done` (it reports
    completion and lives on), the queued task starts at once: a completed task's agent
    holds no running slot."""
    configure(api.root, 'max_running = 1\nagents.demo.env = {ORCHESTRA_DEMO_STEP_DELAY = "0"}')
    for slug in ("one", "two"):
        api.new(slug, agent="demo")
        api("task.start", task=slug)
    assert (api.status("one"), api.status("two")) == ("running", "queued")
    api.wait_output("one", "type `done`")

    proc = api.cli("send", "one", "done", "--enter")
    assert proc.returncode == 0, proc.stderr

    api.wait_status("two", "running")
    one = api.get("one")
    assert (one["status"], one["run"] is not None) == ("completed", True)
    freed = [x for x in api.events("task.status") if x["why"] == "a running slot freed"]
    assert [x["slug"] for x in freed] == ["two"]


def test_kill9_of_the_daemon_then_restart_resumes(api: Api) -> None:
    """After kill -9 of the daemon its agents die of SIGHUP (the kernel hangs up their
    terminal when the PTY master closes) while a setsid helper survives until the next
    daemon start ends it; that daemon marks the tasks stopped, the worktrees are intact,
    and `start` resumes the recorded session."""
    add_agent(
        api.env,
        api.root,
        "resumable",
        RESUMABLE,
        args=("fresh",),
        resume=("resumed", "{session_id}"),
    )
    marker = f"e2e-helper-{uuid.uuid4().hex}"
    add_agent(api.env, api.root, "helper", SETSID_HELPER, args=(marker,))
    for slug, agent, ready in (
        ("alpha", "resumable", "argv fresh"),
        ("beta", "resumable", "argv fresh"),
        ("gamma", "helper", "helper started"),
    ):
        api.new(slug, agent=agent)
        api("task.start", task=slug)
        api.wait_output(slug, ready)
    api("task.session_set", task="alpha", session_id="sess-42")
    agents = [api.pid("alpha"), api.pid("beta"), api.pid("gamma")]
    [helper] = wait_until(lambda: with_marker(f"{marker}-app-server"), "the helper to start")
    work = api.root / ".orchestra" / "worktrees" / "1-alpha" / "work.txt"
    work.write_text("half done\n")
    old = daemon_pid(api)

    os.kill(old, signal.SIGKILL)
    wait_until(lambda: not alive(old), "the daemon to die")
    wait_until(lambda: not any(alive(p) for p in agents), "the orphaned agents to exit")
    hup_log = api.env.base / "agents" / "hup.log"
    assert sorted(hup_log.read_text().splitlines()) == ["alpha got SIGHUP", "beta got SIGHUP"]
    assert alive(helper)  # no terminal, no SIGHUP: only the next daemon can end it

    proc = api.env.run("daemon", "start")
    assert proc.returncode == 0, proc.stderr
    assert not alive(helper)  # ended before the new daemon answered
    [leftovers] = [
        x for x in daemon_log(api) if x.get("event") == "daemon.leftovers" and x["task_id"] == 3
    ]
    assert leftovers["project"] == str(api.root)
    assert leftovers["message"] == f"ended 1 leftover process(es) of task 3 in {api.root}"
    wait_until(lambda: len(restarts(api.root)) == 3, "three daemon-restart log lines")
    api.reconnect()
    assert {t["slug"]: t["status"] for t in api("task.list")["tasks"]} == {
        "alpha": "stopped",
        "beta": "stopped",
        "gamma": "stopped",
    }
    assert work.read_text() == "half done\n"
    listed = git("worktree", "list", "--porcelain", cwd=api.root)
    for stem in ("1-alpha", "2-beta"):
        assert f"worktree {api.root / '.orchestra' / 'worktrees' / stem}\n" in listed

    for slug in ("alpha", "beta"):
        assert api("task.start", task=slug)["status"] == "running"
    assert cmdline(api.pid("alpha"))[-2:] == ["resumed", "sess-42"]
    assert cmdline(api.pid("beta"))[-1] == "fresh"  # no session recorded: a fresh start
    api.wait_output("alpha", "argv resumed sess-42")
    resumed = [(x["slug"], x["resume"]) for x in api.events("agent.started")[3:]]
    assert resumed == [("alpha", True), ("beta", False)]
    assert [x["worktree_created"] for x in api.events("task.worktree", 1)] == [True, False]


def daemon_log(api: Api) -> list[dict[str, Any]]:
    path = api.env.base / "state" / "orchestra" / "daemon.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def restarts(project: Path) -> list[dict[str, Any]]:
    return [x for x in log_lines(project) if x.get("why") == "daemon restart"]


@pytest.mark.shared_daemon  # one task's states and log: any daemon will do (tests/conftest.py)
def test_an_agent_command_not_on_path_fails_the_start(api: Api) -> None:
    """An agent whose program is not on PATH fails `start` with a clear message, and the
    task is failed."""
    configure(api.root, 'agents.ghost.command = ["orchestra-e2e-no-such-agent", "{prompt}"]')
    api.new("alpha", agent="ghost")

    proc = api.cli("start", "alpha")
    assert proc.returncode == EXIT_ERROR
    assert proc.stderr == (
        "orchestra: agent command 'orchestra-e2e-no-such-agent' not found on PATH;"
        " install it or set [agents.<name>] command in config\n"
    )
    task = api.get("alpha")
    assert (task["status"], task["run"]) == ("failed", None)
    assert api.events("agent.started") == []
    [failed] = [x for x in api.events("task.status", 1) if x["status"] == "failed"]
    assert "not found on PATH" in failed["why"]
