"""Shared fixtures: isolated user dirs, real git repositories, a real daemon process.

Every test that needs a daemon gets one on a socket of its own, under a temp HOME and
XDG dirs, so tests never see the developer's daemon or each other's.

By default that daemon is the test's own. In a module (or for a test) marked
`shared_daemon`, the tests take turns on one daemon started for the module instead (a
daemon costs about 0.6 s of CPU to start and stop, and most tests only need "a daemon"):
each still gets a fresh base directory, repository and project of its own, and after
each test everything it left on the daemon is stopped and the daemon is checked to be
as the test found it (see `leave`). A test that stops, kills or restarts the daemon,
reads its log, counts what it serves globally, or changes its user (HOME, the global
config, the terminal it remembers: an interactive attach sets the size agents start at)
must not share, if a test after it could tell: mark it `own_daemon` (it then gets its
own, as usual).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestra.client import Client, local, lock_held
from orchestra.core.errors import RemoteError

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Env:
    """A private user: HOME, XDG dirs and a short socket path (sun_path is 108 bytes).

    With a `host`, a test's view of another Env's user and daemon: its own `base` for its
    files (repositories, scripts), the host's HOME, XDG dirs, socket and variables.
    """

    def __init__(self, base: Path, host: Env | None = None) -> None:
        self.base = base
        self.host = host
        self.home: Path
        self.socket: Path
        self.vars: dict[str, str]
        if host is not None:
            self.home, self.socket, self.vars = host.home, host.socket, host.vars
            return
        self.home = base / "home"
        self.home.mkdir()
        self.socket = base / "run" / "orchestra.sock"
        self.vars = {
            # Not COLUMNS and LINES either (pytest-xdist's workers have them): curses
            # programs take them over their terminal's real size.
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("ORCHESTRA_", "XDG_")) and k not in ("COLUMNS", "LINES")
            },
            **GIT_ENV,
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(base / "config"),
            "XDG_STATE_HOME": str(base / "state"),
            "XDG_RUNTIME_DIR": str(base / "xdg-run"),
            "ORCHESTRA_SOCKET": str(self.socket),
            "EDITOR": "false",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        check: bool = False,
        extra: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI (`python -m orchestra ...`) as a subprocess."""
        proc = subprocess.run(
            [sys.executable, "-m", "orchestra", *args],
            cwd=cwd,
            env={**self.vars, **(extra or {})},
            capture_output=True,
            text=True,
            input=input if input is not None else "",
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"orchestra {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
            )
        return proc

    def client(self) -> Client:
        return Client(self.socket, timeout=20).connect()

    def daemon_pid(self) -> int | None:
        lock = self.socket.with_name(self.socket.name + ".lock")
        try:
            return int(lock.read_text().strip())
        except (OSError, ValueError):
            return None


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", cwd=path)
    (path / "README.md").write_text("hello\n")
    git("add", "README.md", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    return path


def shares_daemon(request: pytest.FixtureRequest) -> bool:
    """Whether this test runs on its module's shared daemon (see the module docstring)."""
    node = request.node
    return (
        node.get_closest_marker("shared_daemon") is not None
        and node.get_closest_marker("own_daemon") is None
    )


@pytest.fixture
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    if shares_daemon(request):
        host: Env = request.getfixturevalue("shared_daemon")
        guest = Env(Path(tempfile.mkdtemp(prefix="t-", dir=host.base)), host=host)
        yield guest
        leave(guest)  # its directory stays: the daemon keeps the project's log file open
        return
    with private_user() as e:
        yield e


@contextlib.contextmanager
def private_user(parent: str | Path = "/tmp", *, daemon: bool = False) -> Iterator[Env]:
    """A private user under `parent`, with its daemon started if `daemon`; afterwards its
    daemon and every process left behind are ended and its files removed."""
    base = Path(tempfile.mkdtemp(prefix="orc-", dir=parent))
    e = Env(base)
    try:
        if daemon:
            e.run("daemon", "start", check=True)
        yield e
    finally:
        stop_daemon(e)
        kill_leftovers(e)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def shared_daemon() -> Iterator[Env]:
    """One daemon for the `shared_daemon` tests of a module, stopped after its last one."""
    with private_user(daemon=True) as host:
        yield host


def leave(guest: Env) -> None:
    """After a test on the shared daemon: stop every task it left queued or running there,
    end every process it left (as `kill_leftovers` does, sparing the daemon), then check
    the daemon is as a fresh one: serving, with no agent, PTY or client connection left.
    If it is not, the test fails and the next one gets a new daemon."""
    host = guest.host
    assert host is not None
    pid = host.daemon_pid()
    try:
        _stop_tasks(guest)
        kill_leftovers(host, spare=pid)
        assert pid is not None and host.daemon_pid() == pid, "the shared daemon was replaced"
        with host.client() as c:
            c.call("daemon.ping")
        _wait_quiet(pid, host.socket)
    except BaseException:
        stop_daemon(host)
        kill_leftovers(host)
        host.run("daemon", "start", check=True)
        raise


def _stop_tasks(guest: Env) -> None:
    """Stop (through the daemon, as a person would) the queued and running tasks of every
    project under the guest's base; a queued task can start when another stops: repeat."""
    prefix = str(guest.base) + os.sep
    deadline = time.monotonic() + 20
    with guest.client() as c:
        while True:
            busy = []
            for project in c.call("daemon.status")["projects"]:
                root = project["root"]
                if not (root + os.sep).startswith(prefix):
                    continue
                for task in c.call("task.list", {"project": root})["tasks"]:
                    if task["status"] == "queued" or task["run"] is not None:
                        busy.append((root, task["id"], task["status"] == "queued"))
            if not busy:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"tasks still running or queued after the test: {busy}")
            for root, task_id, _ in sorted(busy, key=lambda b: not b[2]):  # queued first
                with contextlib.suppress(RemoteError):  # it moved on meanwhile
                    c.call("task.stop", {"project": root, "task": task_id})


def _wait_quiet(pid: int, socket: Path) -> None:
    """Wait until the daemon holds no PTY and no client connection (the test's last ones
    close asynchronously), and has no zombie child."""
    deadline = time.monotonic() + 10
    while True:
        held = _daemon_holds(pid, socket)
        if not any(held.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the shared daemon still holds {held} after the test")
        time.sleep(0.005)


def _daemon_holds(pid: int, socket: Path) -> dict[str, int]:
    """PTY masters and client connections open in `pid`, and its zombie children."""
    from tests.e2e.support import fds, zombies  # it imports this module

    targets = fds(pid)
    inodes = {t[len("socket:[") : -1] for t in targets if t.startswith("socket:[")}
    connections = 0
    # An accepted connection is listed under the listener's path, connected (state 03).
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == str(socket) and fields[5] == "03":
            connections += fields[6] in inodes
    return {
        "ptys": sum(t.endswith("ptmx") for t in targets),
        "connections": connections,
        "zombies": len(zombies(pid)),
    }


def kill_leftovers(e: Env, *, spare: int | None = None) -> None:
    """End every process still carrying this test's socket in its environment (daemons a
    test started and lost track of, their agents), so no test leaks a process; all but
    `spare` (a shared daemon)."""
    marker = f"ORCHESTRA_SOCKET={e.socket}".encode()

    def ours() -> list[int]:
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in (os.getpid(), spare):
                continue
            try:
                environ = Path("/proc", name, "environ").read_bytes()
                state = Path("/proc", name, "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in environ.split(b"\0") and state != b"Z":
                pids.append(int(name))
        return pids

    for signum in (signal.SIGTERM, signal.SIGKILL):
        pids = ours()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + 5
        while ours() and time.monotonic() < deadline:
            time.sleep(0.01)


def daemon_gone(e: Env) -> bool:
    """True once no process holds the daemon lock (a zombie holds no lock)."""
    return not lock_held(e.socket)


def stop_daemon(e: Env) -> None:
    pid = e.daemon_pid()
    if pid is None or daemon_gone(e):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if daemon_gone(e):
            return
        time.sleep(0.005)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def repo(env: Env) -> Path:
    return make_repo(env.base / "repo")


@pytest.fixture
def project(env: Env, repo: Path) -> Path:
    """A git repository with `orchestra init` done; tasks default to the `sleeper` agent."""
    return init_project(repo)


def init_project(repo: Path) -> Path:
    """`orchestra init` in `repo`, its tasks defaulting to the `sleeper` agent. In this
    process: what the command does, without its 0.2 s start (tests/cli/test_cli.py
    runs the command itself)."""
    local.init_project(repo, gitignore=False)
    with (repo / ".orchestra" / "config.toml").open("a") as f:
        f.write(TEST_AGENT_CONFIG)
    return repo


def module_project(host: Env, name: str) -> Path:
    """A project for the tests of a module that only read it, on its shared daemon `host`:
    under the host's base, so no test's `leave` touches it."""
    return init_project(make_repo(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=host.base))))


# A stand-in agent for tests that need a live process but not a TUI: it says it is
# ready, then waits (SIGHUP from `stop` ends it).
# Dotted keys, not a [table]: tests append top-level keys to this file.
TEST_AGENT_CONFIG = """
default_agent = "sleeper"
agents.sleeper.command = [
  "{python}", "-c", "import time; print('sleeper ready', flush=True); time.sleep(3600)",
]
"""


@pytest.fixture
def daemon(env: Env) -> Iterator[Env]:
    """A running daemon (started the way users start it; the shared one is running)."""
    if env.host is None:
        env.run("daemon", "start", check=True)
    yield env


class ProjectApi:
    """JSON-RPC calls on one project, over one connection kept for the whole test."""

    def __init__(self, env: Env, root: Path) -> None:
        self.env = env
        self.root = root
        self.client = env.client()

    def __call__(self, method: str, **params: Any) -> Any:
        return self.client.call(method, {"project": str(self.root), **params})

    def error(self, method: str, **params: Any) -> RemoteError:
        with pytest.raises(RemoteError) as info:
            self(method, **params)
        return info.value


@contextlib.contextmanager
def served_project(tasks: list[dict[str, Any]]) -> Iterator[tuple[Env, Path]]:
    """A daemon and an initialised project (with `tasks` created) for a whole module,
    torn down completely afterwards: no daemon, agent or directory left."""
    base = Path(tempfile.mkdtemp(prefix="orc-", dir="/tmp"))
    env = Env(base)
    try:
        root = make_repo(base / "repo")
        env.run("init", cwd=root, check=True)
        with (root / ".orchestra" / "config.toml").open("a") as f:
            f.write(TEST_AGENT_CONFIG)
        env.run("daemon", "start", check=True)
        with env.client() as c:
            for task in tasks:
                c.call("task.new", {"project": str(root), **task})
        yield env, root
    finally:
        stop_daemon(env)
        kill_leftovers(env)
        shutil.rmtree(base, ignore_errors=True)


def call(env: Env, method: str, params: dict[str, Any] | None = None) -> Any:
    with env.client() as c:
        return c.call(method, params)
