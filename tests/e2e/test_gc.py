"""`orchestra gc` against real repositories and the real daemon: merged tasks are cleaned
up, everything else is left alone or only reported; nothing with unique commits or
uncommitted files is ever deleted. After each test `git fsck` is clean and no commit seen
was lost (`guard`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestra.core.errors import EXIT_ERROR, EXIT_USAGE
from tests.conftest import git
from tests.e2e.review_support import (
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


def gc(api: Api, *args: str, code: int = 0) -> Any:
    proc = api.cli("gc", *args, "--json")
    assert proc.returncode == code, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def merged_kept(api: Api, slug: str, files: dict[str, str] | None = None) -> dict[str, Any]:
    """A task merged with cleanup off: its worktree and branch are still there."""
    task = finished(api, slug, [files or {f"{slug}.txt": f"{slug}\n"}])
    result = api("task.merge", task=slug, cleanup=False)
    assert result["task"]["status"] == "merged"
    return task


def kinds(plan: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(a["kind"], a["task"]) for a in plan["actions"]]


def test_gc_cleans_merged_tasks_keeps_unmerged_and_reports_orphans(api: Api) -> None:
    """gc removes a merged task's worktree and branch and archives its file; an unmerged
    task and an orphan branch and folder are left exactly as they were (orphans reported)."""
    merged = merged_kept(api, "alpha")
    unmerged = finished(api, "beta", [{"beta.txt": "b\n"}])
    finished(api, "delta", [{"delta.txt": "d\n"}])
    api("task.merge", task="delta")  # cleaned up by the merge: only its file is left
    git("branch", "orchestra/99-ghost", "main", cwd=api.root)
    ghost = Path(api.root, ".orchestra", "worktrees", "99-ghost")
    ghost.mkdir()
    (ghost / "notes.txt").write_text("someone's\n")

    plan = gc(api, "--dry-run")
    assert kinds(plan) == [
        ("remove_worktree", "1-alpha"),
        ("delete_branch", "1-alpha"),
        ("archive_task", "1-alpha"),
        ("archive_task", "3-delta"),
    ]
    assert [(o["kind"], Path(o["name"]).name) for o in plan["orphans"]] == [
        ("branch", "99-ghost"),
        ("worktree", "99-ghost"),
    ]
    assert Path(merged["worktree"]).is_dir()  # a dry run changes nothing

    refused = api.cli("gc")
    assert refused.returncode == EXIT_USAGE and "pass -y" in refused.stderr
    assert Path(merged["worktree"]).is_dir()

    beta_before = state(api.root).worktrees[unmerged["worktree"]]
    done = gc(api, "-y")

    assert all(r["done"] for r in done["results"]), done["results"]
    assert not Path(merged["worktree"]).exists()
    assert not has_ref(api.root, "refs/heads/orchestra/1-alpha")
    assert has_ref(api.root, "refs/orchestra/merged/1-alpha")
    archived = api.root / ".orchestra" / "archive" / "1-alpha.md"
    assert archived.is_file() and 'status = "merged"' in archived.read_text()
    assert [t["slug"] for t in api("task.list")["tasks"]] == ["beta"]
    assert api.events("task.archived", 1)
    assert state(api.root).worktrees[unmerged["worktree"]] == beta_before
    assert api.status("beta") == "completed"
    assert has_ref(api.root, "refs/heads/orchestra/99-ghost")
    assert (ghost / "notes.txt").read_text() == "someone's\n"
    again = gc(api, "--dry-run")
    assert again["actions"] == [] and len(again["orphans"]) == 2

    new = api.new("gamma")  # the archived tasks' ids are never reused
    assert new["id"] == 4


def test_gc_keeps_branches_with_unmerged_commits_unless_forced(api: Api) -> None:
    """A merged task's branch that got commits after the merge is kept; --force deletes it
    after keeping its tip as a ref, so no commit becomes unreachable."""
    task = merged_kept(api, "alpha")
    late = commit_in(Path(task["worktree"]), {"late.txt": "after the merge\n"}, "late work")

    plan = gc(api, "-y")
    assert [r["kind"] for r in plan["results"]] == ["remove_worktree"]
    [skip] = plan["skipped"]
    assert skip["what"] == "branch" and "1 commit(s) on no other branch" in skip["reason"]
    assert tip(api.root, "orchestra/1-alpha") == late
    assert api.status("alpha") == "merged"  # not archived: its branch is still there

    forced = gc(api, "-y", "--force")
    assert [r["kind"] for r in forced["results"]] == ["delete_branch", "archive_task"]
    assert not has_ref(api.root, "refs/heads/orchestra/1-alpha")
    assert tip(api.root, "refs/orchestra/merged/1-alpha") == late


def test_gc_never_removes_a_dirty_worktree(api: Api) -> None:
    """A merged task's worktree with uncommitted files is kept, and so are its branch and
    task file, even with --force."""
    task = merged_kept(api, "alpha")
    (Path(task["worktree"]) / "unsaved.txt").write_text("precious\n")

    plan = gc(api, "-y", "--force")

    assert plan["actions"] == []
    assert "unsaved.txt" in plan["skipped"][0]["reason"]
    assert (Path(task["worktree"]) / "unsaved.txt").read_text() == "precious\n"
    assert has_ref(api.root, "refs/heads/orchestra/1-alpha")


def test_gc_prunes_records_of_vanished_worktrees(api: Api) -> None:
    """Worktree records whose folders are gone are pruned; a detached one's commit that is
    on no branch is kept as a ref first."""
    elsewhere = api.env.base / "scratch-wt"
    git("worktree", "add", "-q", "--detach", str(elsewhere), "main", cwd=api.root)
    lone = commit_in(elsewhere, {"lone.txt": "only here\n"}, "lone commit")
    shutil.rmtree(elsewhere)

    done = gc(api, "-y")

    [result] = done["results"]
    assert result["kind"] == "prune_worktrees" and result["done"]
    [kept] = result["kept_refs"]
    assert kept.startswith("refs/orchestra/pruned/") and tip(api.root, kept) == lone
    assert str(elsewhere) not in git("worktree", "list", cwd=api.root)


def test_gc_with_confirm_yes_needs_no_flag_and_reports_failures(api: Api) -> None:
    """`confirm = "yes"` lets gc go ahead without -y; a step that cannot be done (a failing
    teardown) keeps that task whole and exits 1."""
    configure(api.root, 'confirm = "yes"\nteardown = ["false"]')
    task = merged_kept(api, "alpha")

    proc = api.cli("gc")

    assert proc.returncode == EXIT_ERROR, proc.stderr
    assert "not done: remove worktree" in proc.stdout and "exited 1" in proc.stdout
    assert Path(task["worktree"]).is_dir()
    assert has_ref(api.root, "refs/heads/orchestra/1-alpha")
    assert api.status("alpha") == "merged"


def test_gc_reports_hostile_orphan_names_without_acting_on_them(api: Api) -> None:
    """Orphan branches and folders named like options are only reported; nothing runs."""
    git("update-ref", "refs/heads/orchestra/--upload-pack=touch_pwned", "HEAD", cwd=api.root)
    (api.root / ".orchestra" / "worktrees" / "--force").mkdir()
    before = state(api.root)

    plan = gc(api, "-y")

    assert plan["actions"] == []
    assert sorted((o["kind"], Path(o["name"]).name) for o in plan["orphans"]) == [
        ("branch", "--upload-pack=touch_pwned"),
        ("worktree", "--force"),
    ]
    assert state(api.root) == before
    assert not list(api.root.glob("*pwned*"))


def test_gc_removes_the_scratch_worktrees_of_interrupted_merges(api: Api, tmp_path: Path) -> None:
    """What a daemon killed during a merge leaves (a detached worktree, mid-conflict) goes;
    a `.merge-*` symlink pointing elsewhere is only reported, and what it points to stays."""
    worktrees = api.root / ".orchestra" / "worktrees"
    worktrees.mkdir(parents=True, exist_ok=True)
    scratch = worktrees / ".merge-1-work-0badc0de"
    git("worktree", "add", "--detach", "--quiet", "--", str(scratch), "HEAD", cwd=api.root)
    (scratch / "half-merged.txt").write_text("<<<<<<< ours\n")
    git("add", "half-merged.txt", cwd=scratch)
    outside = tmp_path / "not-a-scratch"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    (worktrees / ".merge-2-evil-00000000").symlink_to(outside)

    plan = gc(api, "--dry-run")
    assert kinds(plan) == [("drop_scratch", None)]
    assert plan["actions"][0]["path"] == str(scratch)
    assert [Path(o["name"]).name for o in plan["orphans"]] == [".merge-2-evil-00000000"]
    assert scratch.is_dir()

    done = gc(api, "-y")
    assert [(r["kind"], r["done"]) for r in done["results"]] == [("drop_scratch", True)]
    assert not scratch.exists()
    assert ".merge-1-work" not in git("worktree", "list", "--porcelain", cwd=api.root)
    assert (outside / "keep.txt").read_text() == "mine\n"
    assert gc(api, "--dry-run")["actions"] == []
