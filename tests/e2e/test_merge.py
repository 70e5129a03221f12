"""`orchestra merge` and `orchestra diff` against real repositories and the real daemon:
every strategy, where the target is checked out, conflicts, uncommitted work, state checks,
hostile names. After each test `git fsck` is clean and no commit seen was lost (`guard`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestra.core.errors import EXIT_CONFLICT, EXIT_ERROR, EXIT_INVALID_STATE, EXIT_USAGE
from tests.conftest import git
from tests.daemon.wire import alive
from tests.e2e.review_support import (
    checkout_view,
    commit_in,
    finished,
    guard_fixture,  # noqa: F401 - the `guard` fixture
    has_ref,
    state,
    tip,
)
from tests.e2e.support import Api, configure

# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = [pytest.mark.usefixtures("guard"), pytest.mark.shared_daemon]


def merge(api: Api, *args: str) -> Any:
    """`orchestra merge ... -y --json`, the result parsed (exit 0 expected)."""
    proc = api.cli("merge", *args, "-y", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def refused(api: Api, *args: str, code: int) -> dict[str, Any]:
    """`orchestra merge ... --json` that must fail with `code`; its error object."""
    proc = api.cli("merge", *args, "--json")
    assert proc.returncode == code, proc.stdout + proc.stderr
    error: dict[str, Any] = json.loads(proc.stdout)["error"]
    return error


def moved_on(api: Api, branch: str = "main") -> str:
    """A commit on `branch` made after the tasks started (in the main checkout)."""
    git("switch", "-q", branch, cwd=api.root)
    return commit_in(api.root, {"later.txt": "the base moved on\n"}, "later on main")


def parents(repo: Path, sha: str) -> list[str]:
    return git("rev-list", "--parents", "-n", "1", sha, cwd=repo).split()[1:]


def subject(repo: Path, sha: str) -> str:
    return git("log", "-1", "--format=%s", sha, cwd=repo).strip()


def show(repo: Path, ref: str, name: str) -> str:
    return git("show", f"{ref}:{name}", cwd=repo)


# -- strategies -------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["squash", "merge", "rebase"])
@pytest.mark.parametrize("into", [None, "release"])
def test_every_strategy_with_and_without_into(api: Api, strategy: str, into: str | None) -> None:
    """Each strategy lands the task's two commits on the target (the checked-out base by
    default, or an unchecked-out --into branch), marks the task merged with the sha in the
    log, removes its worktree and branch and keeps its tip reachable."""
    git("branch", "release", cwd=api.root)
    task = finished(api, "alpha", [{"a.txt": "one\n"}, {"b.txt": "two\n"}])
    target = into or "main"
    later = moved_on(api, target)
    if into:
        git("switch", "-q", "main", cwd=api.root)
    before = tip(api.root, target)
    branch_tip = tip(api.root, "orchestra/1-alpha")

    args = ["alpha", "--strategy", strategy] + (["--into", into] if into else [])
    result = merge(api, *args)

    after = tip(api.root, target)
    m = result["merge"]
    assert (m["target"], m["before"], m["after"], m["changed"]) == (target, before, after, True)
    assert show(api.root, target, "a.txt") == "one\n"
    assert show(api.root, target, "b.txt") == "two\n"
    assert show(api.root, target, "later.txt") == "the base moved on\n"
    if strategy == "squash":
        assert parents(api.root, after) == [later]
        assert subject(api.root, after) == "Work on alpha"
        body = git("log", "-1", "--format=%b", after, cwd=api.root)
        assert "Do alpha." in body and "Orchestra-Task: 1-alpha" in body
    elif strategy == "merge":
        assert parents(api.root, after) == [later, branch_tip]
        assert subject(api.root, after) == "Merge task 1-alpha: Work on alpha"
    else:
        assert subject(api.root, after) == "alpha: step 2"
        first = parents(api.root, after)[0]
        assert subject(api.root, first) == "alpha: step 1"
        assert parents(api.root, first) == [later]
    # The checkout: updated in place when it has the target, untouched otherwise.
    assert git("symbolic-ref", "--short", "HEAD", cwd=api.root).strip() == "main"
    assert (api.root / "a.txt").exists() == (into is None)
    assert git("status", "--porcelain", "--untracked-files=no", cwd=api.root) == ""
    assert m["checkout"] == (None if into else str(api.root))

    assert result["task"]["status"] == "merged"
    [line] = [e for e in api.events("task.merged", task["id"])]
    assert (line["after"], line["target"], line["strategy"]) == (after, target, strategy)
    status = [e for e in api.events("task.status", task["id"]) if e["status"] == "merged"]
    assert status[0]["merge_sha"] == after
    assert not Path(task["worktree"]).exists()
    assert not has_ref(api.root, "refs/heads/orchestra/1-alpha")
    assert tip(api.root, "refs/orchestra/merged/1-alpha") == branch_tip
    assert result["cleanup"]["worktree"]["removed"] and result["cleanup"]["branch"]["deleted"]


def test_main_checkout_on_another_branch_is_left_alone(api: Api) -> None:
    """With the main checkout on a feature branch, merging into main moves only main: the
    checkout keeps its branch, its files and its uncommitted changes."""
    finished(api, "alpha")
    git("switch", "-q", "-c", "feature", cwd=api.root)
    commit_in(api.root, {"feature.txt": "mine\n"}, "feature work")
    (api.root / "README.md").write_text("edited, not committed\n")
    before = checkout_view(api.root)
    main_before = tip(api.root, "main")

    result = merge(api, "alpha")

    assert parents(api.root, result["merge"]["after"]) == [main_before]
    assert result["merge"]["checkout"] is None
    assert checkout_view(api.root) == before
    assert (api.root / ".git").is_dir() and (api.root / "feature.txt").read_text() == "mine\n"
    assert git("symbolic-ref", "--short", "HEAD", cwd=api.root).strip() == "feature"


def test_main_checkout_on_the_task_branch_is_never_removed(api: Api) -> None:
    """When the main checkout itself sits on the task's branch, merge still works, and its
    cleanup never removes or moves the main checkout nor deletes the branch it is on."""
    task = finished(api, "alpha")
    git("worktree", "remove", "--", task["worktree"], cwd=api.root)
    git("switch", "-q", "orchestra/1-alpha", cwd=api.root)
    git("branch", "release", "main", cwd=api.root)
    before = checkout_view(api.root)

    result = merge(api, "alpha", "--into", "release")

    assert result["task"]["status"] == "merged"
    assert result["cleanup"]["worktree"] is None
    branch = result["cleanup"]["branch"]
    assert not branch["deleted"] and str(api.root) in branch["kept"]
    assert checkout_view(api.root) == before
    assert git("symbolic-ref", "--short", "HEAD", cwd=api.root).strip() == "orchestra/1-alpha"
    assert show(api.root, "release", "alpha.txt") == "alpha\n"


def test_target_checked_out_elsewhere_is_updated_there(api: Api) -> None:
    """A target checked out (clean) in another linked worktree is fast-forwarded in that
    worktree, files included."""
    finished(api, "alpha")
    other = api.env.base / "release-wt"
    git("worktree", "add", "-q", "-b", "release", str(other), "main", cwd=api.root)

    result = merge(api, "alpha", "--into", "release")

    assert result["merge"]["checkout"] == str(other)
    assert (other / "alpha.txt").read_text() == "alpha\n"
    assert git("status", "--porcelain", cwd=other) == ""
    assert tip(api.root, "HEAD") == result["merge"]["before"]  # main did not move


def test_target_checked_out_dirty_is_refused(api: Api) -> None:
    """A target checked out with uncommitted changes is refused before anything changes."""
    finished(api, "alpha")
    (api.root / "README.md").write_text("work in progress\n")
    before = state(api.root)

    error = refused(api, "alpha", "-y", code=EXIT_CONFLICT)

    assert error["data"]["kind"] == "dirty" and error["data"]["files"] == ["README.md"]
    assert "main is checked out in" in error["message"]
    assert state(api.root) == before
    assert api.status("alpha") == "completed"


def test_target_being_rebased_in_a_checkout_is_left_alone(api: Api) -> None:
    """A target branch that a checkout is in the middle of rebasing (so no worktree lists
    it) is refused by git and left exactly as it was, rebase included."""
    finished(api, "alpha")
    git("switch", "-q", "-c", "release", cwd=api.root)
    commit_in(api.root, {"README.md": "release words\n"}, "release edit")
    git("switch", "-q", "main", cwd=api.root)
    commit_in(api.root, {"README.md": "main words\n"}, "main edit")
    git("switch", "-q", "release", cwd=api.root)
    proc = subprocess.run(
        ["git", "rebase", "main"], cwd=api.root, capture_output=True, env=api.env.vars
    )
    assert proc.returncode != 0  # stopped on the conflict, HEAD detached
    before = state(api.root)

    error = refused(api, "alpha", "--into", "release", "-y", code=EXIT_CONFLICT)

    assert "git refused to move release" in error["message"]
    assert state(api.root) == before
    assert api.status("alpha") == "completed"


# -- into a branch that is not the base -------------------------------------------------


def base_moved_past(api: Api, shape: str) -> str:
    """Commits on main that `release` lacks (uv.lock, pyproject.toml, a doc), `release`
    made at main~2 and, for `diverged`, given a commit of its own; or for `ahead`, release
    is main itself, later moved on past the task's base (see `ahead_later`)."""
    commit_in(api.root, {"uv.lock": "lock 1\n"}, "lock")
    commit_in(api.root, {"pyproject.toml": "[project]\n"}, "pyproject")
    commit_in(api.root, {"docs.md": "docs\n"}, "docs")
    git("branch", "release", "HEAD" if shape == "ahead" else "HEAD~2", cwd=api.root)
    if shape == "diverged":
        git("switch", "-q", "release", cwd=api.root)
        commit_in(api.root, {"RELEASE.md": "1.0\n"}, "release notes")
        git("switch", "-q", "main", cwd=api.root)
    return tip(api.root, "release")


TWO_STEPS = [{"a.txt": "one\n"}, {"a.txt": "one\ntwo\n"}]


def landed(repo: Path, before: str, after: str) -> list[str]:
    return git("diff", "--name-only", before, after, cwd=repo).split()


@pytest.mark.parametrize("shape", ["behind", "diverged", "ahead"])
@pytest.mark.parametrize("strategy", ["squash", "rebase"])
def test_into_another_branch_carries_only_the_tasks_changes(
    api: Api, strategy: str, shape: str
) -> None:
    """Squash and rebase into a branch behind the task's base, beside it or ahead of it
    carry exactly the task's own changes (one file, its two commits, or one squash commit),
    never the base's commits the target lacks; the plan counts the task's commits only."""
    before = base_moved_past(api, shape)
    finished(api, "alpha", TWO_STEPS)
    if shape == "ahead":
        git("switch", "-q", "release", cwd=api.root)
        before = commit_in(api.root, {"later.txt": "later\n"}, "release moved on")
        git("switch", "-q", "main", cwd=api.root)

    plan = merge(api, "alpha", "--strategy", strategy, "--into", "release", "--dry-run")
    assert (plan["dry_run"], plan["commits"], plan["brings_base_commits"]) == (True, 2, False)
    assert plan["base_commits"] == {"behind": 2, "diverged": 2, "ahead": 0}[shape]
    assert plan["files"] == [{"path": "a.txt", "added": 2, "deleted": 0}]
    assert tip(api.root, "release") == before

    result = merge(api, "alpha", "--strategy", strategy, "--into", "release")

    after = result["merge"]["after"]
    assert landed(api.root, before, after) == ["a.txt"]
    assert show(api.root, "release", "a.txt") == "one\ntwo\n"
    new = git("rev-list", "--reverse", f"{before}..{after}", cwd=api.root).split()
    if strategy == "squash":
        assert new == [after] and parents(api.root, after) == [before]
    else:
        assert [subject(api.root, c) for c in new] == ["alpha: step 1", "alpha: step 2"]
        assert parents(api.root, new[0]) == [before]


def test_true_merge_into_another_branch_says_it_brings_the_tasks_history(api: Api) -> None:
    """`--strategy merge --into` a branch behind the base says, in its plan, its question
    and --help, that it brings the task's history, with the count of base commits."""
    before = base_moved_past(api, "behind")
    finished(api, "alpha", TWO_STEPS)
    args = ("alpha", "--strategy", "merge", "--into", "release")

    plan = merge(api, *args, "--dry-run")
    assert (plan["commits"], plan["base_commits"], plan["brings_base_commits"]) == (2, 2, True)
    assert [f["path"] for f in plan["files"]] == ["a.txt", "docs.md", "pyproject.toml"]
    text = api.cli("merge", *args, "--dry-run")
    assert text.returncode == 0, text.stderr
    assert "2 commits of its base that release lacks" in text.stdout
    asked = api.cli("merge", *args)
    assert asked.returncode == EXIT_USAGE
    assert "a true merge bringing the task's history, 2 commits of its base" in asked.stderr
    help_text = " ".join(api.cli("merge", "--help").stdout.split())
    assert "brings the task's history, base commits included" in help_text

    after = merge(api, *args)["merge"]["after"]
    assert landed(api.root, before, after) == ["a.txt", "docs.md", "pyproject.toml"]


@pytest.mark.parametrize("strategy", ["squash", "rebase"])
def test_changes_that_need_base_commits_conflict_into_release(api: Api, strategy: str) -> None:
    """A task's change to a file only its base has (release lacks it) does not apply to
    release: refused as a conflict naming the file, with refs, indexes and files as they
    were, the task still completed."""
    base_moved_past(api, "behind")
    finished(api, "alpha", [{"pyproject.toml": "[project]\nname = 'x'\n"}])
    before = state(api.root)

    error = refused(
        api, "alpha", "--strategy", strategy, "--into", "release", "-y", code=EXIT_CONFLICT
    )

    assert error["data"]["kind"] == "merge_conflict"
    assert error["data"]["files"] == ["pyproject.toml"]
    assert "release, which lacks 2 commit(s) of the base" in error["message"]
    assert state(api.root) == before
    assert api.status("alpha") == "completed"


@pytest.mark.parametrize("strategy", ["squash", "merge"])
def test_a_conflict_resolved_by_merging_the_base_in_then_merges(api: Api, strategy: str) -> None:
    """A task that merged its moved-on base in to resolve a conflict merges cleanly into
    it: what it merged in counts as the base's, not as the task's own change. (A rebase
    drops merge commits, the resolution with them: it conflicts again, as git's would.)"""
    task = finished(api, "alpha", [{"README.md": "agent's words\n"}])
    commit_in(api.root, {"README.md": "person's words\n"}, "edit readme on main")
    wt = Path(task["worktree"])
    subprocess.run(["git", "merge", "-q", "main"], cwd=wt, env=api.env.vars, check=False)
    commit_in(wt, {"README.md": "both words\n"}, "resolve")

    plan = merge(api, "alpha", "--strategy", strategy, "--dry-run")
    assert [f["path"] for f in plan["files"]] == ["README.md"]
    result = merge(api, "alpha", "--strategy", strategy)

    assert show(api.root, "main", "README.md") == "both words\n"
    assert result["merge"]["changed"]


def test_dry_run_shows_what_would_land_and_changes_nothing(api: Api) -> None:
    """`merge --dry-run` prints the strategy, target, commit count and files with their
    lines, exits 0 and changes nothing; with --json it prints the plan."""
    finished(api, "alpha", [{"a.txt": "one\n", "b.txt": "x\ny\n"}, {"a.txt": "two\n"}])
    before = state(api.root)

    proc = api.cli("merge", "alpha", "--dry-run")

    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("would merge task 1-alpha into main by squash: its 2 commits")
    assert "  a.txt | +1 -0" in lines and "  b.txt | +2 -0" in lines
    assert lines[-1] == "(dry run: nothing was changed)"
    data = json.loads(api.cli("merge", "alpha", "--dry-run", "--json").stdout)
    assert (data["dry_run"], data["commits"], data["target"]) == (True, 2, "main")
    assert state(api.root) == before
    assert api.status("alpha") == "completed"


# -- conflicts ----------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["squash", "merge", "rebase"])
def test_conflict_leaves_everything_byte_identical(api: Api, strategy: str) -> None:
    """A conflicting merge lists the conflicting files and leaves refs, index, and every
    worktree's files exactly as they were; the task stays completed."""
    finished(api, "alpha", [{"README.md": "agent's words\n", "new.txt": "x\n"}])
    commit_in(api.root, {"README.md": "person's words\n"}, "edit readme on main")
    (api.root / "untracked.txt").write_text("mine\n")
    before = state(api.root)

    error = refused(api, "alpha", "--strategy", strategy, "-y", code=EXIT_CONFLICT)

    assert error["data"]["kind"] == "merge_conflict"
    assert error["data"]["files"] == ["README.md"]
    assert "README.md" in error["message"] and "nothing was changed" in error["message"]
    assert state(api.root) == before
    assert api.status("alpha") == "completed"
    assert not has_ref(api.root, "refs/orchestra/merged/1-alpha")
    leftovers = [p.name for p in (api.root / ".orchestra" / "worktrees").iterdir()]
    assert leftovers == ["1-alpha"]
    assert api.events("task.merge_failed", 1)


# -- uncommitted work in the task's worktree ---------------------------------------------


def test_uncommitted_changes_are_refused(api: Api) -> None:
    """Uncommitted changes in the task's worktree stop the merge, saying how to go on."""
    task = finished(api, "alpha")
    wt = Path(task["worktree"])
    (wt / "alpha.txt").write_text("changed after the last commit\n")
    (wt / "extra.txt").write_text("never added\n")
    before = state(api.root)

    error = refused(api, "alpha", "-y", code=EXIT_CONFLICT)

    assert error["data"]["kind"] == "dirty"
    assert sorted(error["data"]["files"]) == ["alpha.txt", "extra.txt"]
    assert "--include-uncommitted" in error["message"]
    assert state(api.root) == before


def test_include_uncommitted_commits_them_first(api: Api) -> None:
    """--include-uncommitted commits the worktree's changes (new files too) onto the task
    branch, then merges them with the rest."""
    task = finished(api, "alpha")
    wt = Path(task["worktree"])
    (wt / "alpha.txt").write_text("changed after the last commit\n")
    (wt / "extra.txt").write_text("never added\n")
    old_tip = tip(api.root, "orchestra/1-alpha")

    result = merge(api, "alpha", "--include-uncommitted", "--no-cleanup")

    m = result["merge"]
    assert m["committed_uncommitted"] and parents(api.root, m["branch_sha"]) == [old_tip]
    assert tip(api.root, "orchestra/1-alpha") == m["branch_sha"]
    assert show(api.root, "main", "alpha.txt") == "changed after the last commit\n"
    assert show(api.root, "main", "extra.txt") == "never added\n"
    assert git("status", "--porcelain", cwd=wt) == ""  # the worktree is clean on the new tip
    assert result["cleanup"] is None and wt.is_dir()


def test_include_uncommitted_with_a_conflict_changes_nothing(api: Api) -> None:
    """With --include-uncommitted, a conflict still leaves the task branch, its index and its
    uncommitted files exactly as they were."""
    task = finished(api, "alpha")
    wt = Path(task["worktree"])
    (wt / "README.md").write_text("agent, uncommitted\n")
    git("add", "README.md", cwd=wt)
    (wt / "more.txt").write_text("untracked\n")
    commit_in(api.root, {"README.md": "person\n"}, "main edits readme")
    before = state(api.root)

    error = refused(api, "alpha", "--include-uncommitted", "-y", code=EXIT_CONFLICT)

    assert error["data"]["files"] == ["README.md"]
    assert state(api.root) == before


# -- states, agents, confirmation ---------------------------------------------------------


def test_only_completed_or_reviewed_tasks_merge_unless_forced(api: Api) -> None:
    """A stopped task is refused naming its state; --force merges it; a reviewed one merges."""
    finished(api, "alpha", status="stopped")
    finished(api, "beta", status="reviewed")

    error = refused(api, "alpha", "-y", code=EXIT_INVALID_STATE)
    assert "is stopped" in error["message"] and "--force" in error["message"]
    assert error["data"]["current"] == "stopped"

    assert merge(api, "alpha", "--force")["task"]["status"] == "merged"
    assert merge(api, "beta")["task"]["status"] == "merged"
    again = refused(api, "beta", "-y", code=EXIT_INVALID_STATE)
    assert "already merged" in again["message"]


def completed_with_agent(api: Api, slug: str = "alpha") -> dict[str, Any]:
    """A task with one commit, reported completed while its agent lives on."""
    task = api.new(slug)
    api("task.start", task=slug)
    api.wait_output(slug, "sleeper ready")
    commit_in(Path(task["worktree"]), {f"{slug}.txt": f"{slug}\n"}, f"{slug}: step 1")
    api("task.set_status", task=slug, status="complete")
    assert api.get(slug)["run"] is not None
    return api.get(slug)


def test_merge_stops_a_completed_tasks_agent_first(api: Api) -> None:
    """Merging a completed task whose agent still runs stops the agent first: the plan and
    the question say so, and the merge then goes through without a manual stop."""
    completed_with_agent(api)
    agent = api.pid("alpha")

    plan = json.loads(api.cli("merge", "alpha", "--dry-run", "--json").stdout)
    assert plan["stops_agent"] is True
    asked = api.cli("merge", "alpha")
    assert asked.returncode == EXIT_USAGE and "Stop the agent of task 1-alpha" in asked.stderr
    assert api.get("alpha")["run"] is not None

    proc = api.cli("merge", "alpha", "-y")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("stopped the agent of task 1-alpha first\nmerged task")
    task = api.get("alpha")
    assert (task["status"], task["run"]) == ("merged", None)
    assert not alive(agent)
    assert show(api.root, "main", "alpha.txt") == "alpha\n"
    assert api.events("task.merge_stopped_agent", 1)


@pytest.mark.parametrize("kind", ["dirty", "merge_conflict"])
def test_a_refused_merge_keeps_the_agent(api: Api, kind: str) -> None:
    """A merge refused (uncommitted changes in the task's worktree, or a conflict, tried
    before the agent is stopped) leaves the completed task's agent running, to fix it."""
    task = completed_with_agent(api)
    if kind == "dirty":
        (Path(task["worktree"]) / "alpha.txt").write_text("not committed\n")
    else:
        commit_in(api.root, {"alpha.txt": "the person's\n"}, "alpha.txt on main")
    agent = api.pid("alpha")
    before = state(api.root)

    error = refused(api, "alpha", "-y", code=EXIT_CONFLICT)

    assert error["data"]["kind"] == kind
    assert api.pid("alpha") == agent and alive(agent)
    assert state(api.root) == before
    assert api.status("alpha") == "completed"


def test_stop_of_a_completed_task_stops_its_agent_and_says_so(api: Api) -> None:
    """`stop` of a completed task whose agent lives stops the agent, says the task stays
    completed (exit 0); once no agent runs, `stop` says there is nothing to stop."""
    completed_with_agent(api)
    agent = api.pid("alpha")

    proc = api.cli("stop", "-y", "alpha")

    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0,
        "stopped the agent of task 1-alpha; the task stays completed\n",
        "",
    )
    assert not alive(agent)
    assert (api.status("alpha"), api.get("alpha")["run"]) == ("completed", None)
    again = api.cli("stop", "-y", "alpha")
    assert again.returncode == EXIT_INVALID_STATE
    assert "is completed and has no running agent: there is nothing to stop" in again.stderr


def test_draft_has_nothing_to_merge(api: Api) -> None:
    """A task never started has no branch: --force or not, merge says so and changes nothing."""
    api.new("alpha")
    error = refused(api, "alpha", "--force", "-y", code=EXIT_INVALID_STATE)
    assert "draft" in error["message"]


def test_merge_without_a_terminal_asks_for_yes(api: Api) -> None:
    """Without a terminal and without -y, merge refuses (exit 2) and changes nothing."""
    finished(api, "alpha")
    before = state(api.root)

    proc = api.cli("merge", "alpha")

    assert proc.returncode == EXIT_USAGE
    assert "pass -y" in proc.stderr and "into main by squash" in proc.stderr
    assert state(api.root) == before


def test_nothing_to_merge_still_marks_merged(api: Api) -> None:
    """A task whose changes the target already has merges as a no-op: target unchanged."""
    finished(api, "alpha")
    git("merge", "-q", "--ff-only", "orchestra/1-alpha", cwd=api.root)
    before = tip(api.root, "main")

    result = merge(api, "alpha", "--strategy", "merge")

    assert not result["merge"]["changed"] and tip(api.root, "main") == before
    assert result["task"]["status"] == "merged"


def test_cleanup_runs_teardown_first_and_can_be_turned_off(api: Api) -> None:
    """The teardown command runs in the worktree before it is removed; with
    `merge.cleanup = false` the worktree and branch stay."""
    log = api.env.base / "teardown.log"
    script = (
        f"import os; open({str(log)!r}, 'a')"
        ".write(os.getcwd() + ' ' + os.environ['ORCHESTRA_TASK_SLUG'] + '\\n')"
    )
    configure(api.root, f"teardown = {json.dumps([sys.executable, '-c', script])}")
    configure(api.root, "merge.cleanup = false")
    a = finished(api, "alpha")
    finished(api, "beta", [{"beta.txt": "b\n"}])

    kept = merge(api, "alpha")
    assert kept["cleanup"] is None and Path(a["worktree"]).is_dir()
    assert has_ref(api.root, "refs/heads/orchestra/1-alpha")

    cleaned = merge(api, "beta", "--cleanup")
    assert cleaned["cleanup"]["worktree"]["removed"]
    assert log.read_text() == f"{api.root}/.orchestra/worktrees/2-beta beta\n"


# -- hostile names ----------------------------------------------------------------------


def test_option_injection_and_path_escapes_are_refused(api: Api) -> None:
    """Branch names and task refs that look like options or climb out of the repository are
    refused at the boundary (exit 2), even from a hand-edited task file; nothing runs."""
    finished(api, "alpha")
    pwned = api.env.base / "pwned"
    before = state(api.root)

    for args in (
        ["alpha", f"--into=--upload-pack=touch {pwned}"],
        ["alpha", "--into", "../../etc"],
        ["alpha", "--into", "/main"],
        ["alpha", "--into", "refs/heads/../x"],
        ["../alpha"],
        [f"--upload-pack=touch {pwned}"],
    ):
        proc = api.cli("merge", *args, "-y")
        assert proc.returncode == EXIT_USAGE, (args, proc.stdout, proc.stderr)
    error = api.error("task.merge", task="alpha", into="-x")
    assert error.data["kind"] == "invalid_params"

    # A person's hand edit cannot smuggle an option in either: the file breaks the rule
    # the wire has, so the task is broken until it is fixed.
    file = Path(api.get("alpha")["file"])
    text = file.read_text()
    file.write_text(
        text.replace("+++\n\n", f'base_branch = "--upload-pack=touch {pwned}"\n+++\n\n', 1)
    )
    proc = api.cli("merge", "alpha", "-y")
    assert proc.returncode == EXIT_ERROR and "invalid branch name" in proc.stderr
    file.write_text(text)
    proc = api.cli("merge", "alpha", "--into", "no;such branch", "-y")
    assert proc.returncode == EXIT_USAGE

    assert not pwned.exists()
    after = state(api.root)
    assert after.refs == before.refs
    assert api.status("alpha") == "completed"


# -- diff -------------------------------------------------------------------------------

ANSI = "\x1b["


def test_diff_is_the_branch_against_its_base_with_uncommitted_changes_marked(api: Api) -> None:
    """`diff` shows what the agent changed since its base_sha (not what moved on the base
    since), then the worktree's uncommitted and untracked changes under a marked header;
    plain when piped, and --stat / --name-only / --json agree."""
    task = finished(api, "alpha", [{"a.txt": "from the agent\n"}])
    moved_on(api)
    wt = Path(task["worktree"])
    (wt / "a.txt").write_text("from the agent, then more\n")
    (wt / "scratch.txt").write_text("not added\n")

    full = api.cli("diff", "alpha")
    assert full.returncode == 0, full.stderr
    assert ANSI not in full.stdout
    committed, _, rest = full.stdout.partition("# === uncommitted changes in")
    assert "+from the agent\n" in committed and "later.txt" not in full.stdout
    assert rest.startswith(f" {wt} (not committed on orchestra/1-alpha) ===\n")
    assert "+from the agent, then more\n" in rest
    assert "diff --git a/scratch.txt b/scratch.txt\nnew file mode" in rest

    stat = api.cli("diff", "alpha", "--stat").stdout
    assert stat.startswith(" a.txt | 1 +\n") and " scratch.txt | untracked\n" in stat
    names = api.cli("diff", "alpha", "--name-only").stdout
    assert names.split("\n", 1)[0] == "a.txt" and "scratch.txt (untracked)\n" in names

    data = json.loads(api.cli("diff", "alpha", "--json").stdout)
    assert data["base_sha"] == task["base_sha"]
    assert (data["tip"], data["checkout"], data["untracked"]) == (
        "refs/heads/orchestra/1-alpha",
        str(wt),
        ["scratch.txt"],
    )


def test_diff_on_a_terminal_is_coloured_and_paged(api: Api) -> None:
    """On a terminal the diff is coloured and goes through git's pager ($GIT_PAGER)."""
    import os
    import pty
    import subprocess

    finished(api, "alpha")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestra", "diff", "alpha"],
            cwd=api.root,
            env={**api.env.vars, "GIT_PAGER": "sed s/^/PAGED:/"},
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=subprocess.PIPE,
            timeout=30,
        )
        os.close(secondary)
        out = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0, proc.stderr
    text = out.decode()
    assert "PAGED:" in text and ANSI in text and "alpha.txt" in text


def test_diff_of_a_merged_task_reads_the_kept_tip(api: Api) -> None:
    """After a merge deleted the branch, `diff` still shows the task's changes."""
    finished(api, "alpha")
    merge(api, "alpha")

    out = api.cli("diff", "alpha", "--name-only")

    assert (out.returncode, out.stdout) == (0, "alpha.txt\n")


def test_diff_of_a_draft_says_there_is_nothing_yet(api: Api) -> None:
    """A task never started has no branch to diff: exit 4 and a hint."""
    api.new("alpha")
    proc = api.cli("diff", "alpha")
    assert (
        proc.returncode == EXIT_INVALID_STATE and "run `orchestra start alpha` first" in proc.stderr
    )
