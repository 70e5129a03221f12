"""The demo agent, run as users meet it: in a real PTY, in a real git repository."""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import ptyprocess
import pytest

from tests.conftest import Env, call, git, make_repo

ENTER_ALT, LEAVE_ALT = b"\x1b[?1049h", b"\x1b[?1049l"
WAITING = "waiting for input"


class Agent:
    """The demo agent in a PTY, with everything it printed so far in `out`."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str]) -> None:
        self.proc = ptyprocess.PtyProcess.spawn(
            [sys.executable, "-m", "orchestra.agents.demo", *args],
            cwd=str(cwd),
            env=env,
            dimensions=(24, 100),
        )
        self.out = b""
        self.seen = 0  # `expect` looks for text after what it already matched

    def expect(self, text: str | bytes, timeout: float = 10) -> None:
        """Read until `text` appears (after the previous match), or fail at the deadline."""
        want = text.encode() if isinstance(text, str) else text
        deadline = time.monotonic() + timeout
        while (at := self.out.find(want, self.seen)) < 0:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"no {want!r} within {timeout} s; output:\n{self.out!r}")
        self.seen = at + len(want)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.proc.fd], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.proc.fd, 65536)
        except OSError:  # EIO: the agent is gone and the PTY closed
            return False
        self.out += data
        return bool(data)

    def type(self, line: str) -> None:
        self.proc.write(line.encode())

    def exit_status(self, timeout: float = 10) -> int:
        """Read to the end of output, then reap the agent; its exit status (128+n for a signal)."""
        deadline = time.monotonic() + timeout
        while self._read(max(deadline - time.monotonic(), 0)):
            pass
        self.proc.wait()
        if self.proc.signalstatus is not None:
            return 128 + int(self.proc.signalstatus)
        return int(self.proc.exitstatus)

    def close(self) -> None:
        if self.proc.isalive():
            self.proc.terminate(force=True)


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    """A user with no git identity and no Orchestra variables, and no delay between steps."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "GIT_", "XDG_"))}
    home.mkdir(exist_ok=True)
    return {
        **base,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "TERM": "xterm-256color",
        "ORCHESTRA_DEMO_STEP_DELAY": "0",
        **extra,
    }


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    agents: list[Agent] = []

    def start(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Agent:
        agent = Agent(cwd, *args, env=env or agent_env(tmp_path / "home"))
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.close()


def log(repo: Path) -> list[str]:
    return git("log", "--format=%an|%s", cwd=repo).splitlines()


def test_works_commits_and_quits(tmp_path: Path, spawn) -> None:
    """It takes the alternate screen, commits its notes, and `quit` exits 0 and gives it back."""
    repo = make_repo(tmp_path / "repo")
    agent = spawn(repo, "fix", "the", "login")
    agent.expect(ENTER_ALT)
    agent.expect("working…")
    agent.expect("committed")
    agent.expect(WAITING)
    assert log(repo)[0] == "Orchestra demo|demo: fix the login"
    notes = (repo / "DEMO_NOTES.md").read_text()
    assert "## fix the login" in notes
    assert "- step 5: checking the result" in notes
    assert git("status", "--porcelain", cwd=repo) == ""
    agent.type("quit\r")
    assert agent.exit_status() == 0
    assert agent.out.rfind(LEAVE_ALT) > agent.out.rfind(ENTER_ALT)


def test_input_is_echoed_edited_and_answered(tmp_path: Path, spawn) -> None:
    """Typed text is echoed, backspace edits it, and a request gets a reply and a commit."""
    repo = make_repo(tmp_path / "repo")
    agent = spawn(repo, "write docs")
    agent.expect(WAITING)
    agent.type("add a tesx")
    agent.expect("> add a tesx")
    agent.type("\x7ft\r")
    agent.expect("Done: “add a test”")
    assert log(repo)[0].endswith("|demo: add a test")
    assert len(log(repo)) == 3  # initial, the first pass, the reply
    assert "- reply: add a test" in (repo / "DEMO_NOTES.md").read_text()
    agent.type("\x04")
    assert agent.exit_status() == 0


def test_outside_a_repository_it_says_so_and_keeps_going(spawn) -> None:
    """Outside a git repository it writes its notes, commits nothing, says so, and still runs."""
    # A short directory, not tmp_path: the agent shows "<cwd> is not a git repository" on a
    # 100-column screen, and a long cwd (pytest's tmp_path grows with the user's name and,
    # under xdist, the worker's) wraps the line in the middle of the words expected here.
    base = Path(tempfile.mkdtemp(prefix="orc-", dir="/tmp"))
    try:
        plain = base / "plain"
        plain.mkdir()
        agent = spawn(plain, "hello")
        agent.expect("not a git repository")
        agent.expect(WAITING)
        agent.type("again\r")
        agent.expect("Done: “again”")
        assert "- reply: again" in (plain / "DEMO_NOTES.md").read_text()
        agent.type("exit\r")
        assert agent.exit_status() == 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_reporting_without_a_daemon_shows_the_error(tmp_path: Path, spawn) -> None:
    """`done` without the task's environment shows why it could not report and keeps waiting."""
    agent = spawn(make_repo(tmp_path / "repo"), "x")
    agent.expect(WAITING)
    agent.type("done\r")
    agent.expect("could not report complete: ORCHESTRA_SOCKET")
    agent.expect(WAITING)
    agent.type("quit\r")
    assert agent.exit_status() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_restores_the_terminal(tmp_path: Path, spawn, sig: signal.Signals) -> None:
    """SIGTERM, SIGHUP and SIGINT leave the alternate screen and exit with 128+signal."""
    agent = spawn(make_repo(tmp_path / "repo"), "x")
    agent.expect(WAITING)
    agent.proc.kill(sig)
    assert agent.exit_status() == 128 + sig
    assert agent.out.rfind(LEAVE_ALT) > agent.out.rfind(ENTER_ALT)


def test_a_signal_waits_for_git(tmp_path: Path, spawn) -> None:
    """A stop signal during a commit lets git finish, so no index.lock is left behind."""
    repo = make_repo(tmp_path / "repo")
    release = tmp_path / "release"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(
        "#!/bin/sh\necho HOOK-STARTED > /dev/tty\n"
        f"while [ ! -e '{release}' ]; do sleep 0.01; done\n"
    )
    hook.chmod(0o755)
    agent = spawn(repo, "x")
    agent.expect("HOOK-STARTED")
    agent.proc.kill(signal.SIGTERM)
    release.touch()
    assert agent.exit_status() == 128 + signal.SIGTERM
    assert log(repo)[0].endswith("|demo: x")
    assert not (repo / ".git" / "index.lock").exists()


def test_exit_code_from_the_environment(tmp_path: Path, spawn) -> None:
    """ORCHESTRA_DEMO_EXIT=N makes it exit with N right after its work."""
    repo = make_repo(tmp_path / "repo")
    agent = spawn(repo, "x", env=agent_env(tmp_path / "home", ORCHESTRA_DEMO_EXIT="3"))
    assert agent.exit_status() == 3
    assert b"committed" in agent.out
    assert LEAVE_ALT in agent.out
    assert len(log(repo)) == 2


def test_resume_says_so(tmp_path: Path, spawn) -> None:
    """`--resume SESSION_ID` is announced on screen and recorded in the notes."""
    repo = make_repo(tmp_path / "repo")
    agent = spawn(repo, "--resume", "abc-123")
    agent.expect("Resuming session abc-123")
    agent.expect(WAITING)
    assert "## resumed session abc-123" in (repo / "DEMO_NOTES.md").read_text()


def status_of(env: Env, repo: Path) -> str:
    return str(call(env, "task.get", {"project": str(repo), "task": 1})["status"])


def running_task(env: Env, project: Path) -> None:
    """Task 1-fix-login, running (its own agent is the sleeper: the agent under test is the
    one the test spawns with the task's environment)."""
    root = str(project)
    call(env, "task.new", {"project": root, "slug": "fix-login", "description": "Fix it."})
    call(env, "task.start", {"project": root, "task": "fix-login"})


@pytest.mark.shared_daemon
def test_reports_to_the_daemon(env: Env, project: Path, spawn) -> None:
    """`idle`, `fail` and `done` move the task through the API; refusals show and it runs on."""
    running_task(env, project)
    task_env = {
        **env.vars,
        "ORCHESTRA_PROJECT": str(project),
        "ORCHESTRA_TASK_ID": "1",
        "ORCHESTRA_TASK_SLUG": "fix-login",
        "ORCHESTRA_DEMO_STEP_DELAY": "0",
    }
    agent = spawn(project, "Fix the login form.", env=task_env)
    agent.expect("demo agent · task 1-fix-login · waiting for input")
    agent.type("idle\r")
    agent.expect("reported idle: task 1-fix-login is now idle")
    assert status_of(env, project) == "idle"
    agent.type("fail not today\r")
    agent.expect("reported fail: task 1-fix-login is now failed")
    agent.type("done\r")  # failed -> completed is not a legal move: the agent shows why
    agent.expect("could not report complete")
    agent.expect(WAITING)
    assert status_of(env, project) == "failed"
    agent.type("quit\r")
    assert agent.exit_status() == 0


@pytest.mark.shared_daemon
def test_done_completes_the_task(env: Env, project: Path, spawn) -> None:
    """Typing `done` in a running task's agent moves the task to completed."""
    running_task(env, project)
    task_env = {
        **env.vars,
        "ORCHESTRA_PROJECT": str(project),
        "ORCHESTRA_TASK_ID": "1",
        "ORCHESTRA_DEMO_STEP_DELAY": "0",
    }
    agent = spawn(project, "Fix the login form.", env=task_env)
    agent.expect(WAITING)
    agent.type("done password kept on error\r")
    agent.expect("reported complete: task 1-fix-login is now completed")
    assert status_of(env, project) == "completed"
    agent.expect(WAITING)
    assert agent.proc.isalive()
    agent.type("quit\r")
    assert agent.exit_status() == 0
