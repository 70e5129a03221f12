"""End-to-end smoke test: init, new, status through a real daemon."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Env


def test_new_then_status_lists_the_task(env: Env, project: Path) -> None:
    """A task created with `new` appears in `status --json` as a draft."""
    env.run("new", "fix-login", "-m", "Fix the login form", cwd=project, check=True)
    out = env.run("status", "--json", cwd=project, check=True).stdout
    tasks = json.loads(out)["tasks"]
    assert [(t["id"], t["slug"], t["status"]) for t in tasks] == [(1, "fix-login", "draft")]
