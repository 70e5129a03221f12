"""Agents' hooks: what each kind installs (argv, env, files) and what each payload means."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path, PurePath
from typing import Any

import pytest

from orchestra.core import hooks
from orchestra.core.agents import BUILTIN_AGENTS, launch
from orchestra.core.hooks import Found, Report, add_args, install, interpret

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hooks"
HOOK = ["/opt/my env/bin/python3", "-m", "orchestra", "hook"]  # a space: quoting matters
# What follows the hook in a shell line: no output, exit 0, whatever happens.
SILENT = [">/dev/null", "2>&1", "||", "true"]
RUN_DIR = PurePath("/home/dev/.local/state/orchestra/runs/abc123")


def payload(kind: str, name: str) -> dict[str, Any]:
    """A recorded (or documented) payload from tests/fixtures/hooks/KIND/NAME.json."""
    data: dict[str, Any] = json.loads((FIXTURES / kind / f"{name}.json").read_text())
    return data


# --- what each kind installs ------------------------------------------------------------


def test_claude_gets_inline_settings_with_every_event_quoted_for_its_shell() -> None:
    """Claude Code gets one `--settings=JSON` argument whose hooks run our command for each
    event; the command line splits back (as its shell would) into our argv + the event,
    its output dropped and its status 0 whatever happens."""
    plan = install("claude", HOOK, RUN_DIR)
    assert plan.env == {} and plan.files == {}
    [arg] = plan.args
    assert arg.startswith("--settings=")
    settings = json.loads(arg.removeprefix("--settings="))
    assert set(settings) == {"hooks"}
    assert set(settings["hooks"]) == set(hooks.CLAUDE_EVENTS)
    for event, groups in settings["hooks"].items():
        [group] = groups
        [hook] = group["hooks"]
        assert hook["type"] == "command" and hook["timeout"] == hooks.HOOK_TIMEOUT
        assert shlex.split(hook["command"]) == [*HOOK, event, *SILENT]
        assert "matcher" not in group  # every tool, every notification type


def test_codex_gets_a_notify_program_for_this_process_only() -> None:
    """Codex gets `-c notify=[...]` (TOML), a program that pipes its last argument (the
    payload) into `orchestra hook notify` without reading it as shell text."""
    plan = install("codex", HOOK, RUN_DIR)
    assert plan.env == {} and plan.files == {}
    flag, value = plan.args
    assert flag == "-c" and value.startswith("notify=")
    notify = tomllib.loads(value)["notify"]
    assert notify[:2] == ["/bin/sh", "-c"] and notify[3] == "orchestra-notify"
    script = notify[2]
    assert script.startswith('printf %s "$1" | exec ')
    assert shlex.split(script.split("| exec ", 1)[1]) == [*HOOK, "notify"]


def test_codex_keeps_a_notify_program_of_the_users_own() -> None:
    """Where the user's Codex config has its own `notify`, ours would replace it: none."""
    assert install("codex", HOOK, RUN_DIR, Found(codex_notify=True)) == hooks.Install()


def test_gemini_gets_a_system_defaults_file_that_keeps_the_one_it_hides() -> None:
    """Gemini CLI's GEMINI_CLI_SYSTEM_DEFAULTS_PATH names our file in the run's directory;
    it holds the defaults file it replaces, with our hooks after theirs, event by event."""
    their_hook = {"hooks": [{"type": "command", "command": "their-hook"}]}
    theirs: dict[str, Any] = {"ui": {"theme": "GitHub"}, "hooks": {"AfterAgent": [their_hook]}}
    plan = install("gemini", HOOK, RUN_DIR, Found(gemini_defaults=theirs))
    assert plan.args == []
    assert plan.env == {hooks.GEMINI_DEFAULTS_VAR: str(RUN_DIR / hooks.GEMINI_FILE)}
    settings = json.loads(plan.files[hooks.GEMINI_FILE])
    assert settings["ui"] == {"theme": "GitHub"}
    assert set(settings["hooks"]) == set(hooks.GEMINI_EVENTS)
    after = settings["hooks"]["AfterAgent"]
    assert after[0] == their_hook  # theirs first, untouched
    [ours] = after[1]["hooks"]
    assert shlex.split(ours["command"]) == [*HOOK, "AfterAgent", *SILENT]
    assert ours["timeout"] == hooks.HOOK_TIMEOUT * 1000  # Gemini counts milliseconds
    assert theirs["hooks"] == {"AfterAgent": [their_hook]}  # the caller's is unchanged


def test_opencode_gets_a_plugin_file_through_its_config_env() -> None:
    """OpenCode gets OPENCODE_CONFIG_CONTENT adding our plugin (a file:// URL into the run's
    directory) to the plugin list of a config already in the environment."""
    plan = install("opencode", HOOK, RUN_DIR, Found(opencode_config='{"plugin": ["theirs"]}'))
    assert plan.args == []
    config = json.loads(plan.env[hooks.OPENCODE_VAR])
    assert config["plugin"] == ["theirs", (RUN_DIR / hooks.OPENCODE_FILE).as_uri()]
    script = plan.files[hooks.OPENCODE_FILE]
    assert json.dumps(HOOK) in script
    for event in hooks.OPENCODE_EVENTS:
        assert json.dumps(event) in script
    alone = json.loads(install("opencode", HOOK, RUN_DIR).env[hooks.OPENCODE_VAR])
    assert alone == {"plugin": [(RUN_DIR / hooks.OPENCODE_FILE).as_uri()]}


def test_aider_gets_a_notifications_command_fed_an_empty_payload() -> None:
    """Aider gets --notifications and a command (run by its shell) that feeds `{}` to
    `orchestra hook notify`, so the hook never reads the agent's terminal."""
    plan = install("aider", HOOK, RUN_DIR)
    notifications, command = plan.args
    assert notifications == "--notifications"
    line = command.removeprefix("--notifications-command=")
    assert line.startswith("printf '{}' | ")
    assert shlex.split(line.split(" | ", 1)[1]) == [*HOOK, "notify", *SILENT]


@pytest.mark.parametrize("kind", ["", "orchestra"])
def test_no_hooks_and_our_own_install_nothing(kind: str) -> None:
    """A profile with no hooks, or one that calls `orchestra hook` itself, needs nothing."""
    assert install(kind, HOOK, RUN_DIR) == hooks.Install()


def test_every_builtin_profile_names_a_kind_install_knows() -> None:
    """Each built-in profile's hooks kind installs without error."""
    for name, profile in BUILTIN_AGENTS.items():
        assert profile.hooks in hooks.KINDS, name
        install(profile.hooks, HOOK, RUN_DIR)


def test_arguments_go_before_the_first_double_dash_or_at_the_end() -> None:
    """Added arguments go before `--` (after which everything is the prompt), else last;
    never straight after the program, where a wrapper's own arguments are."""
    assert add_args(["claude", "--x", "--", "--prompt"], ["-a"]) == [
        "claude",
        "--x",
        "-a",
        "--",
        "--prompt",
    ]
    assert add_args(["claude", "--resume=abc"], ["-a", "b"]) == [
        "claude",
        "--resume=abc",
        "-a",
        "b",
    ]
    assert add_args(["npx", "claude"], ["-a"]) == ["npx", "claude", "-a"]
    assert add_args(["x", "--"], []) == ["x", "--"]


def test_a_builtin_launch_with_hooks_keeps_the_prompt_one_positional_argument() -> None:
    """Claude's and Codex's hook arguments land before `--`, so a prompt that looks like an
    option is still the prompt, whole."""
    for name in ("claude", "codex"):
        spec = launch(
            BUILTIN_AGENTS[name],
            prompt="--help me",
            session_id=None,
            resume=False,
            python="p",
            shell="s",
        )
        argv = add_args(spec.argv, install(BUILTIN_AGENTS[name].hooks, HOOK, RUN_DIR).args)
        assert argv[-2:] == ["--", "--help me"], name


# --- what each payload means ------------------------------------------------------------

CLAUDE_SID = "11111111-2222-4333-8444-555555555558"
GEMINI_SID = "11111111-2222-4333-8444-555555555556"
CODEX_SID = "01a24fa7-c018-71e0-a4e8-9eabb59010b9"
OPENCODE_SID = "ses_db074024cffe573qEkAP30dvj3"

EXPECTED: list[tuple[str, str, str, Report | None]] = [
    # kind, event, fixture, report
    ("claude", "SessionStart", "SessionStart", Report(None, "", CLAUDE_SID)),
    ("claude", "UserPromptSubmit", "UserPromptSubmit", Report("working", "prompt", CLAUDE_SID)),
    ("claude", "PreToolUse", "PreToolUse", Report("working", "tool", CLAUDE_SID)),
    (
        "claude",
        "PermissionRequest",
        "PermissionRequest",
        Report("waiting", "permission", CLAUDE_SID),
    ),
    (
        "claude",
        "Notification",
        "Notification.permission_prompt",
        Report("waiting", "permission", CLAUDE_SID),
    ),
    ("claude", "PostToolUse", "PostToolUse", Report("working", "tool", CLAUDE_SID)),
    ("claude", "Stop", "Stop", Report("waiting", "turn-done", CLAUDE_SID)),
    (
        "claude",
        "Notification",
        "Notification.idle_prompt",
        Report("waiting", "turn-done", "11111111-2222-4333-8444-555555555557"),
    ),
    (
        "claude",
        "Notification",
        "Notification.elicitation_dialog",
        Report("waiting", "question", CLAUDE_SID),
    ),
    (
        "claude",
        "SessionEnd",
        "SessionEnd",
        Report("exited", "other", "11111111-2222-4333-8444-555555555557"),
    ),
    ("codex", "notify", "notify.agent-turn-complete", Report("waiting", "turn-done", CODEX_SID)),
    ("codex", "notify", "notify.title-thread", None),  # Codex naming the session aside
    ("codex", "PermissionRequest", "PermissionRequest", Report("waiting", "permission", CODEX_SID)),
    ("gemini", "SessionStart", "SessionStart", Report(None, "", GEMINI_SID)),
    ("gemini", "BeforeAgent", "BeforeAgent", Report("working", "prompt", GEMINI_SID)),
    (
        "gemini",
        "Notification",
        "Notification.ToolPermission",
        Report("waiting", "permission", GEMINI_SID),
    ),
    ("gemini", "AfterTool", "AfterTool", Report("working", "tool", GEMINI_SID)),
    ("gemini", "AfterAgent", "AfterAgent", Report("waiting", "turn-done", GEMINI_SID)),
    ("gemini", "SessionEnd", "SessionEnd", Report("exited", "exit", GEMINI_SID)),
    ("opencode", "session.created", "session.created", Report(None, "", OPENCODE_SID)),
    ("opencode", "session.created", "session.created.child", None),  # a sub-agent's
    (
        "opencode",
        "session.status",
        "session.status.busy",
        Report("working", "prompt", OPENCODE_SID),
    ),
    (
        "opencode",
        "session.status",
        "session.status.retry",
        Report("working", "prompt", OPENCODE_SID),
    ),
    (
        "opencode",
        "session.status",
        "session.status.idle",
        Report("waiting", "turn-done", OPENCODE_SID),
    ),
    ("opencode", "session.idle", "session.idle", Report("waiting", "turn-done", OPENCODE_SID)),
    (
        "opencode",
        "permission.asked",
        "permission.asked",
        Report("waiting", "permission", OPENCODE_SID),
    ),
    (
        "opencode",
        "permission.replied",
        "permission.replied",
        Report("working", "tool", OPENCODE_SID),
    ),
    ("opencode", "question.asked", "question.asked", Report("waiting", "question", OPENCODE_SID)),
    ("aider", "notify", "notify", Report("waiting", "turn-done", None)),
]


@pytest.mark.parametrize(("kind", "event", "fixture", "report"), EXPECTED)
def test_each_recorded_payload_means_what_its_agent_documents(
    kind: str, event: str, fixture: str, report: Report | None
) -> None:
    """Each agent's real (or documented) payload gives the activity, reason and session id
    its event stands for."""
    assert interpret(kind, event, payload(kind, fixture)) == report


def test_every_fixture_is_interpreted_by_a_test() -> None:
    """No payload in tests/fixtures/hooks/ goes untested."""
    tested = {(kind, fixture) for kind, _, fixture, _ in EXPECTED}
    on_disk = {(p.parent.name, p.stem) for p in FIXTURES.glob("*/*.json")}
    assert on_disk == tested


def test_an_event_of_another_kind_or_unknown_means_nothing() -> None:
    """An event name another vendor uses, or none knows, gives None; so does a kind that
    installs no hooks."""
    assert interpret("claude", "AfterAgent", payload("gemini", "AfterAgent")) is None
    assert interpret("gemini", "Stop", payload("claude", "Stop")) is None
    assert interpret("claude", "Bogus", {"session_id": CLAUDE_SID}) is None
    assert interpret("", "Stop", payload("claude", "Stop")) is None
    assert interpret("nonsense", "Stop", payload("claude", "Stop")) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"session_id": 42},
        {"session_id": ""},
        {"session_id": "-rf"},  # would read as an option in a resume argv
        {"session_id": "a b"},
        {"session_id": "x" * 201},
        {"session_id": ["list"]},
    ],
)
def test_a_session_id_we_could_not_pass_back_is_dropped_but_the_activity_kept(
    bad: dict[str, Any],
) -> None:
    """A payload's session id that is not a valid id is not reported; the event still is."""
    assert interpret("claude", "Stop", {**bad}) == Report("waiting", "turn-done", None)


@pytest.mark.parametrize(
    ("kind", "event", "bad"),
    [
        ("claude", "Notification", {"notification_type": "auth_success"}),
        ("claude", "Notification", {}),
        ("gemini", "Notification", {"notification_type": "Other"}),
        ("codex", "notify", {"type": "something-else", "thread-id": CODEX_SID}),
        ("opencode", "session.status", {"type": "session.status", "properties": {}}),
        ("opencode", "session.status", {"type": "session.status", "properties": "x"}),
        ("opencode", "session.idle", {"type": "session.created", "properties": {}}),
        ("opencode", "session.idle", {"properties": {"sessionID": OPENCODE_SID}}),
    ],
)
def test_a_payload_not_shaped_as_documented_means_nothing(
    kind: str, event: str, bad: dict[str, Any]
) -> None:
    """A notification of another type, or an OpenCode event whose type or properties do
    not match, gives None: a wrong hint must not move a run."""
    assert interpret(kind, event, bad) is None


def test_a_payload_that_is_not_an_object_means_nothing() -> None:
    """A list or a string where an object was expected gives None, not an error."""
    assert interpret("claude", "Stop", ["x"]) is None  # type: ignore[arg-type]
    assert interpret("orchestra", "waiting", "x") is None  # type: ignore[arg-type]


def test_our_own_kind_takes_the_activity_as_the_event() -> None:
    """The "orchestra" kind: EVENT is the activity, the payload may give reason and id."""
    assert interpret("orchestra", "waiting", {"reason": "question", "session_id": "s1"}) == Report(
        "waiting", "question", "s1"
    )
    assert interpret("orchestra", "idle", {}) is None
