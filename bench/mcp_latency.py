"""MCP bridge latency: spawn → `initialize` reply, and one tool call's round trip.

A private daemon and project in a temp dir (20 tasks). Each round spawns the bridge with the
MCP SDK's stdio client, times spawn → initialize reply, then times `--calls` calls of
`get_task` and of `list_tasks`. The daemon's own `task.get` over the blocking client is
measured alongside, so the bridge's share of a call shows. Medians over all rounds.

    python bench/mcp_latency.py [--rounds N] [--calls N] [--python-m]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from orchestra.client import Client


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.1f} ms  (min {min(values) * 1000:.1f})"


async def rounds(args: argparse.Namespace, repo: Path, env: dict[str, str]) -> None:
    argv = ["-m", "orchestra.mcp"] if args.python_m else ["-m", "orchestra", "mcp"]
    params = StdioServerParameters(command=sys.executable, args=argv, env=env, cwd=repo)
    starts: list[float] = []
    get_calls: list[float] = []
    list_calls: list[float] = []
    with open(os.devnull, "w") as errlog:  # noqa: ASYNC230 (once, before any timing)
        for _ in range(args.rounds):
            start = time.perf_counter()
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                starts.append(time.perf_counter() - start)
                await session.call_tool("get_task", {"task": "1"})  # connects to the daemon
                for _ in range(args.calls):
                    t = time.perf_counter()
                    result = await session.call_tool("get_task", {"task": "7"})
                    get_calls.append(time.perf_counter() - t)
                    assert not result.is_error, result
                    t = time.perf_counter()
                    await session.call_tool("list_tasks", {})
                    list_calls.append(time.perf_counter() - t)
    raw: list[float] = []
    with Client(Path(env["ORCHESTRA_SOCKET"])) as c:
        for _ in range(args.calls * args.rounds):
            t = time.perf_counter()
            c.call("task.get", {"project": str(repo), "task": "7"})
            raw.append(time.perf_counter() - t)
    name = " ".join(["python", *argv])
    print(f"{name}: spawn -> initialize reply   {ms(starts)}  ({args.rounds} spawns)")
    print(f"tool call get_task (round trip)          {ms(get_calls)}  ({len(get_calls)} calls)")
    print(f"tool call list_tasks, {args.tasks} tasks          {ms(list_calls)}")
    print(f"daemon task.get, blocking client         {ms(raw)}  (no bridge: reference)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--python-m", action="store_true", help="spawn python -m orchestra.mcp")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="orc-bench-", dir="/tmp"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "XDG_"))},
        "HOME": str(base),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_STATE_HOME": str(base / "state"),
        "ORCHESTRA_SOCKET": str(base / "run" / "orchestra.sock"),
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    cli = [sys.executable, "-m", "orchestra"]
    repo = base / "repo"
    repo.mkdir()

    def sh(*argv: str) -> None:
        subprocess.run(argv, check=True, env=env, cwd=repo, stdout=subprocess.DEVNULL)

    try:
        sh("git", "init", "-q")
        sh(*cli, "init")
        sh(*cli, "daemon", "start")
        with Client(Path(env["ORCHESTRA_SOCKET"])) as c:
            for i in range(args.tasks):
                c.call("task.new", {"project": str(repo), "slug": f"task-{i}"})
        trio.run(rounds, args, repo, env)
        return 0
    finally:
        subprocess.run([*cli, "daemon", "stop"], env=env, stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
