"""`orchestra demo`: the whole story on a scratch repository, with a private daemon.

Runs the real CLI, command by command, printing each one and its output, in a
temp dir with its own HOME/XDG dirs and socket, so it never touches your
repositories or your daemon. The agents are the built-in `demo` agent: real
processes in real PTYs that edit files and commit in their worktrees.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from orchestra.core.errors import EXIT_ERROR

CONFIG = """\
default_agent = "demo"
max_running = 2
idle_timeout = 2.0
"""


class Demo:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.repo = base / "repo"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "XDG_"))},
            "HOME": str(base / "home"),
            "XDG_CONFIG_HOME": str(base / "config"),
            "XDG_STATE_HOME": str(base / "state"),
            "ORCHESTRA_SOCKET": str(base / "run" / "orchestra.sock"),
            "ORCHESTRA_DEMO_STEP_DELAY": "0.15",
            "GIT_AUTHOR_NAME": "Orchestra demo",
            "GIT_AUTHOR_EMAIL": "demo@example.invalid",
            "GIT_COMMITTER_NAME": "Orchestra demo",
            "GIT_COMMITTER_EMAIL": "demo@example.invalid",
        }

    def step(self, title: str) -> None:
        print(f"\n## {title}", flush=True)

    def run(self, *args: str, expect_failure: bool = False) -> str:
        """Run `orchestra ARGS`, echoing the command and its output."""
        print(f"$ orchestra {' '.join(_quote(a) for a in args)}", flush=True)
        proc = subprocess.run(
            [sys.executable, "-m", "orchestra", *args],
            cwd=self.repo,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        sys.stdout.write(proc.stdout + proc.stderr)
        sys.stdout.flush()
        if (proc.returncode != 0) != expect_failure:
            raise DemoFailed(f"`orchestra {' '.join(args)}` exited {proc.returncode}")
        return proc.stdout

    def git(self, *args: str) -> str:
        print(f"$ git {' '.join(args)}", flush=True)
        out = subprocess.run(
            ["git", *args], cwd=self.repo, env=self.env, capture_output=True, text=True, check=True
        ).stdout
        sys.stdout.write(out)
        return out

    def tasks(self) -> dict[str, dict[str, Any]]:
        out = subprocess.run(
            [sys.executable, "-m", "orchestra", "status", "--json"],
            cwd=self.repo,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {t["slug"]: t for t in json.loads(out)["tasks"]}

    def wait(self, what: str, ready: Callable[[dict[str, dict[str, Any]]], bool]) -> None:
        deadline = time.monotonic() + 30
        while not ready(self.tasks()):
            if time.monotonic() > deadline:
                raise DemoFailed(f"timed out waiting for {what}")
            time.sleep(0.1)
        print(f"(waited for {what})")


class DemoFailed(Exception):
    pass


def demo(
    keep: bool = typer.Option(
        False, "--keep", help="Keep the scratch repository (its path is printed)."
    ),
) -> None:
    """Run the whole story on a scratch repository with a private daemon, printing each step.

    Example: orchestra demo
    """
    base = Path(tempfile.mkdtemp(prefix="orchestra-demo-", dir="/tmp"))
    d = Demo(base)
    failed = None
    started = time.monotonic()
    try:
        d.repo.mkdir(parents=True)
        for args in (
            ["init", "-q", "-b", "main"],
            ["commit", "-q", "--allow-empty", "-m", "initial"],
        ):
            subprocess.run(["git", *args], cwd=d.repo, env=d.env, check=True)
        print(f"# scratch repository: {d.repo}")
        _story(d)
    except DemoFailed as exc:
        failed = str(exc)
    finally:
        subprocess.run(
            [sys.executable, "-m", "orchestra", "daemon", "stop"],
            cwd=base,
            env=d.env,
            capture_output=True,
            check=False,
        )
        if keep:
            print(f"\nkept: {d.repo}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    if failed:
        print(f"\ndemo failed: {failed}", file=sys.stderr)
        raise typer.Exit(EXIT_ERROR)
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s")


def _story(d: Demo) -> None:
    d.step("Make the scratch repository an Orchestra project")
    d.run("init")
    (d.repo / ".orchestra" / "config.toml").write_text(CONFIG)
    print(f"(.orchestra/config.toml:)\n{CONFIG}", end="")
    d.run("daemon", "start")

    d.step("Three tasks, each for the demo agent")
    d.run("new", "fix-login", "-m", "Fix the login form: it forgets the password.", "-l", "ui")
    d.run("new", "add-search", "-m", "Add a search box to the header.", "-l", "ui")
    d.run("new", "write-docs", "-m", "Document the config file.")

    d.step("Start them: max_running is 2, so the third waits in the queue")
    for slug in ("fix-login", "add-search", "write-docs"):
        d.run("start", slug)
    d.run("status")

    d.step("Each agent works in its own worktree and commits on its own branch")
    d.wait(
        "both agents' first commits",
        lambda t: all((t[s].get("ahead") or 0) >= 1 for s in ("fix-login", "add-search")),
    )
    d.run("status")
    d.git("log", "--oneline", "orchestra/1-fix-login", "-n", "2")

    d.step("Tell the fix-login agent it is done: it reports completion through the API")
    d.run("send", "fix-login", "done", "--enter")
    d.wait("fix-login to be completed", lambda t: t["fix-login"]["status"] == "completed")

    d.step("Stop its agent: the slot frees and the queued task starts by itself")
    d.run("stop", "-y", "fix-login")
    d.wait("write-docs to run", lambda t: t["write-docs"]["status"] == "running")
    d.run("status")

    d.step("Review one, let another fail; an illegal move is refused")
    d.run("reviewed", "fix-login")
    d.run("fail", "add-search", "-m", "needs a design decision")
    d.run("reviewed", "add-search", expect_failure=True)

    d.step("Where everything stands")
    d.run("status")
    d.run("daemon", "status")
    d.run("daemon", "stop")


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg
