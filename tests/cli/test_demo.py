"""`orchestra demo`, the README's main job, runs the whole story and cleans up."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import Env


def test_demo_runs_the_whole_story(env: Env) -> None:
    """The demo exits 0, shows each step (setup failure, completion, diff, squash merge that
    stops the completed agent itself, a refused conflicting merge, gc), never stops a task
    by hand, and leaves no scratch directory behind."""
    proc = env.run("demo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for expected in (
        "orchestra: setup command 'sh' exited 3",
        "task 1-fix-login is running",
        "would merge task 1-fix-login into main by squash: its 1 commit",
        "stopped the agent of task 1-fix-login first\nmerged task 1-fix-login into main",
        "conflicts in 1 file(s): DEMO_NOTES.md; nothing was changed",
        "(main is exactly where it was)",
        "archive task 1-fix-login",
        "demo finished in",
    ):
        assert expected in out, expected
    assert "$ orchestra stop" not in out
    scratch = re.search(r"# scratch repository: (\S+)", out)
    assert scratch is not None
    assert not Path(scratch.group(1)).exists()
