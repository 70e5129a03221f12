"""Everything the CLI prints: results (human or `--json`) and the one failure path."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer

from orchestra.core.errors import EXIT_ERROR, OrchestraError, RemoteError


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def abort(
    message: str, code: int = EXIT_ERROR, *, as_json: bool = False, data: Any = None
) -> NoReturn:
    """Print one line (stderr, or a JSON object on stdout with --json) and exit with `code`."""
    if as_json:
        emit_json({"error": {"message": message, "exit_code": code, "data": data or {}}})
    else:
        sys.stderr.write(f"orchestra: {message}\n")
    raise typer.Exit(code)


def fail(exc: OrchestraError, *, as_json: bool = False) -> NoReturn:
    code = exc.cli_exit_code if isinstance(exc, RemoteError) else exc.exit_code
    abort(exc.message, code, as_json=as_json, data=exc.to_wire())


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)
