"""One owner for each fact, on a real daemon: the scheduler's slots, the task file's base
and queue, across stops and restarts (issue 15's defects, each pinned down here)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.conftest import Env
from tests.daemon.wire import log_lines, wait_until
from tests.e2e.support import Api, configure

# Only the task called `slow` takes long to set up.
SLOW_SETUP = 'setup = ["sh", "-c", "if [ \\"$ORCHESTRA_TASK_SLUG\\" = slow ]; then sleep 4; fi"]'


def statuses(api: Api) -> dict[str, str]:
    return {t["slug"]: t["status"] for t in api("task.list")["tasks"]}


def head(project: Path) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_stop_does_not_wait_for_the_queued_task_it_lets_start(api: Api) -> None:
    """With max_running = 1, stopping the running task returns once its own agent is gone,
    not after the queued task's 4 s setup (which then starts by itself)."""
    configure(api.root, f"max_running = 1\n{SLOW_SETUP}")
    api.new("fast")
    api("task.start", task="fast")
    api.new("slow")
    assert api("task.start", task="slow")["status"] == "queued"

    began = time.monotonic()
    proc = api.cli("stop", "fast", "-y")
    took = time.monotonic() - began
    assert proc.returncode == 0, proc.stderr
    # The setup alone is 4 s: a stop that waited for it could not come back in 2.
    assert took < 2.0, f"stop took {took:.1f} s"
    assert statuses(api) == {"fast": "stopped", "slow": "running"}
    wait_until(
        lambda: [x for x in api.events("agent.started") if x["slug"] == "slow"],
        "the queued task's agent to start after its setup",
        15.0,
    )
    api("task.stop", task="slow")


def test_the_base_is_kept_in_the_task_file_whatever_the_log_level(env: Env, project: Path) -> None:
    """At log level warn (no `task.worktree` line in the log) the task's base_sha and the
    branch it was taken from are in its front matter, with the person's comment kept, and
    a restarted daemon still reports them."""
    configure(project, 'log_level = "warn"')
    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        created = api.new("based")
        path = Path(created["file"])
        text = path.read_text()
        path.write_text(text.replace("+++\n", "+++\n# my own note\n", 1))
        api("task.start", task="based")
        api("task.stop", task="based")
    finally:
        api.close()
    sha = head(project)
    front = path.read_text()
    assert f'base_sha = "{sha}"' in front and 'forked_from = "main"' in front
    assert "# my own note" in front
    assert not [x for x in log_lines(project) if x.get("event") == "task.worktree"]

    env.run("daemon", "stop", check=True)
    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        task = api.get("based")
        assert (task["base_sha"], task["forked_from"]) == (sha, "main")
    finally:
        api.close()


def test_an_older_projects_bases_are_moved_from_its_log_into_its_files(
    env: Env, project: Path
) -> None:
    """A task of an older version, whose base only its log kept, has it in its file once
    the daemon loads the project; a hand-edited log line with a bad sha is not taken."""
    sha = head(project)
    tasks = project / ".orchestra" / "tasks"
    tasks.mkdir(exist_ok=True)
    old = '+++\nstatus = "stopped"\nagent = "sleeper"\ncreated_at = 2026-11-01T10:00:00Z\n+++\n'
    (tasks / "1-old.md").write_text(old)
    (tasks / "2-edited.md").write_text(old)
    (project / ".orchestra" / "next_id").write_text("3\n")
    lines = [
        {"event": "task.worktree", "task_id": 1, "base": "main", "base_sha": sha},
        {"event": "task.worktree", "task_id": 2, "base": "main", "base_sha": "zzz; rm -rf /"},
    ]
    with (project / ".orchestra" / "logs.jsonl").open("a") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)

    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        assert (api.get("old")["base_sha"], api.get("old")["forked_from"]) == (sha, "main")
        assert api.get("edited")["base_sha"] is None
    finally:
        api.close()
    assert f'base_sha = "{sha}"' in (tasks / "1-old.md").read_text()
    assert "base_sha" not in (tasks / "2-edited.md").read_text()


def test_the_queue_keeps_its_order_across_a_restart(env: Env, project: Path) -> None:
    """Tasks queued third-then-second are served in that order, also by the next daemon:
    the queue is the task files' (their queued_at), not the task ids."""
    configure(project, "max_running = 1")
    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        for slug in ("first", "second", "third"):
            api.new(slug)
        for slug in ("first", "third", "second"):
            api("task.start", task=slug)
        assert (api.get("third")["queue_position"], api.get("second")["queue_position"]) == (
            1,
            2,
        )
    finally:
        api.close()
    env.run("daemon", "stop", check=True)
    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        wait_until(lambda: statuses(api)["third"] == "running", "the oldest queued to start")
        assert statuses(api) == {"first": "stopped", "second": "queued", "third": "running"}
    finally:
        api.close()
