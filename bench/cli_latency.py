"""CLI start-up budget: `orchestra status --json` on 100 tasks vs `python -c pass`.

Both are measured in the same run, interleaved, so machine noise hits them alike;
the figure that matters is the ratio of medians (target: at most 6x).

    python bench/cli_latency.py [--rounds N] [--tasks N]
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

from orchestra.client import Client

TARGET = 6.0


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=100)
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
    exe = Path(sys.executable)
    cli = (
        [str(exe.with_name("orchestra"))]
        if exe.with_name("orchestra").exists()
        else [sys.executable, "-m", "orchestra"]
    )
    repo = base / "repo"
    repo.mkdir()
    try:
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
        subprocess.run([*cli, "init"], cwd=repo, check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            [*cli, "daemon", "start"], cwd=repo, check=True, env=env, stdout=subprocess.DEVNULL
        )
        with Client(Path(env["ORCHESTRA_SOCKET"])) as c:
            for i in range(args.tasks):
                c.call(
                    "task.new",
                    {"project": str(repo), "slug": f"task-{i}", "description": f"Task {i}\n"},
                )
        status = [*cli, "status", "--json"]
        ref = [sys.executable, "-c", "pass"]
        for _ in range(3):  # warm the page cache
            timed(status, repo, env)
            timed(ref, repo, env)
        ours, base_times = [], []
        for _ in range(args.rounds):
            ours.append(timed(status, repo, env))
            base_times.append(timed(ref, repo, env))
        m_ours, m_ref = statistics.median(ours), statistics.median(base_times)
        ratio = m_ours / m_ref
        print(f"python -c pass            median {m_ref * 1000:7.1f} ms")
        print(f"orchestra status --json   median {m_ours * 1000:7.1f} ms  ({args.tasks} tasks)")
        verdict = "ok" if ratio <= TARGET else "OVER BUDGET"
        print(f"ratio {ratio:.2f}x (target <= {TARGET:.0f}x): {verdict}")
        return 0
    finally:
        subprocess.run(
            [*cli, "daemon", "stop"], cwd=repo, env=env, stdout=subprocess.DEVNULL, check=False
        )
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
