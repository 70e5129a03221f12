"""`orchestra init`: make a git repository an Orchestra project (no daemon needed)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from orchestra.adapters import git, paths
from orchestra.cli.common import JSON, errors
from orchestra.cli.output import emit_json

CONFIG_TEMPLATE = """\
# Orchestra project config. Values here override ~/.config/orchestra/config.toml;
# ORCHESTRA_SOCKET, ORCHESTRA_LOG and ORCHESTRA_DETACH_KEYS override both.
# Every key is optional; the commented values are the defaults.
# `orchestra config` shows the effective values and where each comes from.

# log_level = "info"        # off | warn | info | debug | trace (.orchestra/logs.jsonl)
# idle_timeout = 30.0       # seconds without agent output before a task is idle
# idle_dwell = 3.0          # seconds of output before an idle task counts as running again
# max_running = 4           # agents running at once; more starts are queued
# confirm = "ask"           # destructive commands: ask | yes (never ask) | no (always need -y)
# detach_keys = "ctrl-q"    # keys that detach from an agent's terminal (or "ctrl-b,d")
# default_agent = "claude"  # claude | codex | opencode | gemini | aider | shell | demo
# base_branch = "main"      # branch new tasks start from (default: the current branch)
# autostart = true          # start the daemon when a command needs it

# setup = []               # argv run in each new worktree before the agent, no shell:
#                           #   e.g. setup = ["npm", "ci"]
# teardown = []             # argv run before a task's worktree is removed
# stop_grace = 5.0          # seconds between SIGTERM and SIGKILL when stopping an agent
# port_base = 20000         # ORCHESTRA_PORT of task 1; each task gets port_block ports
# port_block = 10

# [merge]                   # orchestra merge
# strategy = "squash"       # squash | merge | rebase
# cleanup = true            # afterwards: teardown, remove the worktree, delete the branch

# [agents.claude]           # override one field of a built-in agent (docs/agents.md)
# env = { CLAUDE_CODE_USE_BEDROCK = "1" }
# [agents.mine]             # or add one: {prompt} {session_id} {python} {shell}
# command = ["my-agent", "--session", "{session_id}", "--", "{prompt}"]
# resume = ["my-agent", "--resume", "{session_id}"]
"""

IGNORED = (
    "/.orchestra/worktrees/",
    "/.orchestra/logs.jsonl",
    "/.orchestra/.lock",
    "/.orchestra/next_id",  # this clone's id counter: ids come from the task files too
    "/.orchestra/.*.tmp",
)


HEADER = "# orchestra: local files"


def _ensure_lines(file: Path, lines: tuple[str, ...]) -> list[str]:
    """Append the lines `file` lacks (idempotent); return those added."""
    text = file.read_text() if file.exists() else ""
    existing = text.splitlines()
    missing = [line for line in lines if line not in existing]
    if missing:
        if text and not text.endswith("\n"):
            text += "\n"
        if HEADER not in existing:
            text += HEADER + "\n"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text + "\n".join(missing) + "\n")
    return missing


def init(
    gitignore: bool = typer.Option(
        False,
        "--gitignore",
        help="Ignore Orchestra's local files in .gitignore (shared) instead of .git/info/exclude.",
    ),
    as_json: bool = JSON,
) -> None:
    """Make the current git repository an Orchestra project.

    Creates .orchestra/ (config.toml with commented defaults, tasks/, worktrees/) at the
    repository root and keeps worktrees and logs out of `git status`. Safe to run again.

    Example: cd ~/src/myapp && orchestra init
    """
    with errors(as_json):
        root = git.toplevel(Path.cwd())
        p = paths.ProjectPaths(root)
        created = []
        for d in (p.dot, p.tasks, p.worktrees):
            if not d.is_dir():
                d.mkdir(mode=0o700)  # the user's alone, as all Orchestra writes
                created.append(str(d))
        if not p.config.exists():
            fd = os.open(p.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(CONFIG_TEMPLATE)
            created.append(str(p.config))
        ignore_file = root / ".gitignore" if gitignore else git.git_path(root, "info/exclude")
        added = _ensure_lines(ignore_file, IGNORED)
    if as_json:
        emit_json(
            {
                "project": str(root),
                "created": created,
                "ignored_in": str(ignore_file),
                "ignore_added": added,
            }
        )
    elif created or added:
        print(f"initialised Orchestra in {p.dot}")
    else:
        print(f"already initialised: {p.dot}")
