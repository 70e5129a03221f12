"""JSON-lines logs (python-json-logger): one per project, one for the daemon.

Every line is an object with `timestamp` (RFC 3339, UTC), `level`, `event`,
`message`, and `task_id` / `slug` and other context where they apply:

    log.info("task created", extra={"event": "task.created", "task_id": 3, "slug": "fix"})

A log file is created 0600 (it holds what agents printed) and opened with O_NOFOLLOW:
the project's sits in `.orchestra/`, which comes with the repository, and a committed
`logs.jsonl -> ../../somefile` must not have the daemon append to somefile.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from io import TextIOWrapper
from pathlib import Path
from typing import Any, Final, cast

from pythonjsonlogger.json import JsonFormatter

TRACE: Final = 5  # below DEBUG: wire-level detail
logging.addLevelName(TRACE, "TRACE")

LEVELS: Final = {
    "off": logging.CRITICAL + 10,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}


class _Formatter(JsonFormatter):
    def __init__(self) -> None:
        super().__init__("{levelname}{message}", style="{", rename_fields={"levelname": "level"})

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        # timestamp first, so the file reads in time order at a glance.
        stamp = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        log_data["timestamp"] = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()
        log_data.setdefault("event", record.name.rpartition(".")[2])


class _PrivateFileHandler(logging.FileHandler):
    """A FileHandler whose file is created 0600 and never opened through a symbolic link.

    A file it cannot open (a link planted there, a directory we may not write) is said
    once in the daemon log and its lines are dropped: logging never fails the operation
    that logs.
    """

    failed = False

    def _open(self) -> TextIOWrapper:
        stream = open(  # noqa: SIM115 - the handler owns the stream and closes it
            self.baseFilename,
            self.mode,
            encoding=self.encoding,
            errors=self.errors,
            opener=_private_opener,
        )
        return cast(TextIOWrapper, stream)

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed:
            return
        try:
            super().emit(record)
        except OSError as exc:
            self.failed = True
            daemon = logging.getLogger("orchestra.daemon")
            if self not in daemon.handlers:
                daemon.warning(
                    f"cannot write the log {self.baseFilename}: {exc.strerror}; its lines are"
                    " dropped until the daemon restarts",
                    extra={"event": "log.unwritable", "path": self.baseFilename},
                )


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def file_logger(name: str, path: Path, level: str) -> logging.Logger:
    """A logger writing JSON lines to `path` at `level` (one of LEVELS); idempotent."""
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(LEVELS[level])
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path:
            return logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _PrivateFileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    return logger


def close(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


SCAN_LIMIT: Final = 8 << 20  # bytes read back from a log's end, at most, for one answer
_BLOCK: Final = 1 << 16


def task_lines(path: Path, task_id: int, limit: int) -> list[dict[str, Any]]:
    """The last `limit` records of `task_id` in a JSON-lines log, oldest first, found by
    reading back from the end (at most SCAN_LIMIT bytes: a long log costs no more). A line
    that is not a JSON object is skipped; a missing log has none."""
    import json

    from orchestra.adapters.paths import open_nofollow

    try:
        fd = open_nofollow(path, os.O_RDONLY)
    except FileNotFoundError:
        return []
    found: list[dict[str, Any]] = []
    with os.fdopen(fd, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        pos, rest = end, b""
        while pos > 0 and end - pos < SCAN_LIMIT and len(found) < limit:
            step = min(_BLOCK, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step) + rest
            lines = chunk.split(b"\n")
            rest = lines.pop(0) if pos > 0 else b""  # maybe the end of an earlier line
            for line in reversed(lines):
                if b'"task_id": %d' % task_id not in line and b'"task_id":%d' % task_id not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("task_id") == task_id:
                    found.append(record)
                    if len(found) == limit:
                        break
    return found[::-1]
