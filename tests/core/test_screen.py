"""Screen patterns: each built-in agent's, against real recordings; and config's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestra.adapters.terminal import Terminal
from orchestra.core.agents import BUILTIN_AGENTS, AgentProfile, ScreenPattern
from orchestra.core.config import Layer, resolve
from orchestra.core.errors import ConfigError
from orchestra.core.screen import waiting_reason

TERMINAL = Path(__file__).resolve().parent.parent / "fixtures" / "terminal"

# Recordings (tmux's reference screens) where the agent waits for the person, and why.
WAITING = [
    ("claude", "claude-permission.interactive.100x30", "permission"),  # its Bash prompt
    ("codex", "codex.noanswer.100x30", "question"),  # sign-in chooser
    ("codex", "codex.interactive.100x30", "question"),
    ("gemini", "gemini.noanswer.100x30", "question"),  # "Do you trust the files ...?"
    ("gemini", "gemini.interactive.100x30", "question"),  # "How would you like to auth..."
]
# Recordings of the same agents where they do not wait for the person to answer.
NOT_WAITING = [
    ("claude", "claude-main.noanswer.100x30"),  # its input prompt, idle
    ("claude", "claude-main.interactive.100x30"),  # typing a command
    ("claude", "claude-onboard.noanswer.100x30"),  # "Unable to connect"
    ("claude", "claude-done.interactive.100x30"),  # the permission answered, turn done
    ("opencode", "opencode.noanswer.100x30"),
    ("opencode", "opencode.interactive.100x30"),
]
OTHERS = ["vim", "nvim", "htop"]


def screen(name: str) -> str:
    """tmux's reference screen text of a recording."""
    return (TERMINAL / f"{name}.tmux.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(("agent", "name", "reason"), WAITING)
def test_each_agents_patterns_find_it_waiting_on_its_recordings(
    agent: str, name: str, reason: str
) -> None:
    """The built-in patterns of the agent find the wait, with its reason, on the screen."""
    assert waiting_reason(BUILTIN_AGENTS[agent], screen(name)) == reason


@pytest.mark.parametrize(("agent", "name", "reason"), WAITING)
def test_the_terminal_models_screen_gives_the_same_answer(
    agent: str, name: str, reason: str
) -> None:
    """Replayed through our terminal model (what the daemon matches), each recording gives
    the answer tmux's screen gives."""
    term = Terminal(100, 30)
    try:
        term.feed((TERMINAL / f"{name}.bin").read_bytes())
        assert waiting_reason(BUILTIN_AGENTS[agent], term.text()) == reason
    finally:
        term.close()


@pytest.mark.parametrize(("agent", "name"), NOT_WAITING)
def test_no_pattern_matches_a_screen_of_the_same_agent_not_waiting(agent: str, name: str) -> None:
    """The agent's patterns stay quiet on its screens that need no answer."""
    assert waiting_reason(BUILTIN_AGENTS[agent], screen(name)) is None


@pytest.mark.parametrize("program", OTHERS)
def test_no_agents_pattern_matches_an_editor_or_htop(program: str) -> None:
    """No built-in pattern fires on vim's, neovim's or htop's screens."""
    for mode in ("noanswer", "interactive"):
        text = screen(f"{program}.{mode}.100x30")
        for name, profile in BUILTIN_AGENTS.items():
            assert waiting_reason(profile, text) is None, (name, program, mode)


def test_each_pattern_fires_only_for_its_own_agent_on_the_recordings() -> None:
    """On each waiting recording only its own agent's patterns fire (no pattern so loose
    that it reads another agent's dialog)."""
    for agent, name, _ in WAITING:
        for other, profile in BUILTIN_AGENTS.items():
            if other != agent:
                assert waiting_reason(profile, screen(name)) is None, (other, name)


@pytest.mark.parametrize(
    ("agent", "text", "reason"),
    [
        # Texts of the agents' own dialogs (their shipped strings; docs/agents.md).
        (
            "claude",
            " Do you want to make this edit to app.py?\n   1. Yes\n \u276f 2. Yes, all edits\n",
            "permission",
        ),
        ("codex", "  Would you like to run the following command?\n\n  $ touch x\n", "permission"),
        ("codex", "  Would you like to make the following edits?\n", "permission"),
        ("codex", "  Trust this folder? Codex can read, edit, and run files here\n", "question"),
        ("codex", "\n  Hooks need review\n  3 hooks are new or changed.\n", "question"),
        ("gemini", " │ Apply this change?                │\n", "permission"),
        ("gemini", " │ Allow execution of: 'touch'?       │\n", "permission"),
        ("opencode", "  △ Permission required\n  ← Bash touch x\n", "permission"),
        (
            "aider",
            "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]: ",
            "permission",
        ),
        ("aider", "Add file to the chat? (Y)es/(N)o/(A)ll/(S)kip all [Yes]: ", "permission"),
    ],
)
def test_each_agents_dialog_texts_match(agent: str, text: str, reason: str) -> None:
    """The dialogs no recording holds yet, from the agents' shipped strings, match."""
    assert waiting_reason(BUILTIN_AGENTS[agent], text) == reason


def test_an_agent_asking_in_prose_is_not_a_permission_prompt() -> None:
    """Claude's pattern needs the choices under the question: a question in the
    transcript alone is not its permission dialog."""
    assert waiting_reason(BUILTIN_AGENTS["claude"], "● Do you want to proceed? I can.\n") is None


def test_the_first_matching_pattern_wins_and_none_gives_none() -> None:
    """Patterns are tried in order; a profile with none never finds a wait."""
    profile = AgentProfile(
        command=["x"],
        screen_patterns=[
            ScreenPattern(pattern=r"^Ask: ", reason="question"),
            ScreenPattern(pattern=r"Ask", reason="permission"),
        ],
    )
    assert waiting_reason(profile, "output\nAsk: which?\n") == "question"
    assert waiting_reason(profile, "Ask later") == "permission"
    assert waiting_reason(AgentProfile(command=["x"]), "Ask: which?") is None
    assert (
        waiting_reason(BUILTIN_AGENTS["shell"], screen("claude-permission.interactive.100x30"))
        is None
    )


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"pattern": "Approve (", "reason": "permission"}, "invalid regular expression"),
        ({"pattern": ".*"}, "matches an empty screen"),
        ({"pattern": "Approve", "reason": "later"}, "reason must be one of"),
        ({"pattern": "Approve", "why": "x"}, "unknown key why"),
        ("Approve", "expected a table"),
        ({"reason": "question"}, "required key missing"),
    ],
)
def test_a_bad_pattern_in_config_is_an_error_naming_the_key(item: object, message: str) -> None:
    """A broken `[agents.NAME].screen_patterns` entry fails at load, naming the file, the
    agent's key and what is wrong."""
    layer = Layer(source="cfg.toml", values={"agents": {"claude": {"screen_patterns": [item]}}})
    with pytest.raises(ConfigError) as caught:
        resolve([layer])
    text = caught.value.message
    assert text.startswith("cfg.toml: ")
    assert "screen_patterns" in text and "claude" in text
    assert message in text


def test_config_patterns_replace_the_builtin_list_and_match() -> None:
    """`[agents.NAME].screen_patterns` replaces the profile's list whole, for a built-in or
    a custom agent, and its patterns are what waiting_reason uses."""
    values = {
        "agents": {
            "claude": {"screen_patterns": [{"pattern": r"^Approve\?", "reason": "permission"}]},
            "mine": {"command": ["mine"], "hooks": "claude", "screen_patterns": []},
        }
    }
    agents = resolve([Layer(source="cfg.toml", values=values)]).config.agents
    assert [p.pattern for p in agents["claude"].screen_patterns] == [r"^Approve\?"]
    assert waiting_reason(agents["claude"], "x\nApprove?\n") == "permission"
    assert waiting_reason(agents["claude"], screen("claude-permission.interactive.100x30")) is None
    assert agents["mine"].hooks == "claude" and agents["mine"].screen_patterns == []


def test_every_builtin_pattern_compiles_and_cannot_match_an_empty_screen() -> None:
    """The shipped patterns are valid, specific regular expressions."""
    for profile in BUILTIN_AGENTS.values():
        for item in profile.screen_patterns:
            assert re.search(item.pattern, "", re.MULTILINE) is None
            assert re.search(item.pattern, " " * 100 + "\n" * 30, re.MULTILINE) is None
