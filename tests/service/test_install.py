"""`orchestra daemon install | uninstall`: the generated service files."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orchestra.adapters import service as adapter
from orchestra.core import service
from tests.conftest import Env


def test_systemd_unit_runs_the_daemon_in_the_foreground() -> None:
    """The unit's ExecStart is `python -m orchestra daemon run`, quoted, with the environment."""
    text = service.systemd_unit(
        ["/opt/my venv/bin/python", "-m", "orchestra", "daemon", "run"],
        {"PATH": "/a:/b", "HOME": "/h%x"},
    )
    assert 'ExecStart="/opt/my venv/bin/python" "-m" "orchestra" "daemon" "run"' in text
    assert 'Environment="HOME=/h%%x"' in text  # % is a systemd specifier: doubled
    assert "RestartPreventExitStatus=6" in text  # another daemon holds the lock: no restart loop
    assert "Delegate=yes" in text  # runs get cgroups of their own below the service's
    assert "WantedBy=default.target" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """systemd's own checker accepts the generated unit."""
    unit = tmp_path / service.UNIT_NAME
    unit.write_text(service.systemd_unit(adapter.daemon_argv(), {"PATH": os.environ["PATH"]}))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Unknown key" not in proc.stderr


def test_launchd_plist_is_valid() -> None:
    """The launchd agent runs the daemon at load, keeps it alive after failures, logs to a file."""
    data = plistlib.loads(
        service.launchd_plist(
            ["/usr/bin/python3", "-m", "orchestra", "daemon", "run"],
            {"HOME": "/Users/me"},
            "/tmp/o.log",
        )
    )
    assert data["Label"] == service.LAUNCHD_LABEL
    assert data["ProgramArguments"][-2:] == ["daemon", "run"]
    assert data["RunAtLoad"] is True and data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["EnvironmentVariables"] == {"HOME": "/Users/me"}


def test_plan_paths_per_platform(tmp_path: Path) -> None:
    """Linux writes ~/.config/systemd/user/orchestra.service; macOS ~/Library/LaunchAgents."""
    environ = {"HOME": str(tmp_path), "PATH": "/usr/bin"}
    linux = adapter.plan(environ, "linux")
    assert linux.path == tmp_path / ".config" / "systemd" / "user" / "orchestra.service"
    mac = adapter.plan(environ, "darwin")
    assert mac.path == tmp_path / "Library" / "LaunchAgents" / "dev.orchestra.daemon.plist"
    with pytest.raises(adapter.ServiceError, match="supports Linux"):
        adapter.plan(environ, "win32")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd path")
def test_install_no_start_then_uninstall(env: Env) -> None:
    """`install --no-start` writes the unit and says so; `uninstall` removes it again."""
    unit = Path(env.vars["XDG_CONFIG_HOME"]) / "systemd" / "user" / "orchestra.service"
    proc = env.run("daemon", "install", "--no-start", check=True)
    assert proc.stdout.strip() == f"wrote {unit}"
    assert 'daemon" "run"' in unit.read_text()
    proc = env.run("daemon", "uninstall", check=True)
    assert f"removed {unit}" in proc.stdout
    assert not unit.exists()
    assert env.run("daemon", "uninstall", check=True).stdout.strip() == "nothing was installed"


NO_BUS = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"}


@pytest.mark.skipif(shutil.which("systemctl") is None, reason="needs systemctl")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd path")
def test_install_without_a_user_bus_changes_nothing(env: Env) -> None:
    """Where `systemctl --user` reaches no user bus, install fails with one line saying so
    and what to do, writes no unit, and leaves the running daemon running."""
    env.run("daemon", "start", check=True)
    pid = env.daemon_pid()
    unit = Path(env.vars["XDG_CONFIG_HOME"]) / "systemd" / "user" / "orchestra.service"
    proc = env.run("daemon", "install", extra=NO_BUS)
    assert proc.returncode != 0
    [line] = proc.stderr.splitlines()
    assert line.startswith("orchestra: cannot reach the user's service manager: ")
    assert "the daemon keeps running as it is" in line
    assert not unit.exists()
    assert env.daemon_pid() == pid
    env.client().call("daemon.ping")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd path")
def test_install_that_fails_to_enable_puts_everything_back(env: Env) -> None:
    """When enabling fails after the check passed (here a systemctl that answers but
    cannot enable), the unit file is as it was before and the daemon that was stopped
    runs again."""
    bin_dir = env.base / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "systemctl"
    stub.write_text(
        "#!/bin/sh\n"
        'case "$2" in enable) echo "Failed to enable unit: Access denied" >&2; exit 1;; esac\n'
        "exit 0\n"
    )
    stub.chmod(0o755)
    unit = Path(env.vars["XDG_CONFIG_HOME"]) / "systemd" / "user" / "orchestra.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("# the user's own unit\n")
    env.run("daemon", "start", check=True)
    path = {"PATH": f"{bin_dir}:{env.vars['PATH']}"}
    proc = env.run("daemon", "install", extra=path)
    assert proc.returncode != 0
    [line] = proc.stderr.splitlines()
    assert "Failed to enable unit: Access denied" in line
    assert line.endswith("nothing was installed (the daemon it stopped was started again)")
    assert unit.read_text() == "# the user's own unit\n"
    env.client().call("daemon.ping")
