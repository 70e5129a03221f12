"""Trust on the socket: a client speaks only to a listener of its own uid in a private
directory of its own; a daemon starts clean (no caller's variables, in /), never from
inside an agent; and everything Orchestra writes is the user's alone (0600 / 0700).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestra.client import Client, lock_held
from orchestra.core.errors import EXIT_UNREACHABLE, UntrustedSocket
from orchestra.mcp.link import DaemonLink
from tests.conftest import TEST_AGENT_CONFIG, Env, daemon_gone
from tests.daemon.wire import wait_until
from tests.e2e.support import configure, toml
from tests.faults.test_security import other_user  # noqa: F401 - a fixture
from tests.mcp.test_bridge import bridge, error

SECRET = "SECRET-prompt-7f3a"

# A listener that records every byte it is sent, one line per connection, and answers
# each request line with an empty result (so that a client of its own uid is served).
LISTEN = r"""
import json, os, socket, sys
path = sys.argv[1]
os.makedirs(os.path.dirname(path), exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
print("ready", flush=True)
while True:
    conn, _ = s.accept()
    print("connected", flush=True)
    got = b""
    while chunk := conn.recv(65536):
        got += chunk
        if got.endswith(b"\n"):
            ident = json.loads(got.splitlines()[-1]).get("id")
            conn.sendall(json.dumps({"jsonrpc": "2.0", "id": ident, "result": {}}).encode() + b"\n")
    print("received", json.dumps(got.decode(errors="replace")), flush=True)
    conn.close()
"""


class Listener:
    """The LISTEN script on `path`, as `user` (None: as us), read line by line."""

    def __init__(self, path: Path, user: pwd.struct_passwd | None) -> None:
        argv = [sys.executable, "-c", LISTEN, str(path)]
        if user is None:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd="/")
        else:
            argv[0] = "/usr/bin/python3"  # one the other user can run
            self.proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                cwd="/",
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
            )
        self.lines: list[str] = []
        self.pending = b""
        assert self.next_line() == "ready"

    def next_line(self, timeout: float = 10.0) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()  # read raw: a buffered reader would hide lines
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            assert ready, f"the listener said nothing within {timeout} s: {self.lines}"
            chunk = os.read(fd, 65536)
            assert chunk, f"the listener ended: {self.lines}"
            self.pending += chunk
        raw, _, self.pending = self.pending.partition(b"\n")
        self.lines.append(raw.decode())
        return self.lines[-1]

    def received(self) -> str:
        """What the listener got on its next connection, once that connection closed."""
        assert self.next_line() == "connected"
        word, _, got = self.next_line().partition(" ")
        assert word == "received"
        value: str = json.loads(got)
        return value

    def stop(self) -> list[str]:
        """End it; return every line it printed."""
        self.proc.send_signal(signal.SIGKILL)
        out: bytes = self.proc.communicate(timeout=10)[0]
        return self.lines + (self.pending + out).decode().splitlines()


@contextlib.contextmanager
def listening(path: Path, user: pwd.struct_passwd | None) -> Iterator[Listener]:
    listener = Listener(path, user)
    try:
        yield listener
    finally:
        listener.stop()


def shared_tmp() -> Path:
    """A directory every user may create in, as /tmp is (skip where there is none)."""
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        if Path(d).stat().st_mode & 0o003 == 0o003:
            return Path(d)
    pytest.skip("no directory other users can create in")


@pytest.fixture
def hostile_dir(other_user: pwd.struct_passwd) -> Iterator[Path]:  # noqa: F811
    """Where another user got first: `<shared tmp>/<name>/`, theirs, open to all."""
    path = Path(tempfile.mkdtemp(prefix="orc-hostile-", dir=shared_tmp()))
    path.chmod(0o755)
    os.chown(path, other_user.pw_uid, other_user.pw_gid)
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr.strip()


# -- item 1: the client trusts only its own uid -----------------------------------------


@pytest.mark.timeout(60)
def test_new_sends_nothing_to_a_socket_in_another_users_dir(
    env: Env,
    project: Path,
    hostile_dir: Path,
    other_user: pwd.struct_passwd,  # noqa: F811
) -> None:
    """`orchestra new -m SECRET` on a socket whose directory another user made connects to
    nothing, says why in one line (exit 5) and starts no daemon there."""
    sock = hostile_dir / "o.sock"
    with listening(sock, other_user) as listener:
        proc = env.run("new", "x", "-m", SECRET, cwd=project, extra={"ORCHESTRA_SOCKET": str(sock)})
        lines = listener.stop()
    assert proc.returncode == EXIT_UNREACHABLE, proc
    line = one_line(proc)
    assert f"refusing the daemon socket {sock}" in line, line
    assert f"{hostile_dir} belongs to uid {other_user.pw_uid}" in line, line
    assert lines == ["ready"]  # not even a connection
    assert not (env.base / "state" / "orchestra" / "daemon.out").exists()  # no autostart
    assert not lock_held(sock)


def handed_over(path: Path, user: pwd.struct_passwd) -> None:
    """Make `path`'s directory ours and 0700 again, after `user` bound a socket in it: only
    the listener is then foreign, so the peer check alone must catch it."""
    os.chown(path, os.geteuid(), os.getegid())
    path.chmod(0o700)
    assert stat.S_IMODE(path.lstat().st_mode) == 0o700


@pytest.mark.timeout(60)
def test_a_listener_of_another_uid_gets_zero_bytes(
    env: Env,
    project: Path,
    hostile_dir: Path,
    other_user: pwd.struct_passwd,  # noqa: F811
) -> None:
    """In a private directory of ours, a socket served by another uid is refused after the
    connect and before a byte: by Client, by `orchestra new` and by `orchestra attach`
    (whose terminal would go next)."""
    sock = hostile_dir / "o.sock"
    with listening(sock, other_user) as listener:
        handed_over(hostile_dir, other_user)
        with pytest.raises(UntrustedSocket) as info:
            Client(sock, timeout=5).call("daemon.ping")
        assert f"runs as uid {other_user.pw_uid}, not as you" in info.value.message
        assert listener.received() == ""

        extra = {"ORCHESTRA_SOCKET": str(sock)}
        proc = env.run("new", "x", "-m", SECRET, cwd=project, extra=extra)
        assert proc.returncode == EXIT_UNREACHABLE, proc
        assert f"runs as uid {other_user.pw_uid}" in one_line(proc)
        assert listener.received() == ""

        proc = attach_on_tty(env, project, extra)
        assert proc.returncode == EXIT_UNREACHABLE, proc
        assert f"runs as uid {other_user.pw_uid}" in one_line(proc)
        assert listener.received() == ""
    assert not (env.base / "state" / "orchestra" / "daemon.out").exists()  # no autostart


def attach_on_tty(
    env: Env, project: Path, extra: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`orchestra attach 1` with a terminal on stdin and stdout, its stderr captured."""
    master, slave = os.openpty()
    try:
        return subprocess.run(
            [sys.executable, "-m", "orchestra", "attach", "1"],
            cwd=project,
            env={**env.vars, **extra},
            stdin=slave,
            stdout=slave,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
    finally:
        os.close(slave)
        os.close(master)


@pytest.mark.timeout(60)
async def test_the_mcp_bridge_refuses_a_listener_of_another_uid(
    env: Env,
    project: Path,
    hostile_dir: Path,
    other_user: pwd.struct_passwd,  # noqa: F811
) -> None:
    """The MCP bridge's link checks the listener as the CLI does: a tool call fails with
    the refusal and the listener gets nothing."""
    sock = hostile_dir / "o.sock"
    with listening(sock, other_user) as listener:
        handed_over(hostile_dir, other_user)
        link = DaemonLink(lambda: (sock, True), log_dir=env.base / "state")
        with pytest.raises(UntrustedSocket, match=f"runs as uid {other_user.pw_uid}"):
            await link.call("daemon.ping")
        assert listener.received() == ""
        async with bridge(env, project, extra={"ORCHESTRA_SOCKET": str(sock)}) as session:
            message, err = await error(session, "list_tasks")
        assert f"runs as uid {other_user.pw_uid}" in message
        assert err["data"]["kind"] == "untrusted_socket"
        assert listener.received() == ""
    assert not (env.base / "state" / "daemon.out").exists()


@pytest.mark.timeout(60)
async def test_a_listener_of_our_own_uid_is_served(env: Env) -> None:
    """The control: the same listener, run as us in a private directory of ours, gets the
    request, from Client and from the MCP link alike."""
    run_dir = env.base / "own"
    run_dir.mkdir(mode=0o700)
    sock = run_dir / "o.sock"
    with listening(sock, None) as listener:
        with Client(sock, timeout=5) as c:
            assert c.call("daemon.ping") == {}
        assert json.loads(listener.received())["method"] == "daemon.ping"
        link = DaemonLink(lambda: (sock, False), log_dir=env.base / "state")
        assert await link.call("daemon.ping") == {}
        await link.aclose()
        assert json.loads(listener.received())["method"] == "daemon.ping"


@pytest.mark.timeout(60)
def test_a_socket_dir_open_to_others_or_symlinked_is_refused(env: Env, project: Path) -> None:
    """A socket directory of ours that others may enter, or a symbolic link to one, is
    refused in one line saying how to fix it; no daemon is started there."""
    loose = env.base / "loose"
    loose.mkdir()
    loose.chmod(0o755)
    proc = env.run("status", cwd=project, extra={"ORCHESTRA_SOCKET": str(loose / "o.sock")})
    assert proc.returncode == EXIT_UNREACHABLE, proc
    assert f"{loose} is open to other users (mode 0755): run `chmod 700 {loose}`" in one_line(proc)
    assert not (loose / "o.sock").exists()

    real = env.base / "real"
    real.mkdir(mode=0o700)
    link = env.base / "link"
    link.symlink_to(real)
    proc = env.run("status", cwd=project, extra={"ORCHESTRA_SOCKET": str(link / "o.sock")})
    assert proc.returncode == EXIT_UNREACHABLE, proc
    assert f"{link} is a symbolic link" in one_line(proc)
    assert list(real.iterdir()) == []


# -- item 6: a daemon starts clean, never from inside an agent ---------------------------


def kill_daemon(env: Env) -> None:
    pid = env.daemon_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: daemon_gone(env), "the killed daemon to let go of its lock")


AGENT_ENV = {
    "ORCHESTRA_RUN_ID": "run-0123456789",
    "ORCHESTRA_TASK_ID": "1",
    "ORCHESTRA_WORKTREE": "/nowhere",
    "PROFILE_SECRET_TOKEN": "hunter2",
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("marker", ["ORCHESTRA_RUN_ID", "ORCHESTRA_TASK_ID"])
def test_an_agent_does_not_start_a_daemon(env: Env, project: Path, marker: str) -> None:
    """With the daemon killed, `orchestra status` in an agent's environment (its run marker,
    or only its task id, as some MCP clients pass on) says the daemon is gone, in one line,
    and starts none."""
    env.run("daemon", "start", check=True)
    kill_daemon(env)
    agent = {k: v for k, v in AGENT_ENV.items() if k == marker or not k.startswith("ORCHESTRA_")}
    proc = env.run("status", cwd=project, extra=agent)
    assert proc.returncode == EXIT_UNREACHABLE, proc
    line = one_line(proc)
    assert "is gone, and a task's agent does not start one" in line, line
    assert "orchestra daemon start" in line
    assert daemon_gone(env)


@pytest.mark.timeout(60)
async def test_an_agents_mcp_bridge_does_not_start_a_daemon(env: Env, project: Path) -> None:
    """The MCP bridge run beside an agent (its environment) says the daemon is gone and
    starts none."""
    async with bridge(env, project, extra=AGENT_ENV) as session:
        message, err = await error(session, "list_tasks")
    assert "is gone, and a task's agent does not start one" in message
    assert err["data"]["kind"] == "unreachable"
    assert daemon_gone(env) and not env.socket.exists()


@pytest.mark.timeout(60)
def test_an_autostarted_daemon_has_a_clean_environment_in_root(env: Env, project: Path) -> None:
    """A daemon autostarted by a shell with stray variables (a secret, a task's, a git
    hook's) and a checkout as cwd keeps none of them, runs in /, and still serves."""
    stray = {"PROFILE_SECRET_TOKEN": "hunter2", "GIT_DIR": str(project / ".git")}
    stray |= {"ORCHESTRA_WORKTREE": str(project), "ORCHESTRA_PORT": "20000"}
    proc = env.run("status", cwd=project, extra=stray)
    assert proc.returncode == 0, proc.stderr
    pid = env.daemon_pid()
    assert pid is not None
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
        if item
    )
    assert not set(stray) & set(environ), environ
    assert environ["ORCHESTRA_SOCKET"] == str(env.socket)
    assert environ["HOME"] == env.vars["HOME"] and environ["PATH"] == env.vars["PATH"]
    assert Path(f"/proc/{pid}/cwd").readlink() == Path("/")


# -- item 7: everything Orchestra writes is the user's alone -----------------------------


def loose_modes(top: Path, skip: Path | None = None) -> list[str]:
    """Every directory not 0700 and file with group or other bits under `top` (itself
    included), skipping `skip` and what is under it."""
    found = []
    for path in [top, *top.rglob("*")]:
        if skip is not None and (path == skip or skip in path.parents):
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if (path.is_dir() and mode != 0o700) or mode & 0o077:
            found.append(f"{path} {mode:04o}")
    return found


@pytest.mark.timeout(60)
def test_what_orchestra_writes_is_private(env: Env, repo: Path) -> None:
    """After `init`, a daemon start (over a state dir and logs left 0755 / 0644 by an older
    version) and a task's start, every directory Orchestra made is 0700 and every file has
    no group or other bits: the state dir, the socket dir and `.orchestra/` (but for what
    git checks out into a worktree)."""
    state = env.base / "state" / "orchestra"
    state.mkdir(parents=True, mode=0o755)
    state.chmod(0o755)
    for name in ("daemon.log", "daemon.out"):
        (state / name).write_text("older\n")
        (state / name).chmod(0o644)
    env.run("init", cwd=repo, check=True)
    with (repo / ".orchestra" / "config.toml").open("a") as f:
        f.write(TEST_AGENT_CONFIG)
    env.run("daemon", "start", check=True)
    env.run("new", "private", "-m", SECRET, cwd=repo, check=True)
    env.run("start", "private", cwd=repo, check=True)
    dot = repo / ".orchestra"
    assert (dot / "logs.jsonl").exists() and (dot / "worktrees" / "1-private").is_dir()
    assert loose_modes(state) == []
    assert loose_modes(env.socket.parent) == []
    assert loose_modes(dot, skip=dot / "worktrees" / "1-private") == []


def test_the_client_knows_the_daemons_run_marker() -> None:
    """The client's "inside an agent" test looks for the very variable the daemon sets."""
    from orchestra.adapters import procs
    from orchestra.client import RUN_ID_VAR

    assert RUN_ID_VAR == procs.RUN_ID_VAR


UMASK_AGENT = "import os; m = os.umask(0); print('umask', oct(m), flush=True); input()"
SETUP_FILE = "open('made-by-setup', 'w')"


@pytest.mark.timeout(60)
def test_agents_and_worktrees_get_the_users_umask(env: Env, project: Path) -> None:
    """The daemon writes its own files 0600, but what it runs in a worktree (git's
    checkout, the setup command, the agent) gets the umask the daemon was started with:
    the user's code is not made private behind their back."""
    configure(
        project,
        f"agents.probe.command = {toml([sys.executable, '-c', UMASK_AGENT])}\n"
        f"setup = {toml([sys.executable, '-c', SETUP_FILE])}",
    )
    subprocess.run(
        ["/bin/sh", "-c", 'umask 027 && exec "$0" -m orchestra daemon start', sys.executable],
        env=env.vars,
        check=True,
        capture_output=True,
    )
    env.run("new", "probe", "-m", "x", "--agent", "probe", cwd=project, check=True)
    env.run("start", "probe", cwd=project, check=True)
    worktree = project / ".orchestra" / "worktrees" / "1-probe"
    wait_until(
        lambda: "umask 0o27" in env.run("peek", "probe", cwd=project).stdout, "the agent's umask"
    )
    assert stat.S_IMODE((worktree / "README.md").stat().st_mode) == 0o640
    assert stat.S_IMODE((worktree / "made-by-setup").stat().st_mode) == 0o640
    assert loose_modes(project / ".orchestra", skip=worktree) == []
