"""Rules for every name a user gives us: slugs, labels, agent names, branches.

Validated here, at the boundary, so nothing downstream (file paths, git argv)
ever sees a name that could escape `.orchestra/` or pass for a git option.
Stdlib-only: the CLI uses these rules too.
"""

from __future__ import annotations

import re

from orchestra.core.errors import InvalidParams

SLUG_RULE = (
    "1-63 characters: lowercase letters, digits and '-', starting with a letter or digit,"
    " not only digits (those name task ids)"
)
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")

LABEL_RULE = (
    "1-64 characters: letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
)
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

AGENT_RULE = (
    "1-32 characters: lowercase letters, digits, '_' or '-', starting with a letter or digit"
)
_AGENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

SESSION_RULE = "1-200 printable characters with no spaces, not starting with '-'"
# No leading '-': profiles may pass the id as its own argv element ("--resume", "{session_id}"),
# where it would read as an option.
_SESSION = re.compile(r"[\x21-\x2c\x2e-\x7e][\x21-\x7e]{0,199}")

TITLE_MAX = 200
TITLE_RULE = f"one line of at most {TITLE_MAX} printable characters"

TEXT_RULE = "any text but NUL (U+0000) and lone surrogates (U+D800-U+DFFF)"
# JSON can carry a lone surrogate ("\ud800"), UTF-8 cannot: no file, argv or log could hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")

# git-check-ref-format(1), plus: no leading '-' (it would read as an option).
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def check_slug(slug: object) -> str:
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug) or slug.isdigit():
        raise InvalidParams(f"invalid slug {slug!r}: use {SLUG_RULE}", field="slug", rule=SLUG_RULE)
    return slug


def check_label(label: object) -> str:
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise InvalidParams(
            f"invalid label {label!r}: use {LABEL_RULE}", field="labels", rule=LABEL_RULE
        )
    return label


def check_labels(labels: object) -> list[str]:
    if not isinstance(labels, list):
        raise InvalidParams(f"labels must be a list of strings, not {labels!r}", field="labels")
    out: list[str] = []
    for label in labels:
        check_label(label)
        if label not in out:
            out.append(label)
    return out


def check_agent(agent: object) -> str:
    if not isinstance(agent, str) or not _AGENT.fullmatch(agent):
        raise InvalidParams(
            f"invalid agent name {agent!r}: use {AGENT_RULE}", field="agent", rule=AGENT_RULE
        )
    return agent


def check_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not _SESSION.fullmatch(session_id):
        raise InvalidParams(
            f"invalid session id {session_id!r}: use {SESSION_RULE}",
            field="session_id",
            rule=SESSION_RULE,
        )
    return session_id


def has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def check_text(text: object, field: str) -> str:
    """Free text (a description, a commit message): anything a file and an argv element can
    hold, so no NUL (argv is NUL-terminated) and no lone surrogate (not encodable)."""
    if not isinstance(text, str) or "\x00" in text or has_surrogate(text):
        shown = repr(text)
        shown = shown if len(shown) <= 60 else shown[:60] + "..."
        raise InvalidParams(
            f"invalid {field} {shown}: use {TEXT_RULE}", field=field, rule=TEXT_RULE
        )
    return text


def check_title(title: object) -> str:
    if not isinstance(title, str) or len(title) > TITLE_MAX or not title.isprintable():
        raise InvalidParams(
            f"invalid title {title!r}: use {TITLE_RULE}", field="title", rule=TITLE_RULE
        )
    return title


def check_branch(name: object, field: str = "base_branch") -> str:
    """Accept a branch name git itself would accept and that cannot pass for an option."""
    problem = None
    if not isinstance(name, str) or not name:
        problem = "it is empty"
    elif len(name) > 200:
        problem = "it is longer than 200 characters"
    elif name.startswith(("-", "/")) or name.endswith(("/", ".", ".lock")):
        problem = "it starts with '-' or '/', or ends with '/', '.' or '.lock'"
    elif _BAD_REF_CHARS.search(name) or not name.isprintable():
        # isprintable() also refuses C1 controls (U+0085), bidi overrides (U+202E), other
        # format characters, separators and lone surrogates: git takes some, but they lie
        # about what a name looks like on a terminal.
        problem = (
            "it contains a space, a control or formatting character (such as U+0085 or"
            " U+202E) or one of ~^:?*[\\"
        )
    elif ".." in name or "@{" in name or "//" in name or name == "@":
        problem = "it contains '..', '@{' or '//'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")):
        problem = "a path component starts with '.' or ends with '.lock'"
    if problem:
        raise InvalidParams(f"invalid branch name {name!r}: {problem}", field=field)
    assert isinstance(name, str)
    return name


SHA_RULE = "a full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits"
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def check_sha(sha: object, field: str = "base_sha") -> str:
    if not isinstance(sha, str) or not _SHA.fullmatch(sha):
        raise InvalidParams(f"invalid {field} {sha!r}: use {SHA_RULE}", field=field, rule=SHA_RULE)
    return sha


def task_stem(task_id: int, slug: str) -> str:
    """The `{id}-{slug}` stem shared by the task file, branch and worktree."""
    return f"{task_id}-{slug}"


def task_branch(task_id: int, slug: str) -> str:
    return f"orchestra/{task_stem(task_id, slug)}"


def parse_task_ref(ref: object) -> int | str:
    """A task is named by its id (an int, or digits) or by its slug."""
    if isinstance(ref, bool):
        ref = str(ref)
    if isinstance(ref, int):
        if ref < 1:
            raise InvalidParams(f"invalid task id {ref}: ids start at 1", field="task")
        return ref
    if isinstance(ref, str):
        if ref.isascii() and ref.isdigit():
            if len(ref) > 18:  # int() refuses over 4300 digits; no project has that many tasks
                raise InvalidParams(f"invalid task id {ref[:20]!r}...: too large", field="task")
            return parse_task_ref(int(ref))
        if _SLUG.fullmatch(ref):
            return ref
    raise InvalidParams(
        f"invalid task reference {ref!r}: give a task id (a number) or a slug ({SLUG_RULE})",
        field="task",
    )
