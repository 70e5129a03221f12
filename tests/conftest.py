"""Shared fixtures: isolated user dirs, real git repositories, a real daemon process.

Every test that needs a daemon gets its own, on its own socket, under a temp
HOME and XDG dirs, so tests never see the developer's daemon or each other's.
"""

from __future__ import annotations

import contextlib
import fcntl
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

from orchestra.client import Client
from orchestra.core.errors import RemoteError

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Env:
    """A private user: HOME, XDG dirs and a short socket path (sun_path is 108 bytes)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "home"
        self.home.mkdir()
        self.socket = base / "run" / "orchestra.sock"
        self.vars = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "XDG_"))},
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


@pytest.fixture
def env() -> Iterator[Env]:
    base = Path(tempfile.mkdtemp(prefix="orc-", dir="/tmp"))
    e = Env(base)
    try:
        yield e
    finally:
        stop_daemon(e)
        kill_leftovers(e)
        shutil.rmtree(base, ignore_errors=True)


def kill_leftovers(e: Env) -> None:
    """End every process still carrying this test's socket in its environment (daemons a
    test started and lost track of, their agents), so no test leaks a process."""
    marker = f"ORCHESTRA_SOCKET={e.socket}".encode()

    def ours() -> list[int]:
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
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
    lock = e.socket.with_name(e.socket.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


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
    env.run("init", cwd=repo, check=True)
    with (repo / ".orchestra" / "config.toml").open("a") as f:
        f.write(TEST_AGENT_CONFIG)
    return repo


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
    """A running daemon (started the way users start it)."""
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
