"""Scale: 200 tasks in one project: `orchestra status --json` latency and daemon RSS.

A private daemon, one project. Phases: the daemon fresh; `--tasks` tasks created;
then `--running` of them started, each running a quiet agent (`sh`: one line of
output, then `sleep`). In each phase the daemon's resident memory (VmRSS) is read,
and in the last two `orchestra status --json` is timed against `python -c pass`,
interleaved, `--rounds` times each (the CLI budget of bench/cli_latency.py applies:
at most 6x). Linux only: it reads /proc.

    python bench/scale.py [--tasks N] [--running N] [--rounds N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common import (
    Sandbox,
    add_record_args,
    agent_toml,
    median,
    record_from,
    timed_run,
)

TARGET = 6.0
QUIET = ["sh", "-c", "echo ready; exec sleep 1000000"]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def status_ratio(sb: Sandbox, rounds: int) -> tuple[float, float]:
    """Medians of `orchestra status --json` and of `python -c pass`, in seconds."""
    status = [*sb.cli, "status", "--json"]
    ref = [sys.executable, "-c", "pass"]
    for _ in range(3):  # warm the page cache
        timed_run(status, sb.repo, sb.env)
        timed_run(ref, sb.repo, sb.env)
    ours, base = [], []
    for _ in range(rounds):
        ours.append(timed_run(status, sb.repo, sb.env))
        base.append(timed_run(ref, sb.repo, sb.env))
    return median(ours), median(base)


def list_ms(sb: Sandbox, rounds: int) -> float:
    """Median of the `task.list` call alone (what `status` asks the daemon), in ms."""
    times = []
    with sb.client() as c:
        for _ in range(rounds + 3):
            start = time.perf_counter()
            c.call("task.list", {"project": sb.project})
            times.append(time.perf_counter() - start)
    return median(times[3:]) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--running", type=int, default=200, help="how many of them to start")
    parser.add_argument("--rounds", type=int, default=20)
    add_record_args(parser)
    args = parser.parse_args()
    running = min(args.running, args.tasks)

    config = f"max_running = {args.tasks + 1}\nidle_timeout = 86400.0\n" + agent_toml(
        "quiet", QUIET
    )
    with Sandbox(config=config) as sb:
        sb.git_repo()
        sb.start()
        pid = sb.daemon_pid()
        time.sleep(0.5)
        fresh = rss_kib(pid)
        began = time.perf_counter()
        with sb.client() as c:
            ids = sb.new_tasks(c, args.tasks, agent="quiet")
        made = time.perf_counter() - began
        time.sleep(0.5)
        created = rss_kib(pid)
        s_created, py_created = status_ratio(sb, args.rounds)
        list_created = list_ms(sb, args.rounds)
        began = time.perf_counter()
        with sb.client() as c:
            for task in ids[:running]:
                c.call("task.start", {"project": sb.project, "task": task})
        started = time.perf_counter() - began
        time.sleep(2.0)  # the agents print their line and go quiet
        up = rss_kib(pid)
        s_running, py_running = status_ratio(sb, args.rounds) if running else (0.0, 1.0)
        list_running = list_ms(sb, args.rounds)
        stop = sb.stop_daemon()  # its agents with it

    print(f"{args.tasks} tasks created in {made:.1f} s; {running} started in {started:.1f} s")
    print(f"daemon RSS: fresh {fresh / 1024:.1f} MiB; {args.tasks} tasks {created / 1024:.1f} MiB")
    per_task = (up - created) / running if running else 0.0
    if running:
        print(
            f"            {running} running {up / 1024:.1f} MiB"
            f" ({per_task:+.0f} KiB per running task)"
        )
    print(f"daemon stop, {running} agents running: {stop:.1f} s until its process was gone")
    r_created = s_created / py_created
    print(
        f"status --json, {args.tasks} tasks, none running: median {s_created * 1000:.1f} ms"
        f" vs python -c pass {py_created * 1000:.1f} ms: {r_created:.2f}x"
        f" (the task.list call alone: {list_created:.1f} ms)"
    )
    ratio = r_created
    if running:
        r_running = s_running / py_running
        ratio = max(ratio, r_running)
        print(
            f"status --json, {running} running:        median {s_running * 1000:.1f} ms"
            f" vs python -c pass {py_running * 1000:.1f} ms: {r_running:.2f}x"
            f" (the task.list call alone: {list_running:.1f} ms)"
        )
    verdict = "ok" if ratio <= TARGET else "over the CLI budget"
    print(f"worst ratio {ratio:.2f}x (target <= {TARGET:g}x, as for 100 tasks): {verdict}")
    ours = f"status --json {s_created * 1000:.0f} ms ({args.tasks} tasks)"
    ref = f"python -c pass {py_created * 1000:.0f} ms"
    figure = f"{r_created:.2f}x; RSS {created / 1024:.0f} MiB"
    if running:
        ours += f", {s_running * 1000:.0f} ms ({running} running)"
        ref += f", {py_running * 1000:.0f} ms"
        figure = (
            f"{r_created:.2f}x / {s_running / py_running:.2f}x; daemon RSS"
            f" {created / 1024:.0f} MiB with {args.tasks} tasks, {up / 1024:.0f} MiB with"
            f" {running} running ({per_task:+.0f} KiB each); daemon stop {stop:.1f} s"
        )
    record_from(
        args,
        "Scale",
        orchestra=ours,
        reference=ref,
        figure=figure,
        target=f"none set; CLI budget (100 tasks) <= {TARGET:g}x python; RSS: report",
        verdict=verdict,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
