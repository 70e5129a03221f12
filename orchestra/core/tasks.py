"""The task model and its file format, without any file I/O.

A task file is TOML front matter between `+++` lines (Hugo's convention) and
then the Markdown description, which is the agent's prompt:

    +++
    title = "Fix the login form"
    status = "draft"
    agent = "claude"
    labels = ["ui"]
    created_at = 2026-11-27T10:00:00Z
    +++

    The login form loses the password when...

The id and slug live in the file name (`{id}-{slug}.md`). Front matter is kept
as a tomlkit document so a person's comments, ordering and unknown keys survive
every write the daemon makes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs
import tomlkit
import tomlkit.exceptions
from tomlkit.items import Item

from orchestra.core import names
from orchestra.core.errors import InvalidParams, TaskFileError
from orchestra.core.states import Status

FENCE = "+++"
STORED_FIELDS = (
    "title",
    "status",
    "agent",
    "base_branch",
    "labels",
    "created_at",
    "session_id",
    "base_sha",
    "forked_from",
    "queued_at",
)


@attrs.frozen(kw_only=True)
class Task:
    """One task as the daemon reports it. Immutable; changes make a new file."""

    id: int
    slug: str
    status: Status
    agent: str
    base_branch: str | None
    labels: tuple[str, ...]
    created_at: dt.datetime
    session_id: str | None
    title: str | None
    description: str
    # Written by the daemon when the task's worktree is made: the commit its branch
    # started from (what `diff` and `merge` compare against) and the branch it was taken
    # from; and when it was queued (the queue is served oldest first).
    base_sha: str | None = None
    forked_from: str | None = None
    queued_at: dt.datetime | None = None

    @property
    def stem(self) -> str:
        return names.task_stem(self.id, self.slug)

    @property
    def branch(self) -> str:
        return names.task_branch(self.id, self.slug)

    @property
    def ref(self) -> str:
        """How messages name the task: `3-fix-login`."""
        return self.stem


@attrs.define
class TaskDocument:
    """A parsed task file: the tomlkit front matter and the Markdown body.

    Invariant: `front` is exactly what was read (or built), so rendering an
    unmodified document reproduces the person's formatting byte for byte.
    """

    front: tomlkit.TOMLDocument
    body: str

    def get(self, key: str) -> Any:
        value = self.front.get(key)
        return value.unwrap() if isinstance(value, Item) else value

    def set(self, key: str, value: Any) -> None:
        """Set a key (None removes it: TOML has no null)."""
        if value is None:
            if key in self.front:
                del self.front[key]
        elif isinstance(value, (list, tuple)):
            array = tomlkit.array()
            array.extend(value)
            self.front[key] = array
        else:
            self.front[key] = value

    def render(self) -> str:
        front = tomlkit.dumps(self.front)
        if front and not front.endswith("\n"):
            front += "\n"
        body = self.body
        if body and not body.endswith("\n"):
            body += "\n"
        return f"{FENCE}\n{front}{FENCE}\n\n{body}" if body else f"{FENCE}\n{front}{FENCE}\n"

    def to_task(self, task_id: int, slug: str, *, source: str) -> Task:
        """Validate the stored fields, by the rules the wire applies to the same fields, and
        build the Task; errors name the file, the key and the rule."""

        def bad(key: str, expected: str) -> TaskFileError:
            return TaskFileError(
                f"{source}: key {key!r} must be {expected}, found {self.get(key)!r}",
                file=source,
                key=key,
            )

        def rule(key: str, check: Callable[[Any], object], value: Any) -> None:
            try:
                check(value)
            except InvalidParams as exc:
                where = "the description (the text after the front matter)"
                raise TaskFileError(
                    f"{source}: {where if key == 'description' else f'key {key!r}'}: {exc.message}",
                    file=source,
                    key=key,
                    **({"rule": exc.data["rule"]} if "rule" in exc.data else {}),
                ) from None

        status_raw = self.get("status")
        try:
            status = Status(status_raw)
        except ValueError:
            raise bad("status", "one of " + ", ".join(Status)) from None
        agent = self.get("agent")
        if not isinstance(agent, str):
            raise bad("agent", "a string")
        rule("agent", names.check_agent, agent)
        labels = self.get("labels")
        if labels is None:
            labels = []
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise bad("labels", "a list of strings")
        for label in labels:
            rule("labels", names.check_label, label)
        created_at = self.get("created_at")
        if not isinstance(created_at, dt.datetime):
            raise bad("created_at", "a TOML date-time such as 2026-11-27T10:00:00Z")
        optional: dict[str, str | None] = {}
        for key, check in _OPTIONAL_RULES.items():
            value = self.get(key)
            if value is not None and not isinstance(value, str):
                raise bad(key, "a string")
            if value is not None:
                rule(key, check, value)
            optional[key] = value
        queued_at = self.get("queued_at")
        if queued_at is not None and not isinstance(queued_at, dt.datetime):
            raise bad("queued_at", "a TOML date-time such as 2026-11-27T10:00:00Z")
        rule("description", lambda text: names.check_text(text, "description"), self.body)
        return Task(
            id=task_id,
            slug=slug,
            status=status,
            agent=agent,
            base_branch=optional["base_branch"],
            labels=tuple(labels),
            created_at=created_at,
            session_id=optional["session_id"],
            title=optional["title"],
            description=self.body,
            base_sha=optional["base_sha"],
            forked_from=optional["forked_from"],
            queued_at=queued_at,
        )


# The optional string keys and the wire's rule for each: a file breaking one is broken,
# so nothing a person (or a commit) wrote reaches git's argv or a terminal unchecked.
_OPTIONAL_RULES: dict[str, Callable[[Any], object]] = {
    "base_branch": names.check_branch,
    "session_id": names.check_session_id,
    "title": names.check_title,
    "base_sha": names.check_sha,
    "forked_from": lambda name: names.check_branch(name, "forked_from"),
}


def parse_task_text(text: str, *, source: str) -> TaskDocument:
    """Split and parse a task file; any problem names `source` and the line."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != FENCE:
        raise TaskFileError(
            f"{source}:1: a task file must start with a '{FENCE}' line", file=source, line=1
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].rstrip("\r\n") == FENCE)
    except StopIteration:
        raise TaskFileError(
            f"{source}: the front matter has no closing '{FENCE}' line", file=source
        ) from None
    try:
        front = tomlkit.parse("".join(lines[1:end]))
    except tomlkit.exceptions.ParseError as exc:
        line = exc.line + 1  # the opening fence is line 1
        raise TaskFileError(
            f"{source}:{line}: invalid TOML front matter: {_strip_position(str(exc))}",
            file=source,
            line=line,
            column=exc.col,
        ) from None
    body = "".join(lines[end + 1 :])
    if body.startswith("\n"):
        body = body[1:]
    return TaskDocument(front=front, body=body)


def _strip_position(message: str) -> str:
    # tomlkit appends " at line L col C" counted within the front matter only.
    head, sep, _ = message.rpartition(" at line ")
    return head if sep else message


def new_task_document(
    *,
    status: Status,
    agent: str,
    base_branch: str | None,
    labels: list[str],
    created_at: dt.datetime,
    title: str | None,
    description: str,
) -> TaskDocument:
    doc = TaskDocument(front=tomlkit.document(), body=description)
    doc.set("title", title)
    doc.set("status", str(status))
    doc.set("agent", agent)
    doc.set("base_branch", base_branch)
    doc.set("labels", labels)
    doc.set("created_at", created_at.replace(microsecond=0))
    return doc


def title_from_description(description: str) -> str | None:
    """The first non-empty line, without Markdown heading marks, as a default title."""
    for line in description.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[: names.TITLE_MAX]
    return None
