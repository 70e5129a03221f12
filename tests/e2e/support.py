"""Helpers for the end-to-end tests: a client bound to one project, test agents, /proc.

Test agents are small Python scripts written under the test's private base
directory and added to the project's config as agent profiles. Processes are
inspected through /proc (CI runs Linux): an agent and everything it starts carry
the daemon's ORCHESTRA_RUN_ID marker in their environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import Env, ProjectApi
from tests.daemon.wire import alive, log_lines, wait_until

PROC = Path("/proc")


class Api(ProjectApi):
    """JSON-RPC calls and CLI commands on one project, over one connection for the test."""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real CLI, run in the project's main checkout."""
        return self.env.run(*args, cwd=self.root)

    def new(self, slug: str, **params: Any) -> dict[str, Any]:
        task: dict[str, Any] = self("task.new", slug=slug, description=f"Do {slug}.", **params)
        return task

    def get(self, task: str | int) -> dict[str, Any]:
        got: dict[str, Any] = self("task.get", task=task)
        return got

    def status(self, task: str | int) -> str:
        return str(self.get(task)["status"])

    def wait_status(self, task: str | int, status: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll task.get until the task is in `status`; return it."""
        return wait_until(
            lambda: (t := self.get(task))["status"] == status and t,
            f"task {task} to be {status}",
            timeout,
        )

    def tail(self, task: str | int) -> str:
        return str(self("task.tail", task=task, bytes=65536)["text"])

    def wait_output(self, task: str | int, text: str, timeout: float = 10.0) -> str:
        """Poll the task's scrollback until it contains `text`; return the scrollback."""

        def check() -> str | None:
            out = self.tail(task)
            return out if text in out else None

        return wait_until(check, f"{text!r} in the output of task {task}", timeout)

    def pid(self, task: str | int) -> int:
        run = self.get(task)["run"]
        assert run is not None, f"task {task} has no running agent"
        return int(run["pid"])

    def events(self, event: str, task_id: int | None = None) -> list[dict[str, Any]]:
        """The project's log lines of one event (and one task)."""
        return [
            line
            for line in log_lines(self.root)
            if line.get("event") == event and (task_id is None or line.get("task_id") == task_id)
        ]

    def reconnect(self) -> None:
        """A new connection (after the daemon was restarted)."""
        self.client.close()
        self.client = self.env.client()

    def close(self) -> None:
        self.client.close()


def configure(project: Path, text: str) -> None:
    """Append top-level keys to the project's config (the daemon rereads it on change)."""
    config = project / ".orchestra" / "config.toml"
    config.write_text(config.read_text() + "\n" + text.strip() + "\n")


def toml(value: Any) -> str:
    """A TOML value for strings, lists of strings and flat tables of strings."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def add_agent(
    env: Env,
    project: Path,
    name: str,
    body: str,
    *,
    args: tuple[str, ...] = (),
    resume: tuple[str, ...] | None = None,
    agent_env: dict[str, str] | None = None,
) -> Path:
    """Write `body` as a Python script and add it to the config as agent `name`.

    The argv is `{python} <script> *args`; `resume`, when given, is the resume
    argv's arguments after the script.
    """
    script = env.base / "agents" / f"{name}.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(body)
    lines = [f"agents.{name}.command = {toml(['{python}', str(script), *args])}"]
    if resume is not None:
        lines.append(f"agents.{name}.resume = {toml(['{python}', str(script), *resume])}")
    if agent_env:
        lines.append(f"agents.{name}.env = {toml(agent_env)}")
    configure(project, "\n".join(lines))
    return script


# -- /proc ------------------------------------------------------------------------


def environ(pid: int) -> dict[str, str]:
    """A process's environment ({} once it is gone, or a zombie)."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def stat(pid: int) -> tuple[str, int, int] | None:
    """(state letter, ppid, session id) of a process, None once it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[3])


def pids() -> list[int]:
    return [int(p) for p in os.listdir(PROC) if p.isdigit()]


def run_id(pid: int) -> str:
    """The ORCHESTRA_RUN_ID marker the daemon gave an agent."""
    value = environ(pid).get("ORCHESTRA_RUN_ID")
    assert value, f"process {pid} has no ORCHESTRA_RUN_ID"
    return value


def with_run_id(value: str) -> set[int]:
    """Live processes (not zombies) that carry ORCHESTRA_RUN_ID=`value`."""
    return {p for p in pids() if environ(p).get("ORCHESTRA_RUN_ID") == value and alive(p)}


def agents_of(env: Env) -> dict[str, set[int]]:
    """Run id -> live processes, for every agent process of `env`'s daemon."""
    found: dict[str, set[int]] = {}
    for pid in pids():
        variables = environ(pid)
        run = variables.get("ORCHESTRA_RUN_ID")
        if run and variables.get("ORCHESTRA_SOCKET") == str(env.socket) and alive(pid):
            found.setdefault(run, set()).add(pid)
    return found


def with_marker(marker: str) -> set[int]:
    """Live processes with `marker` in one of their arguments."""
    return {p for p in pids() if any(marker in a for a in cmdline(p)) and alive(p)}


def children(pid: int) -> set[int]:
    """Direct children of `pid`, zombies included."""
    kids: set[int] = set()
    with contextlib.suppress(OSError):
        for task in (PROC / str(pid) / "task").iterdir():
            with contextlib.suppress(OSError):
                kids.update(int(x) for x in (task / "children").read_text().split())
    return kids


def zombies(pid: int) -> set[int]:
    """Children of `pid` that have exited and were not reaped."""
    return {c for c in children(pid) if (s := stat(c)) is not None and s[0] == "Z"}


def fds(pid: int) -> list[str]:
    """What each open fd of `pid` points at."""
    out = []
    with contextlib.suppress(OSError):
        for fd in (PROC / str(pid) / "fd").iterdir():
            with contextlib.suppress(OSError):
                out.append(str(fd.readlink()))
    return out


def ptys(pid: int) -> int:
    """How many PTY masters `pid` holds open."""
    return sum(1 for target in fds(pid) if target.endswith("ptmx"))
