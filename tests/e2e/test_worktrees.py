"""`start` and the task's worktree: branch, base, environment, reuse, conflicts, submodules,
`.worktreeinclude` and the setup command — against real git repositories."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestra.core.errors import EXIT_CONFLICT, EXIT_ERROR, EXIT_NOT_FOUND
from tests.conftest import TEST_AGENT_CONFIG, git, make_repo
from tests.e2e.support import Api, add_agent, configure, toml

# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = pytest.mark.shared_daemon

# Says what it sees, then waits (SIGHUP from `stop` ends it).
ENV_DUMP = """
import json, os, time
seen = {k: v for k, v in os.environ.items() if k.startswith(("ORCHESTRA_", "TERM"))}
print("ENV " + json.dumps({"cwd": os.getcwd(), "env": seen}), flush=True)
time.sleep(60)
"""


def agent_view(api: Api, task: str) -> dict[str, Any]:
    """What the ENV_DUMP agent of `task` printed: its cwd and environment."""
    out = api.wait_output(task, "}}\r\n")
    match = re.search(r"^ENV (\{.*\})\r$", out, re.MULTILINE)
    assert match, out
    view: dict[str, Any] = json.loads(match.group(1))
    return view


def worktree(api: Api, stem: str) -> Path:
    return api.root / ".orchestra" / "worktrees" / stem


def head(path: Path) -> str:
    return git("rev-parse", "HEAD", cwd=path).strip()


def branch_of(path: Path) -> str:
    return git("symbolic-ref", "--short", "HEAD", cwd=path).strip()


def has_branch(api: Api, branch: str) -> bool:
    return bool(git("branch", "--list", branch, cwd=api.root).strip())


def test_start_makes_the_worktree_and_the_task_environment(api: Api) -> None:
    """`start` makes `.orchestra/worktrees/{id}-{slug}` on `orchestra/{id}-{slug}` from the
    base tip, records base_sha, and runs the agent there with the task's environment and a
    port block of its own."""
    add_agent(api.env, api.root, "envdump", ENV_DUMP)
    tip = head(api.root)
    for slug in ("alpha", "beta"):
        api.new(slug, agent="envdump")
        assert api("task.start", task=slug)["status"] == "running"

    for task_id, slug, port in ((1, "alpha", "20000"), (2, "beta", "20010")):
        wt = worktree(api, f"{task_id}-{slug}")
        branch = f"orchestra/{task_id}-{slug}"
        assert (wt / "README.md").read_text() == "hello\n"
        assert branch_of(wt) == branch
        assert head(wt) == tip
        task = api.get(slug)
        assert (task["branch"], task["worktree"], task["base_sha"]) == (branch, str(wt), tip)
        [line] = api.events("task.worktree", task_id)
        assert line["path"] == str(wt)
        assert (line["branch"], line["base"], line["base_sha"]) == (branch, "main", tip)
        assert line["worktree_created"] is True

        pid = api.pid(slug)
        view = agent_view(api, slug)
        assert view["cwd"] == str(wt)
        assert Path(f"/proc/{pid}/cwd").resolve() == wt.resolve()
        assert view["env"]["TERM"] == "xterm-256color"
        mine = {k: v for k, v in view["env"].items() if k.startswith("ORCHESTRA_")}
        assert mine == {
            "ORCHESTRA_TASK_ID": str(task_id),
            "ORCHESTRA_TASK_SLUG": slug,
            "ORCHESTRA_PROJECT": str(api.root),
            "ORCHESTRA_WORKTREE": str(wt),
            "ORCHESTRA_BRANCH": branch,
            "ORCHESTRA_BASE_BRANCH": "main",
            "ORCHESTRA_SOCKET": str(api.env.socket),
            "ORCHESTRA_PORT": port,
            "ORCHESTRA_RUN_ID": mine["ORCHESTRA_RUN_ID"],
        }
    listed = git("worktree", "list", "--porcelain", cwd=api.root)
    assert f"worktree {worktree(api, '1-alpha')}\n" in listed
    assert "branch refs/heads/orchestra/2-beta\n" in listed


SHELL_VIEW = """
import json, os, sys, time
seen = {k: os.environ.get(k) for k in ("PWD", "OLDPWD", "_")}
print("ENV " + json.dumps({"python": sys.executable, "cwd": os.getcwd(), "env": seen}), flush=True)
time.sleep(60)
"""


def test_agent_and_setup_see_the_worktree_as_pwd(api: Api) -> None:
    """The setup command and the agent get PWD set to the worktree they run in, no
    OLDPWD, and `_` their program's path, as a shell would give them: not the daemon's."""
    add_agent(api.env, api.root, "shellview", SHELL_VIEW)
    code = "import os; open('.setup-env', 'w').write(repr((os.environ.get('PWD'), os.environ.get('OLDPWD'), os.environ.get('_'))))"  # noqa: E501
    configure(api.root, f"setup = {toml([sys.executable, '-c', code])}")
    api.new("alpha", agent="shellview")
    api("task.start", task="alpha")
    wt = worktree(api, "1-alpha")
    view = agent_view(api, "alpha")
    assert view["cwd"] == str(wt)
    assert view["env"] == {"PWD": str(wt), "OLDPWD": None, "_": view["python"]}
    assert (wt / ".setup-env").read_text() == repr((str(wt), None, sys.executable))


def test_restart_reuses_the_worktree(api: Api) -> None:
    """Starting a stopped task again reuses its worktree and branch as the agent left them,
    and keeps measuring from the original base even after the base branch moved on."""
    api.new("alpha")
    api("task.start", task="alpha")
    wt = worktree(api, "1-alpha")
    base_sha = api.get("alpha")["base_sha"]
    (wt / "notes.txt").write_text("work in progress\n")
    (wt / "done.txt").write_text("done\n")
    git("add", "done.txt", cwd=wt)
    git("commit", "-q", "-m", "agent work", cwd=wt)
    (api.root / "later.txt").write_text("main moves on\n")
    git("add", "later.txt", cwd=api.root)
    git("commit", "-q", "-m", "later", cwd=api.root)

    stopped = api.cli("stop", "-y", "alpha")
    assert (stopped.returncode, stopped.stdout) == (0, "task 1-alpha is stopped\n")
    assert api("task.start", task="alpha")["status"] == "running"

    assert (wt / "notes.txt").read_text() == "work in progress\n"
    assert branch_of(wt) == "orchestra/1-alpha"
    assert not (wt / "later.txt").exists()
    first, second = api.events("task.worktree", 1)
    assert (first["worktree_created"], second["worktree_created"]) == (True, False)
    assert second["path"] == str(wt)
    assert second["base_sha"] == base_sha == api.get("alpha")["base_sha"]
    assert Path(f"/proc/{api.pid('alpha')}/cwd").resolve() == wt.resolve()
    [listed] = api("task.list")["tasks"]
    assert listed["ahead"] == 1


def test_a_folder_in_the_way_is_a_conflict(api: Api) -> None:
    """A folder at the worktree path that is not our worktree fails the start with a conflict
    (exit 6, JSON-RPC -32003) naming it; nothing in it is touched, and no branch is made."""
    api.new("alpha")
    wt = worktree(api, "1-alpha")
    wt.mkdir()
    (wt / "precious.txt").write_text("mine\n")

    proc = api.cli("start", "alpha")
    assert proc.returncode == EXIT_CONFLICT, proc.stderr
    assert proc.stderr == (
        f"orchestra: {wt} exists but is not a worktree of this repository: move it away first\n"
    )
    assert [p.name for p in wt.iterdir()] == ["precious.txt"]
    assert (wt / "precious.txt").read_text() == "mine\n"
    assert not has_branch(api, "orchestra/1-alpha")
    assert api.status("alpha") == "failed"
    [line] = [x for x in api.events("task.status", 1) if x["status"] == "failed"]
    assert "exists but is not a worktree" in line["why"]

    err = api.error("task.start", task="alpha")  # failed -> running is allowed: same error
    assert err.remote_code == -32003
    assert err.data["path"] == str(wt)

    (wt / "precious.txt").rename(api.env.base / "precious.txt")
    wt.rmdir()
    assert api("task.start", task="alpha")["status"] == "running"  # moved away: it works
    assert branch_of(wt) == "orchestra/1-alpha"


def test_a_branch_checked_out_elsewhere_is_a_conflict(api: Api) -> None:
    """The task's branch checked out in another worktree is a conflict that names where."""
    elsewhere = api.env.base / "elsewhere"
    git("worktree", "add", "-q", "-b", "orchestra/1-alpha", str(elsewhere), cwd=api.root)
    api.new("alpha")

    err = api.error("task.start", task="alpha")
    assert err.remote_code == -32003
    assert err.message == (
        f"branch orchestra/1-alpha is checked out in {elsewhere}: switch that checkout"
        " to another branch first"
    )
    assert not worktree(api, "1-alpha").exists()
    assert api.status("alpha") == "failed"


def test_an_existing_branch_not_checked_out_is_used(api: Api) -> None:
    """A task branch that exists but is checked out nowhere gets the worktree, commits kept."""
    git("branch", "orchestra/1-alpha", cwd=api.root)
    git("checkout", "-q", "orchestra/1-alpha", cwd=api.root)
    (api.root / "earlier.txt").write_text("from an earlier life\n")
    git("add", "earlier.txt", cwd=api.root)
    git("commit", "-q", "-m", "earlier", cwd=api.root)
    git("checkout", "-q", "main", cwd=api.root)
    api.new("alpha")

    assert api("task.start", task="alpha")["status"] == "running"
    wt = worktree(api, "1-alpha")
    assert (wt / "earlier.txt").read_text() == "from an earlier life\n"
    assert api.get("alpha")["base_sha"] == head(api.root)


def test_a_repository_without_commits_is_an_error(api: Api) -> None:
    """In a repository with no commits yet, start is refused with a message saying to commit,
    and the task, which never ran, stays a draft (it did not fail)."""
    empty = api.env.base / "empty"
    empty.mkdir()
    git("init", "-q", "-b", "main", cwd=empty)
    api.env.run("init", cwd=empty, check=True)
    configure(empty, TEST_AGENT_CONFIG)
    other = Api(api.env, empty)
    try:
        other.new("alpha")
        proc = other.cli("start", "alpha")
        assert proc.returncode == EXIT_ERROR
        assert proc.stderr == (
            f"orchestra: {empty} has no commits yet: make a first commit, then start the task\n"
        )
        assert other.status("alpha") == "draft"
        assert not (empty / ".orchestra" / "worktrees" / "1-alpha").exists()
        # Once there is a commit, the same task starts.
        (empty / "README.md").write_text("hello\n")
        git("add", "README.md", cwd=empty)
        git("commit", "-q", "-m", "first", cwd=empty)
        assert other("task.start", task="alpha")["status"] == "running"
    finally:
        other.close()


def test_the_base_need_not_be_the_checked_out_branch(api: Api) -> None:
    """With the main checkout on another branch, a task based on main starts from main's
    tip; a task with no base starts from the checked-out branch."""
    main_tip = head(api.root)
    git("checkout", "-q", "-b", "feature", cwd=api.root)
    (api.root / "feature.txt").write_text("feature\n")
    git("add", "feature.txt", cwd=api.root)
    git("commit", "-q", "-m", "feature", cwd=api.root)
    feature_tip = head(api.root)
    api.new("on-main", base_branch="main")
    api.new("on-feature")

    api("task.start", task="on-main")
    api("task.start", task="on-feature")

    on_main, on_feature = worktree(api, "1-on-main"), worktree(api, "2-on-feature")
    assert head(on_main) == main_tip and not (on_main / "feature.txt").exists()
    assert head(on_feature) == feature_tip and (on_feature / "feature.txt").exists()
    assert api.get("on-main")["base_sha"] == main_tip
    assert api.get("on-feature")["base_sha"] == feature_tip
    assert [x["base"] for x in api.events("task.worktree")] == ["main", "feature"]
    assert branch_of(api.root) == "feature"  # the main checkout is left alone


MISSING = (
    "base branch 'nope' does not exist in {root}: create it, or give the task a branch that exists"
)


def test_a_missing_base_branch_is_refused_at_new_and_update(api: Api) -> None:
    """`new` and `update` (a field or the whole edited file) refuse a base branch that does
    not exist, naming it (exit 3 on the CLI); nothing is created or changed."""
    err = api.error("task.new", slug="alpha", description="x", base_branch="nope")
    assert (err.remote_code, err.message) == (-32001, MISSING.format(root=api.root))
    assert api("task.list")["tasks"] == []
    proc = api.cli("new", "alpha", "-m", "x", "-b", "nope")
    assert proc.returncode == EXIT_NOT_FOUND
    assert proc.stderr == f"orchestra: {MISSING.format(root=api.root)}\n"
    api.new("alpha", base_branch="main")
    err = api.error("task.update", task="alpha", base_branch="nope")
    assert err.message == MISSING.format(root=api.root)
    text = Path(api.get("alpha")["file"]).read_text()
    err = api.error("task.update", task="alpha", text=text.replace('"main"', '"nope"'))
    assert err.message == MISSING.format(root=api.root)
    assert api.get("alpha")["base_branch"] == "main"


def test_a_base_branch_gone_since_refuses_the_start(api: Api) -> None:
    """A task whose base branch was deleted after `new` is refused at start, naming the
    branch; it stays as it was (a draft: it never ran), with no worktree or branch."""
    git("branch", "gone", cwd=api.root)
    api.new("alpha", base_branch="gone")
    git("branch", "-D", "gone", cwd=api.root)
    err = api.error("task.start", task="alpha")
    assert err.message == MISSING.format(root=api.root).replace("'nope'", "'gone'")
    assert api.status("alpha") == "draft"
    assert not worktree(api, "1-alpha").exists()
    assert not has_branch(api, "orchestra/1-alpha")


@pytest.mark.own_daemon  # writes the daemon's ~/.gitconfig
def test_submodules_are_initialised_in_the_worktree(api: Api) -> None:
    """In a repository with a submodule the new worktree has it checked out, unless
    `submodules = false`."""
    lib = make_repo(api.env.base / "lib")
    (lib / "lib.txt").write_text("library\n")
    git("add", "lib.txt", cwd=lib)
    git("commit", "-q", "-m", "lib", cwd=lib)
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib", cwd=api.root)
    git("commit", "-q", "-m", "add lib", cwd=api.root)
    # Git refuses local-path submodules by default (CVE-2022-39253); a real one is a URL.
    (api.env.home / ".gitconfig").write_text('[protocol "file"]\n\tallow = always\n')
    api.new("alpha")
    api.new("beta")

    api("task.start", task="alpha")
    wt = worktree(api, "1-alpha")
    assert (wt / "lib" / "lib.txt").read_text() == "library\n"
    status = git("submodule", "status", cwd=wt)
    assert status.startswith(" ") and " lib " in status  # initialised, at the recorded commit

    configure(api.root, "submodules = false")
    api("task.start", task="beta")
    wt = worktree(api, "2-beta")
    assert (wt / "lib").is_dir() and not any((wt / "lib").iterdir())
    assert git("submodule", "status", cwd=wt).startswith("-")  # not initialised


def test_worktreeinclude_copies_ignored_files(api: Api) -> None:
    """`.worktreeinclude` copies the ignored files it matches into a new worktree: not
    tracked files, not untracked files git does not ignore, nothing from .orchestra/."""
    root = api.root
    (root / ".gitignore").write_text(".env\ncerts/\n*.log\n")
    (root / ".worktreeinclude").write_text(
        "# gitignore syntax\n.env\ncerts/\nREADME.md\n*.toml\n*.jsonl\n"
    )
    git("add", ".gitignore", ".worktreeinclude", cwd=root)
    git("commit", "-q", "-m", "ignore", cwd=root)
    (root / ".env").write_text("SECRET=1\n")
    (root / "certs").mkdir()
    (root / "certs" / "dev.pem").write_text("pem\n")
    (root / "debug.log").write_text("ignored but not included\n")
    (root / "local.toml").write_text("included but not ignored\n")
    (root / "README.md").write_text("edited in the main checkout\n")  # tracked
    api.new("alpha")

    api("task.start", task="alpha")
    wt = worktree(api, "1-alpha")
    assert (wt / ".env").read_text() == "SECRET=1\n"
    assert (wt / "certs" / "dev.pem").read_text() == "pem\n"
    assert (wt / "README.md").read_text() == "hello\n"  # the committed one
    for absent in ("debug.log", "local.toml", ".orchestra"):
        assert not (wt / absent).exists(), absent
    [line] = api.events("task.worktree", 1)
    assert line["copied"] == [".env", "certs/dev.pem"]
    assert git("status", "--porcelain", cwd=wt) == ""  # the copies stay ignored there


def test_setup_runs_in_the_new_worktree_with_the_task_environment(api: Api) -> None:
    """The setup command runs in the new worktree before the agent, with the task's
    environment; its output and exit code go to the log."""
    code = (
        "import os; print('setup in', os.getcwd(), 'for task', os.environ['ORCHESTRA_TASK_ID']);"
        " open('.setup-done', 'w').write(os.environ['ORCHESTRA_BRANCH'])"
    )
    configure(api.root, f"setup = {toml([sys.executable, '-c', code])}")
    api.new("alpha")

    assert api("task.start", task="alpha")["status"] == "running"
    wt = worktree(api, "1-alpha")
    assert (wt / ".setup-done").read_text() == "orchestra/1-alpha"
    [line] = api.events("task.setup", 1)
    assert (line["exit_code"], line["output"]) == (0, f"setup in {wt} for task 1\n")
    order = [x["event"] for x in api.events("task.setup") + api.events("agent.started")]
    assert order == ["task.setup", "agent.started"]
    assert api.wait_output("alpha", "sleeper ready")


def test_setup_failure_fails_the_task_and_start_shows_its_tail(api: Api) -> None:
    """A setup command that exits non-zero fails the task, starts no agent, and `start`
    exits non-zero printing the tail of its output."""
    code = (
        "import sys\nfor i in range(1, 31): print(f'step {i}', flush=True)\n"
        "print('boom: no database', file=sys.stderr)\nsys.exit(3)\n"
    )
    configure(api.root, f"setup = {toml([sys.executable, '-c', code])}")
    api.new("alpha")

    proc = api.cli("start", "alpha")
    assert proc.returncode == EXIT_ERROR
    wt = worktree(api, "1-alpha")
    tail = "\n".join([*(f"step {i}" for i in range(12, 31)), "boom: no database"])
    assert proc.stderr == f"orchestra: setup command {sys.executable!r} exited 3 in {wt}:\n{tail}\n"
    assert api.status("alpha") == "failed"
    assert api.get("alpha")["run"] is None
    [line] = api.events("task.setup", 1)
    assert line["exit_code"] == 3
    assert line["output"].startswith("step 1\nstep 2\n")
    assert api.events("agent.started") == []


def test_a_setup_command_that_cannot_run_fails_the_task_with_the_reason(api: Api) -> None:
    """A setup command that is not there fails the task with a message naming it (it was
    an internal error)."""
    missing = str(api.root / "no-such-setup")
    configure(api.root, f"setup = {toml([missing])}")
    api.new("alpha")

    proc = api.cli("start", "alpha")
    assert proc.returncode == EXIT_ERROR
    assert proc.stderr.startswith(f"orchestra: setup command {missing!r} cannot run: ")
    assert "fix `setup` in the project's config" in proc.stderr
    assert api.status("alpha") == "failed"
    assert api.get("alpha")["run"] is None
