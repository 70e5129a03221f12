"""Watching a run's screen: the long poll behind `pty.screen` with `after`.

A client that shows an agent's screen live (the dashboard's preview) asks for it again
with the `version` it has; the answer comes once the screen changed, coalesced to one a
frame (a burst of output is one answer, drawn from the model as it stands then), or when
the client's `wait` ran out, or the run ended. Nothing is sent while the screen does not
change, and a client that stops asking costs nothing.

While anyone watches, the relay thread pokes the run at each output chunk (as it does for
the idle watchdog that asked): nothing runs for a run nobody watches.
"""

from __future__ import annotations

from typing import Final

import trio

from orchestra.daemon.runner import Run

FRAME: Final = 1 / 30  # at most one answer a frame per watcher


async def changed(run: Run, seen: int, wait: float) -> None:
    """Return once `run`'s screen version is not `seen` (and a frame passed), when the run
    ended, or after `wait` seconds."""
    run.screen_watchers += 1
    try:
        with trio.move_on_after(wait):
            await trio.sleep(FRAME)  # a burst of output is one answer
            while run.screen_version() == seen and not run.closed:
                await run.changed()
    finally:
        run.screen_watchers -= 1
