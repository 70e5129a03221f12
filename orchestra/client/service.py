"""Running the daemon as a user service (`orchestra daemon install` and `uninstall`).

The unit or plist and the service manager's commands are `adapters/service.py`'s; what
is here is the client's part: stop a daemon running outside the service first, so the
service owns the socket, and undo a failed install (the file as it was, the stopped
daemon started again), so a failed install changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestra.client import lifecycle


def install(
    socket: Path, state_dir: Path, *, start: bool, environ: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """Write the service file; with `start`, check the service manager answers first,
    stop a running daemon and enable the service. Returns {kind, file, started, done}."""
    from orchestra.adapters import service

    done: list[str] = []
    plan = service.plan(environ)
    if start:
        service.check(plan)  # before anything is written or stopped
    before = service.write(plan)
    done.append(f"wrote {plan.path}")
    if start:
        pid = lifecycle.stop(socket)
        if pid is not None:
            done.append(f"stopped the running daemon (pid {pid})")
        try:
            done += [f"ran {cmd}" for cmd in service.enable(plan)]
        except service.ServiceError as exc:
            # As it was: no half-installed unit, and the daemon that ran runs again.
            service.restore(plan, before)
            again = " (the daemon it stopped was started again)" if pid is not None else ""
            if pid is not None:
                lifecycle.start(socket, state_dir)
            raise service.ServiceError(f"{exc.message}; nothing was installed{again}") from None
    return {"kind": plan.kind, "file": str(plan.path), "started": start, "done": done}


def uninstall(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Stop and disable the service, remove its file. Returns {kind, file, done}."""
    from orchestra.adapters import service

    plan = service.plan(environ)
    done = [f"ran {cmd}" for cmd in service.disable(plan)]
    if plan.path.exists():
        plan.path.unlink()
        done.append(f"removed {plan.path}")
    return {"kind": plan.kind, "file": str(plan.path), "done": done}
