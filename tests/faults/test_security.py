"""Security: only the socket's owner can connect; hostile names and config values are
refused with the rule, or neutralised (stored verbatim, passed as one argv element,
never through a shell); nothing is ever created outside `.orchestra/`.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestra.core import names
from tests.conftest import Env, private_user, served_project
from tests.daemon.wire import Raw, stop_and_forget, wait_until
from tests.e2e.support import Api, add_agent

PWNED = Path(f"/tmp/pwned-{uuid.uuid4().hex}")  # what a shell would create, were one used
HOSTILE = [
    "../x",
    "../../../../tmp/evil",
    "x/../../y",
    "/abs",
    "-x",
    "--upload-pack=touch " + str(PWNED),
    "a\nb",
    "a\rb",
    "a\x00b",
    "a;b",
    f"$(touch {PWNED})",
    f"`touch {PWNED}`",
    f"a|touch {PWNED}",
    "a&b",
    "x" * 10_000,
    "",
    " ",
    "\u202ex",
]
# Where a value may go, the rule a refusal must state, and whether the value may instead
# be kept verbatim (free text, a name git itself takes, an id passed as one argv element).
FIELDS = [
    ("task.new", "slug", names.SLUG_RULE, False),
    ("task.new", "agent", names.AGENT_RULE, False),
    ("task.new", "labels", names.LABEL_RULE, False),
    ("task.new", "base_branch", "invalid branch name", True),
    ("task.new", "title", "one line of at most", True),
    ("task.update", "base_branch", "invalid branch name", True),
    ("task.update", "labels", names.LABEL_RULE, False),
    ("task.session_set", "session_id", names.SESSION_RULE, True),
    ("task.get", "task", names.SLUG_RULE, False),
]


class Served:
    """A daemon and a project shared by the name tests (they change only their own tasks)."""

    def __init__(self, env: Env, root: Path) -> None:
        self.env = env
        self.root = root


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with served_project([{"slug": "target", "description": "x"}]) as (env, root):
        try:
            yield Served(env, root)
        finally:
            stop_and_forget(env)


def outside_dot(env: Env, root: Path) -> set[str]:
    """Every path under the test's base dir, except `.orchestra/` and the daemon's state."""
    dot, state = root / ".orchestra", env.base / "state"
    return {
        str(p)
        for p in env.base.rglob("*")
        if not (p.is_relative_to(dot) or p.is_relative_to(state) or p.is_relative_to(root / ".git"))
    }


def params_for(method: str, field: str, value: str, root: str) -> dict[str, Any]:
    params: dict[str, Any] = {"project": root}
    params.update({"slug": "hostile"} if method == "task.new" else {"task": "target"})
    params[field] = [value] if field == "labels" else value
    return params


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("method", "field", "rule", "verbatim"), FIELDS)
def test_hostile_names_are_refused_or_kept_verbatim(
    served: Served, method: str, field: str, rule: str, verbatim: bool
) -> None:
    """Each hostile value is refused with -32602 and a message stating the rule and quoting
    the value, or, where any text (or any name git takes) is allowed, stored exactly;
    nothing appears outside `.orchestra/` and no shell ever runs it."""
    root = str(served.root)
    before = outside_dot(served.env, served.root)
    with Raw(served.env.socket) as c:
        for value in HOSTILE:
            reply = c.request(method, params_for(method, field, value, root))
            if "error" in reply:
                error = reply["error"]
                if field == "base_branch" and error["code"] == -32001:
                    # A name git takes, but no branch of that name: a base must exist.
                    assert "does not exist" in error["message"], (field, value, error)
                    assert repr(value)[:30] in error["message"], (field, value, error)
                    continue
                assert error["code"] == -32602, (field, value, reply)
                assert rule in error["message"], (field, value, error)
                assert repr(value)[:30] in error["message"], (field, value, error)
                continue
            assert verbatim, f"{field}={value!r} was accepted: {reply}"
            task = reply["result"]
            assert task[field] == value, (field, value, task)
            on_disk = c.request("task.get", {"project": root, "task": task["id"]})["result"]
            assert on_disk[field] == value
            if method == "task.new":
                Path(task["file"]).unlink()  # make room for the next value's task
    assert outside_dot(served.env, served.root) == before
    tasks = sorted(p.name for p in (served.root / ".orchestra" / "tasks").iterdir())
    assert tasks == ["1-target.md"]
    assert not PWNED.exists()


@pytest.mark.timeout(60)
def test_hostile_slug_from_the_cli(served: Served) -> None:
    """`orchestra new ../evil` exits 2 with the rule and creates nothing."""
    proc = served.env.run("new", "../evil", "-m", "x", cwd=served.root)
    assert proc.returncode == 2, proc
    assert names.SLUG_RULE in proc.stderr
    assert not (served.root.parent / "evil").exists()
    assert not list(served.root.rglob("*evil*"))


@pytest.mark.timeout(60)
@pytest.mark.shared_daemon  # one project's agent: any daemon will do (tests/conftest.py)
def test_description_is_one_argv_element(daemon: Env, project: Path) -> None:
    """A description full of shell syntax reaches the agent byte for byte as one argument,
    and no shell ever runs it."""
    env = daemon
    out = env.base / "argv.json"
    script = (  # written whole, then renamed: the test never reads half of it
        "import json, os, sys\n"
        "open(sys.argv[1] + '.tmp', 'w').write(json.dumps(sys.argv[2:]))\n"
        "os.replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
    )
    add_agent(env, project, "argv", script, args=(str(out), "{prompt}"))
    description = (
        f"$(touch {PWNED}) `touch {PWNED}`; touch {PWNED} | touch {PWNED} && touch {PWNED}\n"
        "'single' \"double\" \\ -rf --help {prompt} {python} %s $HOME\n"
    )
    api = Api(env, project)
    try:
        api("task.new", slug="shell", agent="argv", description=description)
        api("task.start", task="shell")
        argv = wait_until(lambda: out.exists() and json.loads(out.read_text()), "the agent's argv")
        assert argv == [api.get("shell")["description"]]
        assert argv[0].startswith(description)
        assert not PWNED.exists()
    finally:
        api.close()


HOSTILE_CONFIG = [
    ('log_level = "../../x"', "log_level"),
    ('socket = "/tmp/a\\u0000b"', "socket"),
    ('base_branch = "-x"', "base_branch"),
    ('base_branch = "../x"', "base_branch"),
    ("agents.x.command = [1, 2]", "command"),
    ('agents.x.command = ["ok", "a\\u0000b"]', "command"),
    ('agents.x.command = "rm -rf /; echo"', "command"),
    ('agents.x.command = ["x", "{secret}"]', "command"),
    ('agents.x.command = ["ok"]\nagents.x.env = {"A=B" = "x"}', "env"),
    ('agents."../x".command = ["a"]', "agents"),
    ('setup = "make; rm -rf /"', "setup"),
    ("scrollback = -1", "scrollback"),
    ('max_running = "4"', "max_running"),
]


@pytest.mark.timeout(60)
@pytest.mark.shared_daemon  # one project's config: any daemon will do (tests/conftest.py)
def test_hostile_config_values(daemon: Env, project: Path) -> None:
    """Each hostile config value is a -32005 config error naming the file and the key, and
    nothing is created."""
    config = project / ".orchestra" / "config.toml"
    original = config.read_text()
    api = Api(daemon, project)
    try:
        for text, key in HOSTILE_CONFIG:
            config.write_text(original + "\n" + text + "\n")
            error = api.error("task.new", slug="x", description="x")
            assert error.remote_code == -32005, (text, error)
            assert str(config) in error.message and key in error.message, (text, error.message)
        config.write_text(original)
        assert api("task.list")["tasks"] == []
    finally:
        api.close()


@pytest.mark.timeout(60)
def test_nul_in_the_global_socket_setting(env: Env, project: Path) -> None:
    """A NUL in the global config's `socket` is a one-line config error naming the file,
    not a traceback, for the CLI and for `daemon run`."""
    config = env.base / "config" / "orchestra" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('socket = "/tmp/x\\u0000y"\n')
    plain = {k: v for k, v in env.vars.items() if k != "ORCHESTRA_SOCKET"}
    for args in (["status"], ["daemon", "run"]):
        proc = subprocess.run(
            [sys.executable, "-m", "orchestra", *args],
            cwd=project,
            env=plain,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2, proc
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert str(config) in proc.stderr and "socket" in proc.stderr


# -- another user ------------------------------------------------------------------

CONNECT = """
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print(errno.errorcode.get(exc.errno, exc.errno))
else:
    print("connected")
"""


@pytest.fixture(scope="module")
def other_user() -> Iterator[pwd.struct_passwd]:
    """A second user, made for these tests (root only) and removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("userdel"):
        pytest.skip("needs root, useradd and userdel")
    if not Path("/usr/bin/python3").exists():
        pytest.skip("the other user needs a python3 it can run")
    name = f"orcfault{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
        timeout=30,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True, timeout=30)


def connect_as(user: pwd.struct_passwd, path: Path) -> str:
    proc = subprocess.run(
        ["/usr/bin/python3", "-c", CONNECT, str(path)],
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def reachable_env() -> Iterator[Env]:
    """A daemon under a directory every user may traverse (this machine's /tmp may be
    0700), so that only the daemon's own modes stand between another user and it."""
    parent = next(
        (Path(d) for d in ("/tmp", "/var/tmp", "/dev/shm") if Path(d).stat().st_mode & 0o001),
        None,
    )
    if parent is None:
        pytest.skip("no temporary directory other users can traverse")
    with private_user(parent, daemon=True) as env:
        try:
            yield env
        finally:
            stop_and_forget(env)


@pytest.mark.timeout(60)
def test_another_user_cannot_connect(reachable_env: Env, other_user: pwd.struct_passwd) -> None:
    """The socket dir is 0700 and the socket 0600, each enough to keep another uid out
    (EACCES); loosened on purpose, the same probe connects, so the modes are what stop it."""
    env = reachable_env
    sock = env.socket
    run_dir = sock.parent
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert run_dir.stat().st_uid == sock.stat().st_uid == os.geteuid()
    env.base.chmod(0o711)  # let the other user reach the run dir: only its modes remain
    try:
        assert connect_as(other_user, sock) == "EACCES"  # stopped by the 0700 directory
        run_dir.chmod(0o711)
        assert connect_as(other_user, sock) == "EACCES"  # stopped by the 0600 socket
        sock.chmod(0o666)
        assert connect_as(other_user, sock) == "connected"  # the control: modes are the lock
    finally:
        sock.chmod(0o600)
        run_dir.chmod(0o700)
        env.base.chmod(0o700)
    with Raw(sock) as c:
        c.ping()


@pytest.mark.timeout(60)
def test_socket_dir_of_another_user_is_refused(env: Env, other_user: pwd.struct_passwd) -> None:
    """A daemon will not serve from a socket dir another uid owns: it says so in one line."""
    run_dir = env.socket.parent
    run_dir.mkdir(mode=0o700)
    os.chown(run_dir, other_user.pw_uid, other_user.pw_gid)
    proc = env.run("daemon", "run")
    assert proc.returncode == 1, proc
    assert f"belongs to uid {other_user.pw_uid}" in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert not env.socket.exists()


@pytest.mark.timeout(60)
def test_hostile_strings_for_session_ids(served: Served) -> None:
    """A session id that could pass for an option (`-x`, `--dangerously-skip-permissions`)
    is refused: profiles may pass it as its own argv element."""
    with Raw(served.env.socket) as c:
        for value in ("-x", "--dangerously-skip-permissions", "--resume=../../x"):
            reply = c.request(
                "task.session_set",
                {"project": str(served.root), "task": "target", "session_id": value},
            )
            assert reply["error"]["code"] == -32602
            assert names.SESSION_RULE in reply["error"]["message"]
