"""Idle cost: what N quiet agents cost the daemon, against tmux holding N quiet windows.

A private daemon starts N tasks whose agent prints one line and then sleeps
(`--agent demo` runs the real demo agent instead, which waits for input once its
quick work is done). Once every agent has printed and output has stopped, the
daemon's CPU time (utime + stime of all its threads, /proc/PID/stat) is read
over a window of `--seconds`, with no request sent to it meanwhile: the share of
one core it used is the figure (target: under 1%). Its resident memory (VmRSS)
before the agents and after gives the growth per task. "Before" is taken after
one agent was started and stopped, so modules loaded on the first start are not
counted as a per-task cost.

The reference, when tmux is installed: a private tmux server with N windows,
each running `sleep` after printing one line, measured over the same window
(CPU time is accounted per process, so the two idle servers do not blur each
other's figures) and with the same memory arithmetic.

Linux only: it reads /proc.

    python bench/idle_cost.py [--tasks N] [--seconds S] [--agent quiet|demo]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import attrs
from common import Sandbox, add_record_args, have_tmux, record_from

from orchestra.client import Client

TARGET_PCT = 1.0
QUIET = "import sys, time; sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(1000000)"
SLEEPER = "echo ready; exec sleep 1000000"
TICK = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class Sample:
    cpu: float  # seconds of CPU, user + system, all threads
    switches: int  # context switches of the main thread, voluntary or not
    rss_kib: int
    threads: int
    at: float  # time.monotonic()


def sample(pid: int) -> Sample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return Sample(
        cpu=(utime + stime) / TICK,
        # The main thread's (the leader's) count: the event loop's wakeups.
        switches=sum(int(v) for k, v in status.items() if k.endswith("ctxt_switches")),
        rss_kib=int(status["VmRSS"].split()[0]),
        threads=int(status["Threads"]),
        at=time.monotonic(),
    )


@attrs.frozen
class Watched:
    name: str
    unit: str  # what it holds one of per agent
    pid: int
    before: Sample  # before the agents


def report(w: Watched, n: int, after: Sample, end: Sample) -> tuple[float, float]:
    """Print one server's figures; return its CPU share of one core (percent) and its
    memory growth per agent (KiB)."""
    window = end.at - after.at
    pct = 100 * (end.cpu - after.cpu) / window
    wakeups = (end.switches - after.switches) / window
    growth = (after.rss_kib - w.before.rss_kib) / n
    print(f"{w.name}:")
    print(
        f"  CPU over {window:.1f} s: {(end.cpu - after.cpu) * 1000:.0f} ms ="
        f" {pct:.2f}% of one core; main thread {wakeups:.1f} context switches/s;"
        f" {end.threads} thread(s)"
    )
    print(
        f"  RSS {w.before.rss_kib / 1024:.1f} MiB before, {after.rss_kib / 1024:.1f} MiB"
        f" with {n} {w.unit}s: {growth:+.1f} KiB per {w.unit}"
    )
    return pct, growth


def wait_quiet(c: Client, project: str, n: int, timeout: float = 120.0) -> None:
    """Until all n agents have printed and no output came for a second."""
    deadline = time.monotonic() + timeout
    last: int | None = None
    while time.monotonic() < deadline:
        tasks = c.call("task.list", {"project": project})["tasks"]
        runs = [t["run"] for t in tasks if t.get("run")]
        total = sum(r["output_bytes"] for r in runs)
        if len(runs) == n and all(r["output_bytes"] > 0 for r in runs) and total == last:
            return
        last = total
        time.sleep(1.0)
    states = sorted({t["status"] for t in tasks})
    raise RuntimeError(f"agents not all up and quiet after {timeout:.0f} s (states: {states})")


def tmux_server(sb: Sandbox) -> tuple[list[str], int, Sample]:
    """A private tmux server with one window: (its command prefix, pid, sample)."""
    tmux = sb.tmux_argv()
    sb.tmux("new-session", "-d", "-s", "bench", "-x", "100", "-y", "30", SLEEPER)
    pid = int(sb.tmux("display-message", "-p", "#{pid}"))
    time.sleep(0.5)
    return tmux, pid, sample(pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="the measuring window")
    parser.add_argument("--agent", choices=("quiet", "demo"), default="quiet")
    add_record_args(parser)
    args = parser.parse_args()
    n: int = args.tasks

    quiet = ", ".join(json.dumps(a) for a in ["{python}", "-c", QUIET])  # valid TOML strings
    config = (
        f"max_running = {n + 1}\nidle_timeout = 86400.0\n\n"
        f"[agents.quiet]\ncommand = [{quiet}]\n\n"
        '[agents.demo]\nenv = { ORCHESTRA_DEMO_STEP_DELAY = "0" }\n'
    )
    with Sandbox(config=config, tmux=True) as sb:
        env, project = sb.env, sb.project
        sb.git_repo()
        sb.start()
        with Client(sb.socket) as c:
            pid: int = c.call("daemon.status")["pid"]
            fresh = sample(pid)

            def new(slug: str) -> Any:
                params = {"project": project, "slug": slug, "agent": args.agent}
                return c.call("task.new", {**params, "description": "wait"})

            warm = new("warm-up")  # pays the first start's imports before "before"
            c.call("task.start", {"project": project, "task": warm["id"]})
            wait_quiet(c, project, 1)
            c.call("task.stop", {"project": project, "task": warm["id"]})
            ids = [new(f"idle-{i}")["id"] for i in range(n)]
            time.sleep(1.0)
            before = sample(pid)
            began = time.monotonic()
            for task_id in ids:
                c.call("task.start", {"project": project, "task": task_id})
            wait_quiet(c, project, n)
            print(f"{n} {args.agent} agents up and quiet in {time.monotonic() - began:.1f} s")

            watched = [Watched("orchestra daemon", "task", pid, before)]
            tmux = have_tmux()
            if tmux:
                prefix, tmux_pid, tmux_before = tmux_server(sb)
                for _ in range(n):
                    subprocess.run([*prefix, "new-window", "-d", SLEEPER], env=env, check=True)
                time.sleep(1.0)
                watched.append(Watched("tmux server (reference)", "window", tmux_pid, tmux_before))

            after = [sample(w.pid) for w in watched]
            time.sleep(args.seconds)  # the window: nobody talks to either server
            end = [sample(w.pid) for w in watched]

    print(f"(daemon fresh: {fresh.rss_kib / 1024:.1f} MiB RSS)")
    got = [report(w, n, a, e) for w, a, e in zip(watched, after, end, strict=True)]
    if not tmux:
        print("tmux server (reference): tmux is not installed, skipped")
    pct, growth = got[0]
    verdict = "ok" if pct < TARGET_PCT else "OVER BUDGET"
    print(f"daemon CPU {pct:.2f}% of one core (target < {TARGET_PCT:g}%): {verdict}")
    reference = "tmux not installed"
    if tmux:
        reference = f"tmux server: {got[1][0]:.2f}% of a core, {got[1][1]:+.0f} KiB per window"
    record_from(
        args,
        "Idle cost",
        orchestra=f"daemon {pct:.2f}% of a core, {growth:+.0f} KiB RSS per task",
        reference=reference,
        figure=f"{n} idle agents, {args.seconds:g} s window",
        target=f"CPU < {TARGET_PCT:g}% of a core",
        verdict=verdict,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
