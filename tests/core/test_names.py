"""Name rules at the boundary: slugs, labels, agents, branches, task refs, session ids, titles."""

from __future__ import annotations

from typing import Any

import pytest

from orchestra.core import names
from orchestra.core.errors import EXIT_USAGE, InvalidParams

# --- slugs ---


@pytest.mark.parametrize(
    "slug", ["a", "fix-login", "1a", "a1", "0-x", "a-", "a--b", "x" * 63, "2026-11-fix"]
)
def test_valid_slugs(slug: str) -> None:
    """Lowercase letters, digits and '-', 1-63 long, starting with a letter or digit, are slugs."""
    assert names.check_slug(slug) == slug


@pytest.mark.parametrize(
    "slug",
    [
        "",
        "../x",
        "x/../../etc",
        "a/b",
        "-x",
        "--upload-pack",
        "a" * 64,
        "Fix",
        "fixLogin",
        "123",
        "0",
        "a_b",
        "a.b",
        ".x",
        "a b",
        "a\n",
        "\na",
        "a\x00",
        "café",
        "ﬁx",  # a ligature that lowercases/normalises to "fix"
        "١٢٣",  # Arabic-Indic digits
        "x\u200b",  # zero-width space
        None,
        5,
        ["a"],
    ],
)
def test_invalid_slugs(slug: Any) -> None:
    """Anything else is refused with a message quoting the value and stating the rule."""
    with pytest.raises(InvalidParams) as info:
        names.check_slug(slug)
    err = info.value
    assert err.message == f"invalid slug {slug!r}: use {names.SLUG_RULE}"
    assert err.data == {"field": "slug", "rule": names.SLUG_RULE}
    assert err.exit_code == EXIT_USAGE


def test_slug_rule_text_states_the_rule() -> None:
    """The rule text a user sees gives the length, the characters and the all-digits exception."""
    assert "1-63" in names.SLUG_RULE
    assert "lowercase" in names.SLUG_RULE
    assert "digits" in names.SLUG_RULE


# --- labels ---


@pytest.mark.parametrize("label", ["ui", "UI", "area:ui", "v1.2", "a_b", "a-b", "7", "x" * 64])
def test_valid_labels(label: str) -> None:
    """Letters, digits, '.', '_', ':' and '-' up to 64 characters make a label."""
    assert names.check_label(label) == label


@pytest.mark.parametrize(
    "label", ["", "-x", ".x", ":x", "a b", "a,b", "x" * 65, "é", "a\n", "a/b", None, 3]
)
def test_invalid_labels(label: Any) -> None:
    """Any other label is refused, quoting it and stating the rule."""
    with pytest.raises(InvalidParams, match="invalid label") as info:
        names.check_label(label)
    assert names.LABEL_RULE in info.value.message
    assert info.value.data["field"] == "labels"


def test_check_labels_dedupes_in_order() -> None:
    """A label list keeps first occurrences in order and drops repeats."""
    assert names.check_labels(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    assert names.check_labels([]) == []


@pytest.mark.parametrize("labels", ["ui", None, ("ui",), {"ui": 1}, ["ok", 3], ["ok", "no good"]])
def test_check_labels_refuses(labels: Any) -> None:
    """Labels must be a list of valid labels; the first bad one is named."""
    with pytest.raises(InvalidParams):
        names.check_labels(labels)


# --- agents ---


@pytest.mark.parametrize("agent", ["claude", "codex", "my_agent", "a-1", "x" * 32])
def test_valid_agents(agent: str) -> None:
    """Lowercase names with digits, '_' and '-' up to 32 characters are agent names."""
    assert names.check_agent(agent) == agent


@pytest.mark.parametrize("agent", ["", "Claude", "-x", "_x", "a b", "x" * 33, "../bin/sh", None])
def test_invalid_agents(agent: Any) -> None:
    """Other agent names are refused with the rule."""
    with pytest.raises(InvalidParams, match="invalid agent name") as info:
        names.check_agent(agent)
    assert names.AGENT_RULE in info.value.message


# --- branches (git-check-ref-format(1), plus no leading '-') ---


@pytest.mark.parametrize(
    "branch",
    [
        "main",
        "master",
        "develop",
        "feature/login",
        "feature/x.y",
        "release-1.2",
        "a@b",
        "orchestra/3-fix-login",
        "user/sam/wip",
        "é",
        "x" * 200,
    ],
)
def test_valid_branches(branch: str) -> None:
    """Names git accepts as branches (and that cannot pass for options) are accepted."""
    assert names.check_branch(branch) == branch


@pytest.mark.parametrize(
    "branch",
    [
        "",
        "-x",
        "--upload-pack=x",
        "-",
        "a..b",
        "..",
        "a@{b",
        "@{-1}",
        "@",
        "a b",
        " main",
        "main ",
        "a\tb",
        "a\nb",
        "a\x00b",
        "a\x7fb",
        "a~1",
        "a^2",
        "a:b",
        "a?b",
        "a*b",
        "a[b",
        "a\\b",
        "x.lock",
        "a/b.lock",
        "a.lock/b",
        "a/b.lock/c",
        ".hidden",
        "a/.b",
        "a.",
        "a/",
        "/a",
        "a//b",
        "x" * 201,
        None,
        7,
    ],
)
def test_invalid_branches(branch: Any) -> None:
    """Names git refuses, or that start with '-', are refused with a reason, quoting the name."""
    with pytest.raises(InvalidParams) as info:
        names.check_branch(branch)
    assert info.value.message.startswith(f"invalid branch name {branch!r}: ")
    assert info.value.data == {"field": "base_branch"}


@pytest.mark.parametrize(
    "branch",
    ["a\u202eb", "\u202ex", "a\x85b", "a\x9bb", "a\u200bb", "a\u2028b", "a\ud800", "a\xa0b"],
)
def test_branches_that_lie_on_a_terminal(branch: str) -> None:
    """C1 controls (U+0085), bidi overrides (U+202E), zero-width and other format characters,
    separators and lone surrogates are refused: git may take them, a terminal hides them."""
    with pytest.raises(InvalidParams, match="control or formatting character") as info:
        names.check_branch(branch)
    assert repr(branch) in info.value.message


def test_branch_error_names_the_field() -> None:
    """The caller can say which field held the bad branch name."""
    with pytest.raises(InvalidParams) as info:
        names.check_branch("a..b", field="base")
    assert info.value.data == {"field": "base"}


def test_task_branch_and_stem() -> None:
    """A task's branch is orchestra/{id}-{slug}, and it passes the branch rules."""
    assert names.task_stem(12, "fix-login") == "12-fix-login"
    assert names.task_branch(12, "fix-login") == "orchestra/12-fix-login"
    names.check_branch(names.task_branch(12, "fix-login"))


# --- task references ---


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (1, 1),
        (42, 42),
        ("1", 1),
        ("42", 42),
        ("007", 7),
        ("fix-login", "fix-login"),
        ("1a", "1a"),
        ("a", "a"),
    ],
)
def test_parse_task_ref(ref: Any, expected: int | str) -> None:
    """An int or a digit string is an id; a slug-shaped string is a slug."""
    result = names.parse_task_ref(ref)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    "ref",
    [
        0,
        -1,
        "0",
        "000",
        "-1",
        True,
        False,
        1.0,
        None,
        "",
        "Fix",
        "../x",
        "a b",
        "\u0661",  # ARABIC-INDIC DIGIT ONE: a digit to isdigit(), not to us
        "x" * 64,
        ["1"],
    ],
)
def test_parse_task_ref_refuses(ref: Any) -> None:
    """Zero, negatives, booleans, floats and anything not a slug are refused."""
    with pytest.raises(InvalidParams) as info:
        names.parse_task_ref(ref)
    assert info.value.data == {"field": "task"}


def test_parse_task_ref_huge_number() -> None:
    """A digit string too long for int() is an InvalidParams, not a bare ValueError."""
    with pytest.raises(InvalidParams, match="too large"):
        names.parse_task_ref("9" * 5000)


# --- session ids ---


@pytest.mark.parametrize("session_id", ["abc", "0b7e-4c1a-9f", "a" * 200, "x:y/z=1", "!"])
def test_valid_session_ids(session_id: str) -> None:
    """Session ids are 1-200 printable ASCII characters without spaces."""
    assert names.check_session_id(session_id) == session_id


@pytest.mark.parametrize("session_id", ["", "a b", "a\n", "a\x00", "é", "a" * 201, None, 5])
def test_invalid_session_ids(session_id: Any) -> None:
    """Anything else is refused with the rule."""
    with pytest.raises(InvalidParams) as info:
        names.check_session_id(session_id)
    assert names.SESSION_RULE in info.value.message
    assert info.value.data["field"] == "session_id"


# --- titles ---


@pytest.mark.parametrize("title", ["Fix the login form", "Café ✓", "x" * names.TITLE_MAX])
def test_valid_titles(title: str) -> None:
    """A title is one line of printable characters, at most TITLE_MAX long."""
    assert names.check_title(title) == title


@pytest.mark.parametrize(
    "title", ["a\nb", "a\rb", "a\tb", "\x00", "\x1b[31mred", "x" * (names.TITLE_MAX + 1), None, 3]
)
def test_invalid_titles(title: Any) -> None:
    """Multi-line, control characters, over-long or non-string titles are refused."""
    with pytest.raises(InvalidParams, match="one line of at most 200 printable characters"):
        names.check_title(title)


# --- free text ---


@pytest.mark.parametrize(
    "text", ["", "line one\nline two\r\n\ttabbed", "\x1b[2J \u202e \x85 é ✓ 😀", "x" * 100_000]
)
def test_free_text_takes_any_text(text: str) -> None:
    """A description may hold any text a file and an argv element can: controls are shown
    escaped on output, not refused."""
    assert names.check_text(text, "description") == text


@pytest.mark.parametrize("text", ["a\x00b", "\x00", "\ud800", "a\udfffb", None, 3])
def test_free_text_refuses_nul_and_lone_surrogates(text: Any) -> None:
    """NUL (argv cannot hold it) and lone surrogates (UTF-8 cannot) are refused, naming the
    field, quoting the value and stating the rule."""
    with pytest.raises(InvalidParams) as info:
        names.check_text(text, "description")
    assert info.value.message == f"invalid description {text!r}: use {names.TEXT_RULE}"
    assert info.value.data == {"field": "description", "rule": names.TEXT_RULE}
