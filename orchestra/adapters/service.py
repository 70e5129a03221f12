"""Installing the daemon as a user service: systemd (Linux) or launchd (macOS)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs

from orchestra.adapters import paths
from orchestra.core import service
from orchestra.core.errors import OrchestraError


class ServiceError(OrchestraError):
    kind = "service"


@attrs.frozen
class Plan:
    kind: str  # "systemd" or "launchd"
    path: Path  # the unit or plist file
    content: bytes
    argv: list[str]


def daemon_argv() -> list[str]:
    return [sys.executable, "-m", "orchestra", "daemon", "run"]


def plan(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> Plan:
    argv = daemon_argv()
    env = {k: environ[k] for k in service.PASSED_ENV if environ.get(k)}
    if platform == "darwin":
        home = Path(environ.get("HOME") or Path.home())
        path = home / "Library" / "LaunchAgents" / f"{service.LAUNCHD_LABEL}.plist"
        log = str(paths.state_home(environ) / "daemon.out")
        return Plan("launchd", path, service.launchd_plist(argv, env, log), argv)
    if platform.startswith("linux"):
        path = (
            paths._xdg(environ, "XDG_CONFIG_HOME", ".config")
            / "systemd"
            / "user"
            / service.UNIT_NAME
        )
        return Plan("systemd", path, service.systemd_unit(argv, env).encode(), argv)
    raise ServiceError(
        f"`daemon install` supports Linux (systemd) and macOS (launchd), not {platform}"
    )


def _run(argv: list[str]) -> None:
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise ServiceError(f"{argv[0]} is not installed") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [
            f"exit {proc.returncode}"
        ]
        raise ServiceError(f"`{' '.join(argv)}` failed: {detail[0]}")


def check(p: Plan) -> None:
    """Raise ServiceError unless the user's service manager answers: asked before anything
    is written or stopped, so a failing install leaves things as they were."""
    if p.kind == "systemd":
        probe = ["systemctl", "--user", "show-environment"]
        hint = (
            "run it in a login session with a user bus, or `loginctl enable-linger` the user;"
            " the daemon keeps running as it is"
        )
    else:
        probe = ["launchctl", "print", f"gui/{os.getuid()}"]
        hint = "run it in the user's GUI session; the daemon keeps running as it is"
    try:
        _run(probe)
    except ServiceError as exc:
        raise ServiceError(
            f"cannot reach the user's service manager: {exc.message}; {hint}"
        ) from None


def write(p: Plan) -> bytes | None:
    """Write the service file; what was there before (None: nothing), for `restore`."""
    try:
        before: bytes | None = p.path.read_bytes()
    except FileNotFoundError:
        before = None
    p.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.path.with_name(f".{p.path.name}.tmp")
    tmp.write_bytes(p.content)
    tmp.replace(p.path)
    return before


def restore(p: Plan, before: bytes | None) -> None:
    """Put the service file back as it was before `write`, and tell the manager."""
    if before is None:
        p.path.unlink(missing_ok=True)
    else:
        p.path.write_bytes(before)
    if p.kind == "systemd":
        with contextlib.suppress(ServiceError):
            _run(["systemctl", "--user", "daemon-reload"])


def enable(p: Plan) -> list[str]:
    """Register and start the service; the commands run, for the report."""
    if p.kind == "systemd":
        steps = [
            ["systemctl", "--user", "daemon-reload"],
            ["systemctl", "--user", "enable", "--now", service.UNIT_NAME],
        ]
    else:
        steps = [["launchctl", "bootstrap", f"gui/{os.getuid()}", str(p.path)]]
    for step in steps:
        _run(step)
    return [" ".join(s) for s in steps]


def disable(p: Plan) -> list[str]:
    if p.kind == "systemd":
        steps = [["systemctl", "--user", "disable", "--now", service.UNIT_NAME]]
    else:
        steps = [["launchctl", "bootout", f"gui/{os.getuid()}/{service.LAUNCHD_LABEL}"]]
    done = []
    for step in steps:
        try:
            _run(step)
            done.append(" ".join(step))
        except ServiceError:
            continue  # not loaded: nothing to undo
    if p.kind == "systemd":
        with contextlib.suppress(ServiceError):
            _run(["systemctl", "--user", "daemon-reload"])
    return done
