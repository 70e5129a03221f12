"""Hostile repositories: a `.orchestra/` that comes with a clone is trusted for nothing.

Each repository here is built with real git and cloned; the real CLI and daemon run in
the clone. A symbolic link committed anywhere in `.orchestra/` (or planted in place of a
task's worktree, or committed by a base branch where `.worktreeinclude` copies) is never
followed: nothing outside the project is read, written or emptied. A `.orchestra/` another
user owns or may write is refused; a missing `tasks/` is made again; an unwritable one is
a clear refusal, never an internal error.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestra.core.errors import EXIT_ERROR, EXIT_NOT_FOUND
from tests.conftest import TEST_AGENT_CONFIG, Env, git, make_repo
from tests.daemon.wire import log_lines
from tests.e2e.review_support import commit_in, finished
from tests.e2e.support import Api

# One daemon for the module, a fresh base directory and project (or clone) for each test
# (tests/conftest.py): every check here is of one project.
pytestmark = pytest.mark.shared_daemon

RUNNING_TASK = """+++
status = "running"
agent = "sleeper"
created_at = 2026-01-01T00:00:00Z
+++

Something the clone's first `orchestra status` marks stopped.
"""


def hostile(env: Env, links: dict[str, str], files: dict[str, str] | None = None) -> Path:
    """A repository committing `links` (path -> symlink target) and `files` under
    `.orchestra/`, cloned as a person would; the clone's root."""
    origin = make_repo(env.base / "origin")
    dot = origin / ".orchestra"
    files = {"config.toml": TEST_AGENT_CONFIG, **(files or {})}
    for rel, text in files.items():
        if rel in links:
            continue
        (dot / rel).parent.mkdir(parents=True, exist_ok=True)
        (dot / rel).write_text(text)
    for rel, target in links.items():
        (dot / rel).parent.mkdir(parents=True, exist_ok=True)
        (dot / rel).symlink_to(target)
    git("add", "--all", cwd=origin)
    git("commit", "-q", "-m", "an innocent-looking project", cwd=origin)
    git("clone", "-q", str(origin), "clone", cwd=env.base)
    return env.base / "clone"


def snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `path` (or `path` itself), with its mtime and bytes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


def refusal(env: Env, root: Path, *args: str) -> dict[str, Any]:
    """Run `orchestra --json <args>` in `root`, which must fail; its JSON error."""
    proc = env.run(*args, "--json", cwd=root)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    error: dict[str, Any] = json.loads(proc.stdout or proc.stderr)["error"]
    return error


# -- committed links in .orchestra/ ----------------------------------------------------


@pytest.mark.parametrize(
    ("link", "kind"),
    [
        ("logs.jsonl", "file"),
        ("config.toml", "file"),
        ("next_id", "file"),
        (".lock", "file"),
        ("tasks", "dir"),
        ("worktrees", "dir"),
        ("archive", "dir"),
    ],
)
def test_a_committed_link_in_dot_orchestra_refuses_the_project(
    env: Env, link: str, kind: str
) -> None:
    """A symbolic link committed as any entry of `.orchestra/` makes the daemon refuse the
    clone's project (unsafe_project, naming the link), and what it points to is untouched."""
    outside = env.base / "outside"
    if kind == "dir":
        outside.mkdir()
        (outside / "1-evil.md").write_text(RUNNING_TASK)
    else:
        outside.write_text('log_level = "debug"\n' if link == "config.toml" else "precious\n")
    before = snapshot(outside)
    files = {} if link == "tasks" else {"tasks/1-evil.md": RUNNING_TASK}
    clone = hostile(env, {link: "../../outside"}, files)

    error = refusal(env, clone, "status")

    assert snapshot(outside) == before
    assert error["data"]["kind"] == "unsafe_project", error
    assert f".orchestra/{link} is a symbolic link" in error["message"]
    assert "remove it" in error["message"]


def test_first_status_of_a_clone_does_not_append_through_a_committed_log_link(
    env: Env,
) -> None:
    """The issue's case: `logs.jsonl -> ../../somefile` plus a running task; the clone's
    first `orchestra status` refuses and leaves somefile and the task file as they were."""
    somefile = env.base / "somefile"
    somefile.write_text("precious\n")
    clone = hostile(env, {"logs.jsonl": "../../somefile"}, {"tasks/1-evil.md": RUNNING_TASK})

    proc = env.run("status", cwd=clone)

    assert somefile.read_text() == "precious\n"
    assert proc.returncode == EXIT_NOT_FOUND, proc.stderr
    assert "logs.jsonl is a symbolic link (to '../../somefile')" in proc.stderr
    assert (clone / ".orchestra" / "tasks" / "1-evil.md").read_text() == RUNNING_TASK


def test_a_committed_task_file_link_is_a_broken_task_not_a_read(daemon: Env) -> None:
    """A task file that is a symbolic link (to a file outside, here a valid task file) is
    listed as broken and never read: its text is not shown."""
    env = daemon
    secret = env.base / "secret.md"
    secret.write_text(RUNNING_TASK.replace("Something", "SECRET-TEXT"))
    clone = hostile(env, {"tasks/2-leak.md": str(secret)}, {"tasks/1-fine.md": RUNNING_TASK})

    with env.client() as c:
        listed = c.call("task.list", {"project": str(clone), "description": True})

    assert [t["ref"] for t in listed["tasks"]] == ["1-fine"]
    [broken] = listed["errors"]
    assert broken["file"].endswith("tasks/2-leak.md")
    assert "is a symbolic link" in broken["message"]
    assert "SECRET-TEXT" not in json.dumps(listed)
    assert secret.read_text().startswith('+++\nstatus = "running"')  # never rewritten


def test_the_project_log_is_created_private(env: Env, project: Path) -> None:
    """`.orchestra/logs.jsonl` is created 0600: it holds what agents print."""
    env.run("new", "alpha", "-m", "Do alpha.", cwd=project, check=True)
    log = project / ".orchestra" / "logs.jsonl"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert any(line.get("event") == "task.created" for line in log_lines(project))


# -- ownership and modes ---------------------------------------------------------------


def test_a_dot_orchestra_another_user_owns_is_refused(env: Env, project: Path) -> None:
    """A `.orchestra/` owned by another uid is refused, as git refuses a repository another
    user owns, with the command that takes it over."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory to another uid")
    dot = project / ".orchestra"
    os.chown(dot, 65534, -1)
    try:
        error = refusal(env, project, "status")
    finally:
        os.chown(dot, os.geteuid(), -1)
    assert error["data"]["kind"] == "unsafe_project"
    assert "belongs to" in error["message"] and "uid 65534" in error["message"]
    assert f"chown -R {pwd.getpwuid(os.geteuid()).pw_name} {dot}" in error["message"]
    assert env.run("status", cwd=project).returncode == 0  # given back: served again


@pytest.mark.parametrize("entry", ["", "tasks", "config.toml"])
def test_a_dot_orchestra_others_may_write_is_refused(env: Env, project: Path, entry: str) -> None:
    """`.orchestra/` (or an entry of it) that other users may write is refused, saying
    `chmod go-w` on it."""
    path = project / ".orchestra" / entry if entry else project / ".orchestra"
    mode = stat.S_IMODE(path.stat().st_mode)
    path.chmod(mode | 0o002)
    try:
        error = refusal(env, project, "status")
    finally:
        path.chmod(mode)
    assert error["data"]["kind"] == "unsafe_project"
    assert f"chmod go-w {path}" in error["message"]
    assert env.run("status", cwd=project).returncode == 0


# -- a task's worktree -----------------------------------------------------------------


def moved_out(api: Api, slug: str) -> tuple[Path, Path]:
    """A finished task whose worktree was moved outside and replaced by a symbolic link to
    it, holding an ignored file: (the link, the real folder)."""
    commit_in(api.root, {".gitignore": "*.cache\n"}, "ignore caches")
    task = finished(api, slug)
    wt = Path(task["worktree"])
    (wt / "work.cache").write_text("hours of work\n")
    real = api.env.base / "bigdisk" / wt.name
    real.parent.mkdir()
    shutil.move(wt, real)
    wt.symlink_to(real)
    return wt, real


def test_merge_cleanup_never_empties_a_symlinked_worktree(api: Api) -> None:
    """A task worktree replaced by a symbolic link is kept by merge clean-up, with the
    reason; the folder it points to keeps every file (ignored ones included)."""
    wt, real = moved_out(api, "alpha")
    before = {p.name for p in real.iterdir()}

    result = api("task.merge", task="alpha")

    assert result["task"]["status"] == "merged"
    cleanup = result["cleanup"]["worktree"]
    assert cleanup["removed"] is False
    assert "is a symbolic link" in cleanup["kept"] and "left as they are" in cleanup["kept"]
    assert (real / "work.cache").read_text() == "hours of work\n"
    assert {p.name for p in real.iterdir()} == before
    assert wt.is_symlink()


def test_gc_never_empties_a_symlinked_worktree(api: Api) -> None:
    """gc plans no removal of a task worktree that is a symbolic link: it says why, and the
    folder it points to keeps every file."""
    wt, real = moved_out(api, "alpha")
    api("task.merge", task="alpha", cleanup=False)

    result = api("project.gc")

    assert not [a for a in result["actions"] if a["kind"] == "remove_worktree"]
    [skip] = [s for s in result["skipped"] if s["what"] == "worktree"]
    assert "is a symbolic link" in skip["reason"]
    assert (real / "work.cache").read_text() == "hours of work\n"
    assert wt.is_symlink()


def test_start_never_runs_an_agent_in_a_symlinked_worktree(api: Api) -> None:
    """`start` does not reuse a worktree that became a symbolic link (to where it was
    moved): the task fails with the reason and no agent runs there."""
    _, real = moved_out(api, "alpha")
    before = snapshot(real)

    error = api.error("task.start", task="alpha")

    assert "is a symbolic link" in error.message, error.message
    assert api.status("alpha") == "failed"
    assert api.get("alpha")["run"] is None
    assert snapshot(real) == before


# -- .worktreeinclude ------------------------------------------------------------------


def test_worktreeinclude_never_copies_through_a_committed_directory_link(api: Api) -> None:
    """A base branch committing `cfg -> /elsewhere` does not get the main checkout's
    ignored `cfg/.env` written to `/elsewhere/.env`; the log says why it was not copied."""
    root = api.root
    elsewhere = api.env.base / "elsewhere"
    elsewhere.mkdir()
    commit_in(root, {".gitignore": ".env\n", ".worktreeinclude": "cfg/.env\n.env\n"}, "env")
    git("checkout", "-q", "-b", "evil", cwd=root)
    (root / "cfg").symlink_to(elsewhere)
    git("add", "cfg", cwd=root)
    git("commit", "-q", "-m", "cfg lives elsewhere", cwd=root)
    git("checkout", "-q", "main", cwd=root)
    (root / "cfg").mkdir()
    (root / "cfg" / ".env").write_text("SECRET=1\n")
    (root / ".env").write_text("TOP=1\n")
    api.new("alpha", base_branch="evil")

    api("task.start", task="alpha")

    assert not (elsewhere / ".env").exists()
    assert not list(elsewhere.iterdir())
    wt = root / ".orchestra" / "worktrees" / "1-alpha"
    assert (wt / "cfg").is_symlink()
    assert (wt / ".env").read_text() == "TOP=1\n"  # the rest is copied as before
    [line] = api.events("task.worktree", 1)
    assert line["copied"] == [".env"]
    [why] = line["not_copied"]
    assert why.startswith("cfg/.env: ") and "cfg is a symbolic link" in why
    [warning] = api.events("task.copy_refused", 1)
    assert warning["level"] == "warning"


# -- a .orchestra/ without tasks/, or unwritable -----------------------------------------


def test_a_clone_without_tasks_dir_gets_it_back(env: Env) -> None:
    """A clone whose `.orchestra/` has no `tasks/` (git keeps no empty directory) is served:
    the first `new` makes `tasks/` again."""
    clone = hostile(env, {})
    assert not (clone / ".orchestra" / "tasks").exists()

    env.run("new", "alpha", "-m", "Do alpha.", cwd=clone, check=True)

    assert (clone / ".orchestra" / "tasks" / "1-alpha.md").is_file()
    assert "alpha" in env.run("status", cwd=clone, check=True).stdout


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """`path` made immutable (`chattr +i`): nothing, root included, may write in it."""
    if shutil.which("chattr") is None:
        pytest.skip("needs chattr")
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip(f"the file system of {path} has no immutable flag")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@pytest.mark.parametrize("entry", ["", "tasks"])
def test_an_unwritable_dot_orchestra_is_a_clear_refusal(
    env: Env, project: Path, entry: str
) -> None:
    """`new` in a project whose `.orchestra/` (or its `tasks/`) refuses writes fails with
    the `unwritable` error naming that directory and the fix, not an internal error; once
    writable again, `new` works."""
    where = project / ".orchestra" / entry if entry else project / ".orchestra"
    with immutable(where):
        error = refusal(env, project, "new", "alpha", "-m", "Do alpha.")
    assert error["code"] == -32000 and error["exit_code"] == EXIT_ERROR
    assert error["data"] == {"kind": "unwritable", "path": str(where)}
    assert f"cannot write in {where}" in error["message"]
    assert f"chmod u+w {where}" in error["message"]
    env.run("new", "alpha", "-m", "Do alpha.", cwd=project, check=True)
