"""`orchestra shell-hook`: the `ocd` function really works in bash, zsh and fish, with task
slug completion; and the review commands' docs and command-line contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from orchestra.adapters.merging import DirtyWorktree, MergeConflict
from orchestra.core.config import MergeConfig
from orchestra.core.errors import EXIT_USAGE
from tests.cli.support import fails, ok
from tests.conftest import Env

# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = pytest.mark.shared_daemon

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def tasks(env: Env, project: Path) -> Path:
    """A project with task `alpha` started (its worktree exists) and `beta` a draft."""
    for slug in ("alpha", "beta"):
        ok(env, "new", slug, "-m", f"Do {slug}.", cwd=project)
    ok(env, "start", "alpha", cwd=project)
    return project


def shell(env: Env, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a shell with the `orchestra` of this checkout first on PATH."""
    path = f"{Path(sys.executable).parent}:{env.vars.get('PATH', '/usr/bin:/bin')}"
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**env.vars, "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bash_hook_cds_and_completes_slugs(env: Env, tasks: Path) -> None:
    """In bash, `ocd TASK` enters the worktree, completion offers task slugs, and a task
    without a worktree yet is a clear error."""
    script = """
eval "$(orchestra shell-hook bash)"
ocd alpha && pwd
COMP_WORDS=(ocd ""); COMP_CWORD=1; _orchestra_ocd; echo "all: ${COMPREPLY[*]}"
COMP_WORDS=(ocd be); _orchestra_ocd; echo "be: ${COMPREPLY[*]}"
complete -p ocd
ocd beta; echo "rc=$?"
"""
    proc = shell(env, ["bash", "--norc", "--noprofile", "-c", script], tasks)
    wt = tasks / ".orchestra" / "worktrees" / "1-alpha"
    assert proc.stdout.splitlines() == [
        str(wt),
        "all: alpha beta",
        "be: beta",
        "complete -F _orchestra_ocd ocd",
        "rc=1",
    ], proc.stderr
    assert "2-beta does not exist yet: start the task first" in proc.stderr


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_hook_cds_and_registers_completion(env: Env, tasks: Path) -> None:
    """In zsh (after compinit), `ocd TASK` enters the worktree and its completion function
    is registered."""
    script = """
autoload -Uz compinit && compinit -u -D
eval "$(orchestra shell-hook zsh)"
ocd alpha && pwd
print -r -- "completion: ${_comps[ocd]}"
"""
    proc = shell(env, ["zsh", "-f", "-c", script], tasks)
    wt = tasks / ".orchestra" / "worktrees" / "1-alpha"
    assert proc.stdout.splitlines() == [str(wt), "completion: _orchestra_ocd"], proc.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_hook_cds_and_completes_slugs(env: Env, tasks: Path) -> None:
    """In fish, `ocd TASK` enters the worktree and completion offers task slugs."""
    script = """
orchestra shell-hook fish | source
ocd alpha; and pwd
complete --do-complete "ocd "
"""
    proc = shell(env, ["fish", "--no-config", "-c", script], tasks)
    wt = tasks / ".orchestra" / "worktrees" / "1-alpha"
    assert proc.stdout.splitlines() == [str(wt), "alpha", "beta"], proc.stderr


def test_hook_follows_shell_and_refuses_unknown_ones(env: Env) -> None:
    """Without an argument the hook is for $SHELL's shell; an unknown shell exits 2."""
    assert "compdef _orchestra_ocd ocd" in ok(env, "shell-hook", extra={"SHELL": "/bin/zsh"})
    assert "complete --command ocd" in ok(env, "shell-hook", "fish")
    line = fails(env, EXIT_USAGE, "shell-hook", extra={"SHELL": "/bin/tcsh"})
    assert "SHELL='/bin/tcsh'" in line
    assert "use bash, zsh or fish" in fails(env, EXIT_USAGE, "shell-hook", "csh")


def test_slugs_are_the_same_on_both_paths(env: Env, tasks: Path) -> None:
    """`shell-hook --slugs` prints the same bytes from the fast path and through Typer."""
    fast = ok(env, "shell-hook", "--slugs", cwd=tasks)
    slow = ok(env, "shell-hook", "--slugs", cwd=tasks, extra={"ORCHESTRA_NO_FAST": "1"})
    assert fast == slow == "alpha\nbeta\n"


def test_merge_refuses_an_unknown_strategy_before_asking_the_daemon(env: Env) -> None:
    """A bad --strategy is a usage error (exit 2), named in one line."""
    line = fails(env, EXIT_USAGE, "merge", "x", "--strategy", "octopus", "-y")
    assert "unknown strategy 'octopus'" in line


def test_merge_settings_and_error_kinds_are_documented() -> None:
    """docs/config.md has a row per [merge] key; docs/api.md names the merge error kinds;
    docs/cli.md shows the hook for each shell."""
    config = (DOCS / "config.md").read_text()
    for field in attrs.fields(MergeConfig):
        assert f"| `merge.{field.name}` |" in config, field.name
    api = (DOCS / "api.md").read_text()
    for kind in (DirtyWorktree, MergeConflict):
        assert f"`{kind.kind}`" in api, kind.kind
    cli = (DOCS / "cli.md").read_text()
    for line in (
        'eval "$(orchestra shell-hook bash)"',
        'eval "$(orchestra shell-hook zsh)"',
        "orchestra shell-hook fish | source",
    ):
        assert line in cli
