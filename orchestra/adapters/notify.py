"""Running a notifier: the desktop's (notify-send, osascript) or `[notify].command`.

Never through a shell, never waited for by anyone but its own task: each run has a
deadline, after which its whole process group is killed (a notifier's children too,
which would otherwise hold its output pipe open), and the outcome is logged. A
notifier's output is kept only for the log (its first bytes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

import attrs
import trio

OUTPUT_KEPT = 500  # bytes of a failed notifier's output put in the log


@attrs.frozen(kw_only=True)
class Outcome:
    ok: bool
    exit_code: int | None  # None: not started, or killed at the deadline
    timed_out: bool = False
    output: str = ""
    error: str = ""  # why it could not start


def available(argv: list[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the program of `argv` can be found (a desktop notifier may be missing)."""
    return bool(argv) and shutil.which(argv[0], path=environ.get("PATH")) is not None


async def _kill_group(process: trio.Process) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone already
        os.killpg(process.pid, signal.SIGKILL)


async def run(
    argv: list[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None,
    limit: float,
) -> Outcome:
    """Run `argv` with `env` (the whole environment) until it exits or `limit` seconds
    pass (then its process group is killed)."""
    try:
        with trio.move_on_after(limit) as scope:
            done = await trio.run_process(
                argv,
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                stderr=subprocess.STDOUT,
                check=False,
                start_new_session=True,  # its own group, killed whole at the deadline
                deliver_cancel=_kill_group,
            )
    except OSError as exc:  # not found, not executable
        return Outcome(ok=False, exit_code=None, error=f"{exc.strerror or exc}: {argv[0]}")
    if scope.cancelled_caught:
        return Outcome(ok=False, exit_code=None, timed_out=True)
    output = done.stdout[:OUTPUT_KEPT].decode("utf-8", "replace") if done.stdout else ""
    return Outcome(ok=done.returncode == 0, exit_code=done.returncode, output=output)


def log_outcome(log: logging.Logger, what: str, argv: list[str], outcome: Outcome) -> None:
    """One line in the project's log for a notifier that failed (nothing when it worked)."""
    if outcome.ok:
        return
    if outcome.timed_out:
        why = "killed after its timeout"
    elif outcome.error:
        why = f"could not start ({outcome.error})"
    else:
        why = f"exited with status {outcome.exit_code}"
    log.warning(
        f"{what} {argv[0]!r} {why}",
        extra={
            "event": "notify.failed",
            "notifier": what,
            "argv": argv[:1],
            "exit_code": outcome.exit_code,
            "timed_out": outcome.timed_out,
            "output": outcome.output,
            "error": outcome.error,
        },
    )
