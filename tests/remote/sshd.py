"""A real OpenSSH server on 127.0.0.1 for the remote tests and the remote bench (stdlib
only, no pytest: bench/remote.py imports it too).

It gets its own host key and an `authorized_keys` made in its directory, runs as the
current user and logs that user in with a key made for it. `session_env` is set in every
session (`SetEnv`): the "other machine's" HOME, XDG dirs and socket, so its daemon is not
the client's. The client reaches it as `box` through `ssh -F <its ssh_config>`.
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
from collections.abc import Iterator, Mapping
from pathlib import Path

SSHD = shutil.which("sshd") or next(
    (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if Path(p).exists()), None
)
ALIAS = "box"


class Server:
    """The running sshd: its port, the client's ssh config file and key."""

    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.ssh_config = base / "ssh_config"
        self.user_key = base / "user_key"

    @property
    def ssh(self) -> list[str]:
        """The ssh command that reaches the server as `box`."""
        return ["ssh", "-F", str(self.ssh_config)]

    def host_config(self, name: str = ALIAS, **extra: str) -> str:
        """The `[hosts.NAME]` table (TOML) that reaches this server."""
        argv = ", ".join(f'"{a}"' for a in self.ssh)
        lines = [f"[hosts.{name}]", f"ssh = [{argv}]"]
        lines += [f'{key} = "{value}"' for key, value in extra.items()]
        return "\n".join(lines) + "\n"


def session_environment(user: Mapping[str, str]) -> dict[str, str]:
    """What every session gets: `user`'s dirs and socket, this Python's `orchestra` first
    on the PATH, and SHLVL above 1 (bash started by sshd reads ~/.bashrc otherwise, which
    on a developer's machine may take longer than the command itself)."""
    keep = ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "ORCHESTRA_SOCKET")
    values = {k: user[k] for k in keep if k in user}
    values.update({k: v for k, v in user.items() if k.startswith("GIT_")})
    values["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    values["SHLVL"] = "5"
    values["PYTHONDONTWRITEBYTECODE"] = "1"
    return values


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def ssh_server(base: Path, session_env: Mapping[str, str]) -> Iterator[Server]:
    """An sshd serving until the block ends (SSHD must be set: the caller skips otherwise)."""
    assert SSHD is not None
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation dir
    base.mkdir(parents=True, exist_ok=True)
    server = Server(base, _free_port())
    keygen(base / "host_key")
    keygen(server.user_key)
    shutil.copy(base / "user_key.pub", base / "authorized_keys")
    user = getpass.getuser()
    setenv = " ".join(f"{k}={v}" for k, v in session_environment(session_env).items())
    (base / "sshd_config").write_text(
        f"Port {server.port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPidFile {base / 'sshd.pid'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"AllowUsers {user}\nSetEnv {setenv}\nLogLevel ERROR\n"
    )
    server.ssh_config.write_text(
        f"Host {ALIAS}\n  HostName 127.0.0.1\n  Port {server.port}\n  User {user}\n"
        f"  IdentityFile {server.user_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {base / 'known_hosts'}\n  StrictHostKeyChecking accept-new\n"
        "  BatchMode yes\n  LogLevel ERROR\n"
    )
    with open(base / "sshd.log", "wb") as log:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(base / "sshd_config")], stdout=log, stderr=log
        )
        try:
            _wait_listening(proc, server)
            yield server
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _wait_listening(proc: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            log = (server.base / "sshd.log").read_text(errors="replace")
            raise RuntimeError(f"sshd exited {proc.returncode}: {log}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("sshd did not listen within 10 s")
        time.sleep(0.01)
