"""Agent profiles: how to start, resume and prompt each coding agent. Pure: no I/O.

A profile is two argv templates and some environment. `launch()` turns a profile
and a task into the exact argv to exec (never through a shell):

- A fresh start uses `command`. If it contains "{session_id}", the agent lets us
  choose its session id (Claude Code's `--session-id`, Gemini CLI's), so we
  generate a uuid4 and return it for the task file: resuming needs no guessing.
- A resume uses `resume`: with the recorded session id when the template needs
  one ("{session_id}"), or as it is when it does not (Aider restores its chat
  history file, Codex resumes the newest session of the worktree). With no usable
  template, or no recorded id where one is needed, it is a fresh start instead.
- Placeholders are replaced inside each argv element, in one pass over the
  template, so a prompt stays one element, byte for byte, whatever it contains.
- `prompt_via = "input"` is for agents with no flag for an interactive session's
  first prompt (Aider): the runner types `Launch.typed_prompt` once it has drawn.

The built-in profiles are checked against each agent's `--help` and docs; the
versions and sources are in docs/agents.md. Config (`[agents.NAME]`) merges over
them field by field, and every merged profile is validated here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

import attrs

from orchestra.core import hooks, names
from orchestra.core.errors import InvalidParams

PROMPT_VIA: Final = ("argv", "input")
PLACEHOLDERS: Final = ("{prompt}", "{session_id}", "{python}", "{shell}")

_PLACEHOLDER: Final = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS))
_ANY_PLACEHOLDER: Final = re.compile(r"\{[A-Za-z_]\w*\}")  # JSON such as {"a": 1} is no match
_ENV_NAME: Final = re.compile(r"[^=\x00]+")


def _check_argv(inst: object, attr: attrs.Attribute[Any], value: list[str]) -> None:
    for arg in value:
        if "\x00" in arg:
            raise ValueError(f"{attr.name}: argument {arg!r} contains a NUL character")
        for found in _ANY_PLACEHOLDER.findall(arg):
            if found not in PLACEHOLDERS:
                raise ValueError(
                    f"{attr.name}: unknown placeholder {found} in {arg!r}:"
                    f" use {', '.join(PLACEHOLDERS)}"
                )
    if value and not value[0]:
        raise ValueError(f"{attr.name}: the program (first element) must not be empty")


def _check_command(inst: object, attr: attrs.Attribute[Any], value: list[str]) -> None:
    if not value:
        raise ValueError(
            "command must not be empty: give the argv that starts the agent,"
            ' e.g. command = ["my-agent", "{prompt}"]'
        )
    _check_argv(inst, attr, value)


def _check_prompt_via(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value not in PROMPT_VIA:
        raise ValueError(f"{attr.name} must be one of {', '.join(PROMPT_VIA)}, not {value!r}")


def _check_hooks(_inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value not in hooks.KINDS:
        raise ValueError(
            f"{attr.name} must be one of {', '.join(k for k in hooks.KINDS if k)} or empty,"
            f" not {value!r}"
        )


REASONS: Final = ("permission", "question", "turn-done")


@attrs.frozen(kw_only=True)
class ScreenPattern:
    """A regular expression that, found on the agent's screen text, means it waits for the
    person (core/screen.py), and why. Matched with re.MULTILINE: `^`/`$` are line ends."""

    pattern: str = attrs.field()
    reason: str = attrs.field(default="permission")

    @pattern.validator
    def _regex(self, attr: attrs.Attribute[Any], value: str) -> None:
        try:
            re.compile(value, re.MULTILINE)
        except re.error as exc:
            raise ValueError(
                f"{attr.name}: invalid regular expression {value!r}: {exc}"
                " (TOML basic strings take a backslash as \\\\; literal 'strings' keep it)"
            ) from None
        if re.fullmatch(value, ""):
            raise ValueError(f"{attr.name}: {value!r} matches an empty screen: make it specific")

    @reason.validator
    def _reason(self, attr: attrs.Attribute[Any], value: str) -> None:
        if value not in REASONS:
            raise ValueError(f"{attr.name} must be one of {', '.join(REASONS)}, not {value!r}")


def _check_env(_inst: object, attr: attrs.Attribute[Any], value: dict[str, str]) -> None:
    for key, item in value.items():
        if not _ENV_NAME.fullmatch(key):
            raise ValueError(f"{attr.name}: invalid variable name {key!r} (empty, '=' or NUL)")
        if "\x00" in item:
            raise ValueError(f"{attr.name}: the value of {key} contains a NUL character")


@attrs.frozen(kw_only=True)
class AgentProfile:
    """How to run one agent. Validated after config layers merge over the built-ins."""

    command: list[str] = attrs.field(factory=list, validator=_check_command)  # fresh start argv
    resume: list[str] = attrs.field(factory=list, validator=_check_argv)  # [] = cannot resume
    env: dict[str, str] = attrs.field(factory=dict, validator=_check_env)  # added to the task's
    prompt_via: str = attrs.field(default="argv", validator=_check_prompt_via)
    # Which agent's hooks Orchestra installs for a run, to learn its activity (core/hooks.py).
    hooks: str = attrs.field(default="", validator=_check_hooks)
    # Screens that mean the agent waits for the person, where its hooks miss it (screen.py).
    screen_patterns: list[ScreenPattern] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class Launch:
    """What to exec for one start of an agent, with what to record and type."""

    argv: list[str]
    env: dict[str, str]  # the profile's extra environment, added to the task's
    session_id: str | None  # the session this run uses, when known: record it on the task
    typed_prompt: str | None  # type this into the PTY once the agent has drawn (then Enter)
    resumed: bool  # the resume template was used


# Built-in screen patterns: (regex, reason). Texts from each agent's shipped strings and
# recordings (tests/fixtures/terminal/, tests/core/test_screen.py); sources: docs/agents.md.
CLAUDE_SCREENS: Final = (
    # The permission dialog: "Do you want to proceed?" (or "... make this edit to x?")
    # over its numbered choices, the first maybe selected (\u276f: the arrow).
    (r"Do you want to [^\n]*\?[ \t]*\n[ \t]*(\u276f[ \t]*)?1\. Yes", "permission"),
    (r"Is this a project you created or one you trust", "question"),
)
CODEX_SCREENS: Final = (
    (
        r"Would you like to (run the following command|make the following edits"
        r"|grant these permissions|send input to the existing terminal)\?",
        "permission",
    ),
    (r"^\s*Trust this folder\?", "question"),
    (r"^\s*Hooks need review", "question"),
    (r"^\s*Choose how you want to use Codex", "question"),  # sign in
)
GEMINI_SCREENS: Final = (
    (r"Apply this change\?|Allow execution of|Waiting for user confirmation", "permission"),
    (r"Do you trust the files in this folder\?", "question"),
    (r"How would you like to authenticate", "question"),
)
OPENCODE_SCREENS: Final = ((r"Permission required", "permission"),)
AIDER_SCREENS: Final = ((r"\(Y\)es/\(N\)o[^\n]*\[(Yes|No)\]: *$", "permission"),)


def _patterns(pairs: tuple[tuple[str, str], ...]) -> list[ScreenPattern]:
    return [ScreenPattern(pattern=p, reason=r) for p, r in pairs]


def builtin_agents() -> dict[str, AgentProfile]:
    """Fresh copies of the built-in profiles (flags and sources: docs/agents.md)."""
    return {
        # Claude Code 2.1.332: `claude [options] [prompt]` is interactive; the
        # session id is ours to choose (a UUID), and `--resume` takes it back.
        "claude": AgentProfile(
            command=["claude", "--session-id={session_id}", "--", "{prompt}"],
            resume=["claude", "--resume={session_id}"],
            hooks="claude",
            screen_patterns=_patterns(CLAUDE_SCREENS),
        ),
        # Codex CLI 0.171.0: `codex [PROMPT]` is the TUI. Its session id cannot be
        # chosen: its `notify` program (our hooks) reports it as the "thread-id", and
        # `codex resume SESSION_ID` takes it back (an unknown id is an error, never
        # another session). `--no-daemon` keeps the app-server inside the task's
        # process tree instead of a shared setsid daemon.
        "codex": AgentProfile(
            command=["codex", "--no-daemon", "--", "{prompt}"],
            resume=["codex", "resume", "--no-daemon", "--", "{session_id}"],
            hooks="codex",
            screen_patterns=_patterns(CODEX_SCREENS),
        ),
        # opencode 1.18.33: `--prompt` pre-fills the TUI; `--session` continues an
        # id (ses_...), which cannot be chosen at start (`-c` mixes worktrees): our
        # plugin reports it (session.created).
        "opencode": AgentProfile(
            command=["opencode", "--prompt={prompt}"],
            resume=["opencode", "--session={session_id}"],
            hooks="opencode",
            screen_patterns=_patterns(OPENCODE_SCREENS),
        ),
        # Gemini CLI 0.61.0: `-i/--prompt-interactive` runs the prompt and stays
        # interactive; `--session-id` starts a session with our id, `--resume` takes it.
        "gemini": AgentProfile(
            command=["gemini", "--session-id={session_id}", "--prompt-interactive={prompt}"],
            resume=["gemini", "--resume={session_id}"],
            hooks="gemini",
            screen_patterns=_patterns(GEMINI_SCREENS),
        ),
        # aider 0.86.2: `--message` exits after one reply, so the prompt is typed;
        # no session ids: it restores the worktree's .aider.chat.history.md.
        "aider": AgentProfile(
            command=["aider"],
            resume=["aider", "--restore-chat-history"],
            prompt_via="input",
            hooks="aider",
            screen_patterns=_patterns(AIDER_SCREENS),
        ),
        "shell": AgentProfile(command=["{shell}"]),
        "demo": AgentProfile(
            command=["{python}", "-m", "orchestra.agents.demo", "{prompt}"],
            resume=["{python}", "-m", "orchestra.agents.demo", "--resume", "{session_id}"],
            hooks="orchestra",
        ),
    }


BUILTIN_AGENTS: Final[Mapping[str, AgentProfile]] = builtin_agents()


def launch(
    profile: AgentProfile,
    *,
    prompt: str,
    session_id: str | None,
    resume: bool,
    python: str,
    shell: str,
) -> Launch:
    """The argv, environment and session id for starting (or resuming) `profile`.

    `python` fills "{python}" (the daemon's sys.executable), `shell` fills
    "{shell}" (the user's $SHELL). With an empty prompt, arguments that hold
    "{prompt}" are left out, so no agent is handed an empty prompt.
    """
    if session_id is not None:
        names.check_session_id(session_id)
    if "\x00" in prompt:
        raise InvalidParams(
            "the prompt contains a NUL character, which no argv can carry: remove it",
            field="prompt",
        )
    needs_id = _uses(profile.resume, "{session_id}")
    if resume and profile.resume and (session_id is not None or not needs_id):
        template, used_id, typed = profile.resume, session_id, None
        resumed = True
    else:
        template, resumed = profile.command, False
        used_id = str(uuid.uuid4()) if _uses(profile.command, "{session_id}") else None
        typed = prompt if profile.prompt_via == "input" and prompt.strip() else None
    values = {
        "{prompt}": prompt,
        "{session_id}": used_id or "",
        "{python}": python,
        "{shell}": shell,
    }
    argv = [
        _PLACEHOLDER.sub(lambda m: values[m.group(0)], arg)
        for arg in template
        if prompt.strip() or "{prompt}" not in arg
    ]
    return Launch(
        argv=argv,
        env=dict(profile.env),
        session_id=used_id,
        typed_prompt=typed,
        resumed=resumed,
    )


def _uses(template: list[str], placeholder: str) -> bool:
    return any(placeholder in arg for arg in template)
