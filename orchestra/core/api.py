"""The JSON-RPC API's shapes: one params class per method, and the wire form of a task.

Pure: cattrs structures incoming params (unknown keys and wrong types are
refused with the path of each problem) and unstructures results. docs/api.md
documents every method; a test checks each method here appears there.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.v import transform_error

from orchestra.core import names
from orchestra.core.config import MERGE_STRATEGIES, parse_detach_keys
from orchestra.core.errors import InvalidParams
from orchestra.core.states import Status
from orchestra.core.tasks import Task

TaskRef = int | str
P = TypeVar("P")


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
    status: str = attrs.field(
        validator=attrs.validators.in_(("idle", "complete", "fail", "reviewed"))
    )
    summary: str | None = None


@attrs.frozen(kw_only=True)
class SessionParams:
    project: str
    task: TaskRef
    session_id: str | None = attrs.field(
        validator=lambda _i, _a, v: v is None or names.check_session_id(v)
    )


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


def _max_len(value: str, limit: int, field: str) -> None:
    if len(value) > limit:
        raise InvalidParams(f"{field} is longer than {limit} characters", field=field)


def _message(value: str | None) -> None:
    if value is not None:
        _max_len(value, 1 << 20, "message")
        names.check_text(value, "message")  # git refuses a NUL in a commit message


def _in_range(value: float, low: float, high: float, field: str) -> None:
    if not low <= value <= high:
        raise InvalidParams(f"{field} must be between {low} and {high}, not {value}", field=field)


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
        default=None, validator=attrs.validators.optional(attrs.validators.in_(MERGE_STRATEGIES))
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


def _converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def exact(kind: type, what: str) -> Any:
        def hook(value: Any, _t: Any) -> Any:
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise TypeError(f"expected {what}, found {type(value).__name__}")
            return value

        return hook

    def string(value: Any, _t: Any) -> str:
        exact(str, "a string")(value, _t)
        if names.has_surrogate(value):
            # json.loads takes "\ud800"; no file, argv or log line (all UTF-8) could hold it.
            raise ValueError(
                f"expected valid Unicode text, found a lone surrogate in {value!r:.60}"
            )
        return value  # type: ignore[no-any-return]

    conv.register_structure_hook(str, string)
    conv.register_structure_hook(bool, exact(bool, "true or false"))
    conv.register_structure_hook(int, exact(int, "an integer"))

    def number(value: Any, _t: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, found {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, found {value!r}")
        return float(value)

    conv.register_structure_hook(float, number)

    def ref(value: Any, _t: Any) -> TaskRef:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError(f"expected a task id or slug, found {type(value).__name__}")
        return names.parse_task_ref(value)  # "3" names task 3

    conv.register_structure_hook(TaskRef, ref)

    def status(value: Any, _t: Any) -> Status:
        # Status is a str: without this hook the str hook above would let any string through.
        if not isinstance(value, str) or value not in Status.__members__.values():
            raise ValueError(f"expected one of {', '.join(Status)}, found {value!r}")
        return Status(value)

    conv.register_structure_hook(Status, status)

    def strict_list(value: Any, type_: Any) -> list[Any]:
        if not isinstance(value, list):
            raise TypeError(f"expected an array, found {type(value).__name__}")
        return [conv.structure(item, type_.__args__[0]) for item in value]

    conv.register_structure_hook_func(lambda t: getattr(t, "__origin__", None) is list, strict_list)
    conv.register_unstructure_hook(dt.datetime, lambda d: d.isoformat().replace("+00:00", "Z"))
    return conv


CONVERTER: Final = _converter()


def structure(params: Any, cls: type[P]) -> P:
    """Params from the wire into `cls`, or InvalidParams listing every problem."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams(
            "params must be an object with named fields", problems=["expected an object @ $"]
        )
    try:
        return CONVERTER.structure(params, cls)
    except InvalidParams:
        raise
    except cattrs.BaseValidationError as exc:
        problems = [
            p.removesuffix(" @ $") for p in transform_error(exc, path="$", format_exception=_format)
        ]
        raise InvalidParams("invalid params: " + "; ".join(problems), problems=problems) from None
    except (TypeError, ValueError) as exc:
        raise InvalidParams(f"invalid params: {exc}") from None


def _format(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown field(s) {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, InvalidParams):
        return exc.message
    if len(exc.args) > 1 and isinstance(exc.args[0], str):
        return exc.args[0]  # attrs' own validators (in_, ...): the message, not the tuple
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
        "branch": task.branch,
        "worktree": worktree,
        "file": path,
        "project": root,
    }
    if description:
        data["description"] = task.description
    return data
