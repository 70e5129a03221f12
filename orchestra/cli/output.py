"""Everything the CLI prints: results (human or `--json`) and the one failure path.

Typer-free on purpose: the fast path (cli/fast.py) renders with it too.

Text from a task file, the daemon or git is not ours: a committed title could hold
`ESC ] 52` (a clipboard write) or `CSI 2 J`, a branch name U+202E (which turns the rest of
the line around). So every human-readable line goes through `printable`, which shows such
characters as Python escapes (`\x1b`, `\u202e`), and `--json` escapes them as JSON does
(`\u001b`, `\u202e`). Only a running agent's own output (`attach`) reaches the terminal raw.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from orchestra.core.errors import EXIT_ERROR, OrchestraError, RemoteError
from orchestra.core.hints import REPORTED, worded
from orchestra.core.waiting import activity_of, longest_first

# What a terminal would act on or hide rather than show: C0 and C1 controls and DEL (Cc),
# format characters such as bidi overrides and zero-width spaces (Cf), lone surrogates
# (Cs), and the line and paragraph separators (Zl, Zp). tests/cli/test_output.py checks
# this class against unicodedata, code point by code point.
_C0 = "\x00-\x1f"
_UNSAFE_BEYOND_C0 = (
    "\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE = re.compile(f"[{_C0}{_UNSAFE_BEYOND_C0}]")
# json.dumps escapes C0 (the only raw ones in its output are the newlines of `indent`),
# not DEL, C1 or format characters: those, only ever inside strings, are escaped after it.
_UNSAFE_IN_JSON = re.compile(f"[{_UNSAFE_BEYOND_C0}]")
# Kept as they are in a block of text (a description, a screen); escaped in a one-line field.
_LAYOUT = "\n\t"


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, *, block: bool = False) -> str:
    """`text` with each control, format or separator character shown as its Python escape
    (ESC as `\\x1b`, U+202E as `\\u202e`, CR as `\\r`). With `block`, newlines and tabs are
    kept (and CR before LF), for multi-line text; otherwise line breaks are escaped too."""
    if block:
        return _UNSAFE.sub(lambda m: _block_escape(m, text), text)
    return _UNSAFE.sub(lambda m: _escape(m.group()), text)


def _block_escape(match: re.Match[str], text: str) -> str:
    char = match.group()
    if char in _LAYOUT or (char == "\r" and text.startswith("\n", match.end())):
        return char
    return _escape(char)


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells an astral character as a UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_text(value: Any, *, indent: int | None = None) -> str:
    """`value` as JSON that is safe on a terminal, non-ASCII text kept readable."""
    return _UNSAFE_IN_JSON.sub(_json_escape, json.dumps(value, indent=indent, ensure_ascii=False))


def emit_json(value: Any) -> None:
    sys.stdout.write(json_text(value, indent=2) + "\n")


@contextlib.contextmanager
def quiet_broken_pipe() -> Iterator[None]:
    """End the command quietly (exit 1) when its reader goes away, as in `orchestra status
    | head -1`: the recipe of Python's signal docs (Typer exits 1 for this too)."""
    try:
        try:
            yield
        finally:
            if sys.__stdout__ is not None:
                sys.__stdout__.flush()  # buffered output meets the closed pipe here, if not before
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # what is still buffered goes nowhere at exit, without a traceback
        os.dup2(devnull, 2)
        raise SystemExit(EXIT_ERROR) from None


def abort(
    message: str,
    code: int = EXIT_ERROR,
    *,
    as_json: bool = False,
    data: Any = None,
    rpc_code: int | None = None,
) -> NoReturn:
    """Print one line (stderr, or a JSON object on stdout with --json) and exit with `code`.

    The JSON form: {"error": {"message", "exit_code", "code" (JSON-RPC, or null), "data"}}.
    """
    if as_json:
        error = {"message": message, "exit_code": code, "code": rpc_code, "data": data or {}}
        emit_json({"error": error})
    else:
        # Block mode: a message may hold lines (a setup command's tail), never controls.
        sys.stderr.write(f"orchestra: {printable(message, block=True)}\n")
    raise SystemExit(code)


@contextlib.contextmanager
def last_line_of_defence() -> Iterator[None]:
    """Around a whole command (the Typer path and the fast path alike): an error nobody
    meant is one line and exit 1, never a traceback; Ctrl-C is one line and exit 130. A
    closed reader (BrokenPipeError) is left to `quiet_broken_pipe`."""
    try:
        yield
    except KeyboardInterrupt:
        sys.stderr.write("orchestra: interrupted\n")
        raise SystemExit(130) from None
    except BrokenPipeError:
        raise
    except Exception as exc:
        message = printable(f"{type(exc).__name__}: {exc}")
        sys.stderr.write(f"orchestra: internal error: {message}\n")
        raise SystemExit(EXIT_ERROR) from None


def fail(exc: OrchestraError, *, as_json: bool = False) -> NoReturn:
    code = exc.cli_exit_code if isinstance(exc, RemoteError) else exc.exit_code
    wire = exc.to_wire()
    message = worded(exc.message, wire.get("data"), command_hint)
    abort(message, code, as_json=as_json, data=wire.get("data"), rpc_code=wire["code"])


# A hint's arguments (core/hints.py) as `orchestra merge` options.
HINT_FLAGS = {"force": "--force", "include_uncommitted": "--include-uncommitted", "into": "--into"}
HINT_COMMANDS = frozenset({"start", "stop", "merge", *REPORTED})


def command_hint(hint: dict[str, Any]) -> str | None:
    """One hinted move as the command to run: "run `orchestra merge x --force`"."""
    if hint["move"] not in HINT_COMMANDS:
        return None
    import shlex

    words = ["orchestra", hint["move"], *([str(hint["task"])] if "task" in hint else [])]
    for key, flag in HINT_FLAGS.items():
        value = hint.get(key)
        if value is True:
            words.append(flag)
        elif isinstance(value, str):
            words += [flag, value]
    shown = " ".join(map(shlex.quote, words))  # BRANCH, a placeholder, needs no quotes
    return f"run `{shown}`{' first' if hint.get('first') else ''}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns, each cell made `printable` (a cell is one line)."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def duration(seconds: float) -> str:
    """45s, 12m, 3h, 2d: the one unit that matters at a glance."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _age(created_at: str, now: float) -> str:
    import datetime as dt  # only here: keeps it off other commands' start-up

    try:
        stamp = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "?"
    return duration(max(0.0, now - stamp))


def _state(task: dict[str, Any]) -> str:
    if (task.get("run") or {}).get("attention"):
        return f"{task['status']} (!)"  # the agent rang the bell or sent a notification
    if task.get("queue_position"):
        return f"queued #{task['queue_position']}"
    if task["status"] == "stopped" and (ended := _ended(task)):
        return f"stopped ({ended})"
    return str(task["status"])


# The daemon's `end_reason`s as the status column says them ("agent exited": the exit
# code says it all); any other is shown as the daemon words it.
_END_REASONS = {
    "agent exited": "",
    "stopped on request": "on request",
    "stopped to merge the task": "to merge",
    "daemon stopping": "daemon stopped",
}


def _ended(task: dict[str, Any]) -> str:
    """How a task's last agent ended, in words: "on request, killed by SIGHUP", "exited 3";
    empty when the daemon does not know (it was restarted since)."""
    reason, code = task.get("end_reason"), task.get("exit_code")
    why = _END_REASONS.get(reason, reason) if isinstance(reason, str) else ""
    how = ""
    if isinstance(code, int) and not isinstance(code, bool):
        how = f"exited {code}" if code >= 0 else f"killed by {_signal_name(-code)}"
    return ", ".join(part for part in (why, how) if part)


def _signal_name(number: int) -> str:
    import signal  # only here: keeps it off other commands' start-up

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


WAITS = "!"  # the glyph of a task whose agent waits for the person


def _activity(task: dict[str, Any]) -> str:
    """The ACTIVITY column: `! waiting: permission` where the person should act."""
    shown = activity_of(task)
    if shown is None:
        return "-"
    if shown.get("activity") == "waiting":
        return f"{WAITS} waiting" + (f": {shown['reason']}" if shown.get("reason") else "")
    return str(shown.get("activity"))


def waiting_only(result: dict[str, Any]) -> dict[str, Any]:
    """task.list's result with only the tasks whose agent waits for the person, the one
    that has waited longest first (`status --waiting`, `attach --next`)."""
    return {**result, "tasks": longest_first(result["tasks"])}


def render_waiting(result: dict[str, Any]) -> str:
    """`orchestra status --waiting`: the tasks waiting for you, longest first."""
    waiting = waiting_only(result)
    if not waiting["tasks"]:
        return "no task waits for you"
    return render_status(waiting)


def render_status(result: dict[str, Any]) -> str:
    """`orchestra status`: one row per task, then the files that could not be read."""
    import time

    now = time.time()
    rows = []
    for t in result["tasks"]:
        run = t.get("run")
        rows.append(
            [
                str(t["id"]),
                t["slug"],
                _state(t),
                _activity(t),
                t["agent"],
                t.get("branch", ""),
                _age(t["created_at"], now),
                duration(run["idle_for"]) if run else "-",
                "-" if t.get("ahead") is None else str(t["ahead"]),
                ",".join(t["labels"]),
                t.get("title") or "",
            ]
        )
    headers = [
        "id",
        "slug",
        "status",
        "activity",
        "agent",
        "branch",
        "age",
        "idle",
        "ahead",
        "labels",
        "title",
    ]
    text = table(headers, rows) if rows else "no tasks"
    for err in result.get("errors", []):
        text += f"\nbroken: {printable(err['message'])}"
    return text


def warn_config(result: Any) -> None:
    """On stderr, the project config's error a read method reported (see Session.layers)."""
    problem = result.get("config_error") if isinstance(result, dict) else None
    if problem:
        sys.stderr.write(
            f"orchestra: warning: {printable(problem)}\n"
            "orchestra: warning: commands that need the config (new, start, merge...) fail"
            " until it is fixed\n"
        )


SHOW_FIELDS = (
    "ref",
    "title",
    "status",
    "agent",
    "base_branch",
    "labels",
    "created_at",
    "session_id",
    "branch",
    "worktree",
    "file",
)


def render_task(data: dict[str, Any]) -> str:
    """`orchestra show`: the fields, a blank line, the description."""
    lines = []
    for key in SHOW_FIELDS:
        value = data.get(key)
        if isinstance(value, list):
            value = ", ".join(value)
        shown = "" if value is None else printable(str(value))
        lines.append(f"{key + ':':13} {shown}".rstrip())
        if key == "status":
            lines.append(f"{'activity:':13} {printable(_activity_line(data))}".rstrip())
    description = printable(str(data.get("description", "")), block=True)
    return "\n".join(lines) + "\n\n" + description.rstrip()


def _activity_line(task: dict[str, Any]) -> str:
    """`show`'s activity: "waiting: permission (from hook, for 2m)"; empty with no run."""
    shown = activity_of(task)
    if shown is None:
        return ""
    import time

    since = shown.get("since")
    how = [f"from {shown.get('source')}"]
    if isinstance(since, (int, float)):
        how.append(f"for {duration(max(0.0, time.time() - since))}")
    reason = f": {shown['reason']}" if shown.get("reason") else ""
    return f"{shown.get('activity')}{reason} ({', '.join(how)})"


def render_slugs(result: dict[str, Any]) -> str:
    """`shell-hook --slugs` (for completion): the slugs of unmerged tasks, one per line."""
    return "\n".join(printable(t["slug"]) for t in result["tasks"] if t["status"] != "merged")


def render_move(data: dict[str, Any]) -> str:
    return printable(f"task {data['ref']} is {data['status']}")
