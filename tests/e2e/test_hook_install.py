"""Installing agents' hooks for real: files only in the daemon's state dir, the worktree
clean, the user's own agent settings untouched; our OpenCode plugin run by a real
JavaScript runtime; and a real agent CLI from npm firing a hook through our installation
(skipped, saying why, where none is installed).

The CLIs are looked up on PATH, then in ORCHESTRA_TEST_NPM (an `npm install --prefix`
directory, as .ci/run makes one). None needs an API key: the hooks used fire at start.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestra.adapters import hooks as agent_hooks
from orchestra.core import hooks
from orchestra.core.agents import BUILTIN_AGENTS, launch

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hooks"
RECORDER = (
    "import os, sys, time\n"
    "data = sys.stdin.read()\n"
    "name = f'{time.monotonic_ns()}-{sys.argv[1]}.json'\n"
    "with open(os.path.join(os.environ['HOOK_RECORD_DIR'], name), 'w') as f:\n"
    "    f.write(data)\n"
)


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd` and return its output."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def user(tmp_path: Path) -> dict[str, str]:
    """An environment whose HOME holds the user's own settings for every agent, and a
    state dir of its own."""
    home = tmp_path / "home"
    files = {
        ".claude/settings.json": '{"hooks": {"Stop": [{"hooks": [{"type": "command", '
        '"command": "their-stop"}]}]}}\n',
        ".gemini/settings.json": '{"hooks": {"AfterAgent": []}}\n',
        ".codex/config.toml": 'model = "o3"\n',
        ".config/opencode/opencode.json": '{"plugin": ["their-plugin"]}\n',
    }
    for name, text in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
    return {
        "HOME": str(home),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "PATH": os.environ.get("PATH", ""),
    }


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root` with its bytes and modification time."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini", "opencode", "aider", "demo"])
def test_installing_writes_only_in_the_runs_state_dir(
    agent: str, tmp_path: Path, user: dict[str, str]
) -> None:
    """Each built-in profile's hooks: files (if any) only in the run's own 0700 directory
    under the daemon's state dir, the worktree's `git status` clean, every file of the
    user's home unchanged; and the directory gone once the run ends."""
    worktree = tmp_path / "wt"
    worktree.mkdir()
    git(worktree, "init", "-q")
    (worktree / "README").write_text("hi\n")
    git(worktree, "add", ".")
    git(worktree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    home = Path(user["HOME"])
    before = snapshot(home)
    spec = launch(
        BUILTIN_AGENTS[agent],
        prompt="do it",
        session_id=None,
        resume=False,
        python="py",
        shell="sh",
    )
    installed = agent_hooks.install(
        spec, BUILTIN_AGENTS[agent].hooks, run_id="run1", python=sys.executable, environ=user
    )
    where = agent_hooks.run_dir("run1", user)
    assert where == tmp_path / "state" / "orchestra" / "runs" / "run1"
    plan = hooks.install(
        BUILTIN_AGENTS[agent].hooks,
        agent_hooks.hook_argv(sys.executable),
        where,
        agent_hooks.found(BUILTIN_AGENTS[agent].hooks, user),
    )
    assert installed.argv == hooks.add_args(spec.argv, plan.args)
    assert installed.env == {**spec.env, **plan.env}
    if plan.files:
        assert sorted(p.name for p in where.iterdir()) == sorted(plan.files)
        assert (where.stat().st_mode & 0o777) == 0o700
        for name, text in plan.files.items():
            assert (where / name).read_text() == text
    else:
        assert not where.exists()
    assert git(worktree, "status", "--porcelain", "--ignored") == ""
    assert snapshot(home) == before
    agent_hooks.remove("run1", user)
    assert not where.exists()


def test_the_gemini_defaults_it_replaces_are_kept(tmp_path: Path, user: dict[str, str]) -> None:
    """A system defaults file Gemini CLI would have read (named by the variable we set) is
    read, never written, and its settings are in ours."""
    theirs = tmp_path / "etc" / "system-defaults.json"
    theirs.parent.mkdir()
    theirs.write_text('{"general": {"vimMode": true}}\n')
    env = {**user, hooks.GEMINI_DEFAULTS_VAR: str(theirs)}
    spec = launch(
        BUILTIN_AGENTS["gemini"], prompt="x", session_id=None, resume=False, python="p", shell="s"
    )
    installed = agent_hooks.install(
        spec, "gemini", run_id="run2", python=sys.executable, environ=env
    )
    ours = Path(installed.env[hooks.GEMINI_DEFAULTS_VAR])
    assert ours.parent == agent_hooks.run_dir("run2", env)
    settings = json.loads(ours.read_text())
    assert settings["general"] == {"vimMode": True} and "SessionStart" in settings["hooks"]
    assert theirs.read_text() == '{"general": {"vimMode": true}}\n'


def test_a_users_own_codex_notify_is_kept(tmp_path: Path, user: dict[str, str]) -> None:
    """With a `notify` in the user's Codex config, Codex is started without ours."""
    Path(user["HOME"], ".codex", "config.toml").write_text('notify = ["my-notifier"]\n')
    spec = launch(
        BUILTIN_AGENTS["codex"], prompt="x", session_id=None, resume=False, python="p", shell="s"
    )
    installed = agent_hooks.install(
        spec, "codex", run_id="run3", python=sys.executable, environ=user
    )
    assert installed == spec


def recorder(tmp_path: Path) -> tuple[list[str], Path]:
    """A hook command that saves each payload as a file: its argv (without EVENT) and dir."""
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER)
    out = tmp_path / "recorded"
    out.mkdir()
    return [sys.executable, str(script)], out


def recorded(out: Path) -> list[tuple[str, dict[str, object]]]:
    """(event, payload) of each recorded hook call, in the order they came."""
    found = []
    for path in sorted(out.iterdir(), key=lambda p: int(p.name.split("-", 1)[0])):
        event = path.name.split("-", 1)[1].removesuffix(".json")
        found.append((event, json.loads(path.read_text())))
    return found


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_our_opencode_plugin_forwards_its_events_in_order(tmp_path: Path) -> None:
    """Run by node (as OpenCode's runtime would), the plugin passes the events we read to
    the hook, one process at a time and in order, and leaves out sub-agents' sessions and
    the events we ignore."""
    argv, out = recorder(tmp_path)
    plugin = tmp_path / "plugin.mjs"  # .mjs: node reads it as a module, as Bun does
    plugin.write_text(hooks.opencode_plugin(argv))
    events = [
        json.loads((FIXTURES / "opencode" / f"{name}.json").read_text())
        for name in (
            "session.created",
            "session.created.child",
            "session.status.busy",
            "permission.asked",
            "permission.replied",
            "session.idle",
        )
    ]
    child = events[1]["properties"]["sessionID"]
    events.insert(2, {"type": "session.idle", "properties": {"sessionID": child}})  # child's
    events.insert(3, {"type": "message.part.updated", "properties": {"sessionID": "x"}})
    driver = tmp_path / "drive.mjs"
    driver.write_text(
        f"import {{ OrchestraActivity }} from {json.dumps(plugin.as_uri())}\n"
        "const hooks = await OrchestraActivity({})\n"
        f"for (const event of {json.dumps(events)}) await hooks.event({{ event }})\n"
    )
    env = {**os.environ, "HOOK_RECORD_DIR": str(out)}
    subprocess.run(["node", str(driver)], env=env, check=True, timeout=60)
    deadline = time.monotonic() + 30
    while len(list(out.iterdir())) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)  # node exits with the last hook still queued: wait for it
    time.sleep(0.3)
    got = recorded(out)
    assert [event for event, _ in got] == [
        "session.created",
        "session.status",
        "permission.asked",
        "permission.replied",
        "session.idle",
    ]
    assert [hooks.interpret("opencode", e, p) for e, p in got] == [
        hooks.Report(None, "", "ses_db074024cffe573qEkAP30dvj3"),
        hooks.Report("working", "prompt", "ses_db074024cffe573qEkAP30dvj3"),
        hooks.Report("waiting", "permission", "ses_db074024cffe573qEkAP30dvj3"),
        hooks.Report("working", "tool", "ses_db074024cffe573qEkAP30dvj3"),
        hooks.Report("waiting", "turn-done", "ses_db074024cffe573qEkAP30dvj3"),
    ]


def find_cli(name: str) -> str | None:
    """An installed agent CLI: on PATH, else under $ORCHESTRA_TEST_NPM/node_modules/.bin."""
    found = shutil.which(name)
    prefix = os.environ.get("ORCHESTRA_TEST_NPM")
    if found is None and prefix:
        candidate = Path(prefix) / "node_modules" / ".bin" / name
        found = str(candidate) if candidate.exists() else None
    return found


def run_in_pty(argv: list[str], env: dict[str, str], cwd: Path, until: Path, limit: float) -> None:
    """Run `argv` in a real PTY until a file appears in `until` (or `limit` seconds), then
    kill it. Its output is read (and dropped) so it never blocks on a full terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline and not any(until.iterdir()):
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    os.read(fd, 65536)
                except OSError:
                    break
        time.sleep(0.5)  # let a second hook (the first prompt's) land too
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


CLAUDE = find_cli("claude")


@pytest.mark.skipif(
    CLAUDE is None,
    reason="Claude Code is not installed (npm @anthropic-ai/claude-code; on PATH or in"
    " $ORCHESTRA_TEST_NPM)",
)
def test_real_claude_code_fires_its_session_start_hook_through_our_settings(
    tmp_path: Path,
) -> None:
    """Claude Code, started as the built-in profile starts it with our `--settings`, calls
    the hook command with its SessionStart payload (no API key needed), whose session id
    is the one we chose; the user's own settings are untouched and the worktree clean."""
    assert CLAUDE is not None
    home = tmp_path / "home"
    worktree = tmp_path / "wt"
    worktree.mkdir()
    git(worktree, "init", "-q")
    (worktree / "README").write_text("hi\n")
    git(worktree, "add", ".")
    git(worktree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    # The user's Claude: onboarding done, this folder trusted, a Stop hook of their own.
    home.mkdir()
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "hasCompletedOnboarding": True,
                "projects": {str(worktree): {"hasTrustDialogAccepted": True}},
            }
        )
    )
    (home / ".claude").mkdir()
    user_settings = home / ".claude" / "settings.json"
    user_settings.write_text('{"hooks": {}}\n')
    argv, out = recorder(tmp_path)
    spec = launch(
        BUILTIN_AGENTS["claude"], prompt="hello", session_id=None, resume=False, python="", shell=""
    )
    plan = hooks.install("claude", argv, tmp_path / "run")
    command = [CLAUDE, *hooks.add_args(spec.argv, plan.args)[1:]]
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "HOOK_RECORD_DIR": str(out),
        "DISABLE_AUTOUPDATER": "1",
    }
    run_in_pty(command, env, worktree, out, limit=60)
    got = recorded(out)
    assert got, "Claude Code ran no hook"
    event, data = got[0]
    assert event == "SessionStart"
    report = hooks.interpret("claude", event, data)
    assert report == hooks.Report(None, "", spec.session_id)
    assert user_settings.read_text() == '{"hooks": {}}\n'
    assert git(worktree, "status", "--porcelain") == ""


@pytest.mark.parametrize("kind", ["claude", "gemini", "aider"])
def test_a_failing_hook_never_blocks_the_agent_nor_talks_to_it(kind: str, tmp_path: Path) -> None:
    """Run by a real shell, as the agent runs it, a hook command that prints and exits 2
    (which would block a tool call in Claude Code and Gemini CLI) exits 0 with no output."""
    bad = [sys.executable, "-c", "import sys; print('noise'); sys.exit(2)"]
    plan = hooks.install(kind, bad, tmp_path)
    if kind == "claude":
        settings = json.loads(plan.args[0].removeprefix("--settings="))
        line = settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    elif kind == "gemini":
        settings = json.loads(plan.files[hooks.GEMINI_FILE])
        line = settings["hooks"]["BeforeAgent"][0]["hooks"][0]["command"]
    else:
        line = plan.args[1].removeprefix("--notifications-command=")
    done = subprocess.run(["/bin/sh", "-c", line], input="{}", capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
