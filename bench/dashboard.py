"""The dashboard (`orchestra ui`): start to first frame, preview latency, idle cost.

- first frame: `orchestra ui` spawned on a PTY with 100 tasks, until the list's rows are
  drawn, against `python -c pass` in the same run (target: under half a second);
- preview: in-process (Textual's pilot, headless), a selection change until the other
  agent's screen is in the preview, and an agent's output until the preview shows it
  (target: both under 50 ms median);
- idle: the dashboard and the daemon's CPU over a window with 50 idle agents shown
  (target: each under 1% of a core).

    python bench/dashboard.py [--rounds N] [--tasks N] [--idle-agents N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from common import (
    Pty,
    Sandbox,
    add_record_args,
    agent_toml,
    cpu_seconds,
    record_from,
    timed_run,
)
from textual.widgets import DataTable

from orchestra.ui.app import Dashboard

ECHO = agent_toml("echo", ["cat"])
FIRST_FRAME_TARGET = 0.5
PREVIEW_TARGET = 0.050
CPU_TARGET = 1.0  # % of a core


def first_frame(sb: Sandbox, rounds: int) -> tuple[float, float]:
    """Medians: `orchestra ui` to its list drawn, and `python -c pass`."""
    ours, ref = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        pty = Pty([*sb.cli, "ui"], env=sb.env, cwd=sb.repo, cols=160, rows=40)
        pty.expect(b"task-0", 30)
        ours.append(time.perf_counter() - began)
        pty.write(b"q")
        pty.wait_exit(10)
        pty.close()
        ref.append(timed_run([sys.executable, "-c", "pass"], sb.repo, sb.env))
    return statistics.median(ours), statistics.median(ref)


async def preview(sb: Sandbox, rounds: int) -> tuple[float, float]:
    """Medians: selection change to the new screen shown; output to the preview updated."""
    app = Dashboard(project=sb.project, socket=sb.socket)
    switch, output = [], []
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.query_one("#screen")

        async def until(text: str) -> None:
            deadline = time.monotonic() + 10
            while text not in str(screen.render()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{text!r} not in the preview")
                await asyncio.sleep(0.001)

        while len(app.shown) < 2:
            await pilot.pause(0.05)
        table = app.query_one("#tasks", DataTable)
        rows = {r.slug: r for r in app.shown}
        for i in range(rounds):
            for slug in ("echo-a", "echo-b"):  # the marks each screen shows
                began = time.perf_counter()
                table.move_cursor(row=app.shown.index(rows[slug]))  # as the arrow keys do
                await until(f"mark {slug}")
                switch.append(time.perf_counter() - began)
                began = time.perf_counter()
                await app.link.call(
                    "task.send_input", project=sb.project, task=slug, text=f"out{i}-{slug}\r"
                )
                await until(f"out{i}-{slug}")
                output.append(time.perf_counter() - began)
    return statistics.median(switch), statistics.median(output)


def idle_cost(sb: Sandbox, agents: int, seconds: float) -> tuple[float, float]:
    """% of a core: the dashboard and the daemon, with `agents` idle agents running."""
    with sb.client() as c:
        for i in sb.new_tasks(c, agents, agent="echo", prefix="idle"):
            c.call("task.start", {"project": sb.project, "task": i})
    pty = Pty([*sb.cli, "ui"], env=sb.env, cwd=sb.repo, cols=160, rows=40)
    pty.expect(b"idle-", 30)
    end = time.monotonic() + 2
    while time.monotonic() < end:  # let it settle
        pty.read(0.1)
    assert sb.daemon is not None
    ui0, d0, t0 = cpu_seconds(pty.proc.pid), cpu_seconds(sb.daemon), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        pty.read(0.2)
    elapsed = time.monotonic() - t0
    ui = (cpu_seconds(pty.proc.pid) - ui0) / elapsed * 100
    daemon = (cpu_seconds(sb.daemon) - d0) / elapsed * 100
    pty.write(b"q")
    pty.wait_exit(10)
    pty.close()
    return ui, daemon


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--idle-agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    add_record_args(parser)
    args = parser.parse_args()

    with Sandbox(config="idle_timeout = 86400.0\n" + ECHO) as sb:
        sb.git_repo()
        sb.start()
        with sb.client() as c:
            for slug in ("echo-a", "echo-b"):
                c.call("task.new", {"project": sb.project, "slug": slug, "agent": "echo"})
                c.call("task.start", {"project": sb.project, "task": slug})
                c.call(
                    "task.send_input",
                    {"project": sb.project, "task": slug, "text": f"mark {slug}\r"},
                )
            sb.new_tasks(c, args.tasks - 2)
        frame, python = first_frame(sb, args.rounds)
        switch, output = asyncio.run(preview(sb, args.rounds))
        ui_cpu, daemon_cpu = idle_cost(sb, args.idle_agents, args.seconds)

    print(f"python -c pass                 median {python * 1000:7.1f} ms")
    print(f"orchestra ui to its list       median {frame * 1000:7.1f} ms ({args.tasks} tasks)")
    print(f"selection to the new preview   median {switch * 1000:7.1f} ms")
    print(f"agent output to the preview    median {output * 1000:7.1f} ms")
    print(f"idle, {args.idle_agents} agents: dashboard {ui_cpu:.2f}%, daemon {daemon_cpu:.2f}%")
    ok = (
        frame <= FIRST_FRAME_TARGET
        and max(switch, output) <= PREVIEW_TARGET
        and max(ui_cpu, daemon_cpu) <= CPU_TARGET
    )
    verdict = "ok" if ok else "OVER TARGET"
    print(verdict)
    record_from(
        args,
        "Dashboard",
        orchestra=(
            f"first frame {frame * 1000:.0f} ms ({args.tasks} tasks); selection to preview"
            f" {switch * 1000:.1f} ms, output to preview {output * 1000:.1f} ms; idle with"
            f" {args.idle_agents} agents: dashboard {ui_cpu:.2f}%, daemon {daemon_cpu:.2f}%"
        ),
        reference=f"python -c pass {python * 1000:.1f} ms",
        figure=f"first frame {frame / python:.1f}x python",
        target="first frame < 500 ms; previews < 50 ms median; idle < 1% of a core each",
        verdict=verdict,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
