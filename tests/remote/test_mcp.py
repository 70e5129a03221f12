"""`orchestra --host box mcp`: the MCP tools on another host's daemon, driven by the real
MCP SDK client."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Env
from tests.mcp.test_bridge import bridge, ok
from tests.remote.conftest import ALIAS


async def test_tools_over_ssh(local: Env, far: Path) -> None:
    """create_task and list_tasks through --host act on the host's project; the local
    daemon is never started."""
    root = far
    argv = ("-m", "orchestra", "--host", ALIAS, "-C", str(root), "mcp")
    async with bridge(local, local.base, argv=argv) as session:
        made = await ok(session, "create_task", slug="from-mcp", description="Over ssh.")
        assert made["slug"] == "from-mcp"
        listed = await ok(session, "list_tasks")
        assert [t["slug"] for t in listed["tasks"]] == ["from-mcp"]
    assert (root / ".orchestra" / "tasks" / "1-from-mcp.md").exists()
    assert local.daemon_pid() is None
