"""Make docs/dashboard.svg: the dashboard on a scratch project with demo agents
(`just screenshot`; Textual draws the SVG itself)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from orchestra.ui.app import Dashboard
from tests.conftest import served_project

OUT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.svg"
TASKS: list[dict[str, Any]] = [
    {
        "slug": "fix-login",
        "agent": "demo",
        "title": "Fix the login form",
        "labels": ["ui"],
        "description": "The login form forgets the password on error.",
    },
    {
        "slug": "api-docs",
        "agent": "demo",
        "title": "Document the API",
        "description": "Write docs for the REST API.",
    },
    {
        "slug": "flaky-test",
        "agent": "demo",
        "title": "Fix the flaky upload test",
        "description": "test_upload fails one run in ten.",
    },
    {
        "slug": "dark-mode",
        "agent": "demo",
        "title": "Dark mode",
        "labels": ["ui"],
        "description": "Add a dark theme.",
    },
]


def main() -> None:
    with served_project(TASKS) as (env, root):
        with env.client() as c:
            for slug in ("fix-login", "api-docs", "flaky-test"):
                c.call("task.start", {"project": str(root), "task": slug})
            c.call(
                "task.set_status", {"project": str(root), "task": "api-docs", "status": "complete"}
            )
            deadline = time.monotonic() + 30
            while (
                "Tell me more"
                not in c.call("pty.screen", {"project": str(root), "task": "fix-login"})["text"]
            ):
                if time.monotonic() > deadline:
                    sys.exit("the demo agent did not draw its screen")
                time.sleep(0.1)

        async def shoot() -> None:
            app = Dashboard(project=str(root), socket=env.socket)
            async with app.run_test(size=(150, 34)) as pilot:
                while "Orchestra demo agent" not in str(app.query_one("#screen").render()):
                    await pilot.pause(0.05)
                await pilot.pause(0.3)
                app.save_screenshot(filename=OUT.name, path=str(OUT.parent))

        asyncio.run(shoot())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
