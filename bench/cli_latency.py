"""CLI start-up budget: `orchestra status --json` on 100 tasks vs `python -c pass`.

Both are measured in the same run, interleaved, so machine noise hits them alike;
the figure that matters is the ratio of medians (target: at most 6x).

    python bench/cli_latency.py [--rounds N] [--tasks N]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from common import Sandbox, add_record_args, record_from, timed_run

TARGET = 6.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=100)
    add_record_args(parser)
    args = parser.parse_args()

    with Sandbox() as sb:
        sb.git_repo(commit=False, branch=None)
        sb.start()
        with sb.client() as c:
            sb.new_tasks(c, args.tasks)
        status = [*sb.cli, "status", "--json"]
        ref = [sys.executable, "-c", "pass"]
        for _ in range(3):  # warm the page cache
            timed_run(status, sb.repo, sb.env)
            timed_run(ref, sb.repo, sb.env)
        ours, base_times = [], []
        for _ in range(args.rounds):
            ours.append(timed_run(status, sb.repo, sb.env))
            base_times.append(timed_run(ref, sb.repo, sb.env))
    m_ours, m_ref = statistics.median(ours), statistics.median(base_times)
    ratio = m_ours / m_ref
    print(f"python -c pass            median {m_ref * 1000:7.1f} ms")
    print(f"orchestra status --json   median {m_ours * 1000:7.1f} ms  ({args.tasks} tasks)")
    verdict = "ok" if ratio <= TARGET else "OVER BUDGET"
    print(f"ratio {ratio:.2f}x (target <= {TARGET:.0f}x): {verdict}")
    record_from(
        args,
        "CLI latency",
        orchestra=f"status --json {m_ours * 1000:.1f} ms ({args.tasks} tasks)",
        reference=f"python -c pass {m_ref * 1000:.1f} ms",
        figure=f"{ratio:.2f}x",
        target=f"<= {TARGET:.0f}x",
        verdict=verdict,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
