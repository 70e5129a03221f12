"""Hook latency: `orchestra hook working` into a live run vs `python -c pass`.

Agents run the hook on every turn and tool call, so its whole life (start the interpreter,
read the payload, one `task.report` round trip to the daemon, exit) is measured against a
bare interpreter start, interleaved in the same run so machine noise hits both alike. The
figure is the ratio of medians (target: at most 2x). The daemon-down case (no socket) is
printed alongside: the hook must return at once there too.

    python bench/hook_latency.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import Sandbox, add_record_args, record_from, toml_argv

TARGET = 2.0
PAYLOAD = json.dumps({"reason": "tool", "session_id": "bench-session"}).encode()


def timed(argv: list[str], cwd: Path, env: dict[str, str], payload: bytes = b"") -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, input=payload, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    add_record_args(parser)
    args = parser.parse_args()

    with Sandbox() as sb:
        marker = sb.base / "run-id"
        agent = ["sh", "-c", f'echo "$ORCHESTRA_RUN_ID" > {marker}; exec sleep 3600']
        sb.git_repo()
        sb.start()
        config = sb.repo / ".orchestra" / "config.toml"
        config.write_text(
            config.read_text()
            + f'\n[agents.hooked]\ncommand = {toml_argv(agent)}\nhooks = "orchestra"\n'
        )
        with sb.client() as c:
            (task,) = sb.new_tasks(c, 1, agent="hooked", prefix="hook")
            c.call("task.start", {"project": sb.project, "task": task})
        deadline = time.monotonic() + 10
        while not (marker.exists() and marker.read_text().strip()):
            if time.monotonic() > deadline:
                raise SystemExit("the agent did not start")
            time.sleep(0.02)
        hook_env = {
            **sb.env,
            "ORCHESTRA_TASK_ID": str(task),
            "ORCHESTRA_RUN_ID": marker.read_text().strip(),
            "ORCHESTRA_PROJECT": sb.project,
        }
        down_env = {**hook_env, "ORCHESTRA_SOCKET": str(sb.base / "no-daemon.sock")}
        hook = [*sb.cli, "hook", "working"]
        ref = [sys.executable, "-c", "pass"]
        for _ in range(3):  # warm the page cache
            timed(hook, sb.repo, hook_env, PAYLOAD)
            timed(ref, sb.repo, sb.env)
        ours, base, down = [], [], []
        for _ in range(args.rounds):
            ours.append(timed(hook, sb.repo, hook_env, PAYLOAD))
            base.append(timed(ref, sb.repo, sb.env))
            down.append(timed(hook, sb.repo, down_env, PAYLOAD))
        with sb.client() as c:
            reported = c.call("task.get", {"project": sb.project, "task": task})["session_id"]
        if reported != "bench-session":
            raise SystemExit(f"the hook's report did not arrive (session_id {reported!r})")
    m_ours, m_ref, m_down = (statistics.median(v) for v in (ours, base, down))
    ratio = m_ours / m_ref
    print(f"python -c pass                  median {m_ref * 1000:7.1f} ms")
    print(f"orchestra hook (daemon up)      median {m_ours * 1000:7.1f} ms")
    print(f"orchestra hook (daemon down)    median {m_down * 1000:7.1f} ms")
    verdict = "ok" if ratio <= TARGET else "OVER BUDGET"
    print(f"ratio {ratio:.2f}x (target <= {TARGET:g}x): {verdict}")
    record_from(
        args,
        "Hook latency",
        orchestra=f"hook working {m_ours * 1000:.1f} ms (daemon down {m_down * 1000:.1f} ms)",
        reference=f"python -c pass {m_ref * 1000:.1f} ms",
        figure=f"{ratio:.2f}x",
        target=f"<= {TARGET:g}x",
        verdict=verdict,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
