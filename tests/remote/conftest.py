"""A real OpenSSH server on 127.0.0.1, standing in for another machine.

Its own host key and an `authorized_keys` made in a temp dir; it runs as the test's user,
and logs that user in with a key made for it. The "other machine" is a private user of
its own (`remote`: HOME, XDG dirs, socket), set in every session's environment by the
server (`SetEnv`), so its daemon is not the test's local one. The client side is the
test's `env`, whose global config names the server `box` (`[hosts.box]`, with an ssh
config file of its own: port, key, known hosts).

`.ci/run` installs openssh-server; where there is no sshd (and not in CI) these tests skip.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    GIT_ENV,
    TEST_AGENT_CONFIG,
    Env,
    kill_leftovers,
    make_repo,
    private_user,
    stop_daemon,
)

SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if Path(p).exists()), None
)
ALIAS = "box"


class Server:
    """The running sshd: its port, the client's ssh config file, and the remote user."""

    def __init__(self, base: Path, remote: Env, port: int) -> None:
        self.base = base
        self.remote = remote
        self.port = port
        self.ssh_config = base / "ssh_config"
        self.user_key = base / "user_key"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ssh(self) -> list[str]:
        return ["ssh", "-F", str(self.ssh_config)]

    def host_config(self, name: str = ALIAS, **extra: str) -> str:
        """The `[hosts.NAME]` table that reaches this server."""
        lines = [f"[hosts.{name}]", f"ssh = {self.ssh!r}".replace("'", '"')]
        lines += [f'{key} = "{value}"' for key, value in extra.items()]
        return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def remote_environment(remote: Env) -> dict[str, str]:
    """What the server sets in every session: the remote user's dirs and socket, this
    Python's `orchestra` first on the PATH, and SHLVL above 1 (bash run by sshd reads
    ~/.bashrc otherwise, which here may take longer than the whole command)."""
    keep = ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "ORCHESTRA_SOCKET")
    values = {k: remote.vars[k] for k in keep}
    values.update(GIT_ENV)
    values["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    values["SHLVL"] = "5"
    values["PYTHONDONTWRITEBYTECODE"] = "1"
    return values


@contextlib.contextmanager
def ssh_server() -> Iterator[Server]:
    if SSHD is None:
        if os.environ.get("CI"):
            pytest.fail("no sshd: .ci/run installs openssh-server")
        pytest.skip("no sshd on this machine (apt install openssh-server)")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd privilege separation
    with private_user() as remote:
        base = remote.base / "sshd"
        base.mkdir()
        server = Server(base, remote, _free_port())
        _keygen(base / "host_key")
        _keygen(server.user_key)
        shutil.copy(base / "user_key.pub", base / "authorized_keys")
        setenv = " ".join(f"{k}={v}" for k, v in remote_environment(remote).items())
        (base / "sshd_config").write_text(
            f"Port {server.port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\n"
            f"AuthorizedKeysFile {base / 'authorized_keys'}\nPidFile {base / 'sshd.pid'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            f"AllowUsers {getpass.getuser()}\nSetEnv {setenv}\nLogLevel ERROR\n"
        )
        server.ssh_config.write_text(
            f"Host {ALIAS}\n  HostName 127.0.0.1\n  Port {server.port}\n"
            f"  User {getpass.getuser()}\n  IdentityFile {server.user_key}\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {base / 'known_hosts'}\n"
            "  StrictHostKeyChecking accept-new\n  BatchMode yes\n  LogLevel ERROR\n"
        )
        log = open(base / "sshd.log", "wb")  # noqa: SIM115 - closed below
        server.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(base / "sshd_config")], stdout=log, stderr=log
        )
        try:
            _wait_listening(server)
            yield server
        finally:
            stop_daemon(remote)
            kill_leftovers(remote)
            server.proc.terminate()
            server.proc.wait(timeout=10)
            log.close()


def _wait_listening(server: Server) -> None:
    deadline = time.monotonic() + 10
    while True:
        assert server.proc is not None
        if server.proc.poll() is not None:
            raise AssertionError(
                f"sshd exited {server.proc.returncode}: {(server.base / 'sshd.log').read_text()}"
            )
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        if time.monotonic() > deadline:
            raise AssertionError("sshd did not listen within 10 s")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def sshd() -> Iterator[Server]:
    """One server (and remote user) for a module's tests."""
    with ssh_server() as server:
        yield server


@pytest.fixture
def local(env: Env, sshd: Server) -> Env:
    """The test's user, with the server in its global config as `box`."""
    config = Path(env.vars["XDG_CONFIG_HOME"]) / "orchestra"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(sshd.host_config())
    return env


@pytest.fixture
def far(sshd: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project on the host: a git repository there with `orchestra init` done (by the
    host's user), whose tasks default to the `sleeper` agent."""
    root = make_repo(Path(os.path.realpath(tmp_path_factory.mktemp("far"))) / "repo")
    sshd.remote.run("init", cwd=root, check=True)
    with (root / ".orchestra" / "config.toml").open("a") as f:
        f.write(TEST_AGENT_CONFIG)
    return root
