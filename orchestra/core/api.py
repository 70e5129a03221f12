"""The JSON-RPC API's shapes: one params class per method, and the wire form of a task.

Pure: cattrs structures incoming params (unknown keys and wrong types are
refused with the path of each problem) and unstructures results. docs/api.md
documents every method; a test checks each method here appears there.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.v import transform_error

from orchestra.core import names
from orchestra.core.config import MERGE_STRATEGIES
from orchestra.core.detach import parse_detach_keys
from orchestra.core.errors import InvalidParams
from orchestra.core.states import REPORTABLE, Status
from orchestra.core.tasks import Task

TaskRef = int | str
P = TypeVar("P")
REPORTED: Final = tuple(REPORTABLE)  # task.set_status's words


@attrs.frozen(kw_only=True)
class NoParams:
    pass


@attrs.frozen(kw_only=True)
class ProjectParams:
    project: str


@attrs.frozen(kw_only=True)
class TaskParams:
    project: str
    task: TaskRef


@attrs.frozen(kw_only=True)
class NewParams:
    project: str
    slug: str = attrs.field(validator=lambda _i, _a, v: names.check_slug(v))
    description: str = attrs.field(
        default="", validator=lambda _i, _a, v: names.check_text(v, "description")
    )
    title: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or names.check_title(v)
    )
    agent: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or names.check_agent(v)
    )
    base_branch: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or names.check_branch(v)
    )
    labels: list[str] = attrs.field(factory=list, validator=lambda _i, _a, v: names.check_labels(v))


@attrs.frozen(kw_only=True)
class ListParams:
    project: str
    status: list[Status] | None = None
    label: str | None = None
    description: bool = False


@attrs.frozen(kw_only=True)
class UpdateParams:
    """Change fields (those given), or replace the whole file with `text` from an editor."""

    project: str
    task: TaskRef
    description: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or names.check_text(v, "description")
    )
    title: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or names.check_title(v)
    )
    labels: list[str] | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or names.check_labels(v)
    )
    agent: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or names.check_agent(v)
    )
    base_branch: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or names.check_branch(v)
    )
    text: str | None = None


@attrs.frozen(kw_only=True)
class SetStatusParams:
    project: str
    task: TaskRef
    status: str = attrs.field(validator=lambda _i, _a, v: _one_of(v, REPORTED, "status"))
    summary: str | None = None


@attrs.frozen(kw_only=True)
class SessionParams:
    project: str
    task: TaskRef
    session_id: str | None = attrs.field(
        validator=lambda _i, _a, v: v is None or names.check_session_id(v)
    )


_EVENT: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_RUN_MARKER: Final = re.compile(r"[0-9a-f]{1,64}")


def _event(_inst: object, _attr: object, value: str) -> None:
    if not _EVENT.fullmatch(value):
        raise InvalidParams(
            f"invalid hook event {value!r:.80}: use up to 64 letters, digits and _.:-",
            field="event",
        )


def _run_marker(_inst: object, _attr: object, value: str) -> None:
    if not _RUN_MARKER.fullmatch(value):
        raise InvalidParams(
            f"invalid run marker {value!r:.80}: use the agent's ORCHESTRA_RUN_ID", field="run"
        )


@attrs.frozen(kw_only=True)
class ReportParams:
    """One hook of a running agent (`orchestra hook EVENT`): its run marker names the run,
    `payload` is the agent's JSON as it gave it (checked where it is read: a malformed one
    is logged, then refused)."""

    task: TaskRef  # ORCHESTRA_TASK_ID
    run: str = attrs.field(validator=_run_marker)
    event: str = attrs.field(validator=_event)
    payload: Any = None
    project: str | None = None  # the run's, if given (the marker alone finds it)


@attrs.frozen(kw_only=True)
class InputParams:
    """Text typed into a running agent's terminal (use "\r" for Enter)."""

    project: str
    task: TaskRef
    text: str = attrs.field(validator=lambda _i, _a, v: _max_len(v, 65536, "text"))
    # Give up once the agent has read none of the text for this long (its input is full).
    timeout: float = attrs.field(
        default=10.0, validator=lambda _i, _a, v: _in_range(v, 0.1, 3600, "timeout")
    )


@attrs.frozen(kw_only=True)
class TailParams:
    project: str
    task: TaskRef
    bytes: int = attrs.field(
        default=4096, validator=lambda _i, _a, v: _in_range(v, 1, 4 << 20, "bytes")
    )


@attrs.frozen(kw_only=True)
class LogParams:
    project: str
    task: TaskRef
    lines: int = attrs.field(
        default=100, validator=lambda _i, _a, v: _in_range(v, 1, 1000, "lines")
    )


def _max_len(value: str, limit: int, field: str) -> None:
    if len(value) > limit:
        raise InvalidParams(f"field {field!r} is longer than {limit} characters", field=field)


def _one_of(value: str | None, allowed: tuple[str, ...], field: str) -> None:
    if value is not None and value not in allowed:
        raise InvalidParams(
            f"field {field!r} must be one of {', '.join(allowed)}, not {value!r:.60}", field=field
        )


def _message(value: str | None) -> None:
    if value is not None:
        _max_len(value, 1 << 20, "message")
        names.check_text(value, "message")  # git refuses a NUL in a commit message


def _in_range(value: float, low: float, high: float, field: str) -> None:
    if not low <= value <= high:
        raise InvalidParams(
            f"field {field!r} must be between {low:g} and {high:g}, not {value:g}", field=field
        )


def _size(low: int, high: int, field: str) -> Any:
    def check(_inst: object, _attr: object, value: int) -> None:
        _in_range(value, low, high, field)

    return check


def _detach_keys(_inst: object, _attr: object, value: str) -> None:
    _max_len(value, 64, "detach_keys")
    try:
        parse_detach_keys(value)
    except ValueError as exc:
        raise InvalidParams(str(exc), field="detach_keys") from None


@attrs.frozen(kw_only=True)
class Colors:
    """The attaching terminal's own colours, answered to the agent's OSC 10/11/4 queries."""

    fg: str | None = None
    bg: str | None = None
    palette: dict[str, str] = attrs.field(factory=dict)  # "0".."255" -> colour spec


@attrs.frozen(kw_only=True)
class AttachParams:
    project: str
    task: TaskRef
    cols: int = attrs.field(default=80, validator=_size(2, 1000, "cols"))
    rows: int = attrs.field(default=24, validator=_size(2, 1000, "rows"))
    read_only: bool = False
    colors: Colors | None = None
    # True: the client hands over its terminal (a file descriptor, right after the reply)
    # and the daemon reads keys from it and writes output to it, as tmux's server does.
    tty: bool = False
    detach_keys: str = attrs.field(default="ctrl-q", validator=_detach_keys)


@attrs.frozen(kw_only=True)
class ScreenParams:
    project: str
    task: TaskRef
    lines: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(_size(1, 1000, "lines"))
    )
    styled: bool = False  # also `ansi`: each row with its colours (SGR sequences)
    # A long poll: answer once the screen's `version` differs from `after` (at most one
    # answer a frame), or when `wait` seconds passed; None: answer now.
    after: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(_size(0, 2**62, "after"))
    )
    wait: float = attrs.field(
        default=30.0, validator=lambda _i, _a, v: _in_range(v, 0, 300, "wait")
    )


@attrs.frozen(kw_only=True)
class SubscribeParams:
    project: str | None = None  # None: every project


@attrs.frozen(kw_only=True)
class DiffParams:
    project: str
    task: TaskRef
    stat: bool = False
    name_only: bool = False
    color: bool = False  # ANSI colours, as `git diff --color=always`


@attrs.frozen(kw_only=True)
class MergeParams:
    project: str
    task: TaskRef
    into: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or names.check_branch(v, "into")
    )
    strategy: str | None = attrs.field(
        default=None,
        validator=lambda _i, _a, v: _one_of(v, MERGE_STRATEGIES, "strategy"),
    )
    message: str | None = attrs.field(default=None, validator=lambda _i, _a, v: _message(v))
    force: bool = False
    include_uncommitted: bool = False
    cleanup: bool | None = None  # None: config merge.cleanup
    dry_run: bool = False


@attrs.frozen(kw_only=True)
class GcParams:
    project: str
    dry_run: bool = False
    force: bool = False
    only: list[str] | None = None  # the keys of the planned actions to take; None: all


# JSON's names for the Python types a JSON value arrives as.
JSON_TYPES: Final = {
    "bool": "a boolean",
    "int": "a number",
    "float": "a number",
    "str": "a string",
    "list": "an array",
    "dict": "an object",
    "NoneType": "null",
}


def _found(value: Any) -> str:
    return JSON_TYPES.get(type(value).__name__, type(value).__name__)


class _Expected(TypeError):
    """A value of the wrong kind: "must be WHAT, not FOUND" once its field is known."""


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def exact(kind: type, what: str) -> Any:
        def hook(value: Any, _t: Any) -> Any:
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise _Expected(f"must be {what}, not {_found(value)}")
            return value

        return hook

    def string(value: Any, _t: Any) -> str:
        exact(str, "a string")(value, _t)
        if names.has_surrogate(value):
            # json.loads takes "\ud800"; no file, argv or log line (all UTF-8) could hold it.
            raise _Expected(f"must be valid Unicode text, not a lone surrogate in {value!r:.60}")
        return value  # type: ignore[no-any-return]

    conv.register_structure_hook(str, string)
    conv.register_structure_hook(bool, exact(bool, "true or false"))
    conv.register_structure_hook(int, exact(int, "an integer"))

    def number(value: Any, _t: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Expected(f"must be a number, not {_found(value)}")
        if not math.isfinite(value):
            raise _Expected(f"must be a finite number, not {value!r}")
        return float(value)

    conv.register_structure_hook(float, number)

    def ref(value: Any, _t: Any) -> TaskRef:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise _Expected(f"must be a task id or slug, not {_found(value)}")
        return names.parse_task_ref(value)  # "3" names task 3

    conv.register_structure_hook(TaskRef, ref)

    def status(value: Any, _t: Any) -> Status:
        # Status is a str: without this hook the str hook above would let any string through.
        if not isinstance(value, str) or value not in Status.__members__.values():
            shown = repr(value)[:60] if isinstance(value, str) else _found(value)
            raise _Expected(f"must be one of {', '.join(Status)}, not {shown}")
        return Status(value)

    conv.register_structure_hook(Status, status)

    def strict_list(value: Any, type_: Any) -> list[Any]:
        if not isinstance(value, list):
            raise _Expected(f"must be an array, not {_found(value)}")
        return [conv.structure(item, type_.__args__[0]) for item in value]

    conv.register_structure_hook_func(lambda t: getattr(t, "__origin__", None) is list, strict_list)
    conv.register_unstructure_hook(dt.datetime, lambda d: d.isoformat().replace("+00:00", "Z"))
    return conv


CONVERTER: Final = _converter()


def structure(params: Any, cls: type[P]) -> P:
    """Params from the wire into `cls`, or InvalidParams saying each problem in a client's
    terms ("field 'cols' must be between 2 and 1000, not 0"): data.problems lists them,
    data.fields the fields they are about."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams(
            f"params must be an object with named fields, not {_found(params)}",
            problems=["params must be an object with named fields"],
            fields=[],
        )
    try:
        return CONVERTER.structure(params, cls)
    except InvalidParams:
        raise
    except cattrs.BaseValidationError as exc:
        found = [
            _problem(line) for line in transform_error(exc, path="$", format_exception=_format)
        ]
        problems = [text for text, _ in found]
        named = [field for _, field in found if field] + _fields(exc)
        fields = list(dict.fromkeys(named))
        raise InvalidParams("; ".join(problems), problems=problems, fields=fields) from None
    except (TypeError, ValueError) as exc:
        raise InvalidParams(str(exc), problems=[str(exc)], fields=[]) from None


def _problem(line: str) -> tuple[str, str | None]:
    """One of transform_error's "PROBLEM @ $.path" lines as (a sentence, its field): a
    problem of one field that does not name it ("must be ...") is prefixed with it."""
    text, _, path = line.rpartition(" @ ")
    if not text:
        text, path = line, "$"
    field = path.removeprefix("$").removeprefix(".") or None
    if field and text.startswith(("must ", "is ")):
        text = f"field {field!r} {text}"
    return text, field


def _fields(exc: BaseException) -> list[str]:
    """The fields named by the InvalidParams a class's own validators raised in `exc`."""
    if isinstance(exc, InvalidParams):
        return [exc.data["field"]] if isinstance(exc.data.get("field"), str) else []
    return [f for sub in getattr(exc, "exceptions", ()) for f in _fields(sub)]


def _format(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)
        return f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}"
    if isinstance(exc, KeyError):
        return "is missing"
    if isinstance(exc, InvalidParams):
        return exc.message
    if len(exc.args) > 1 and isinstance(exc.args[0], str):
        return exc.args[0]  # attrs' own validators: the message, not the tuple
    return str(exc) or type(exc).__name__


def task_to_wire(
    task: Task, *, root: str, worktree: str, path: str, description: bool = True
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": task.id,
        "slug": task.slug,
        "ref": task.ref,
        "title": task.title,
        "status": str(task.status),
        "agent": task.agent,
        "base_branch": task.base_branch,
        "labels": list(task.labels),
        "created_at": CONVERTER.unstructure(task.created_at),
        "session_id": task.session_id,
        "base_sha": task.base_sha,
        "forked_from": task.forked_from,
        "branch": task.branch,
        "worktree": worktree,
        "file": path,
        "project": root,
    }
    if description:
        data["description"] = task.description
    return data
