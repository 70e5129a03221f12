"""Processes that escape everything but their cgroup: an agent's child forks, calls
`setsid`, forks again and execs with an empty environment, so it is neither in the
agent's tree nor carries the run's marker. Stopping the task, stopping the daemon, and
starting a daemon after a `kill -9` of the last one must each end it: through the run's
cgroup where the system gives one, through the subreaper's adopted orphans otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.adapters.cgroups import NO_CGROUPS_ENV as NO_CGROUPS
from tests.conftest import Env, daemon_gone
from tests.daemon.wire import stop_and_forget, wait_until
from tests.e2e.support import Api, add_agent, configure, environ, toml

# The agent says where its escaped grandchild is only once that one runs with an empty
# environment, its stdio on /dev/null and no terminal: a daemonised process.
ESCAPER = """
import os, sys, time
pidfile = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        code = (
            "import os, sys, time; tmp = sys.argv[1] + '.tmp';"
            " open(tmp, 'w').write(str(os.getpid())); os.rename(tmp, sys.argv[1]);"
            " time.sleep(3600)"
        )
        os.execve(sys.executable, [sys.executable, "-c", code, pidfile], {})
    os._exit(0)
print("escaper ready", flush=True)
time.sleep(3600)
"""


@pytest.fixture
def escaped(env: Env) -> Iterator[Path]:
    """Where the test's escaped process writes its pid; it is killed after the test
    whatever happened (nothing else would find it)."""
    pidfile = env.base / "escaped.pid"
    yield pidfile
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def start_escaper(env: Env, project: Path, pidfile: Path, *, cgroups: bool) -> tuple[Api, int]:
    """A daemon (with or without cgroups for its runs) running the escaping agent; the
    escaped process's pid."""
    add_agent(env, project, "escaper", ESCAPER, args=(str(pidfile),))
    configure(project, "stop_grace = 0.5")
    extra = {} if cgroups else {NO_CGROUPS: "1"}
    env.run("daemon", "start", check=True, extra=extra)
    api = Api(env, project)
    status = api.client.call("daemon.status")
    if cgroups and status["cgroups"] is None:
        api.close()
        pytest.skip("no cgroup v2 hierarchy delegated to this user: the fallback is tested")
    assert (status["cgroups"] is None) is not cgroups
    api.new("work", agent="escaper")
    api("task.start", task="work")
    api.wait_output("work", "escaper ready")
    pid = int(wait_until(lambda: read_pid(pidfile), "the escape"))
    assert environ(pid) == {}, "the escaped process should carry no environment at all"
    return api, pid


def read_pid(path: Path) -> str | None:
    with contextlib.suppress(FileNotFoundError):
        return path.read_text() or None
    return None


def gone(pid: int) -> bool:
    """Dead and reaped: no /proc entry at all (a zombie left unreaped still has one)."""
    return not Path(f"/proc/{pid}").exists()


def own_cgroup(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:]
    return ""


@pytest.mark.timeout(60)
def test_stop_ends_an_escaped_process_through_its_cgroup(
    env: Env, project: Path, escaped: Path
) -> None:
    """Where runs get cgroups, the escaped process is in its run's cgroup and `stop` ends
    it; the cgroup is removed after."""
    api, pid = start_escaper(env, project, escaped, cgroups=True)
    try:
        group = own_cgroup(pid)
        assert group == own_cgroup(api.pid("work")), "the agent and its escape share a cgroup"
        name = group.rpartition("/")[2]
        assert name.startswith("run-"), group
        api("task.stop", task="work")
        wait_until(lambda: gone(pid), f"escaped process {pid} to end")
        base = api.client.call("daemon.status")["cgroups"]
        assert not (Path(base) / name).exists(), "the run's cgroup was left behind"
    finally:
        api.close()


@pytest.mark.timeout(60)
def test_a_new_daemon_ends_an_escaped_process_of_a_killed_one(
    env: Env, project: Path, escaped: Path
) -> None:
    """After a `kill -9` of the daemon, the next daemon ends what was left in the cgroups
    of the runs it recorded, escaped processes included."""
    api, pid = start_escaper(env, project, escaped, cgroups=True)
    api.close()
    daemon = env.daemon_pid()
    assert daemon is not None
    os.kill(daemon, signal.SIGKILL)
    wait_until(lambda: daemon_gone(env), "the daemon to die")
    assert not gone(pid), "the escaped process should outlive the killed daemon"
    stop_and_forget(env)
    env.run("daemon", "start", check=True)
    wait_until(lambda: not _alive(pid), f"escaped process {pid} to end after the restart")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.timeout(60)
def test_stop_ends_an_adopted_orphan_without_cgroups(
    env: Env, project: Path, escaped: Path
) -> None:
    """Without cgroups, the escaped process is an orphan adopted by the daemon (its
    subreaper); `stop` ends it, and the daemon reaps it."""
    api, pid = start_escaper(env, project, escaped, cgroups=False)
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        assert ppid == env.daemon_pid(), "the escaped process should be the daemon's orphan"
        api("task.stop", task="work")
        wait_until(lambda: gone(pid), f"escaped process {pid} to end and be reaped")
        assert api.status("work") == "stopped"
    finally:
        api.close()


@pytest.mark.timeout(60)
def test_daemon_stop_ends_an_adopted_orphan_without_cgroups(
    env: Env, project: Path, escaped: Path
) -> None:
    """Without cgroups, stopping the daemon ends the orphans its runs left, as stopping
    each task does."""
    api, pid = start_escaper(env, project, escaped, cgroups=False)
    api.close()
    env.run("daemon", "stop", check=True)
    wait_until(lambda: not _alive(pid), f"escaped process {pid} to end with the daemon")


@pytest.mark.timeout(60)
def test_stopping_one_run_spares_another_runs_processes(
    env: Env, project: Path, escaped: Path
) -> None:
    """Ending a run's orphans spares every process of another live run, in or out of its
    tree: the other run's agent and its own setsid helper keep running."""
    api, pid = start_escaper(env, project, escaped, cgroups=False)
    try:
        helper = env.base / "helper.pid"
        add_agent(
            env,
            project,
            "helper",
            "import os, sys, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        open(sys.argv[1], 'w').write(str(os.getpid()))\n"
            "        time.sleep(3600)\n"
            "    os._exit(0)\n"
            "print('helper ready', flush=True)\n"
            "time.sleep(3600)\n",
            args=(str(helper),),
        )
        api.new("other", agent="helper")
        api("task.start", task="other")
        api.wait_output("other", "helper ready")
        kept = int(wait_until(lambda: read_pid(helper), "the helper"))
        other = api.pid("other")
        api("task.stop", task="work")
        wait_until(lambda: gone(pid), f"escaped process {pid} to end")
        assert _alive(kept) and _alive(other), "the other run's processes were ended"
        assert api.status("other") == "running"
    finally:
        api.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("with_cgroups", [True, False], ids=["cgroup", "subreaper"])
def test_stop_ends_what_the_setup_command_daemonised(
    env: Env, project: Path, escaped: Path, with_cgroups: bool
) -> None:
    """A setup command that leaves a daemonised process behind (environment dropped) has
    it ended with the run, in its cgroup or as an orphan adopted during the run."""
    script = env.base / "setup.py"
    script.write_text(ESCAPER.replace('print("escaper ready", flush=True)\ntime.sleep(3600)', ""))
    configure(project, f"setup = {toml([sys.executable, str(script), str(escaped)])}")
    extra = {} if with_cgroups else {NO_CGROUPS: "1"}
    env.run("daemon", "start", check=True, extra=extra)
    api = Api(env, project)
    try:
        if with_cgroups and api.client.call("daemon.status")["cgroups"] is None:
            pytest.skip("no cgroup v2 hierarchy delegated to this user: the fallback is tested")
        api.new("work")
        api("task.start", task="work")
        api.wait_output("work", "sleeper ready")
        pid = int(wait_until(lambda: read_pid(escaped), "the escape"))
        api("task.stop", task="work")
        wait_until(lambda: gone(pid), f"process {pid} the setup left to end")
    finally:
        api.close()
