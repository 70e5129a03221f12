"""Crash points for the fault tests: `kill -9` of the daemon at a named step.

With `ORCHESTRA_CRASH_AT=<name>` in the daemon's environment (it inherits the
environment of the CLI that autostarts it), the first `crash_point(<name>)`
reached sends SIGKILL to the daemon itself: no `finally`, no flush, exactly what
an OOM kill or a power cut does. tests/faults/test_crash.py lists the points and
checks what survives. Without the variable a crash point costs one comparison
(the variable is read once, at import).

A leaf module (the stdlib only, nothing of ours): the adapters that hold crash points
(store.py, merging.py) and the daemon both import it, and adapters never import the daemon.

Points (in the order a task meets them):

- `task.new:counter`  the next id is persisted, the task file is not written yet
- `task.new:file`     the task file is written, nothing is logged or announced yet
- `start:running`     the task file says `running`, no worktree or agent yet
- `start:worktree`    the worktree and branch exist, the agent is not spawned
- `start:spawned`     the agent runs in its PTY; runs.json has its run id, not its pid
- `start:recorded`    runs.json has the run's pid too; `task.start` is about to reply
- `merge:combined`    the merged commit exists in the scratch worktree; no ref moved
- `merge:advanced`    the target branch points at the merged commit; the task is not
                      marked merged, its tip is not kept as refs/orchestra/merged/...
- `merge:recorded`    the task is marked merged; its worktree and branch are not cleaned
- `gc:<kind>`         one gc action is done (remove_worktree, delete_branch,
                      archive_task, prune_worktrees); the next is not begun
"""

from __future__ import annotations

import os
import signal
from typing import Final

CRASH_AT: Final = os.environ.get("ORCHESTRA_CRASH_AT") or None


def crash_point(name: str) -> None:
    """SIGKILL this process if `ORCHESTRA_CRASH_AT` named this point; else do nothing."""
    if CRASH_AT is not None and name == CRASH_AT:
        os.kill(os.getpid(), signal.SIGKILL)
