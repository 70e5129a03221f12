"""The dashboard's first list, asked for while Textual is being imported.

Importing Textual is most of the dashboard's start-up, and it is all this process's own
work, while `task.list` is the daemon's: a thread asks for the list on a blocking
connection meanwhile, and the app draws it as soon as it is mounted, instead of
connecting, subscribing and asking only then. The subscription still starts as usual,
and the list read after it (rows that did not change cost nothing) covers anything that
changed in between. Stdlib and the blocking client only: importing this imports no
Textual and no asyncio.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from orchestra.client.connection import Client
from orchestra.core.errors import OrchestraError

ASK_TIMEOUT = 5.0  # seconds: a daemon slower than this is left to the app's own reload


class FirstList:
    """`task.list` of `project` (None: of every project the daemon serves), in a thread."""

    def __init__(self, socket: Path, project: str | None) -> None:
        self.socket = socket
        self.project = project
        self._lists: list[tuple[str, dict[str, Any]]] | None = None
        # A daemon thread: a daemon that never answers must not keep the process alive.
        self._thread = threading.Thread(target=self._ask, name="first-list", daemon=True)
        self._thread.start()

    def _ask(self) -> None:
        try:
            with Client(self.socket, timeout=ASK_TIMEOUT) as client:
                if self.project is not None:
                    roots = [self.project]
                else:
                    roots = [p["root"] for p in client.call("daemon.status")["projects"]]
                self._lists = [
                    (root, client.call("task.list", {"project": root})) for root in roots
                ]
        except (OrchestraError, OSError, KeyError, TypeError):
            self._lists = None  # not running yet (autostart), or refused: the app asks again

    def take(self, timeout: float) -> list[tuple[str, dict[str, Any]]] | None:
        """Each root and its `task.list` reply, or None if the thread failed or is not done
        within `timeout` seconds."""
        self._thread.join(timeout)
        return None if self._thread.is_alive() else self._lists
