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
import statistics
import sys
import time
from pathlib import Path

import trio
from common import Sandbox, add_record_args, record_from
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from orchestra.client import Client


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.1f} ms  (min {min(values) * 1000:.1f})"


async def rounds(args: argparse.Namespace, repo: Path, env: dict[str, str]) -> dict[str, float]:
    """Print the figures; return their medians, in seconds."""
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
    m = statistics.median
    return {"spawn": m(starts), "get": m(get_calls), "list": m(list_calls), "raw": m(raw)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--python-m", action="store_true", help="spawn python -m orchestra.mcp")
    add_record_args(parser)
    args = parser.parse_args()

    with Sandbox() as sb:
        sb.cli = [sys.executable, "-m", "orchestra"]
        sb.git_repo(commit=False, branch=None)
        sb.start()
        with sb.client() as c:
            for i in range(args.tasks):
                c.call("task.new", {"project": sb.project, "slug": f"task-{i}"})
        got = trio.run(rounds, args, sb.repo, sb.env)
    record_from(
        args,
        "MCP bridge",
        orchestra=f"tool call get_task {got['get'] * 1000:.1f} ms, list_tasks"
        f" {got['list'] * 1000:.1f} ms ({args.tasks} tasks); spawn to initialize"
        f" {got['spawn'] * 1000:.0f} ms",
        reference=f"daemon task.get, no bridge {got['raw'] * 1000:.2f} ms",
        figure=f"the bridge adds {(got['get'] - got['raw']) * 1000:.1f} ms to a call",
        target="none set (report)",
        verdict="info",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
