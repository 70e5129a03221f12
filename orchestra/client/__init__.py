"""The client layer: everything a front end needs to reach the daemon, and nothing more.

Front ends (`orchestra/cli/`, `orchestra/mcp/`, the dashboard) import only the core and
this package; the adapters they need (config files, paths, git for `init`, the service
manager) are used here, behind operations of the client's own.

- `connection`: the blocking JSON-RPC client (`Client`), for one-shot calls and scripts
- `aio`: the asyncio client (calls and `events.subscribe` notifications), for the dashboard
- `remote`: a daemon on another host, through an `ssh` child and that host's bridge
- `attach`: the attach session (`orchestra attach`, the dashboard's Enter)
- `trust`: refuse a socket or listener that is not the user's own, before a byte is sent
- `lifecycle`: is the daemon running, start (autostart), stop, its clean environment
- `local`: the project around a directory, the settings a client reads, `init_project`
- `service`: install the daemon as a user service (systemd, launchd)

The codec is the core's (`core/jsonrpc.py`'s client half, `core/ndjson.py`'s framing).
Importing this package costs the stdlib's socket and json only (the CLI's start-up is
benched): submodules that need more load it when called.

    with Client(socket_path) as c:
        c.call("task.list", {"project": "/path/to/repo"})
"""

from __future__ import annotations

from orchestra.client.connection import Client
from orchestra.client.lifecycle import (
    DAEMON_ENV,
    RUN_ID_VAR,
    connect,
    daemon_environ,
    inside_agent,
    is_running,
    lock_held,
    refuse_autostart,
    spawn_daemon,
)
from orchestra.client.trust import check_peer, check_socket_dir

__all__ = [
    "DAEMON_ENV",
    "RUN_ID_VAR",
    "Client",
    "check_peer",
    "check_socket_dir",
    "connect",
    "daemon_environ",
    "inside_agent",
    "is_running",
    "lock_held",
    "refuse_autostart",
    "spawn_daemon",
]
