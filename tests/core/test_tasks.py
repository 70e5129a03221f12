"""Task files: TOML front matter between +++ lines, kept byte for byte, with precise errors."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestra.core.errors import TaskFileError
from orchestra.core.names import (
    AGENT_RULE,
    LABEL_RULE,
    SESSION_RULE,
    TEXT_RULE,
    TITLE_MAX,
    TITLE_RULE,
)
from orchestra.core.states import Status
from orchestra.core.tasks import (
    Task,
    TaskDocument,
    new_task_document,
    parse_task_text,
    title_from_description,
)

SOURCE = "/src/app/.orchestra/tasks/3-fix-login.md"

HAND_WRITTEN = """\
+++
# Sam's notes: keep this comment.
title   =   "Fix the login form"   # trailing comment
status = "draft"
agent="claude"

labels = [ "ui",   "bug" ]     # aligned by hand
created_at = 2026-11-27T10:00:00Z
priority = 3   # unknown key: kept
reviewers = ["ana"]

[extra]  # an unknown table
owner = "sam"
+++

The login form loses the password when the page reloads.

## Steps
1. Open /login
2. Type a password, reload
"""


def parse(text: str) -> TaskDocument:
    return parse_task_text(text, source=SOURCE)


def task_of(text: str) -> Task:
    return parse(text).to_task(3, "fix-login", source=SOURCE)


def file_error(text: str) -> TaskFileError:
    with pytest.raises(TaskFileError) as info:
        task_of(text)
    return info.value


def front(*lines: str, body: str = "Body.\n") -> str:
    """A task file whose front matter is the given lines."""
    return "+++\n" + "".join(line + "\n" for line in lines) + "+++\n\n" + body


VALID_FIELDS = (
    'status = "draft"',
    'agent = "claude"',
    "created_at = 2026-11-27T10:00:00Z",
)


# --- round trips ---


def test_hand_written_file_round_trips_byte_for_byte() -> None:
    """Rendering an unmodified parse of a person's file reproduces it exactly."""
    assert parse(HAND_WRITTEN).render() == HAND_WRITTEN


def test_hand_written_file_reads_as_a_task() -> None:
    """The stored fields of a hand-written file become the Task; the body is the description."""
    task = task_of(HAND_WRITTEN)
    assert task == Task(
        id=3,
        slug="fix-login",
        status=Status.DRAFT,
        agent="claude",
        base_branch=None,
        labels=("ui", "bug"),
        created_at=dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC),
        session_id=None,
        title="Fix the login form",
        description=HAND_WRITTEN.split("+++\n\n", 1)[1],
    )
    assert task.created_at.utcoffset() == dt.timedelta(0)


def test_setting_status_changes_only_that_line() -> None:
    """A status write keeps comments, spacing, ordering and unknown keys and tables."""
    doc = parse(HAND_WRITTEN)
    doc.set("status", "running")
    assert doc.render() == HAND_WRITTEN.replace('status = "draft"', 'status = "running"')
    assert task_of(doc.render()).status is Status.RUNNING


def test_set_adds_and_none_removes() -> None:
    """Setting a new key appends it; setting None removes it (TOML has no null)."""
    doc = parse(HAND_WRITTEN)
    doc.set("session_id", "abc-123")
    text = doc.render()
    assert 'session_id = "abc-123"\n' in text
    assert "# Sam's notes: keep this comment." in text
    assert task_of(text).session_id == "abc-123"
    doc = parse(text)
    doc.set("session_id", None)
    doc.set("never_there", None)
    assert "session_id" not in doc.render()
    assert doc.render() == HAND_WRITTEN


def test_set_labels_writes_an_array() -> None:
    """Setting labels from a list or tuple stores a TOML array of strings."""
    doc = parse(HAND_WRITTEN)
    doc.set("labels", ("api", "auth"))
    assert task_of(doc.render()).labels == ("api", "auth")
    assert doc.get("labels") == ["api", "auth"]


def test_get_unwraps_to_plain_python() -> None:
    """get() returns plain Python values, None for a missing key."""
    doc = parse(HAND_WRITTEN)
    assert doc.get("priority") == 3
    assert type(doc.get("priority")) is int
    assert doc.get("extra") == {"owner": "sam"}
    assert doc.get("missing") is None


def test_body_keeps_its_content() -> None:
    """Only the one blank line after the closing fence is dropped from the description."""
    text = front(*VALID_FIELDS, body="\n\nIndented start\n\n+++\nnot a fence for us\n")
    task = task_of(text)
    assert task.description == "\n\nIndented start\n\n+++\nnot a fence for us\n"
    assert parse(text).render() == text


def test_no_body() -> None:
    """A file that ends at the closing fence has an empty description and renders the same."""
    text = "+++\n" + "".join(f"{line}\n" for line in VALID_FIELDS) + "+++\n"
    assert task_of(text).description == ""
    assert parse(text).render() == text


def test_crlf_fences_are_recognised() -> None:
    """A file saved with Windows line endings still parses."""
    text = front(*VALID_FIELDS).replace("\n", "\r\n")
    assert task_of(text).agent == "claude"


# --- new files ---


def test_new_task_document_round_trips() -> None:
    """A new task's file parses back to the same Task, with microseconds dropped from the time."""
    doc = new_task_document(
        status=Status.DRAFT,
        agent="claude",
        base_branch="main",
        labels=["ui", "bug"],
        created_at=dt.datetime(2026, 11, 27, 10, 0, 5, 123456, tzinfo=dt.UTC),
        title="Fix the login form",
        description="The login form loses the password.\n",
    )
    text = doc.render()
    assert text == (
        "+++\n"
        'title = "Fix the login form"\n'
        'status = "draft"\n'
        'agent = "claude"\n'
        'base_branch = "main"\n'
        'labels = ["ui", "bug"]\n'
        "created_at = 2026-11-27T10:00:05Z\n"
        "+++\n"
        "\n"
        "The login form loses the password.\n"
    )
    task = doc.to_task(7, "fix-login", source="new")
    assert parse(text).to_task(7, "fix-login", source=SOURCE) == task
    assert task.created_at == dt.datetime(2026, 11, 27, 10, 0, 5, tzinfo=dt.UTC)
    assert parse(text).render() == text


def test_new_task_document_leaves_out_missing_optionals() -> None:
    """No title and no base branch means no such keys, and they read back as None."""
    doc = new_task_document(
        status=Status.QUEUED,
        agent="codex",
        base_branch=None,
        labels=[],
        created_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        title=None,
        description="",
    )
    text = doc.render()
    assert "title" not in text
    assert "base_branch" not in text
    task = parse(text).to_task(1, "x", source=SOURCE)
    assert task == doc.to_task(1, "x", source="new")
    assert (task.title, task.base_branch, task.labels, task.description) == (None, None, (), "")


def test_description_without_final_newline_gets_one() -> None:
    """A description with no final newline is written with one, so the file ends in a newline."""
    doc = new_task_document(
        status=Status.DRAFT,
        agent="claude",
        base_branch=None,
        labels=[],
        created_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        title=None,
        description="do it",
    )
    assert doc.render().endswith("+++\n\ndo it\n")


def test_task_names() -> None:
    """A task's stem, branch and ref all derive from its id and slug."""
    task = task_of(HAND_WRITTEN)
    assert task.stem == "3-fix-login"
    assert task.ref == "3-fix-login"
    assert task.branch == "orchestra/3-fix-login"


# --- broken files ---


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("+++\nstatus = \n+++\n", 2),
        ('+++\nstatus = "draft"\nagent = \n+++\n\nBody\n', 3),
        ('+++\n# comment\n\nstatus = "draft"\n\n\nthis is not toml\n+++\n', 7),
        ('+++\nstatus = "draft"\nstatus = "running"\n+++\n', 3),
        ('+++\ntitle = "unterminated\n+++\n', 2),
        ('+++\nstatus = "draft"\nagent = "claude"\nlabels = ["a" "b"]\n+++\n', 4),
    ],
)
def test_bad_toml_names_file_and_line(text: str, line: int) -> None:
    """Broken TOML is a TaskFileError naming the file and its line in the file (+++ is line 1)."""
    with pytest.raises(TaskFileError) as info:
        parse(text)
    err = info.value
    assert err.message.startswith(f"{SOURCE}:{line}: invalid TOML front matter: ")
    assert " at line " not in err.message  # tomlkit's own (front-matter relative) position is cut
    assert err.data["file"] == SOURCE
    assert err.data["line"] == line


@pytest.mark.parametrize(
    "text",
    ["", "\n", 'status = "draft"\n+++\n', " +++\nstatus = 1\n+++\n", "++++\n+++\n", "# +++\n"],
)
def test_missing_opening_fence(text: str) -> None:
    """A file that does not start with a +++ line is refused at line 1."""
    with pytest.raises(
        TaskFileError, match=r":1: a task file must start with a '\+\+\+' line"
    ) as info:
        parse(text)
    assert info.value.data == {"file": SOURCE, "line": 1}


@pytest.mark.parametrize(
    "text", ["+++\n", '+++\nstatus = "draft"\n', '+++\nstatus = "draft"\n+++ \n']
)
def test_missing_closing_fence(text: str) -> None:
    """Front matter with no closing +++ line is refused, naming the file."""
    with pytest.raises(TaskFileError, match="has no closing") as info:
        parse(text)
    assert info.value.message.startswith(SOURCE)


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ('status = "bogus"', "status", "one of draft, queued, running"),
        ('status = "Draft"', "status", "one of draft"),
        ("status = 3", "status", "one of draft"),
        ('agent = ["claude"]', "agent", "a string"),
        ('labels = "ui"', "labels", "a list of strings"),
        ("labels = [1, 2]", "labels", "a list of strings"),
        ('created_at = "2026-11-27T10:00:00Z"', "created_at", "a TOML date-time"),
        ("created_at = 2026-11-27", "created_at", "a TOML date-time"),
        ("base_branch = 1", "base_branch", "a string"),
        ("session_id = true", "session_id", "a string"),
        ("title = 2026-11-27T10:00:00Z", "title", "a string"),
    ],
)
def test_wrong_type_names_the_key(line: str, key: str, expected: str) -> None:
    """A bad stored field is refused, naming the file, the key and what it must be."""
    fields = [f for f in VALID_FIELDS if not f.startswith(key)]
    err = file_error(front(*fields, line))
    assert err.message.startswith(f"{SOURCE}: key {key!r} must be {expected}")
    assert "found" in err.message
    assert err.data == {"file": SOURCE, "key": key}


@pytest.mark.parametrize("key", ["status", "agent", "created_at"])
def test_missing_required_key(key: str) -> None:
    """Each required field missing is refused, naming that key."""
    fields = [f for f in VALID_FIELDS if not f.startswith(key)]
    err = file_error(front(*fields))
    assert err.data["key"] == key
    assert "found None" in err.message


def test_optional_keys_may_be_missing() -> None:
    """Without labels, title, base_branch or session_id a task still loads with empty values."""
    task = task_of(front(*VALID_FIELDS))
    assert (task.labels, task.title, task.base_branch, task.session_id) == ((), None, None, None)


# --- titles ---


@pytest.mark.parametrize(
    ("description", "title"),
    [
        ("Fix the login form\n\nMore.", "Fix the login form"),
        ("\n\n   \n## Fix it  \nmore", "Fix it"),
        ("# \n#Title", "Title"),
        ("", None),
        ("\n \n#\n", None),
        ("x" * (TITLE_MAX + 50), "x" * TITLE_MAX),
    ],
)
def test_title_from_description(description: str, title: str | None) -> None:
    """The default title is the first non-empty line without heading marks, cut to the maximum."""
    assert title_from_description(description) == title


# --- hostile text in a file: the wire's rules, applied to what is on disk ---

OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"  # a clipboard write
CLEAR = "\x1b[2J"


@pytest.mark.parametrize(
    ("line", "key", "rule"),
    [
        ('title = "\\u001b]52;c;cm0gLXJmIH4=\\u0007"', "title", TITLE_RULE),  # OSC 52
        ('title = "two\\nlines"', "title", TITLE_RULE),
        ('title = "\\u202eevil"', "title", TITLE_RULE),
        ('labels = ["ui", "\\u001b[2J"]', "labels", LABEL_RULE),
        ('labels = ["needs review"]', "labels", LABEL_RULE),
        ('agent = "\\u001b[2J"', "agent", AGENT_RULE),
        ('base_branch = "ma\\u0000in"', "base_branch", "invalid branch name"),
        ('base_branch = "ma\\u202ein"', "base_branch", "invalid branch name"),
        ('base_branch = "--upload-pack=x"', "base_branch", "invalid branch name"),
        ('session_id = "\\u0085x"', "session_id", SESSION_RULE),
    ],
)
def test_a_field_breaking_the_wire_rule_breaks_the_file(line: str, key: str, rule: str) -> None:
    """A stored field the API would refuse makes the file broken: the error names the file
    and the key, quotes the value escaped (no raw control character) and states the rule."""
    fields = [f for f in VALID_FIELDS if not f.startswith(key)]
    err = file_error(front(*fields, line))
    assert err.message.startswith(f"{SOURCE}: key {key!r}: ")
    assert rule in err.message
    assert err.data["file"] == SOURCE and err.data["key"] == key
    assert err.message.isprintable(), err.message


def test_a_nul_in_the_description_breaks_the_file() -> None:
    """A NUL in the body (no argv element can carry it to the agent) makes the file broken."""
    err = file_error(front(*VALID_FIELDS, body="Fix it\x00 now\n"))
    assert err.message.startswith(f"{SOURCE}: the description")
    assert TEXT_RULE in err.message
    assert err.data == {"file": SOURCE, "key": "description", "rule": TEXT_RULE}


def test_free_text_and_unicode_stay_legal() -> None:
    """Escapes, bidi controls and tabs in the description, and non-ASCII printable titles and
    branches, are still a valid task: only the output escapes them."""
    body = f"Clear with {CLEAR}, copy with {OSC52}; \u202eevil\n\tindented\r\n"
    text = front(
        *VALID_FIELDS,
        'title = "Café ✓ 😀"',
        'base_branch = "feature/é"',
        'labels = ["a.b:c"]',
        body=body,
    )
    task = task_of(text)
    assert (task.title, task.base_branch, task.labels, task.description) == (
        "Café ✓ 😀",
        "feature/é",
        ("a.b:c",),
        body,
    )
