"""What an agent's own hooks say about its run, and how to install them (issue 17).

Two halves, both pure (no I/O):

- `install(kind, hook_argv, run_dir)`: what a run of a profile of `kind` needs so the agent
  calls `orchestra hook EVENT` (`hook_argv` + [EVENT], the payload on stdin) at the moments
  it knows: arguments added to its argv, variables added to its environment, and files to
  write in the run's own directory (the daemon's state dir, never the worktree or the
  user's home). Every mechanism chosen adds to the user's own hooks instead of replacing
  them (docs/agents.md says which, per agent, with the version checked).
- `interpret(kind, event, payload)`: what one such call means. `orchestra hook EVENT` passes
  the event name and the JSON payload to the daemon (`task.report`), which reads them here.
  Each vendor names its events and shapes its payloads its own way; this module is the one
  place that knows them. An event we do not know, or a payload not shaped as documented,
  gives None: a hook is a hint, and a wrong hint must never move a run.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Final, Literal

import attrs

from orchestra.core import names
from orchestra.core.errors import InvalidParams

Activity = Literal["working", "waiting", "exited"]
ACTIVITIES: Final = ("working", "waiting", "exited")

# The kinds of hooks a profile may install (AgentProfile.hooks); "" installs none.
# "orchestra": our own protocol, for the demo agent and custom profiles: EVENT is the
# activity itself and the payload may carry "reason" and "session_id".
KINDS: Final = ("", "orchestra", "claude", "codex", "gemini", "opencode", "aider")

# Seconds an agent may wait for one hook (ours exits within one: issue 17).
HOOK_TIMEOUT: Final = 10


@attrs.frozen
class Report:
    """One hook's meaning. `activity` None: the event tells nothing of the activity (it
    may still carry a session id, e.g. a session start)."""

    activity: Activity | None
    reason: str = ""  # e.g. "permission", "turn-done", "question", "prompt", "tool"
    session_id: str | None = None


@attrs.frozen(kw_only=True)
class Install:
    """What one run of an agent needs for our hooks: `args` go before the argv's first
    `--` (or at its end), `env` is added to the agent's, `files` (name -> text) are written
    in the run's directory before the agent starts."""

    args: list[str] = attrs.field(factory=list)
    env: dict[str, str] = attrs.field(factory=dict)
    files: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Found:
    """What the adapter read (never wrote) of the user's own setup, so ours adds to it."""

    # Gemini CLI: the system defaults file our env var would hide (its parsed JSON).
    gemini_defaults: Mapping[str, Any] | None = None
    # Codex CLI: the user's own `notify` program, which `-c notify=` would replace.
    codex_notify: bool = False
    # OpenCode: an OPENCODE_CONFIG_CONTENT already in the daemon's environment.
    opencode_config: str | None = None


# --- installation, per kind -------------------------------------------------------------

# Claude Code: events whose hooks we add with `--settings` (merged with the user's
# settings: hooks of every source run). Matchers are left out: every occurrence counts.
CLAUDE_EVENTS: Final = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "PermissionRequest",
    "Notification",
    "Stop",
    "SessionEnd",
)
GEMINI_EVENTS: Final = (
    "SessionStart",
    "BeforeAgent",
    "AfterAgent",
    "AfterTool",
    "Notification",
    "SessionEnd",
)
# The OpenCode bus events our plugin forwards (it sees all of them; most are noise).
OPENCODE_EVENTS: Final = (
    "session.created",
    "session.status",
    "session.idle",
    "session.error",
    "permission.asked",
    "permission.updated",
    "permission.replied",
    "question.asked",
    "question.replied",
)
GEMINI_DEFAULTS_VAR: Final = "GEMINI_CLI_SYSTEM_DEFAULTS_PATH"
GEMINI_FILE: Final = "gemini-system-defaults.json"
OPENCODE_VAR: Final = "OPENCODE_CONFIG_CONTENT"
OPENCODE_FILE: Final = "orchestra-opencode-plugin.js"
CODEX_NOTIFY_EVENT: Final = "notify"
AIDER_EVENT: Final = "notify"


def install(
    kind: str, hook_argv: list[str], run_dir: PurePath, found: Found | None = None
) -> Install:
    """What a run whose profile installs hooks of `kind` needs (empty for "" and
    "orchestra": the demo calls `orchestra hook` itself). `hook_argv` is the command
    without its EVENT (e.g. [python, "-m", "orchestra", "hook"])."""
    found = found or Found()
    if kind == "claude":
        return _install_claude(hook_argv)
    if kind == "codex":
        return _install_codex(hook_argv, found)
    if kind == "gemini":
        return _install_gemini(hook_argv, run_dir, found)
    if kind == "opencode":
        return _install_opencode(hook_argv, run_dir, found)
    if kind == "aider":
        return _install_aider(hook_argv)
    if kind in ("", "orchestra"):
        return Install()
    raise InvalidParams(f"unknown kind of hooks {kind!r}: use one of {', '.join(KINDS)}")


def _shell(argv: list[str]) -> str:
    """`argv` as one command line for a vendor that runs hooks through a shell."""
    return shlex.join(argv)


def _hook_line(argv: list[str]) -> str:
    """The shell line of a hook the agent waits for: whatever happens, it prints nothing
    (Claude Code puts a SessionStart hook's output in the model's context) and exits 0
    (exit 2 blocks a tool call in Claude Code and Gemini CLI). `orchestra hook` does both
    already; this holds for any Orchestra, e.g. an older one without the command."""
    return f"{_shell(argv)} >/dev/null 2>&1 || true"


def _install_claude(hook_argv: list[str]) -> Install:
    # `--settings` takes a file or inline JSON, "additional settings" over the user's,
    # project's and local files; hooks of all of them run. Commands go through a shell.
    hooks = {
        event: [
            {
                "hooks": [
                    {
                        "type": "command",
                        "command": _hook_line([*hook_argv, event]),
                        "timeout": HOOK_TIMEOUT,
                    }
                ]
            }
        ]
        for event in CLAUDE_EVENTS
    }
    return Install(args=["--settings=" + json.dumps({"hooks": hooks}, separators=(",", ":"))])


def _install_codex(hook_argv: list[str], found: Found) -> Install:
    # Codex's hooks need a trust review per hook (a dialog before the first prompt, and
    # trust saved in the user's config), so we use `notify`, which needs none: one program,
    # run at each turn's end with the JSON payload as its last argument. `-c` sets it for
    # this process only; a `notify` of the user's own would be replaced, so then none.
    if found.codex_notify:
        return Install()
    # The payload comes as an argument; `orchestra hook` reads stdin: sh hands it over
    # (as "$1", never parsed as shell text).
    script = f'printf %s "$1" | exec {_shell([*hook_argv, CODEX_NOTIFY_EVENT])}'
    notify = ["/bin/sh", "-c", script, "orchestra-notify"]
    return Install(args=["-c", "notify=" + json.dumps(notify)])


def _install_gemini(hook_argv: list[str], run_dir: PurePath, found: Found) -> Install:
    # Gemini CLI reads settings from system defaults, user, workspace and system files,
    # concatenating hook lists. GEMINI_CLI_SYSTEM_DEFAULTS_PATH names the lowest layer:
    # ours holds the defaults file it replaces (if any) with our hooks added.
    settings: dict[str, Any] = json.loads(json.dumps(dict(found.gemini_defaults or {})))
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        hooks = settings["hooks"] = {}
    for event in GEMINI_EVENTS:
        ours = {
            "hooks": [
                {
                    "type": "command",
                    "name": f"orchestra-{event}",
                    "command": _hook_line([*hook_argv, event]),
                    "timeout": HOOK_TIMEOUT * 1000,  # milliseconds
                }
            ]
        }
        existing = hooks.get(event)
        hooks[event] = [*(existing if isinstance(existing, list) else []), ours]
    return Install(
        env={GEMINI_DEFAULTS_VAR: str(run_dir / GEMINI_FILE)},
        files={GEMINI_FILE: json.dumps(settings, indent=2) + "\n"},
    )


def _install_opencode(hook_argv: list[str], run_dir: PurePath, found: Found) -> Install:
    # OpenCode merges OPENCODE_CONFIG_CONTENT over its config files, adding to their
    # `plugin` lists; the plugin file itself lives in the run's directory.
    config: dict[str, Any] = {}
    if found.opencode_config:
        try:
            loaded = json.loads(found.opencode_config)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            config = loaded
    plugins = config.get("plugin")
    plugin_url = (run_dir / OPENCODE_FILE).as_uri()
    config["plugin"] = [*(plugins if isinstance(plugins, list) else []), plugin_url]
    return Install(
        env={OPENCODE_VAR: json.dumps(config)},
        files={OPENCODE_FILE: opencode_plugin(hook_argv)},
    )


def opencode_plugin(hook_argv: list[str]) -> str:
    """The JavaScript of our OpenCode plugin: each bus event we care about runs the hook
    with the event as its payload, one at a time and in order, never failing OpenCode.
    Events of sub-agents' sessions (a `parentID`) are left out: they are not the run's."""
    return _OPENCODE_PLUGIN.replace("@HOOK@", json.dumps(hook_argv)).replace(
        "@EVENTS@", json.dumps(list(OPENCODE_EVENTS))
    )


_OPENCODE_PLUGIN: Final = """\
// Orchestra's activity plugin for one run, written by the Orchestra daemon (docs/agents.md).
import { spawn } from "node:child_process"

const HOOK = @HOOK@
const EVENTS = new Set(@EVENTS@)
const children = new Set()
let queue = Promise.resolve()

function run(type, payload) {
  return new Promise((resolve) => {
    try {
      const child = spawn(HOOK[0], [...HOOK.slice(1), type], {
        stdio: ["pipe", "ignore", "ignore"],
      })
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
      child.on("error", () => { clearTimeout(timer); resolve() })
      child.on("close", () => { clearTimeout(timer); resolve() })
      child.stdin.on("error", () => {})
      child.stdin.end(JSON.stringify(payload))
    } catch {
      resolve()
    }
  })
}

export const OrchestraActivity = async () => ({
  event: async ({ event }) => {
    if (!event || !EVENTS.has(event.type)) return
    const props = event.properties || {}
    const info = props.info || {}
    if (event.type === "session.created" && info.parentID) children.add(info.id)
    if (children.has(props.sessionID) || children.has(info.id)) return
    queue = queue.then(() => run(event.type, event))
  },
})
"""


def _install_aider(hook_argv: list[str]) -> Install:
    # Aider runs --notifications-command through a shell when a reply is done and it
    # waits for input; stdin would be the terminal, so the payload is given.
    command = f"printf '{{}}' | {_hook_line([*hook_argv, AIDER_EVENT])}"
    return Install(args=["--notifications", f"--notifications-command={command}"])


def add_args(argv: list[str], args: list[str]) -> list[str]:
    """`argv` with `args` before its first "--" (after which all is positional), else at
    its end. Never right after the program: a wrapper (`npx claude`) keeps its own."""
    if not args:
        return list(argv)
    if "--" in argv[1:]:
        at = argv.index("--", 1)
        return [*argv[:at], *args, *argv[at:]]
    return [*argv, *args]


# --- interpretation, per kind -----------------------------------------------------------


def interpret(kind: str, event: str, payload: Mapping[str, Any]) -> Report | None:
    """The report of one hook of a profile of `kind`, or None when it means nothing."""
    if not isinstance(payload, Mapping):
        return None
    reader = _READERS.get(kind)
    return reader(event, payload) if reader is not None else None


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None


def _session(value: object) -> str | None:
    """`value` if it is a session id we may record (and pass in an argv), else None."""
    try:
        return names.check_session_id(value)
    except InvalidParams:
        return None


def _orchestra(event: str, payload: Mapping[str, Any]) -> Report | None:
    if event not in ACTIVITIES:
        return None
    activity: Activity = event  # type: ignore[assignment]  # checked just above
    return Report(activity, _text(payload, "reason") or "", _session(payload.get("session_id")))


# Claude Code's Notification types (payload "notification_type") that need the person.
_CLAUDE_NOTIFICATIONS: Final = {
    "permission_prompt": "permission",
    "idle_prompt": "turn-done",
    "elicitation_dialog": "question",
}


def _claude(event: str, payload: Mapping[str, Any]) -> Report | None:
    sid = _session(payload.get("session_id"))
    if event == "SessionStart":
        return Report(None, session_id=sid)
    if event == "UserPromptSubmit":
        return Report("working", "prompt", sid)
    if event in ("PreToolUse", "PostToolUse"):
        # PostToolUse also says an approval was answered (the tool ran).
        return Report("working", "tool", sid)
    if event == "PermissionRequest":
        return Report("waiting", "permission", sid)
    if event == "Notification":
        reason = _CLAUDE_NOTIFICATIONS.get(_text(payload, "notification_type") or "")
        return Report("waiting", reason, sid) if reason else None
    if event == "Stop":
        return Report("waiting", "turn-done", sid)
    if event == "SessionEnd":
        return Report("exited", _text(payload, "reason") or "", sid)
    return None


def _codex(event: str, payload: Mapping[str, Any]) -> Report | None:
    if event == CODEX_NOTIFY_EVENT:
        # `notify`: {"type": "agent-turn-complete", "thread-id": ..., "turn-id": ...}
        if payload.get("type") != "agent-turn-complete" or _codex_side_thread(payload):
            return None
        return Report("waiting", "turn-done", _session(payload.get("thread-id")))
    # Codex's hooks (for a profile whose user trusted them): Claude Code's shapes.
    sid = _session(payload.get("session_id"))
    if event == "SessionStart":
        return Report(None, session_id=sid)
    if event in ("UserPromptSubmit", "PreToolUse", "PostToolUse"):
        return Report("working", "prompt" if event == "UserPromptSubmit" else "tool", sid)
    if event == "PermissionRequest":
        return Report("waiting", "permission", sid)
    if event == "Stop":
        return Report("waiting", "turn-done", sid)
    if event == "SessionEnd":
        return Report("exited", "", sid)
    return None


# Codex 0.171.0 names each new session in a thread of its own, whose turn's end `notify`
# reports too, under another thread id (recorded: tests/fixtures/hooks/codex/). Neither its
# end nor its id is the session's; its only mark is its prompt.
_CODEX_TITLE_PROMPT: Final = "Generate a concise, single-line task title"


def _codex_side_thread(payload: Mapping[str, Any]) -> bool:
    messages = payload.get("input-messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    return isinstance(first, str) and first.startswith(_CODEX_TITLE_PROMPT)


def _gemini(event: str, payload: Mapping[str, Any]) -> Report | None:
    sid = _session(payload.get("session_id"))
    if event == "SessionStart":
        return Report(None, session_id=sid)
    if event == "BeforeAgent":
        return Report("working", "prompt", sid)
    if event == "AfterTool":
        return Report("working", "tool", sid)
    if event == "AfterAgent":
        return Report("waiting", "turn-done", sid)
    if event == "Notification":
        if payload.get("notification_type") != "ToolPermission":
            return None
        return Report("waiting", "permission", sid)
    if event == "SessionEnd":
        return Report("exited", _text(payload, "reason") or "", sid)
    return None


def _opencode(event: str, payload: Mapping[str, Any]) -> Report | None:
    if payload.get("type") != event:
        return None
    props = payload.get("properties")
    if not isinstance(props, Mapping):
        return None
    info = props.get("info")
    info = info if isinstance(info, Mapping) else {}
    sid = _session(props.get("sessionID") or info.get("id"))
    if event == "session.created":
        return None if info.get("parentID") else Report(None, session_id=sid)
    if event == "session.status":
        status = props.get("status")
        state = status.get("type") if isinstance(status, Mapping) else None
        if state in ("busy", "retry"):
            return Report("working", "prompt", sid)
        if state == "idle":
            return Report("waiting", "turn-done", sid)
        return None
    if event == "session.idle":
        return Report("waiting", "turn-done", sid)
    if event in ("permission.asked", "permission.updated"):
        return Report("waiting", "permission", sid)
    if event == "question.asked":
        return Report("waiting", "question", sid)
    if event in ("permission.replied", "question.replied"):
        return Report("working", "tool", sid)
    return None


def _aider(event: str, payload: Mapping[str, Any]) -> Report | None:
    # --notifications-command: the reply is done, aider waits for input. No session ids.
    return Report("waiting", "turn-done") if event == AIDER_EVENT else None


_READERS: Final = {
    "orchestra": _orchestra,
    "claude": _claude,
    "codex": _codex,
    "gemini": _gemini,
    "opencode": _opencode,
    "aider": _aider,
}
