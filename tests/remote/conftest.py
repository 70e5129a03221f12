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
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    TEST_AGENT_CONFIG,
    Env,
    kill_leftovers,
    make_repo,
    private_user,
    stop_daemon,
)
from tests.remote import sshd as server_
from tests.remote.sshd import ALIAS

__all__ = ["ALIAS", "Server"]


class Server(server_.Server):
    """The running sshd, and the remote user it logs in (its own HOME, XDG dirs, socket)."""

    def __init__(self, running: server_.Server, remote: Env) -> None:
        super().__init__(running.base, running.port)
        self.remote = remote


@contextlib.contextmanager
def ssh_server() -> Iterator[Server]:
    if server_.SSHD is None:
        if os.environ.get("CI"):
            pytest.fail("no sshd: .ci/run installs openssh-server")
        pytest.skip("no sshd on this machine (apt install openssh-server)")
    with private_user() as remote:
        try:
            with server_.ssh_server(remote.base / "sshd", remote.vars) as running:
                yield Server(running, remote)
        finally:
            stop_daemon(remote)
            kill_leftovers(remote)


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


def control_socket(local: Env, sshd: Server) -> Path:
    """Where the client keeps its shared connection to `box` (client/remote.py)."""
    from orchestra.core.remote import control_name, target

    return local.socket.parent / "ssh" / control_name(target(ALIAS, {}, sshd.ssh))
