"""`orchestra demo`: the whole story on a scratch repository, with a private daemon.

Runs the real CLI, command by command, printing each one and its output, in a
temp dir with its own HOME/XDG dirs and socket, so it never touches your
repositories or your daemon.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import typer

from orchestra.core.errors import EXIT_ERROR

STEPS: list[tuple[str, list[str]]] = [
    ("Make the scratch repository an Orchestra project", ["init"]),
    ("Start the (private) daemon", ["daemon", "start"]),
    (
        "Create three tasks",
        ["new", "fix-login", "-m", "Fix the login form: it forgets the password.", "-l", "ui"],
    ),
    (
        "",
        ["new", "add-search", "-m", "Add a search box to the header.", "-l", "ui", "-l", "feature"],
    ),
    ("", ["new", "write-docs", "-m", "Document the config file.", "--agent", "demo"]),
    ("Start them: max_running is 2 here, so the third waits in the queue", ["start", "fix-login"]),
    ("", ["start", "add-search"]),
    ("", ["start", "write-docs"]),
    ("", ["status"]),
    ("The agent of fix-login waits for input, then reports completion", ["idle", "fix-login"]),
    ("", ["complete", "fix-login", "-m", "password kept on error"]),
    ("A slot freed: the queued task started by itself", ["status"]),
    ("Review one, let another fail", ["reviewed", "fix-login"]),
    ("", ["fail", "add-search", "-m", "needs a design decision"]),
    (
        "An illegal move is refused, naming the state and the allowed moves",
        ["reviewed", "add-search"],
    ),
    ("Where everything stands", ["status"]),
    ("", ["daemon", "status"]),
    ("Stop the daemon", ["daemon", "stop"]),
]


def demo(
    keep: bool = typer.Option(
        False, "--keep", help="Keep the scratch repository (its path is printed)."
    ),
) -> None:
    """Run the whole story on a scratch repository with a private daemon, printing each step.

    Example: orchestra demo
    """
    base = Path(tempfile.mkdtemp(prefix="orchestra-demo-", dir="/tmp"))
    repo = base / "repo"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "XDG_"))},
        "HOME": str(base / "home"),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_STATE_HOME": str(base / "state"),
        "ORCHESTRA_SOCKET": str(base / "run" / "orchestra.sock"),
        "GIT_AUTHOR_NAME": "Orchestra demo",
        "GIT_AUTHOR_EMAIL": "demo@example.invalid",
        "GIT_COMMITTER_NAME": "Orchestra demo",
        "GIT_COMMITTER_EMAIL": "demo@example.invalid",
    }
    failed = False
    try:
        repo.mkdir(parents=True)
        for args in (
            ["init", "-q", "-b", "main"],
            ["commit", "-q", "--allow-empty", "-m", "initial"],
        ):
            subprocess.run(["git", *args], cwd=repo, env=env, check=True)
        print(f"# scratch repository: {repo}\n")
        for title, args in STEPS:
            if title:
                print(f"\n## {title}")
            if args == ["daemon", "start"]:
                (repo / ".orchestra" / "config.toml").write_text("max_running = 2\n")
            print(f"$ orchestra {' '.join(_quote(a) for a in args)}", flush=True)
            proc = subprocess.run(
                [sys.executable, "-m", "orchestra", *args],
                cwd=repo,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
            )
            sys.stdout.write(proc.stdout + proc.stderr)
            expected_failure = title.startswith("An illegal move")
            if (proc.returncode != 0) != expected_failure:
                failed = True
                print(f"(unexpected exit status {proc.returncode})")
                break
            sys.stdout.flush()
    finally:
        subprocess.run(
            [sys.executable, "-m", "orchestra", "daemon", "stop"],
            cwd=base,
            env=env,
            capture_output=True,
            check=False,
        )
        if keep:
            print(f"\nkept: {repo}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    if failed:
        raise typer.Exit(EXIT_ERROR)
    print("\ndemo finished")


def _quote(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg
