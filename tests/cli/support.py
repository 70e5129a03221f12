"""Helpers for the CLI tests: run the real CLI and check its failure contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Env


def run(env: Env, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`env.run`, and whatever happens, no traceback on stderr."""
    proc = env.run(*args, **kwargs)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ok(env: Env, *args: str, **kwargs: Any) -> str:
    """Run a command that must succeed; return its stdout."""
    proc = run(env, *args, **kwargs)
    assert proc.returncode == 0, f"orchestra {' '.join(args)} -> {proc.returncode}: {proc.stderr}"
    return proc.stdout


def fails(env: Env, code: int, *args: str, **kwargs: Any) -> str:
    """Run a command that must fail with `code` and one `orchestra: ...` line; return it."""
    proc = run(env, *args, **kwargs)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("orchestra: "), proc.stderr
    return lines[0]


def json_error(env: Env, code: int, *args: str, **kwargs: Any) -> dict[str, Any]:
    """Run a `--json` command that must fail: the error is a JSON object on stdout."""
    proc = run(env, *args, "--json", **kwargs)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr == ""
    error: dict[str, Any] = json.loads(proc.stdout)["error"]
    assert error["exit_code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def show(env: Env, task: str, cwd: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(ok(env, "show", task, "--json", cwd=cwd))
    return result


def script(env: Env, name: str, body: str) -> str:
    """An executable Python script (an $EDITOR stand-in); `path` is its first argument."""
    path = env.base / name
    path.write_text(f"#!{sys.executable}\nimport sys\npath = sys.argv[1]\n{body}")
    path.chmod(0o755)
    return str(path)


def run_on_tty(
    env: Env, *args: str, cwd: Path, extra: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a terminal as stdin (so it does not read a pipe)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "orchestra", *args],
            cwd=cwd,
            env={**env.vars, **extra},
            stdin=slave,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc
