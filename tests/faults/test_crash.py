"""kill -9 of the daemon at each step of `task.new`, `start`, `merge` and `gc`
(the crash points of orchestra/adapters/faults.py).

The daemon runs with ORCHESTRA_CRASH_AT set, so it SIGKILLs itself at that step
of the CLI command under test (it is the daemon the test's first command
autostarted, or started: the steps before the one under test pass no point it
names). A fresh daemon (without the variable) is then started, and whatever the
crash left must be sound: every task file
parses, ids are never handed out twice, `git fsck` is clean, every commit is
still reachable, no process of the crashed run survives, and the task can be
started again.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from orchestra.core.tasks import parse_task_text
from tests.conftest import GIT_ENV, Env, daemon_gone, git
from tests.daemon.wire import stop_and_forget, wait_until
from tests.e2e.review_support import finished, has_ref, tip
from tests.e2e.support import Api, agents_of, configure, toml, with_run_id

CRASH = "ORCHESTRA_CRASH_AT"

# Ignores SIGHUP from its first instruction (`trap` in the shell that execs it), and
# starts a setsid helper: both outlive the PTY a killed daemon leaves hung up.
CRASHY = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    time.sleep(3600)
    os._exit(0)
try:
    print("crashy ready", flush=True)
except OSError:
    pass
time.sleep(3600)
"""


def crashy(env: Env, project: Path) -> None:
    script = env.base / "agents" / "crashy.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(CRASHY)
    argv = ["/bin/sh", "-c", 'trap \'\' HUP; exec "$0" "$@"', "{python}", str(script)]
    # It ignores SIGHUP: each stop of it waits out the grace before SIGTERM.
    configure(project, f"stop_grace = 0.2\nagents.crashy.command = {toml(argv)}")


def crash(env: Env, project: Path, point: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a CLI command whose daemon (running with the variable, or autostarted by this
    command with it) dies at `point`; wait until it is gone."""
    proc = env.run(*args, cwd=project, extra={CRASH: point})
    assert proc.returncode != 0, f"the daemon did not crash at {point}: {proc.stdout}"
    wait_until(lambda: daemon_gone(env), f"the daemon to die at {point}")
    return proc


def ended(run: str) -> bool:
    """No live process carries this run's ORCHESTRA_RUN_ID any more."""
    return not with_run_id(run)


def reachable(project: Path) -> set[str]:
    return set(git("rev-list", "--all", cwd=project).split())


def assert_sound(project: Path, commits: set[str]) -> None:
    """Every task file parses, git's object store is clean and no commit was lost."""
    for path in sorted((project / ".orchestra" / "tasks").glob("*.md")):
        task_id, _, slug = path.stem.partition("-")
        text = path.read_text(encoding="utf-8")
        parse_task_text(text, source=str(path)).to_task(int(task_id), slug, source=str(path))
    fsck = subprocess.run(
        ["git", "fsck", "--full", "--no-dangling"],
        cwd=project,
        env={**GIT_ENV, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert fsck.returncode == 0, fsck.stderr
    assert not any(w in fsck.stdout + fsck.stderr for w in ("error", "missing", "broken")), fsck
    assert commits <= reachable(project), "a commit was lost"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("point", ["task.new:counter", "task.new:file"])
def test_kill9_during_new(env: Env, project: Path, point: str) -> None:
    """A daemon killed while creating a task leaves no half-written file, and the id it
    took is never handed out again."""
    env.run("new", "first", "-m", "One.", cwd=project, check=True)
    commits = reachable(project)
    stop_and_forget(env)  # the next command autostarts a daemon that inherits the variable
    crash(env, project, point, "new", "second", "-m", "Two.")
    # What a kill between a temp file's write and its rename would leave: ignored.
    torn = project / ".orchestra" / "tasks" / ".3-torn.md.x1y2z3.tmp"
    torn.write_text('+++\nstatus = "dra')

    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        listing = api("task.list")
        assert listing["errors"] == []
        slugs = {t["slug"]: t["id"] for t in listing["tasks"]}
        if point == "task.new:counter":  # the counter moved, the file was never written
            assert slugs == {"first": 1}
            assert api.new("second")["id"] == 3  # id 2 is burnt, not reused
        else:  # the file is whole: the task exists, its slug is taken
            assert slugs == {"first": 1, "second": 2}
            assert api.error("task.new", slug="second").remote_code == -32003
            assert api.get("second")["description"] == "Two.\n"
        assert api.new("third")["id"] == 4 if point == "task.new:counter" else 3
        assert_sound(project, commits)
    finally:
        api.close()


START_POINTS = ["start:running", "start:worktree", "start:spawned", "start:recorded"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("point", START_POINTS)
def test_kill9_during_start(env: Env, project: Path, point: str) -> None:
    """A daemon killed at any step of `start` leaves the task stopped, git sound, no process
    of the crashed run alive after the next daemon starts, and the task startable again."""
    crashy(env, project)
    new = ("new", "work", "-m", "Work.", "--agent", "crashy")
    env.run(*new, cwd=project, check=True, extra={CRASH: point})  # autostarts the daemon
    commits = reachable(project)
    crash(env, project, point, "start", "work")
    survivors = agents_of(env)  # the crashed run's processes that outlived the daemon
    print(f"\n{point}: processes alive after the crash: {survivors}")

    env.run("daemon", "start", check=True)
    for run, pids in survivors.items():
        wait_until(functools.partial(ended, run), f"leftovers {pids} of run {run} to end")
    assert agents_of(env) == {}
    api = Api(env, project)
    try:
        task = api.get("work")
        assert task["status"] == "stopped"
        worktree = Path(task["worktree"])
        if point != "start:running":
            assert worktree.is_dir()
            assert git("rev-parse", "HEAD", cwd=worktree) == git("rev-parse", "main", cwd=project)
        assert_sound(project, commits)

        api("task.start", task="work")
        api.wait_output("work", "crashy ready")
        assert api.status("work") == "running"
        api("task.stop", task="work")
        assert api.status("work") == "stopped"
        assert agents_of(env) == {}
        assert api.new("next")["id"] == 2
        assert_sound(project, commits)
    finally:
        api.close()


# -- merge and gc --------------------------------------------------------------------


def merged_work(
    env: Env, project: Path, point: str, *, cleanup: bool | None = None
) -> dict[str, str]:
    """Task `work` with one commit, completed (and merged without cleanup when `cleanup` is
    False), on a daemon left running that dies at `point` (a later step); the tips of main
    and of its branch."""
    env.run("daemon", "start", check=True, extra={CRASH: point})
    api = Api(env, project)
    try:
        finished(api, "work")
        tips = {"main": tip(project, "main"), "branch": tip(project, "orchestra/1-work")}
        if cleanup is False:
            api("task.merge", task="work", cleanup=False)
            tips["merged"] = tip(project, "main")
    finally:
        api.close()
    return tips


@pytest.mark.timeout(60)
@pytest.mark.parametrize("point", ["merge:combined", "merge:advanced", "merge:recorded"])
def test_kill9_during_merge(env: Env, project: Path, point: str) -> None:
    """A daemon killed at any step of `merge` leaves the target at its old or its new commit,
    the task branch intact and git sound; merging (or gc) again finishes the job."""
    tips = merged_work(env, project, point)
    commits = reachable(project)
    crash(env, project, point, "merge", "work", "-y")
    main = tip(project, "main")
    if point == "merge:combined":
        assert main == tips["main"]
    else:  # one squash commit on top of the old tip
        assert git("rev-parse", f"{main}^", cwd=project).strip() == tips["main"]
    assert tip(project, "orchestra/1-work") == tips["branch"]
    assert_sound(project, commits)

    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        if point == "merge:recorded":
            assert api.status("work") == "merged"
        else:
            assert api.status("work") == "completed"
            api("task.merge", task="work")  # again: it finds main already has the work
        assert api.status("work") == "merged"
        if point == "merge:combined":  # merged now, once
            assert git("rev-parse", "main^", cwd=project).strip() == tips["main"]
        else:  # the second merge found the work in main: no second commit
            assert tip(project, "main") == main
        assert has_ref(project, "refs/orchestra/merged/1-work")
        plan = api("project.gc")
        assert all(r["done"] for r in plan.get("results", [])), plan
        scratch = [a for a in plan["actions"] if a["kind"] == "drop_scratch"]
        if point == "merge:combined":  # the scratch worktree of the killed merge goes
            assert [Path(a["path"]).name[:13] for a in scratch] == [".merge-1-work"], plan
            assert not Path(scratch[0]["path"]).exists()
            assert ".merge-" not in git("worktree", "list", cwd=project)
        else:
            assert scratch == [], plan
        assert plan["orphans"] == [], plan
        assert not has_ref(project, "refs/heads/orchestra/1-work")
        assert api("task.list")["tasks"] == []
        assert api.new("next")["id"] == 2
        assert_sound(project, commits)
    finally:
        api.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("point", ["gc:remove_worktree", "gc:delete_branch", "gc:archive_task"])
def test_kill9_during_gc(env: Env, project: Path, point: str) -> None:
    """A daemon killed at any step of `gc` leaves main as merged, the task's work reachable,
    its file whole (in tasks/ or archive/), and a second gc finishes the job."""
    tips = merged_work(env, project, point, cleanup=False)
    commits = reachable(project)
    crash(env, project, point, "gc", "-y")
    assert tip(project, "main") == tips["merged"]
    assert tip(project, "refs/orchestra/merged/1-work") == tips["branch"]
    if has_ref(project, "refs/heads/orchestra/1-work"):
        assert tip(project, "orchestra/1-work") == tips["branch"]
    archived = list((project / ".orchestra" / "archive").glob("*.md"))
    for path in archived:
        parse_task_text(path.read_text(), source=str(path)).to_task(1, "work", source=str(path))
    assert_sound(project, commits)

    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        done = api("project.gc")
        assert all(r["done"] for r in done.get("results", [])), done
        assert not (project / ".orchestra" / "worktrees" / "1-work").exists()
        assert not has_ref(project, "refs/heads/orchestra/1-work")
        assert [p.name for p in (project / ".orchestra" / "archive").iterdir()] == ["1-work.md"]
        assert api("task.list")["tasks"] == []
        assert api.new("next")["id"] == 2  # the archived task keeps its id
        assert_sound(project, commits)
    finally:
        api.close()
