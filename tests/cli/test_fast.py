"""The Typer-free fast path prints exactly what the Typer commands print."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env, module_project
from tests.faults.support import snapshot

# One daemon for the module (tests/conftest.py); one project for the forms that change
# nothing, a fresh one for those that do.
pytestmark = pytest.mark.shared_daemon

TYPER = {"ORCHESTRA_NO_FAST": "1"}


def add_tasks(env: Env, project: Path) -> Path:
    for slug in ("alpha", "beta"):
        env.run("new", slug, "-m", f"Do {slug}", "-l", "x", cwd=project, check=True)
    return project


@pytest.fixture(scope="module")
def module_tasks(shared_daemon: Env) -> Iterator[Path]:
    """Draft tasks alpha and beta in one project for the module: the forms tried on it
    change nothing (each runs twice and must print the same), checked at the end."""
    root = add_tasks(shared_daemon, module_project(shared_daemon, "fast"))
    before = snapshot(root)
    yield root
    assert snapshot(root) == before, "a form tried as read-only changed the tasks"


@pytest.fixture
def tasks(env: Env, module_tasks: Path) -> Path:
    """The module's draft tasks alpha and beta (`env`: the test's view of the daemon)."""
    return module_tasks


def durations_masked(text: str) -> str:
    # The AGE and IDLE columns may tick over a second between the two runs.
    return re.sub(r"\b\d+[smhd]\b", "<t>", text)


def both(env: Env, cwd: Path, *args: str, extra: dict[str, str] | None = None) -> None:
    fast = env.run(*args, cwd=cwd, extra=extra)
    slow = env.run(*args, cwd=cwd, extra={**(extra or {}), **TYPER})
    assert (fast.returncode, durations_masked(fast.stdout), fast.stderr) == (
        slow.returncode,
        durations_masked(slow.stdout),
        slow.stderr,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("status", "--json"),
        ("path", "alpha"),
        ("path", "1", "--json"),
        ("show", "beta"),
        ("show", "--json", "2"),
        ("show", "nope"),
        ("show", "nope", "--json"),
        ("path", "Bad Slug"),
        ("complete", "alpha"),  # draft cannot complete: an error on both paths
        ("complete", "alpha", "--json"),
        ("complete", "alpha", "-m", "done"),
        ("complete", "--summary=done", "alpha", "--json"),
        ("complete",),  # no task, outside a task: a usage error on both paths
        ("fail", "-m", "why", "--json"),
        ("show",),
        ("merge", "alpha", "-y"),  # a hint, worded as a command on both
        ("status", "--waiting"),
        ("status", "--json", "--waiting"),
    ],
)
def test_read_only_forms_match(env: Env, tasks: Path, args: tuple[str, ...]) -> None:
    """For each fast form, stdout, stderr and exit code equal the Typer path's."""
    both(env, tasks, *args)


@pytest.mark.parametrize(
    "args", [("show",), ("show", "--json"), ("complete", "-m", "x"), ("idle", "--json")]
)
def test_forms_without_a_task_match_inside_a_task(
    env: Env, tasks: Path, args: tuple[str, ...]
) -> None:
    """Inside a task (its id and project in the environment) a form without a task prints
    the same on both paths (and the calling task is the one shown or refused)."""
    both(env, tasks, *args, extra={"ORCHESTRA_TASK_ID": "1", "ORCHESTRA_PROJECT": str(tasks)})


def test_state_changing_forms_match(env: Env, project: Path) -> None:
    """`start` and the status words print the same on both paths, on twin tasks."""
    tasks = add_tasks(env, project)
    for verb in ("start", "idle", "complete", "reviewed"):
        fast = env.run(verb, "alpha", cwd=tasks)
        slow = env.run(verb, "beta", cwd=tasks, extra=TYPER)
        assert fast.returncode == slow.returncode == 0, (fast.stderr, slow.stderr)
        assert fast.stdout.replace("1-alpha", "X") == slow.stdout.replace("2-beta", "X")


def test_unknown_forms_fall_back_to_typer(env: Env, tasks: Path) -> None:
    """Forms the fast path does not know (options, --help) still work through Typer."""
    out = env.run("status", "--status", "draft", "--json", cwd=tasks, check=True).stdout
    assert '"alpha"' in out
    assert "Example:" in env.run("path", "--help", cwd=tasks, check=True).stdout


def imported(env: Env, cwd: Path, *args: str) -> set[str]:
    """The modules `orchestra ARGS` imported, as `python -X importtime` lists them."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "orchestra", *args],
        cwd=cwd,
        env=env.vars,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert lines, proc.stderr
    return {line.rpartition("|")[2].strip() for line in lines}


@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("status", "--json"),
        ("path", "alpha"),
        ("show",),
        ("show", "beta", "--json"),
        ("start", "nope"),
        ("idle", "nope"),
        ("complete", "alpha", "-m", "done"),
        ("fail", "--summary=why", "nope"),
        ("reviewed", "alpha"),
        ("shell-hook", "--slugs"),
        ("status", "--waiting"),
    ],
)
def test_the_fast_forms_never_import_typer(env: Env, tasks: Path, args: tuple[str, ...]) -> None:
    """Each form the fast path claims is served without importing Typer (or click)."""
    modules = imported(env, tasks, *args)
    assert "orchestra.cli.fast" in modules
    assert not {"typer", "click", "orchestra.cli.main"} & modules


def test_the_hook_imports_only_the_standard_library(env: Env, tasks: Path) -> None:
    """`hook EVENT`, which agents run on every tool call, imports nothing of ours but the
    hook itself (not even the fast path's renderers, nor the client package), and neither
    Typer, trio, attrs nor cattrs; it prints nothing and exits 0."""
    modules = imported(env, tasks, "hook", "working")
    ours = {m for m in modules if m.startswith("orchestra")}
    assert ours == {"orchestra", "orchestra.cli", "orchestra.cli.hook"}
    assert not {"typer", "click", "trio", "attrs", "cattrs"} & modules
    proc = env.run("hook", "working", cwd=tasks, input="{}")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_a_form_the_fast_path_leaves_imports_typer(env: Env, tasks: Path) -> None:
    """An option the fast path does not know goes to Typer: the check above can fail."""
    assert "typer" in imported(env, tasks, "status", "--status", "draft")


@contextlib.contextmanager
def odd_daemon(where: Path, result: Any) -> Iterator[Path]:
    """A listener on a private socket under `where` that answers every request with
    `result`, whatever was asked: a daemon whose replies have a shape the CLI does not know."""
    where.mkdir(mode=0o700)
    path = where / "odd.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    server.settimeout(0.1)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                request = json.loads(line)
                reply = {"jsonrpc": "2.0", "id": request["id"], "result": result}
                conn.sendall(json.dumps(reply).encode() + b"\n")

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(10)
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.mark.parametrize(
    ("args", "result", "error"),
    [
        (("status",), {"tasks": [{"id": 1}]}, "KeyError: 'slug'"),
        (("path", "alpha"), ["not", "an", "object"], "TypeError: list indices must be"),
    ],
)
def test_an_unexpected_error_is_one_line_on_both_paths(
    env: Env, tasks: Path, args: tuple[str, ...], result: Any, error: str
) -> None:
    """A reply the renderer does not expect fails with one line and exit 1 on the fast path
    as on the Typer path, never a traceback."""
    with odd_daemon(env.base / "odd", result) as path:
        odd = {"ORCHESTRA_SOCKET": str(path)}
        fast = env.run(*args, cwd=tasks, extra=odd)
        slow = env.run(*args, cwd=tasks, extra={**odd, **TYPER})
    assert fast.returncode == slow.returncode == 1
    assert fast.stderr == slow.stderr
    assert fast.stderr.startswith(f"orchestra: internal error: {error}")
    assert fast.stderr.count("\n") == 1
    assert "Traceback" not in fast.stderr
