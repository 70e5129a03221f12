"""A task's branch, read and merged back, without ever losing work.

Theory of operation. A merge carries the task's own changes, `base..tip`, where
`base` is the commit its worktree was made from (moved up to the merge base when
the task merged a later target into itself, say to resolve a conflict), whatever
the target: `squash` applies that diff as one three-way merge whose base is
`base`; `rebase` copies the commits of `base..tip` only. So a target behind the
base, or beside it, never receives base commits it lacks, and a change that does
not apply there is a conflict. `merge` makes a true merge, which brings the
task's whole history (the base's commits the target lacks included): the plan
counts them.

A merge's result is computed in a scratch worktree
(`.orchestra/worktrees/.merge-{stem}-{hex}`, detached), never in a checkout a
person uses. Only when that worked is the target branch moved, and only ever by
a fast-forward to the new commit:

- target checked out nowhere: `git branch --force`, after checking that its tip
  did not move (git itself refuses a branch being rebased or bisected somewhere);
- target checked out and clean: `git merge --ff-only` in that checkout;
- target checked out with uncommitted changes: refused before anything is done.

A conflict, or any other failure, removes the scratch worktree and leaves every
ref, index and file as it was. With `include_uncommitted`, the task worktree's
uncommitted changes are committed through a private index into a commit no ref
names until the merge has succeeded; only then does the task branch move to it.

What was merged stays reachable: the merged tip is kept as
`refs/orchestra/merged/{stem}`, so deleting the task branch afterwards (a squash
or a rebase leaves its commits on no branch) never makes a commit unreachable.

Every name git sees was validated at the API boundary or is spelled in full
(`refs/heads/...`), and every path comes after `--`: nothing here can pass for
an option.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import attrs

from orchestra.adapters.faults import crash_point
from orchestra.adapters.git import Git, GitError
from orchestra.adapters.worktrees import check_path
from orchestra.core import hints, names
from orchestra.core.config import MERGE_STRATEGIES
from orchestra.core.errors import Conflict, InvalidParams, NotFound

KEEP_PREFIX = "refs/orchestra/merged/"
SCRATCH_PREFIX = ".merge-"
# Commands in a scratch worktree: no hooks (nobody watches them run there), no
# recorded resolutions, and no rewriting of other branches by a rebase.
SCRATCH_CONFIG = (
    *("-c", "core.hooksPath=/dev/null"),
    *("-c", "rerere.enabled=false"),
    *("-c", "rebase.updateRefs=false"),
    *("-c", "rebase.autoSquash=false"),
    *("-c", "rebase.autoStash=false"),
    *("-c", "merge.ff=true"),
    *("-c", "merge.autoStash=false"),
)
DIFF_LIMIT = 16 << 20  # characters of diff text one answer carries
UNTRACKED_DIFFS = 500  # untracked files shown in full; more are listed by name


class DirtyWorktree(Conflict):
    """A checkout has uncommitted changes that the operation would need to touch."""

    kind = "dirty"


class MergeConflict(Conflict):
    """The merge conflicts; nothing was changed."""

    kind = "merge_conflict"


def heads(branch: str) -> str:
    return f"refs/heads/{branch}"


def keep_ref(stem: str) -> str:
    return f"{KEEP_PREFIX}{stem}"


def _proc(
    git: Git, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`git <args>` through the Git's runner, with its exit status (never raises on it)."""
    try:
        if env is None:
            return git.runner(["git", *args], cwd=cwd or git.root)
        return git.runner(["git", *args], cwd=cwd or git.root, env=env)
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None


def _must(git: Git, *args: str, cwd: Path | None = None) -> str:
    """`git <args>` with the scratch config; stdout, or GitError naming the subcommand."""
    proc = _proc(git, *SCRATCH_CONFIG, *args, cwd=cwd)
    if proc.returncode != 0:
        raise GitError(f"git {args[0]} failed: {_last_line(proc)}", args=list(args))
    return (proc.stdout or b"").decode(errors="replace")


def _last_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    text = (proc.stderr or b"").decode(errors="replace").strip()
    text = text or (proc.stdout or b"").decode(errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {proc.returncode}"


# -- looking ---------------------------------------------------------------------


def changed_files(git: Git, path: Path, *, untracked: bool = True) -> list[str]:
    """Files with uncommitted changes in the checkout at `path` (ignored files never count)."""
    out = git.run(
        "status",
        "--porcelain=v1",
        "-z",
        "--ignore-submodules=none",
        f"--untracked-files={'all' if untracked else 'no'}",
        cwd=path,
    )
    files: list[str] = []
    items = iter(out.split("\0"))
    for entry in items:
        if not entry:
            continue
        files.append(entry[3:])
        if entry[0] in "RC":
            next(items, None)  # a rename's source path follows
    return files


def checkout_of(git: Git, branch: str) -> Path | None:
    """The worktree (main checkout or linked) that has `branch` checked out, if any."""
    for entry in git.worktrees():
        if entry.get("branch") == branch:
            if "prunable" in entry or not Path(entry["path"]).is_dir():
                raise Conflict(
                    f"branch {branch} is checked out in {entry['path']}, a worktree whose folder"
                    " is gone: run `git worktree prune` first",
                    branch=branch,
                    path=str(entry["path"]),
                )
            return Path(entry["path"])
    return None


def unique_commits(git: Git, ref: str, *, besides: str | None = None) -> int:
    """Commits reachable from `ref` and from no branch (but `besides`), tag, remote branch
    or kept ref of ours."""
    args = ["rev-list", "--count", ref, "--not"]
    if besides is not None:
        # --branches matches short names; the exclusions apply to the next --branches only.
        args += [f"--exclude={besides}", f"--exclude={heads(besides)}"]
    args += ["--branches", "--tags", "--remotes", "--glob=refs/orchestra/*", "--"]
    return int(git.run(*args).strip() or 0)


def first_lines(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# -- diff ------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Diff:
    base: str  # the commit the task started from
    tip: str  # the ref diffed (the branch, or the kept ref of a merged task)
    tip_sha: str
    committed: str  # base..tip
    checkout: Path | None  # where the branch is checked out: its uncommitted changes follow
    uncommitted: str
    untracked: tuple[str, ...]
    truncated: bool


def diff(
    git: Git,
    *,
    base: str,
    tip: str,
    checkout: Path | None,
    stat: bool = False,
    name_only: bool = False,
    color: bool = False,
    limit: int = DIFF_LIMIT,
) -> Diff:
    """What the task changed since `base`, and what its checkout holds uncommitted."""
    fmt = ["--stat"] if stat else ["--name-only"] if name_only else []
    colour = "--color=always" if color else "--no-color"
    tip_sha = git.commit_of(tip)
    if tip_sha is None:
        raise NotFound(f"{tip} does not exist", ref=tip)
    committed = git.run("diff", colour, *fmt, base, tip_sha, "--")
    uncommitted = ""
    untracked: tuple[str, ...] = ()
    if checkout is not None:
        uncommitted = git.run("diff", colour, *fmt, "HEAD", "--", cwd=checkout)
        listed = git.run("ls-files", "--others", "--exclude-standard", "-z", cwd=checkout)
        untracked = tuple(name for name in listed.split("\0") if name)
        if not (stat or name_only):
            for name in untracked[:UNTRACKED_DIFFS]:
                if len(uncommitted) > limit:
                    break
                proc = _proc(
                    git, "diff", "--no-index", colour, "--", "/dev/null", name, cwd=checkout
                )
                uncommitted += (proc.stdout or b"").decode(errors="replace")
    truncated = len(committed) > limit or len(uncommitted) > limit
    return Diff(
        base=base,
        tip=tip,
        tip_sha=tip_sha,
        committed=committed[:limit],
        checkout=checkout,
        uncommitted=uncommitted[:limit],
        untracked=untracked,
        truncated=truncated,
    )


# -- merge -----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Changed:
    """One file a merge changes on the target, with its lines (None for a binary file)."""

    path: str
    added: int | None
    deleted: int | None


@attrs.frozen(kw_only=True)
class MergePlan:
    """What a merge will do, checked before anything changes."""

    stem: str  # the task's {id}-{slug}
    branch: str  # the task branch
    target: str  # the branch to update
    strategy: str
    base: str  # where the task's own changes start (its worktree's base_sha)
    branch_tip: str
    target_tip: str
    holder: Path | None  # where the task branch is checked out
    checkout: Path | None  # where the target is checked out (updated there)
    uncommitted: tuple[str, ...]  # files to commit first (include_uncommitted)
    commits: int  # the task's own commits (base..tip) the target does not have
    base_commits: int  # base commits the target lacks: only a true merge brings them
    files: tuple[Changed, ...]  # what lands on the target (committed changes)

    def describe(self) -> dict[str, Any]:
        return {
            "branch": self.branch,
            "target": self.target,
            "strategy": self.strategy,
            "base_sha": self.base,
            "branch_sha": self.branch_tip,
            "before": self.target_tip,
            "checkout": None if self.checkout is None else str(self.checkout),
            "uncommitted": list(self.uncommitted),
            "commits": self.commits,
            "base_commits": self.base_commits,
            "brings_base_commits": self.strategy == "merge" and self.base_commits > 0,
            "files": [attrs.asdict(f) for f in self.files],
        }


def plan_merge(
    git: Git,
    *,
    stem: str,
    branch: str,
    target: str,
    strategy: str,
    base: str,
    worktree: Path,
    include_uncommitted: bool,
) -> MergePlan:
    """Check a merge can go ahead (names, branches, clean checkouts); change nothing."""
    names.check_branch(target, "into")
    if strategy not in MERGE_STRATEGIES:
        raise InvalidParams(
            f"unknown strategy {strategy!r}: use one of {', '.join(MERGE_STRATEGIES)}",
            field="strategy",
        )
    if target == branch:
        raise InvalidParams(
            f"cannot merge {branch} into itself: choose another branch",
            field="into",
            hint=[hints.move("merge", into=hints.BRANCH)],
        )
    branch_tip = git.commit_of(heads(branch))
    if branch_tip is None:
        raise NotFound(
            f"the task has no branch {branch}: start it first, or it was already cleaned up",
            branch=branch,
        )
    target_tip = git.commit_of(heads(target))
    if target_tip is None:
        raise NotFound(
            f"branch {target!r} does not exist: create it first (git branch {target}), or"
            " merge into another",
            branch=target,
            hint=[hints.move("merge", into=hints.BRANCH)],
        )
    holder = checkout_of(git, branch)
    uncommitted: list[str] = []
    # The task's own worktree must hold nothing uncommitted (it would be left out). A
    # checkout of the branch elsewhere is a person's: it is neither read nor touched.
    if holder is not None and holder.resolve() == worktree.resolve():
        uncommitted = changed_files(git, holder)
        if uncommitted and not include_uncommitted:
            raise DirtyWorktree(
                f"the task's worktree {holder} has uncommitted changes in {len(uncommitted)}"
                f" file(s): {first_lines(uncommitted)}; commit them there, or have the merge"
                " commit them first",
                path=str(holder),
                files=uncommitted,
                hint=[hints.move("merge", include_uncommitted=True)],
            )
    checkout = checkout_of(git, target)
    if checkout is not None:
        dirty = changed_files(git, checkout, untracked=False)
        if dirty:
            raise DirtyWorktree(
                f"{target} is checked out in {checkout}, which has uncommitted changes in"
                f" {len(dirty)} file(s): {first_lines(dirty)}; commit or stash them there, or"
                " merge into another branch",
                path=str(checkout),
                files=dirty,
                branch=target,
                hint=[hints.move("merge", into=hints.BRANCH)],
            )
    base = _own_base(git, base, branch_tip, branch)
    shared = _merge_base(git, target_tip, branch_tip)
    if shared is not None and _descends(git, shared, base):
        # The target is ahead of the base and the task merged (some of) it in, to resolve
        # a conflict: what it merged is not its own change.
        base = shared
    # A true merge changes what lies between the merge base and the tip; the others, the
    # task's own changes only.
    since = (shared or base) if strategy == "merge" else base
    return MergePlan(
        stem=stem,
        branch=branch,
        target=target,
        strategy=strategy,
        base=base,
        branch_tip=branch_tip,
        target_tip=target_tip,
        holder=holder,
        checkout=checkout,
        uncommitted=tuple(uncommitted),
        commits=_count(git, branch_tip, f"^{base}", f"^{target_tip}"),
        base_commits=_count(git, base, f"^{target_tip}"),
        files=changed_between(git, since, branch_tip),
    )


def _own_base(git: Git, base: str, tip: str, branch: str) -> str:
    """Where the task's own commits start: `base`, or, if the branch was rewritten so that
    it no longer descends from it, the last commit the two share."""
    shared = _merge_base(git, base, tip)
    if shared is None:
        raise Conflict(
            f"{branch} shares no history with {base[:12]}, the commit the task started from:"
            " merge it with git yourself",
            branch=branch,
            base_sha=base,
        )
    return shared


def _descends(git: Git, commit: str, ancestor: str) -> bool:
    return commit != ancestor and git.ok("merge-base", "--is-ancestor", ancestor, commit)


def _merge_base(git: Git, one: str, other: str) -> str | None:
    proc = _proc(git, "merge-base", one, other, "--")
    out = (proc.stdout or b"").decode().strip()
    return out if proc.returncode == 0 and out else None


def _count(git: Git, *revs: str) -> int:
    return int(git.run("rev-list", "--count", *revs, "--").strip() or 0)


def changed_between(git: Git, old: str, new: str) -> tuple[Changed, ...]:
    """The files `git diff old new` changes, with their added and deleted lines."""
    out = git.run("diff", "--no-color", "--no-renames", "--numstat", "-z", old, new, "--")
    files: list[Changed] = []
    for entry in out.split("\0"):
        added, _, rest = entry.partition("\t")
        deleted, _, path = rest.partition("\t")
        if path:
            files.append(
                Changed(
                    path=path,
                    added=None if added == "-" else int(added),
                    deleted=None if deleted == "-" else int(deleted),
                )
            )
    return tuple(files)


@attrs.frozen(kw_only=True)
class Merged:
    plan: MergePlan
    source: str  # the commit merged: the branch tip, or the commit of uncommitted changes
    after: str  # the target's new tip (== plan.target_tip: it already had everything)
    kept: str  # the ref that keeps `source` reachable

    @property
    def changed(self) -> bool:
        return self.after != self.plan.target_tip

    def describe(self) -> dict[str, Any]:
        return {
            **self.plan.describe(),
            "branch_sha": self.source,
            "after": self.after,
            "changed": self.changed,
            "kept_ref": self.kept,
            "committed_uncommitted": self.source != self.plan.branch_tip,
        }


def merge(git: Git, plan: MergePlan, *, message: str, scratch_dir: Path) -> Merged:
    """Do the planned merge (see the module docstring); on any failure nothing changed."""
    source = _source(git, plan)
    after = _compute(git, plan, source, message, scratch_dir)
    if after != plan.target_tip:
        _advance(git, plan, after)
        crash_point("merge:advanced")
    kept = keep_ref(plan.stem)
    git.run("update-ref", "-m", f"orchestra merge into {plan.target}", kept, source)
    if source != plan.branch_tip:
        assert plan.holder is not None
        git.run(
            "update-ref",
            "-m",
            "orchestra merge: commit uncommitted changes",
            heads(plan.branch),
            source,
            plan.branch_tip,
        )
        git.run("reset", "--quiet", cwd=plan.holder)  # index := the new HEAD; files untouched
    return Merged(plan=plan, source=source, after=after, kept=kept)


def try_merge(git: Git, plan: MergePlan, *, message: str, scratch_dir: Path) -> None:
    """Make the planned merge's result and throw it away: raises what `merge` would (a
    conflict above all); changes no ref, index or file."""
    _compute(git, plan, _source(git, plan), message, scratch_dir)


def _source(git: Git, plan: MergePlan) -> str:
    """What is merged: the branch tip, or a commit of the uncommitted changes on it (that
    no ref names yet)."""
    if not plan.uncommitted:
        return plan.branch_tip
    assert plan.holder is not None
    return commit_uncommitted(
        git,
        plan.holder,
        plan.branch_tip,
        f"Uncommitted changes of {plan.branch}\n\nCommitted by `orchestra merge"
        " --include-uncommitted`.\n",
    )


def _compute(git: Git, plan: MergePlan, source: str, message: str, scratch_dir: Path) -> str:
    """The merged commit, made in a scratch worktree removed afterwards, whatever happens."""
    scratch = scratch_dir / f"{SCRATCH_PREFIX}{plan.stem}-{secrets.token_hex(4)}"
    check_path(scratch_dir, scratch)  # in the real worktrees/, not through a link
    start = source if plan.strategy == "rebase" else plan.target_tip
    scratch_dir.mkdir(parents=True, exist_ok=True)
    _must(git, "worktree", "add", "--detach", "--quiet", "--", str(scratch), start)
    try:
        after = _combine(git, plan, scratch, source, message)
        crash_point("merge:combined")  # a scratch worktree left behind: gc removes it
        return after
    finally:
        drop_scratch(git, scratch)


def commit_uncommitted(git: Git, worktree: Path, parent: str, message: str) -> str:
    """A commit of everything in `worktree` (as `git add --all` sees it) on top of `parent`,
    made through a private copy of the index: no ref, index or file changes."""
    index = Path(
        git.run("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=worktree).strip()
    )
    with tempfile.TemporaryDirectory(prefix="orchestra-index-") as tmp:
        private = Path(tmp) / "index"
        if index.is_file():
            shutil.copyfile(index, private)
        env = {**os.environ, "GIT_INDEX_FILE": str(private)}
        for args in (("add", "--all"), ("write-tree",)):
            proc = _proc(git, *args, cwd=worktree, env=env)
            if proc.returncode != 0:
                raise GitError(
                    f"cannot commit the uncommitted changes of {worktree}: {_last_line(proc)}"
                )
        tree = (proc.stdout or b"").decode().strip()
        msg = Path(tmp) / "message"
        msg.write_text(message, encoding="utf-8")
        return git.run("commit-tree", tree, "-p", parent, "-F", str(msg), cwd=worktree).strip()


def _combine(git: Git, plan: MergePlan, scratch: Path, source: str, message: str) -> str:
    """Make the merged commit in the scratch worktree; return it (or the target's tip when
    there is nothing to merge). Raises MergeConflict listing the conflicting files."""
    with tempfile.TemporaryDirectory(prefix="orchestra-msg-") as tmp:
        msg = Path(tmp) / "message"
        msg.write_text(message, encoding="utf-8")
        if plan.strategy == "squash":
            # The task's own changes as one commit on its base, picked onto the target: a
            # three-way merge whose base is the task's base, whatever the target holds.
            change = git.run(
                "commit-tree",
                "--no-gpg-sign",
                f"{source}^{{tree}}",
                "-p",
                plan.base,
                "-F",
                str(msg),
            ).strip()
            proc = _proc(git, *SCRATCH_CONFIG, "cherry-pick", "--no-commit", change, cwd=scratch)
            _check(git, plan, scratch, proc)
            staged = _proc(git, "diff", "--cached", "--quiet", cwd=scratch)
            if staged.returncode == 0:
                return plan.target_tip  # the target already has all of it
            _must(git, "commit", "--quiet", "--no-verify", "-F", str(msg), cwd=scratch)
        elif plan.strategy == "merge":
            proc = _proc(
                git,
                *SCRATCH_CONFIG,
                "merge",
                "--no-ff",
                "--no-edit",
                "--no-verify",
                "-F",
                str(msg),
                source,
                cwd=scratch,
            )
            _check(git, plan, scratch, proc)
        else:
            # --onto with the base as upstream: the task's commits only, not the base's.
            proc = _proc(
                git,
                *SCRATCH_CONFIG,
                "rebase",
                "--quiet",
                "--onto",
                plan.target_tip,
                plan.base,
                cwd=scratch,
            )
            _check(git, plan, scratch, proc)
    after = git.run("rev-parse", "--verify", "HEAD^{commit}", cwd=scratch).strip()
    if after != plan.target_tip and not git.ok(
        "merge-base", "--is-ancestor", plan.target_tip, after
    ):
        raise GitError(f"the {plan.strategy} result {after[:12]} does not descend from the target")
    return after


def _check(
    git: Git, plan: MergePlan, scratch: Path, proc: subprocess.CompletedProcess[bytes]
) -> None:
    if proc.returncode == 0:
        return
    listed = _proc(git, "diff", "--name-only", "-z", "--diff-filter=U", cwd=scratch)
    files = sorted({f for f in (listed.stdout or b"").decode(errors="replace").split("\0") if f})
    if files:
        if plan.base_commits and plan.strategy != "merge":
            how = (
                f"The task's changes do not apply to {plan.target}, which lacks"
                f" {plan.base_commits} commit(s) of the base the task started from: bring"
                f" them into {plan.target} first, or pick the changes by hand"
                f" (git cherry-pick {plan.base[:12]}..{plan.branch_tip[:12]})"
            )
        else:
            how = (
                f"Resolve it on the task's branch (for instance `git merge {plan.target}` in"
                " its worktree), then merge again"
            )
        raise MergeConflict(
            f"merging {plan.branch} into {plan.target} ({plan.strategy}) conflicts in"
            f" {len(files)} file(s): {first_lines(files, 10)}; nothing was changed. {how}",
            files=files,
            target=plan.target,
            strategy=plan.strategy,
        )
    raise GitError(
        f"git {plan.strategy} of {plan.branch} into {plan.target} failed: {_last_line(proc)};"
        " nothing was changed"
    )


def _advance(git: Git, plan: MergePlan, after: str) -> None:
    """Fast-forward the target from its planned tip to `after`, where it lives."""
    current = git.commit_of(heads(plan.target))
    if current != plan.target_tip:
        raise Conflict(
            f"{plan.target} moved while merging (now {str(current)[:12]}); nothing was changed:"
            " merge again",
            branch=plan.target,
        )
    checkout = checkout_of(git, plan.target)
    if checkout is None:
        # git refuses a branch that a checkout is rebasing or bisecting: it would put it back.
        proc = _proc(git, "branch", "--force", "--end-of-options", plan.target, after)
        if proc.returncode != 0:
            raise Conflict(
                f"git refused to move {plan.target}: {_last_line(proc)}; nothing was changed",
                branch=plan.target,
            )
        return
    dirty = changed_files(git, checkout, untracked=False)
    if dirty:
        raise DirtyWorktree(
            f"{plan.target} is checked out in {checkout}, which has uncommitted changes in"
            f" {len(dirty)} file(s): {first_lines(dirty)}; nothing was changed",
            path=str(checkout),
            files=dirty,
        )
    proc = _proc(
        git, "-c", "merge.autoStash=false", "merge", "--ff-only", "--quiet", after, cwd=checkout
    )
    if proc.returncode != 0:
        raise DirtyWorktree(
            f"git could not update {plan.target} in {checkout}: {_last_line(proc)};"
            " nothing was changed",
            path=str(checkout),
        )


def drop_scratch(git: Git, scratch: Path) -> None:
    """Remove a scratch worktree and its record, whatever state it was left in; one that
    became a symbolic link is left alone (removing it would empty what it points to)."""
    if scratch.is_symlink():
        return
    proc = _proc(git, "worktree", "remove", "--force", "--force", "--", str(scratch))
    if proc.returncode != 0 and scratch.exists():
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
