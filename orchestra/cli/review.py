"""Review commands: diff, merge, gc, shell-hook (`path` lives with the task commands).

Each command parses, calls the daemon (`task.diff`, `task.merge`, `project.gc`)
and renders; the git work and every safety check are the daemon's
(daemon/review.py, adapters/merging.py, adapters/cleanup.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from orchestra.cli.common import JSON, YES, errors, own_task_argument, session
from orchestra.cli.output import abort, emit_json, printable, render_slugs
from orchestra.cli.session import Session
from orchestra.core.errors import EXIT_ERROR, EXIT_USAGE, OrchestraError

STRATEGIES = ("squash", "merge", "rebase")
SHELLS = ("bash", "zsh", "fish")


def complete_task(incomplete: str) -> list[str]:
    """Slugs of the project's unmerged tasks, for shell completion (nothing on errors)."""
    return [s for s in _slugs() if s.startswith(incomplete)]


def _slugs() -> list[str]:
    project = os.environ.get("ORCHESTRA_PROJECT")
    s = Session(Path(project) if project else None)
    try:
        return render_slugs(s.call("task.list")).split()
    except (OrchestraError, OSError):
        return []
    finally:
        s.close()


TASK = typer.Argument(
    ...,
    help="The task: its id (3) or its slug (fix-login).",
    show_default=False,
    autocompletion=complete_task,
)
OWN_TASK = own_task_argument(autocompletion=complete_task)

# -- diff -------------------------------------------------------------------------


def _pager(cwd: Path) -> str:
    """The pager git would use (GIT_PAGER, core.pager, PAGER, less)."""
    try:
        proc = subprocess.run(
            ["git", "var", "GIT_PAGER"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("PAGER", "less")
    return proc.stdout.strip() if proc.returncode == 0 else os.environ.get("PAGER", "less")


def page(text: str, cwd: Path) -> None:
    """Show `text` through the pager on a terminal; write it plainly otherwise."""
    pager = _pager(cwd) if sys.stdout.isatty() else "cat"
    if pager in ("", "cat"):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")  # as git does: quit if one screen, colours, no init
    env.setdefault("LV", "-c")
    try:
        # A pager setting is a shell command line, and git runs it with the shell too.
        proc = subprocess.Popen(pager, shell=True, stdin=subprocess.PIPE, env=env)  # noqa: S602
    except OSError:
        sys.stdout.write(text)
        return
    assert proc.stdin is not None
    try:
        proc.stdin.write(text.encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the person quit the pager early
    proc.wait()


def render_diff(d: dict[str, Any], *, stat: bool, name_only: bool, color: bool) -> str:
    """The committed diff, then the checkout's uncommitted changes under a marked header."""
    text = str(d["committed"])
    untracked = d["untracked"]
    if d["uncommitted"] or untracked:
        mark = (
            f"# === uncommitted changes in {d['checkout']} (not committed on {d['branch']}) ===\n"
        )
        if color:
            mark = f"\x1b[1;33m{mark[:-1]}\x1b[m\n"
        extra = d["uncommitted"]
        if stat:
            extra += "".join(f" {name} | untracked\n" for name in untracked)
        elif name_only:
            extra += "".join(f"{name} (untracked)\n" for name in untracked)
        text += ("\n" if text else "") + mark + extra
    if d["truncated"]:
        text += (
            "# ... truncated: the diff is larger than one answer carries; run"
            f" git diff {d['base_sha']} {d['tip']}\n"
        )
    return text


def diff(
    ctx: typer.Context,
    task: str | None = OWN_TASK,
    stat: bool = typer.Option(False, "--stat", help="A summary: files and lines changed."),
    name_only: bool = typer.Option(False, "--name-only", help="Only the names of changed files."),
    as_json: bool = JSON,
) -> None:
    """Show what a task changed: its branch against the commit it started from.

    Uncommitted changes in the task's worktree follow, under a marked header. Paged on a
    terminal (git's pager: $GIT_PAGER, core.pager, $PAGER, less), plain when piped.

    Example: orchestra diff fix-login --stat
    """
    s = session(ctx)
    color = sys.stdout.isatty() and not as_json and "NO_COLOR" not in os.environ
    with errors(as_json):
        task = s.task_or_own(task, "diff TASK", as_json=as_json)
        d = s.call("task.diff", task=task, stat=stat, name_only=name_only, color=color)
    if as_json:
        emit_json(d)
        return
    page(render_diff(d, stat=stat, name_only=name_only, color=color), s.project)


# -- merge ------------------------------------------------------------------------


def _short(sha: str | None) -> str:
    return (sha or "")[:12]


def _commits(n: int) -> str:
    return f"{n} commit{'s' if n != 1 else ''}"


def _landing(plan: dict[str, Any]) -> str:
    """What lands on the target: the task's commits, and with a true merge its history."""
    what = f"its {_commits(plan['commits'])}"
    if plan["strategy"] == "squash" and plan["commits"] > 1:
        what += " squashed into one"
    if plan["uncommitted"]:
        what += f" and {len(plan['uncommitted'])} uncommitted file(s), committed first"
    if plan["brings_base_commits"]:
        what += (
            f", and, a true merge bringing the task's history, {_commits(plan['base_commits'])}"
            f" of its base that {plan['target']} lacks"
        )
    return what


def _question(plan: dict[str, Any]) -> str:
    stop = f"Stop the agent of task {plan['task']}, then merge" if plan["stops_agent"] else None
    where = f", updating the checkout at {plan['checkout']}" if plan["checkout"] else ""
    then = ", then remove its worktree and branch" if plan["cleanup"] else ""
    head = stop or f"Merge task {plan['task']}"
    return f"{head} ({_landing(plan)}) into {plan['target']} by {plan['strategy']}{where}{then}?"


def render_plan(plan: dict[str, Any]) -> str:
    """`merge --dry-run`: what would land where, and the files it changes."""
    lines = [
        f"would merge task {plan['task']} into {plan['target']} by {plan['strategy']}:"
        f" {_landing(plan)} ({_short(plan['base_sha'])}..{_short(plan['branch_sha'])})"
    ]
    if plan["base_commits"] and not plan["brings_base_commits"]:
        lines.append(
            f"{plan['target']} lacks {_commits(plan['base_commits'])} of the task's base:"
            f" they stay out ({plan['strategy']} carries the task's own changes only)"
        )
    if plan["stops_agent"]:
        lines.append("its agent is running: it would be stopped first")
    if plan["checkout"]:
        lines.append(f"the checkout at {plan['checkout']} would be updated")
    files = plan["files"]
    lines.append(f"{len(files)} file(s) changed:" if files else "no committed file changes")
    for f in files:
        counts = "binary" if f["added"] is None else f"+{f['added']} -{f['deleted']}"
        lines.append(f"  {f['path']} | {counts}")
    lines += [f"  {name} | uncommitted" for name in plan["uncommitted"]]
    if plan["cleanup"]:
        lines.append("then its worktree would be removed and its branch deleted")
    lines.append("(dry run: nothing was changed)")
    return "\n".join(lines)


def render_merge(result: dict[str, Any]) -> str:
    m, task = result["merge"], result["task"]
    if m["changed"]:
        lines = [
            f"merged task {task['ref']} into {m['target']} by {m['strategy']}:"
            f" {_short(m['before'])}..{_short(m['after'])}"
        ]
    else:
        lines = [f"task {task['ref']}: {m['target']} already has all of it; marked merged"]
    if m.get("stopped_agent"):
        lines.insert(0, f"stopped the agent of task {task['ref']} first")
    if m["committed_uncommitted"]:
        lines.append(f"committed the uncommitted changes first as {_short(m['branch_sha'])}")
    report = result.get("cleanup") or {}
    wt, branch = report.get("worktree"), report.get("branch")
    if wt:
        lines.append(
            f"removed worktree {wt['path']}"
            if wt["removed"]
            else f"kept worktree {wt['path']}: {wt.get('kept')}"
        )
    if branch:
        lines.append(
            f"deleted branch {branch['branch']} (its tip stays reachable as {m['kept_ref']})"
            if branch["deleted"]
            else f"kept branch {branch['branch']}: {branch.get('kept')}"
        )
    return "\n".join(printable(line) for line in lines)


def merge(
    ctx: typer.Context,
    task: str = TASK,
    into: str | None = typer.Option(
        None, "--into", help="The branch to merge into (default: the task's base branch)."
    ),
    strategy: str | None = typer.Option(
        None,
        "--strategy",
        "-s",
        help="squash (one commit), merge (a merge commit) or rebase (the task's commits on"
        " top); default: config merge.strategy (squash).",
        show_default=False,
    ),
    message: str | None = typer.Option(
        None,
        "--message",
        "-m",
        help="The commit message (default: the task's title and description).",
    ),
    include_uncommitted: bool = typer.Option(
        False,
        "--include-uncommitted",
        help="Commit the task worktree's uncommitted changes first (only if the merge works).",
    ),
    cleanup: bool | None = typer.Option(
        None,
        "--cleanup/--no-cleanup",
        help="Remove the worktree and branch afterwards (default: config merge.cleanup).",
        show_default=False,
    ),
    force: bool = typer.Option(
        False, "--force", help="Merge a task that is not completed or reviewed (stopped, failed)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only show what would land: commits, files; change nothing."
    ),
    yes: bool = YES,
    as_json: bool = JSON,
) -> None:
    """Merge a task's branch into its base branch (or --into BRANCH), safely.

    What lands is the task's own changes, since the commit it started from, whatever the
    target: squash and rebase never bring base commits the target lacks (a change that does
    not apply there is a conflict). A true merge (--strategy merge) brings the task's
    history, base commits included; the plan says how many.

    A running agent of the task is stopped first. The merge is made in a temporary
    worktree; the target branch then moves forward where it is: in its checkout when it is
    checked out (refused if that has uncommitted changes), else as a bare ref. A conflict
    changes nothing and lists the files.

    Then the task is `merged`, and (config merge.cleanup) its worktree is removed and its
    branch deleted; the merged tip stays reachable as refs/orchestra/merged/ID-SLUG.

    Asks first unless -y.

    Example: orchestra merge fix-login --into release --dry-run
    """
    if strategy is not None and strategy not in STRATEGIES:
        abort(
            f"unknown strategy {strategy!r}: use squash, merge or rebase",
            EXIT_USAGE,
            as_json=as_json,
        )
    s = session(ctx)
    params: dict[str, Any] = {
        "task": task,
        "force": force,
        "include_uncommitted": include_uncommitted,
    }
    for key, value in (("into", into), ("strategy", strategy), ("message", message)):
        if value is not None:
            params[key] = value
    if cleanup is not None:
        params["cleanup"] = cleanup
    with errors(as_json):
        plan = s.call("task.merge", dry_run=True, **params)
        if dry_run:
            if as_json:
                emit_json(plan)
            else:
                print(render_plan(plan))
            return
        s.confirm(_question(plan), yes, as_json=as_json)
        result = s.call("task.merge", **params)
    if as_json:
        emit_json(result)
    else:
        print(render_merge(result))


# -- gc ---------------------------------------------------------------------------


def _describe_action(a: dict[str, Any]) -> str:
    kind = str(a["kind"])
    if kind == "remove_worktree":
        return f"remove worktree {a['path']} (task {a['task']}; its teardown command first)"
    if kind == "delete_branch":
        text = f"delete branch {a['branch']} at {_short(a['sha'])} (task {a['task']})"
        if a["unique"]:
            text += f"; its {a['unique']} commit(s) on no other branch stay reachable by a ref"
        return text
    if kind == "archive_task":
        return f"archive task {a['task']} to {a['path']}"
    if kind == "drop_scratch":
        return f"remove {a['path']} (the scratch worktree of a merge that was interrupted)"
    if kind == "prune_worktrees":
        return "prune the git records of worktrees whose folders are gone: " + ", ".join(a["paths"])
    return kind


def render_gc(plan: dict[str, Any], results: list[dict[str, Any]] | None = None) -> str:
    lines: list[str] = []
    if results is None:
        if plan["actions"]:
            lines.append("gc will:")
            lines += [f"  {_describe_action(a)}" for a in plan["actions"]]
        else:
            lines.append("gc: nothing to clean up")
    else:
        by_key = {a["key"]: a for a in plan["actions"]}
        for res in results:
            what = _describe_action(by_key[res["key"]]) if res["key"] in by_key else res["key"]
            lines.append(f"done: {what}" if res["done"] else f"not done: {what}: {res['error']}")
    if plan["skipped"]:
        lines.append("kept:")
        lines += [f"  task {s['task']} ({s['what']}): {s['reason']}" for s in plan["skipped"]]
    if plan["orphans"]:
        lines.append("not Orchestra's to remove (no task):")
        lines += [f"  {o['kind']} {o['name']}: {o['detail']}" for o in plan["orphans"]]
    return "\n".join(printable(line) for line in lines)  # branch names, git's messages


def gc(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be done."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Also delete merged tasks' branches holding commits on no other branch (their"
        " tips are kept as refs/orchestra/merged/ID-SLUG).",
    ),
    yes: bool = YES,
    as_json: bool = JSON,
) -> None:
    """Clean up merged tasks: remove their worktrees and branches, archive their task files.

    Also prunes git's records of worktrees whose folders are gone, and lists (never
    touches) orchestra/* branches and worktree folders that belong to no task. Worktrees
    with uncommitted changes are always kept. Lists the plan and asks unless -y.

    Example: orchestra gc --dry-run
    """
    s = session(ctx)
    with errors(as_json):
        plan = s.call("project.gc", dry_run=True, force=force)
        if dry_run or not plan["actions"]:
            if as_json:
                emit_json(plan)
            else:
                print(render_gc(plan))
            return
        if not (as_json or yes):
            print(render_gc(plan))
        s.confirm("Go ahead?", yes, as_json=as_json)
        done = s.call("project.gc", force=force, only=[a["key"] for a in plan["actions"]])
    failed = [r for r in done["results"] if not r["done"]]
    if as_json:
        emit_json(done)
    else:
        print(render_gc(done, done["results"]))
    if failed:
        if not as_json:
            sys.stderr.write(f"orchestra: {len(failed)} gc step(s) not done (see above)\n")
        raise typer.Exit(EXIT_ERROR)


# -- shell-hook -------------------------------------------------------------------

HOOKS = {
    "bash": r"""# Orchestra shell hook (bash). `ocd TASK`: cd into a task's worktree.
ocd() {
    local dir
    dir="$(command orchestra path "$@")" || return
    if [ ! -d "$dir" ]; then
        printf 'ocd: %s does not exist yet: start the task first\n' "$dir" >&2
        return 1
    fi
    builtin cd -- "$dir"
}
_orchestra_ocd() {
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$(command orchestra shell-hook --slugs 2>/dev/null)" \
        -- "${COMP_WORDS[COMP_CWORD]}"))
}
complete -F _orchestra_ocd ocd
""",
    "zsh": r"""# Orchestra shell hook (zsh). `ocd TASK`: cd into a task's worktree.
ocd() {
    local dir
    dir="$(command orchestra path "$@")" || return
    if [[ ! -d $dir ]]; then
        print -ru2 -- "ocd: $dir does not exist yet: start the task first"
        return 1
    fi
    builtin cd -- "$dir"
}
_orchestra_ocd() {
    local -a slugs
    slugs=(${(f)"$(command orchestra shell-hook --slugs 2>/dev/null)"})
    compadd -a slugs
}
if (( $+functions[compdef] )); then
    compdef _orchestra_ocd ocd
fi
""",
    "fish": r"""# Orchestra shell hook (fish). `ocd TASK`: cd into a task's worktree.
function ocd --description "cd into an Orchestra task's worktree"
    set -l dir (command orchestra path $argv); or return
    if not test -d "$dir"
        echo "ocd: $dir does not exist yet: start the task first" >&2
        return 1
    end
    builtin cd $dir
end
complete --command ocd --no-files --arguments "(command orchestra shell-hook --slugs 2>/dev/null)"
""",
}


def detect_shell(environ: Mapping[str, str] = os.environ) -> str | None:
    name = Path(environ.get("SHELL", "")).name
    return name if name in SHELLS else None


def shell_hook(
    ctx: typer.Context,
    shell: str | None = typer.Argument(
        None, help="bash, zsh or fish (default: from $SHELL).", show_default=False
    ),
    slugs: bool = typer.Option(False, "--slugs", hidden=True, help="Print task slugs."),
) -> None:
    """Print `ocd TASK`, a shell function to cd into a task's worktree (slugs complete).

    Evaluate it in your shell's startup file:

    \b
    bash (~/.bashrc): eval "$(orchestra shell-hook bash)"
    zsh (~/.zshrc, after compinit): eval "$(orchestra shell-hook zsh)"
    fish (~/.config/fish/config.fish): orchestra shell-hook fish | source

    Example: eval "$(orchestra shell-hook)"
    """
    if slugs:  # what the completion functions call (cli/fast.py serves it too)
        with errors():
            print(render_slugs(session(ctx).call("task.list")))
        return
    name = shell or detect_shell()
    if name is None:
        abort(
            f"cannot tell your shell from SHELL={os.environ.get('SHELL', '')!r}: name it"
            " (orchestra shell-hook bash|zsh|fish)",
            EXIT_USAGE,
        )
    if name not in HOOKS:
        abort(f"unknown shell {name!r}: use bash, zsh or fish", EXIT_USAGE)
    sys.stdout.write(HOOKS[name])
