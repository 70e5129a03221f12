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
max_running = 4
idle_timeout = 2.0
# Runs in each new worktree before its agent; the demo makes one task's setup fail.
setup = ["sh", "-c", "case $ORCHESTRA_TASK_SLUG in broken-*) echo 'npm ERR! no .env';exit 3;; esac"]
"""

FILES = {
    "README.md": "# Acme shop\n\nA tiny demo project.\n",
    "app.py": "def login(user, password):\n    return user == 'admin'\n",
}


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

    def git_quiet(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.repo, env=self.env, capture_output=True, text=True, check=True
        ).stdout.strip()

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
    interactive: bool = typer.Option(
        False,
        "--interactive",
        "-i",
        help="Leave the daemon and agents running, and print how to attach to them.",
    ),
) -> None:
    """Run the whole story on a scratch repository with a private daemon, printing each step.

    Three demo agents work in parallel in their own worktrees, one task's setup fails, the
    agents report completion through the API, one branch is squash-merged, a conflicting
    merge is refused with nothing changed, and gc cleans up. Non-interactive, under a
    minute. With --interactive it stops before the merges and leaves everything running.

    Example: orchestra demo
    """
    base = Path(tempfile.mkdtemp(prefix="orchestra-demo-", dir="/tmp"))
    d = Demo(base)
    failed = None
    started = time.monotonic()
    try:
        d.repo.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=d.repo, env=d.env, check=True)
        for name, text in FILES.items():
            (d.repo / name).write_text(text)
        subprocess.run(["git", "add", "."], cwd=d.repo, env=d.env, check=True)
        subprocess.run(["git", "commit", "-q", "-m", "initial"], cwd=d.repo, env=d.env, check=True)
        print(f"# scratch repository: {d.repo}")
        _story(d, interactive=interactive)
    except DemoFailed as exc:
        failed = str(exc)
    finally:
        if not interactive or failed:
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
    if interactive:
        _leave_running(d)
        return
    print(f"\ndemo finished in {time.monotonic() - started:.1f} s")


def _story(d: Demo, *, interactive: bool) -> None:
    d.step("Make the scratch repository an Orchestra project")
    d.run("init")
    (d.repo / ".orchestra" / "config.toml").write_text(CONFIG)
    print(f"(.orchestra/config.toml:)\n{CONFIG}", end="")
    d.run("daemon", "start")

    d.step("Four tasks for demo agents (real programs in real terminals, no API keys)")
    d.run("new", "fix-login", "-m", "Fix the login check in app.py.", "-l", "auth")
    d.run("new", "add-search", "-m", "Add a search box to the header.", "-l", "ui")
    d.run("new", "write-docs", "-m", "Document the config file.", "-l", "docs")
    d.run("new", "broken-env", "-m", "Upgrade the dependencies.")

    d.step("Start three in parallel: each gets its own branch and worktree")
    for slug in THREE:
        d.run("start", slug)

    d.step("One task's setup command fails: the start says why, the task is failed")
    d.run("start", "broken-env", expect_failure=True)

    d.step("Live status while the agents work and commit")
    d.wait(
        "every agent's first commit",
        lambda t: all((t[s].get("ahead") or 0) >= 1 for s in THREE),
    )
    d.run("status")
    d.run("peek", "fix-login")

    d.step("The agents say what they do (their hooks): each first turn is done, they wait for you")
    d.wait("every agent to wait for its next prompt", lambda t: all(_waits(t[s]) for s in THREE))
    d.run("status", "--waiting")

    d.step("write-docs asks a question: it waits for an answer, then works on it")
    d.run("send", "write-docs", "ask", "--enter")
    d.wait("write-docs's question", lambda t: _waits(t["write-docs"], "question"))
    d.run("status", "--waiting")
    d.run("send", "write-docs", "Configuration", "--enter")
    d.wait("write-docs's answer to be worked on", lambda t: _waits(t["write-docs"], "turn-done"))
    d.run("show", "write-docs")
    if interactive:
        return

    d.step("Tell each agent it is done: they report completion through the daemon's API")
    d.run("send", "--all", "done", "--enter")
    d.wait(
        "all three to be completed",
        lambda t: all(t[s]["status"] == "completed" for s in THREE),
    )
    d.run("status")

    d.step("What did fix-login's agent change? (against the commit it started from)")
    d.run("diff", "fix-login", "--stat")

    d.step("Squash-merge it into main: its agent is stopped, its worktree and branch cleaned up")
    d.run("merge", "fix-login", "--dry-run")
    d.run("merge", "fix-login", "-y")
    d.git("log", "--oneline", "-n", "3", "main")

    d.step("add-search touched the same file: the merge is refused, nothing is changed")
    before = d.git_quiet("rev-parse", "main")
    d.run("merge", "add-search", "-y", expect_failure=True)
    if d.git_quiet("rev-parse", "main") != before:
        raise DemoFailed("main moved during a refused merge")
    print("(main is exactly where it was)")

    d.step("Garbage-collect what merged tasks left behind")
    d.run("gc", "-y")
    d.run("status")
    d.run("daemon", "stop")


THREE = ("fix-login", "add-search", "write-docs")


def _waits(task: dict[str, Any], reason: str | None = None) -> bool:
    """The task's agent waits for the person (for `reason`, if given)."""
    shown = (task.get("run") or {}).get("activity") or {}
    return shown.get("activity") == "waiting" and reason in (None, shown.get("reason"))


def _leave_running(d: Demo) -> None:
    print(f"""
The demo is still running. In another shell:

    export ORCHESTRA_SOCKET={d.env["ORCHESTRA_SOCKET"]}
    export XDG_STATE_HOME={d.env["XDG_STATE_HOME"]} XDG_CONFIG_HOME={d.env["XDG_CONFIG_HOME"]}
    cd {d.repo}
    orchestra status
    orchestra attach fix-login      # detach with ctrl-q; type `done` to complete it
    orchestra daemon stop           # when you are finished (then: rm -r {d.base})
""")


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg
