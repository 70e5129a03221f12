"""What goes wrong on the way to another host is one line that says what to do, with its
own `kind` in --json: a host that does not answer, a refused key, no `orchestra` there, a
version of it that is not ours, and a shell that talks before the bridge does."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.remote.conftest import ALIAS, Server


def configure(local: Env, text: str) -> None:
    config = Path(local.vars["XDG_CONFIG_HOME"]) / "orchestra" / "config.toml"
    config.write_text(config.read_text() + text)


def failed(local: Env, host: str) -> tuple[str, dict[str, object]]:
    """The one line a failing `status` prints, and its --json error."""
    text = local.run("--host", host, "-C", "/srv/app", "status")
    assert text.returncode == 5, (text.stdout, text.stderr)
    assert text.stderr.count("\n") == 1 and "Traceback" not in text.stderr, text.stderr
    as_json = local.run("--host", host, "-C", "/srv/app", "status", "--json")
    assert as_json.returncode == 5
    return text.stderr, json.loads(as_json.stdout)["error"]


def test_a_host_that_refuses_connections(local: Env, sshd: Server) -> None:
    """Nothing listening: `cannot reach`, with ssh's own words."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before ssh tries it
    configure(local, f'[hosts.closed]\naddress = "ssh://127.0.0.1:{port}"\n')
    line, error = failed(local, "closed")
    assert "cannot reach closed" in line and "Connection refused" in line
    assert error["data"]["kind"] == "host_unreachable"  # type: ignore[index]


def test_a_host_name_that_does_not_resolve(local: Env) -> None:
    """A typo in the host name says so."""
    line, error = failed(local, "no-such-host.invalid")
    assert "cannot reach no-such-host.invalid" in line and "resolve" in line
    assert error["data"]["kind"] == "host_unreachable"  # type: ignore[index]


def test_a_refused_key(local: Env, sshd: Server) -> None:
    """A key the host does not know: the login is refused, and the line says how to fix it."""
    other = sshd.base / "stranger_key"
    if not other.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
            check=True,
            capture_output=True,
        )
    config = sshd.base / "stranger_config"
    config.write_text(sshd.ssh_config.read_text().replace(str(sshd.user_key), str(other)))
    configure(local, f'[hosts.stranger]\naddress = "{ALIAS}"\nssh = ["ssh", "-F", "{config}"]\n')
    line, error = failed(local, "stranger")
    assert "stranger refused the login" in line and "Permission denied" in line
    assert "ssh-add" in line
    assert error["data"]["kind"] == "host_refused"  # type: ignore[index]


def test_no_orchestra_on_the_host(local: Env, sshd: Server) -> None:
    """The host's shell cannot find the command: install it, or name its path."""
    configure(
        local,
        f'[hosts.bare]\naddress = "{ALIAS}"\norchestra = "/nonexistent/orchestra"\n'
        + f"ssh = {json.dumps(sshd.ssh)}\n",
    )
    line, error = failed(local, "bare")
    assert "`/nonexistent/orchestra` is not found on bare" in line
    assert "hosts.bare.orchestra" in line
    assert error["data"]["kind"] == "orchestra_missing"  # type: ignore[index]


def fake_orchestra(sshd: Server, name: str, body: str) -> Path:
    script = sshd.base / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def test_another_version_on_the_host(local: Env, sshd: Server) -> None:
    """A bridge of another version is refused before anything is sent to it."""
    old = fake_orchestra(
        sshd,
        "old-orchestra",
        """echo '{"jsonrpc": "2.0", "method": "bridge.hello", "params": {"version": "0.0.1"}}'
cat > /dev/null
""",
    )
    configure(
        local,
        f'[hosts.old]\naddress = "{ALIAS}"\norchestra = "{old}"\nssh = {json.dumps(sshd.ssh)}\n',
    )
    line, error = failed(local, "old")
    assert "old runs orchestra 0.0.1, this machine 0.1.0" in line
    assert "same version on both sides" in line
    assert error["data"]["kind"] == "version_mismatch"  # type: ignore[index]
    assert error["data"]["remote_version"] == "0.0.1"  # type: ignore[index]


@pytest.mark.parametrize("lines", [3, 500])
def test_a_shell_that_talks_first(local: Env, sshd: Server, lines: int) -> None:
    """A startup file that prints a banner on stdout: a few lines are skipped, a flood is
    a clear error rather than a hang."""
    noisy = fake_orchestra(
        sshd,
        f"noisy-{lines}",
        f'i=0; while [ $i -lt {lines} ]; do echo "Welcome to box"; i=$((i+1)); done\n'
        'exec orchestra "$@"\n',
    )
    configure(
        local,
        f'[hosts.noisy]\naddress = "{ALIAS}"\norchestra = "{noisy}"\n'
        f"ssh = {json.dumps(sshd.ssh)}\n",
    )
    if lines < 10:
        ok = local.run("--host", "noisy", "daemon", "start", "--json")
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["socket"] == str(sshd.remote.socket)
        return
    line, _ = failed(local, "noisy")
    assert "before orchestra's greeting" in line and "startup file" in line
