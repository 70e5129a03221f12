"""Agent profiles: the built-ins, launch() argv building, session ids, resume, config overrides."""

from __future__ import annotations

import uuid

import pytest

from orchestra.core import agents
from orchestra.core.agents import (
    BUILTIN_AGENTS,
    PLACEHOLDERS,
    AgentProfile,
    Launch,
    launch,
)
from orchestra.core.config import Config, Layer, describe, profile_for, resolve
from orchestra.core.errors import ConfigError, InvalidParams

PY = "/opt/venv/bin/python3"
SH = "/bin/zsh"
PROJECT = "/src/app/.orchestra/config.toml"

HOSTILE_PROMPTS = [
    "fix the login form",
    "it's \"quoted\" and 'single' and `backticked`",
    "$(rm -rf /); rm -rf / && echo $HOME > /etc/passwd",
    "line one\nline two\n\n  indented\tand tabbed\r\n",
    "--help",
    "-x {session_id} {python} {shell} {prompt} %s {0}",
    "* ? [a-z] ~ | < > & ; \\ \\n",
    "ünïcödé → 日本語 🎉",
]


def start(
    name: str, prompt: str = "do it", *, session_id: str | None = None, resume: bool = False
) -> Launch:
    """launch() of a built-in with the test's python and shell."""
    return launch(
        BUILTIN_AGENTS[name],
        prompt=prompt,
        session_id=session_id,
        resume=resume,
        python=PY,
        shell=SH,
    )


# --- the built-ins ---


def test_every_builtin_has_a_command() -> None:
    """All seven built-in agents exist, each with a non-empty argv whose program is set."""
    assert set(BUILTIN_AGENTS) == {
        "claude",
        "codex",
        "opencode",
        "gemini",
        "aider",
        "shell",
        "demo",
    }
    for name, profile in BUILTIN_AGENTS.items():
        assert profile.command, name
        assert profile.command[0], name
        assert profile.prompt_via in agents.PROMPT_VIA


def test_builtins_are_the_config_default() -> None:
    """With no config files, Config.agents holds the built-in profiles."""
    assert resolve([]).config.agents == dict(BUILTIN_AGENTS)
    assert Config().agents == dict(BUILTIN_AGENTS)


def test_builtin_copies_are_independent() -> None:
    """Each Config gets its own copies, so nothing can change the built-ins by mutation."""
    first, second = agents.builtin_agents(), agents.builtin_agents()
    first["claude"].command.append("--oops")
    assert second["claude"] == BUILTIN_AGENTS["claude"] != first["claude"]


def test_agent_profile_is_reexported_by_config() -> None:
    """`from orchestra.core.config import AgentProfile` still works and is the same class."""
    from orchestra.core.config import AgentProfile as FromConfig

    assert FromConfig is AgentProfile


# --- launch: placeholders and the prompt ---


def test_placeholders_are_substituted() -> None:
    """{python}, {shell} and {prompt} are replaced by the values given."""
    assert start("demo", "go").argv == [PY, "-m", "orchestra.agents.demo", "go"]
    assert start("shell").argv == [SH]


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS)
@pytest.mark.parametrize("name", ["claude", "codex", "demo"])
def test_prompt_is_one_untouched_argv_element(name: str, prompt: str) -> None:
    """A prompt with spaces, quotes, $(...), newlines or placeholders stays one exact element."""
    argv = start(name, prompt).argv
    assert argv.count(prompt) == 1
    assert argv[-1] == prompt
    assert not any(p in arg for arg in argv[:-1] for p in PLACEHOLDERS)


@pytest.mark.parametrize("prompt", HOSTILE_PROMPTS)
def test_prompt_inside_an_element_is_kept_whole(prompt: str) -> None:
    """In "--flag={prompt}" the prompt fills the rest of that one element, unexpanded."""
    assert start("gemini", prompt).argv[-1] == "--prompt-interactive=" + prompt
    assert start("opencode", prompt).argv == ["opencode", "--prompt=" + prompt]


def test_prompt_after_double_dash_for_option_parsers() -> None:
    """Claude and Codex get `--` before the prompt, so a prompt like '--help' is not a flag."""
    for name in ("claude", "codex"):
        argv = start(name, "--help").argv
        assert argv[-2:] == ["--", "--help"]


def test_empty_prompt_leaves_out_prompt_arguments() -> None:
    """With no prompt, arguments holding {prompt} are dropped rather than passed empty."""
    assert start("opencode", "").argv == ["opencode"]
    assert start("demo", "  \n").argv == [PY, "-m", "orchestra.agents.demo"]
    assert start("aider", "").typed_prompt is None


def test_nul_in_prompt_is_refused() -> None:
    """A NUL character cannot travel in argv, so launch refuses it with a clear error."""
    with pytest.raises(InvalidParams, match="NUL"):
        start("claude", "a\x00b")


def test_env_is_a_copy_of_the_profile_env() -> None:
    """Launch.env carries the profile's variables and changing it does not touch the profile."""
    profile = AgentProfile(command=["x"], env={"A": "1"})
    spec = launch(profile, prompt="p", session_id=None, resume=False, python=PY, shell=SH)
    spec.env["B"] = "2"
    assert spec.env == {"A": "1", "B": "2"}
    assert profile.env == {"A": "1"}


# --- session ids and resume ---


def test_claude_session_id_is_generated_and_recorded() -> None:
    """A fresh Claude start gets a new uuid4 session id, passed with --session-id and returned."""
    first, second = start("claude", "p"), start("claude", "p")
    assert first.session_id is not None
    assert uuid.UUID(first.session_id).version == 4
    assert first.argv == ["claude", f"--session-id={first.session_id}", "--", "p"]
    assert first.session_id != second.session_id
    assert not first.resumed


def test_gemini_session_id_is_generated() -> None:
    """Gemini CLI also takes our session id at start."""
    spec = start("gemini", "p")
    assert spec.session_id is not None
    assert spec.argv[:2] == ["gemini", f"--session-id={spec.session_id}"]


def test_no_session_id_when_the_agent_cannot_take_one() -> None:
    """Agents whose start command has no {session_id} report no session id."""
    for name in ("codex", "opencode", "aider", "shell", "demo"):
        assert start(name).session_id is None, name


def test_resume_uses_the_resume_argv_with_the_id() -> None:
    """Resuming with a known id runs the resume argv with that id, without re-sending the prompt."""
    sid = str(uuid.uuid4())
    spec = start("claude", "the task", session_id=sid, resume=True)
    assert spec == Launch(
        argv=["claude", f"--resume={sid}"], env={}, session_id=sid, typed_prompt=None, resumed=True
    )
    assert start("gemini", session_id=sid, resume=True).argv == ["gemini", f"--resume={sid}"]
    assert start("opencode", session_id="ses_1", resume=True).argv == [
        "opencode",
        "--session=ses_1",
    ]
    demo = start("demo", session_id="d1", resume=True).argv
    assert demo == [PY, "-m", "orchestra.agents.demo", "--resume", "d1"]


@pytest.mark.parametrize("name", ["claude", "gemini", "opencode", "demo"])
def test_resume_without_id_falls_back_to_a_fresh_start(name: str) -> None:
    """Resume with no recorded id is a fresh start with the prompt (new id where one is taken)."""
    spec = start(name, "the task", resume=True)
    fresh = start(name, "the task")
    assert not spec.resumed
    assert "the task" in spec.argv[-1]
    assert spec.argv[0] == fresh.argv[0]
    assert (spec.session_id is None) == (fresh.session_id is None)


def test_resume_without_id_when_the_agent_needs_none() -> None:
    """Aider resumes by directory, so it resumes even with no recorded id."""
    aider = start("aider", "the task", resume=True)
    assert (aider.argv, aider.typed_prompt, aider.resumed) == (
        ["aider", "--restore-chat-history"],
        None,
        True,
    )


def test_codex_resumes_by_its_recorded_id_only() -> None:
    """Codex resumes the id its hooks recorded (`codex resume -- ID`), never "the newest
    session here": with no id it starts fresh with its prompt."""
    sid = "019af2b4-5c1e-7d32-9a40-3f6e1b2c8d11"
    codex = start("codex", "the task", session_id=sid, resume=True)
    assert codex.argv == ["codex", "resume", "--no-daemon", "--", sid]
    assert codex.resumed
    fresh = start("codex", "the task", resume=True)
    assert (fresh.argv, fresh.resumed) == (["codex", "--no-daemon", "--", "the task"], False)


def test_resume_with_no_resume_argv_starts_fresh() -> None:
    """A profile with no resume argv (the shell) just starts again."""
    spec = start("shell", session_id="s1", resume=True)
    assert (spec.argv, spec.resumed, spec.session_id) == ([SH], False, None)


def test_fresh_start_ignores_a_recorded_id() -> None:
    """resume=False starts a new session even if the task recorded one."""
    spec = start("claude", "p", session_id="11111111-1111-4111-8111-111111111111")
    assert spec.session_id != "11111111-1111-4111-8111-111111111111"
    assert not spec.resumed


def test_invalid_session_id_is_refused() -> None:
    """A session id that could split or pass for something else is refused before any argv."""
    with pytest.raises(InvalidParams, match="invalid session id"):
        start("claude", session_id="a b", resume=True)


def test_resume_argv_may_carry_the_prompt() -> None:
    """A resume template may use {prompt} too, e.g. to send the task again on resume."""
    profile = AgentProfile(
        command=["a", "{prompt}"], resume=["a", "-r", "{session_id}", "{prompt}"]
    )
    spec = launch(profile, prompt="go on", session_id="s1", resume=True, python=PY, shell=SH)
    assert spec.argv == ["a", "-r", "s1", "go on"]


# --- prompt typed into the PTY ---


def test_aider_prompt_is_typed() -> None:
    """Aider gets no prompt in argv; Launch.typed_prompt carries it, exactly, for the PTY."""
    prompt = HOSTILE_PROMPTS[3]
    spec = start("aider", prompt)
    assert spec.argv == ["aider"]
    assert spec.typed_prompt == prompt


def test_argv_agents_have_no_typed_prompt() -> None:
    """Agents that take the prompt in argv get no typed prompt."""
    for name in ("claude", "codex", "opencode", "gemini", "demo"):
        assert start(name, "p").typed_prompt is None, name


# --- validation ---


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"command": []}, "command must not be empty"),
        ({"command": ["", "{prompt}"]}, "command: the program (first element) must not be empty"),
        ({"command": ["a", "{promt}"]}, "command: unknown placeholder {promt} in '{promt}'"),
        ({"command": ["a"], "resume": ["a", "{id}"]}, "resume: unknown placeholder {id}"),
        ({"command": ["a"], "prompt_via": "stdin"}, "prompt_via must be one of argv, input"),
        ({"command": ["a"], "env": {"A=B": "1"}}, "env: invalid variable name 'A=B'"),
        ({"command": ["a\x00"]}, "contains a NUL character"),
    ],
)
def test_profile_validation(fields: dict[str, object], message: str) -> None:
    """A bad profile is refused with a message naming the field and the offending value."""
    with pytest.raises(ValueError) as info:
        AgentProfile(**fields)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_literal_braces_are_not_placeholders() -> None:
    """JSON in an argument (e.g. --settings '{"a": 1}') is left alone."""
    profile = AgentProfile(command=["a", '--settings={"model": "x"}', "{prompt}"])
    spec = launch(profile, prompt="p", session_id=None, resume=False, python=PY, shell=SH)
    assert spec.argv == ["a", '--settings={"model": "x"}', "p"]


# --- config: override, add, errors ---


def test_config_override_of_one_field_keeps_the_others() -> None:
    """[agents.claude] command = [...] replaces the command only; resume and env stay built in."""
    effective = resolve(
        [
            Layer(
                source=PROJECT,
                values={
                    "agents": {"claude": {"command": ["claude", "--model", "opus", "{prompt}"]}}
                },
            )
        ]
    )
    claude = profile_for(effective.config, "claude")
    builtin = BUILTIN_AGENTS["claude"]
    assert claude.command == ["claude", "--model", "opus", "{prompt}"]
    assert (claude.resume, claude.env, claude.prompt_via) == (
        builtin.resume,
        builtin.env,
        builtin.prompt_via,
    )
    assert effective.config.agents["codex"] == BUILTIN_AGENTS["codex"]
    table = {row["key"]: row["source"] for row in describe(effective)}
    assert table["agents.claude.command"] == PROJECT
    assert table["agents.claude.resume"] == "default"
    assert table["agents.gemini.command"] == "default"


def test_config_env_merges_into_a_builtin() -> None:
    """An env table adds variables to a built-in profile without touching its argv."""
    config = resolve([Layer(source=PROJECT, values={"agents": {"aider": {"env": {"A": "1"}}}})])
    aider = profile_for(config.config, "aider")
    assert aider == AgentProfile(
        command=["aider"],
        resume=["aider", "--restore-chat-history"],
        env={"A": "1"},
        hooks="aider",
        prompt_via="input",
        screen_patterns=BUILTIN_AGENTS["aider"].screen_patterns,
    )


def test_config_adds_an_agent() -> None:
    """A new [agents.NAME] table with a command makes a new agent, usable by name."""
    values = {"agents": {"mine": {"command": ["mine", "--task", "{prompt}"], "prompt_via": "argv"}}}
    config = resolve([Layer(source=PROJECT, values=values)]).config
    spec = launch(
        profile_for(config, "mine"), prompt="x y", session_id=None, resume=True, python=PY, shell=SH
    )
    assert spec.argv == ["mine", "--task", "x y"]


def test_config_new_agent_without_command_names_file_and_table() -> None:
    """A new agent with no command is refused after merging, naming the file and the table."""
    with pytest.raises(ConfigError) as info:
        resolve([Layer(source=PROJECT, values={"agents": {"mine": {"env": {"A": "1"}}}})])
    message = info.value.message
    assert message.startswith(f"{PROJECT}: command must not be empty")
    assert "agents['mine']" in message


def test_config_bad_placeholder_names_file_and_table() -> None:
    """A typo in a placeholder is a config error naming the file, the agent and the placeholder."""
    values = {"agents": {"claude": {"command": ["claude", "{promt}"]}}}
    with pytest.raises(ConfigError) as info:
        resolve([Layer(source=PROJECT, values=values)])
    assert PROJECT in info.value.message
    assert "unknown placeholder {promt}" in info.value.message
    assert "agents['claude']" in info.value.message


def test_unknown_agent_error_lists_known_agents() -> None:
    """profile_for refuses an unknown name, listing the known agents and how to add one."""
    config = resolve([Layer(source=PROJECT, values={"agents": {"mine": {"command": ["m"]}}})])
    with pytest.raises(InvalidParams) as info:
        profile_for(config.config, "cluade")
    message = info.value.message
    assert message.startswith("unknown agent 'cluade': use one of ")
    assert "aider, claude, codex, demo, gemini, mine, opencode, shell" in message
    assert "[agents.cluade]" in message
    assert info.value.data["known"] == [
        "aider",
        "claude",
        "codex",
        "demo",
        "gemini",
        "mine",
        "opencode",
        "shell",
    ]


def test_profile_for_falls_back_to_builtins() -> None:
    """A Config built with only custom agents still knows the built-in ones."""
    config = Config(agents={"mine": AgentProfile(command=["m"])})
    assert profile_for(config, "claude") == BUILTIN_AGENTS["claude"]
    assert profile_for(config, "mine") == AgentProfile(command=["m"])
