"""Service definitions that run `orchestra daemon run` under the OS's supervisor.

Pure text: a systemd user unit (Linux) and a launchd agent plist (macOS). The
daemon runs in the foreground under them; the supervisor restarts it if it
dies, and `daemon stop` (a clean exit) is not treated as a failure.
"""

from __future__ import annotations

import plistlib
import shlex
from collections.abc import Mapping, Sequence

UNIT_NAME = "orchestra.service"
LAUNCHD_LABEL = "dev.orchestra.daemon"

# What the daemon needs from the user's environment to find its files and agents.
PASSED_ENV = (
    "PATH",
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "ORCHESTRA_SOCKET",
    "ORCHESTRA_LOG",
    "SHELL",
    "LANG",
)


def _quote(arg: str) -> str:
    """systemd's own quoting: double quotes, with \\ and " escaped; % doubled."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def systemd_unit(argv: Sequence[str], env: Mapping[str, str]) -> str:
    exec_start = " ".join(_quote(a) for a in argv)
    lines = [
        "[Unit]",
        "Description=Orchestra daemon: AI coding agents in git worktrees",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={exec_start}",
        *(f"Environment={_quote(f'{k}={v}')}" for k, v in sorted(env.items())),
        "Restart=on-failure",
        "RestartSec=2",
        # 6: another daemon already holds the per-user lock; restarting cannot help.
        "RestartPreventExitStatus=6",
        # Agents are the daemon's children: stopping the service stops them, through the
        # daemon's own graceful teardown (SIGTERM to the daemon only, then the cgroup).
        "KillMode=mixed",
        # The daemon gives each run a cgroup below its own (adapters/cgroups.py): what an
        # agent daemonises, even with its environment dropped, ends with the run.
        "Delegate=yes",
        "TimeoutStopSec=30",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def launchd_plist(argv: Sequence[str], env: Mapping[str, str], log_file: str) -> bytes:
    return plistlib.dumps(
        {
            "Label": LAUNCHD_LABEL,
            "ProgramArguments": list(argv),
            "EnvironmentVariables": dict(env),
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "StandardOutPath": log_file,
            "StandardErrorPath": log_file,
            "ProcessType": "Interactive",
        }
    )


def describe(argv: Sequence[str]) -> str:
    return shlex.join(argv)
