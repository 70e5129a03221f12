"""Commands against another host's daemon, through a real sshd: `--host` on the CLI.

The host's daemon is started by its bridge on the first command (as `autostart` allows),
and its project lives on that host (here, the remote user's own directory).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import Env, git
from tests.remote.conftest import ALIAS, Server, control_socket


def over(local: Env, far: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return local.run("--host", ALIAS, "-C", str(far), *args)


def test_a_task_lives_on_the_host(local: Env, far: Path, sshd: Server) -> None:
    """new, start, status, peek, complete and merge through --host act on the host's daemon
    and project, and the local daemon is never started."""
    made = over(local, far, "new", "fix-login", "-m", "Fix the login form", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["slug"] == "fix-login"
    assert (far / ".orchestra" / "tasks" / "1-fix-login.md").exists()
    started = over(local, far, "start", "fix-login")
    assert started.returncode == 0, started.stderr
    status = over(local, far, "status", "--json")
    assert status.returncode == 0, status.stderr
    [task] = json.loads(status.stdout)["tasks"]
    assert (task["slug"], task["status"]) == ("fix-login", "running")
    peek = over(local, far, "peek", "fix-login")
    assert peek.returncode == 0 and "sleeper ready" in peek.stdout, peek.stderr
    worktree = Path(json.loads(over(local, far, "path", "fix-login", "--json").stdout)["worktree"])
    (worktree / "login.txt").write_text("fixed\n")
    git("add", "login.txt", cwd=worktree)
    git("commit", "-q", "-m", "Fix the login form", cwd=worktree)
    assert over(local, far, "complete", "fix-login").returncode == 0
    merged = over(local, far, "merge", "fix-login", "-y", "--json")
    assert merged.returncode == 0, merged.stderr
    assert (far / "login.txt").read_text() == "fixed\n"
    assert git("log", "-1", "--format=%s", cwd=far).strip().startswith("Fix the login form")
    assert local.daemon_pid() is None, "the local daemon was started"
    assert sshd.remote.daemon_pid() is not None


def test_the_host_default_project_and_environment(
    local: Env, far: Path, sshd: Server, project: Path
) -> None:
    """ORCHESTRA_HOST and `hosts.NAME.project` stand for --host and -C; `--host local`
    is this machine whatever the defaults say."""
    config = Path(local.vars["XDG_CONFIG_HOME"]) / "orchestra" / "config.toml"
    config.write_text(f'host = "{ALIAS}"\n' + sshd.host_config(project=str(far)))
    listed = local.run("status", "--json", extra={"ORCHESTRA_HOST": ALIAS})
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["project"] == str(far)
    by_config = local.run("status", "--json", cwd=project)  # the global `host`
    assert json.loads(by_config.stdout)["project"] == str(far)
    assert local.daemon_pid() is None
    # Inside a task, the default host is not followed: the agent's daemon is its own.
    inside = local.run("status", "--json", cwd=project, extra={"ORCHESTRA_TASK_ID": "1"})
    assert json.loads(inside.stdout).get("project") != str(far)
    here = local.run("--host", "local", "status", "--json", cwd=project)
    assert here.returncode == 0, here.stdout
    assert json.loads(here.stdout)["project"] == str(project)
    assert local.daemon_pid() is not None


def test_a_relative_or_missing_project_is_one_clear_line(local: Env, sshd: Server) -> None:
    """Without -C (and no default project) or with a relative path, the error says what to
    give, in one line, before ssh is even run."""
    missing = local.run("--host", ALIAS, "status")
    assert missing.returncode == 3
    assert missing.stderr.count("\n") == 1 and "-C /path/on/box" in missing.stderr
    relative = local.run("--host", ALIAS, "-C", "src/app", "status")
    assert relative.returncode == 3 and "absolute path" in relative.stderr


def test_daemon_status_over_ssh_does_not_start_it(local: Env, sshd: Server) -> None:
    """`daemon status --host` says the host's daemon is not running (exit 5) and starts
    nothing; `daemon start` starts it there, `daemon stop` stops it."""
    stopped = local.run("--host", ALIAS, "daemon", "stop")
    assert stopped.returncode == 0, stopped.stderr
    status = local.run("--host", ALIAS, "daemon", "status")
    assert status.returncode == 5 and "not running on box" in status.stderr, status.stderr
    assert sshd.remote.daemon_pid() is None or not _alive(sshd.remote.daemon_pid())
    started = local.run("--host", ALIAS, "daemon", "start", "--json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["started"] is True and info["socket"] == str(sshd.remote.socket)
    again = local.run("--host", ALIAS, "daemon", "status", "--json")
    assert json.loads(again.stdout)["pid"] == info["pid"]
    refused = local.run("--host", ALIAS, "daemon", "install")
    assert refused.returncode == 2 and "ssh box orchestra daemon install" in refused.stderr
    init = local.run("--host", ALIAS, "init", cwd=local.base)
    assert init.returncode == 2 and "runs on the host itself: ssh box" in init.stderr


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()[:1]
    except FileNotFoundError:
        return False
    return state not in ([b"Z"], [b"X"])


def test_the_connection_is_shared(local: Env, far: Path, sshd: Server) -> None:
    """After one command a control master runs beside the local socket, and later commands
    go through it (ssh -O check finds it)."""
    assert over(local, far, "status").returncode == 0
    control = control_socket(local, sshd)
    [master] = list(control.parent.iterdir())
    checked = subprocess.run(
        [*sshd.ssh, "-o", f"ControlPath={control}", "-O", "check", ALIAS],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert checked.returncode == 0 and "Master running" in checked.stderr, checked.stderr
    assert master == control and master.is_socket()


def test_the_users_own_sharing_is_left_alone(local: Env, sshd: Server) -> None:
    """With ControlMaster in the user's ssh config, no ControlPath of ours is added."""
    from orchestra.client.remote import argv
    from orchestra.core.remote import target

    plain = target(ALIAS, {}, sshd.ssh)
    assert any(a.startswith("ControlPath=") for a in argv(plain, local.base / "cm"))
    own = sshd.base / "own_config"
    own.write_text(
        sshd.ssh_config.read_text() + f"  ControlMaster auto\n  ControlPath {sshd.base}/own-%C\n"
    )
    theirs = target(ALIAS, {}, ["ssh", "-F", str(own)])
    assert not any(a.startswith("ControlPath=") for a in argv(theirs, local.base / "cm"))
