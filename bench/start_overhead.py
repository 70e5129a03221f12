"""Start overhead: `orchestra start` to the agent's first output vs raw `git worktree add`.

A repository of ~5,000 small files in nested folders is made and committed once.
Each round then times, interleaved so machine noise hits them alike:

- `orchestra start TASK` (the real CLI, a private daemon) until the agent's first
  output. The agent is a tiny profile whose first output is its own wall-clock
  time, so the end point needs no polling of the daemon while the start is in
  flight (polling would compete with the start for the daemon's one thread).
  Once the CLI has returned, `task.tail` reads that stamp back over the socket.
- `git worktree add -b BRANCH PATH HEAD` of the same repository: the floor, as a
  start has to make a worktree of that size anyway.
- the agent's interpreter spawned directly, until its first output: the agent's
  own start-up, which is inside the first figure but is not Orchestra's doing.

Worktrees and branches of both are removed between rounds, so each add is fresh.
The figure that matters is the difference of medians (target: at most +100 ms).
The phases of a start come from the project log (millisecond timestamps).

The scratch repo goes to /dev/shm where there is one: on a tmpfs, git's checkout
is CPU work, so the floor is steady and our overhead is not lost in disk noise
(on a slow virtual disk, writing 5,000 files can take seconds). `--dir` overrides.

    python bench/start_overhead.py [--rounds N] [--files N] [--dir DIR] [-v]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import attrs
from common import Sandbox, add_record_args, agent_toml, record_from, scratch_parent

from orchestra.client import Client

TARGET_MS = 100.0
WARMUP = 2
# The agent's first output is its own time.time(); then it waits to be stopped.
AGENT = (
    "import sys, time; sys.stdout.write('%.6f\\n' % time.time()); sys.stdout.flush();"
    " time.sleep(300)"
)
REFERENCE = "print('x')"


@attrs.frozen
class Start:
    task_id: int
    wall: float  # time.time() just before the CLI was launched
    first: float  # seconds from there to the agent's first output
    cli: float  # seconds from there until the CLI exited


def git(args: list[str], repo: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)


def make_repo(repo: Path, files: int, env: dict[str, str]) -> None:
    """`files` small source files, 25 to a folder, two levels deep, in one commit."""
    per_dir, fan_out = 25, 10
    git(["init", "-q", "-b", "main"], repo, env)
    for n in range(files):
        leaf = n // per_dir
        folder = repo / f"pkg{leaf // fan_out:03d}" / f"mod{leaf % fan_out:02d}"
        if n % per_dir == 0:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{n:05d}.py").write_text(
            f'"""File {n}."""\n\nVALUE = {n}\n\n\ndef f{n}() -> int:\n    return VALUE\n'
        )
    git(["add", "-A"], repo, env)
    git(["commit", "-q", "-m", f"{files} files"], repo, env)


def drop_worktree(repo: Path, path: str, branch: str, env: dict[str, str]) -> None:
    git(["worktree", "remove", "--force", "--", path], repo, env)
    git(["branch", "-q", "-D", "--", branch], repo, env)


def time_git_add(repo: Path, n: int, env: dict[str, str]) -> float:
    path, branch = str(repo.parent / "raw-worktrees" / f"r{n}"), f"bench/r{n}"
    start = time.perf_counter()
    git(["worktree", "add", "-q", "-b", branch, "--", path, "HEAD"], repo, env)
    elapsed = time.perf_counter() - start
    drop_worktree(repo, path, branch, env)
    return elapsed


def time_start(c: Client, cli: list[str], repo: Path, n: int, env: dict[str, str]) -> Start:
    project = str(repo)
    params = {"project": project, "slug": f"round-{n}", "agent": "bench", "description": "go"}
    task = c.call("task.new", params)
    ref = task["slug"]
    wall = time.time()
    start = time.perf_counter()
    subprocess.run([*cli, "start", ref], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
    cli_done = time.perf_counter() - start
    first = first_output(c, project, ref) - wall
    stopped = c.call("task.stop", {"project": project, "task": ref})
    drop_worktree(repo, stopped["worktree"], stopped["branch"], env)
    return Start(task_id=task["id"], wall=wall, first=first, cli=cli_done)


def first_output(c: Client, project: str, ref: str, timeout: float = 10.0) -> float:
    """The wall-clock stamp the agent printed first, read back from its scrollback."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tail = c.call("task.tail", {"project": project, "task": ref, "bytes": 4096})
        line, newline, _ = tail["text"].partition("\n")
        if newline:
            return float(line)
        time.sleep(0.001)
    raise RuntimeError(f"task {ref}: no first output within {timeout:.0f} s")


def time_python(env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", REFERENCE], env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.read(1)
    elapsed = time.perf_counter() - start
    proc.stdout.read()
    proc.wait()
    return elapsed


def phases(log: Path, starts: list[Start]) -> dict[str, list[float]]:
    """Per start: launch -> daemon marked it running -> worktree made -> agent spawned -> output."""
    seen: dict[tuple[int, str], float] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        event = entry.get("event")
        if event == "task.status" and entry.get("status") == "running":
            event = "running"
        if event in ("running", "task.worktree", "agent.started") and "task_id" in entry:
            stamp = datetime.fromisoformat(entry["timestamp"]).timestamp()
            seen.setdefault((entry["task_id"], event), stamp)
    out: dict[str, list[float]] = {}
    for s in starts:
        marks = [seen.get((s.task_id, e)) for e in ("running", "task.worktree", "agent.started")]
        if None in marks:
            continue
        points = [s.wall, *(m for m in marks if m is not None), s.wall + s.first]
        names = ("CLI to daemon", "worktree", "spawn", "agent to output")
        for name, a, b in zip(names, points, points[1:], strict=False):
            out.setdefault(name, []).append(b - a)
    return out


def ms(seconds: list[float]) -> float:
    """The median, in milliseconds."""
    return statistics.median(seconds) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--dir", type=Path, help="parent of the scratch dir (default /dev/shm)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every round")
    add_record_args(parser)
    args = parser.parse_args()

    config = "idle_timeout = 3600.0\n" + agent_toml("bench", ["{python}", "-c", AGENT])
    with Sandbox(parent=scratch_parent(args.dir), config=config) as sb:
        base, env, cli, repo = sb.base, sb.env, sb.cli, sb.repo
        make_repo(repo, args.files, env)
        sb.start()
        starts: list[Start] = []
        raw: list[float] = []
        py: list[float] = []
        with Client(Path(env["ORCHESTRA_SOCKET"])) as c:
            for n in range(WARMUP + args.rounds):
                steps: dict[str, Callable[[], Start | float]] = {
                    "orchestra": functools.partial(time_start, c, cli, repo, n, env),
                    "git": functools.partial(time_git_add, repo, n, env),
                    "python": functools.partial(time_python, env),
                }
                # Alternate the order, so no side always runs right after another.
                order = list(steps) if n % 2 == 0 else list(reversed(steps))
                got = {name: steps[name]() for name in order}
                ours, git_add, python = got["orchestra"], got["git"], got["python"]
                assert isinstance(ours, Start)
                assert isinstance(git_add, float) and isinstance(python, float)
                if args.verbose:
                    print(
                        f"round {n}: start {ours.first * 1000:.1f} ms (CLI {ours.cli * 1000:.1f}),"
                        f" git {git_add * 1000:.1f} ms, python {python * 1000:.1f} ms"
                    )
                if n >= WARMUP:
                    starts.append(ours)
                    raw.append(git_add)
                    py.append(python)
        m_ours, m_cli, m_raw, m_py = (
            ms([s.first for s in starts]),
            ms([s.cli for s in starts]),
            ms(raw),
            ms(py),
        )
        print(
            f"{args.files} files in {base.parent}, {args.rounds} rounds"
            f" (+{WARMUP} warm-up), medians:"
        )
        print(f"  python -c {REFERENCE!r} to first output   {m_py:7.1f} ms")
        print(f"  git worktree add -b                    {m_raw:7.1f} ms")
        print(f"  orchestra start: agent's first output  {m_ours:7.1f} ms")
        print(f"  orchestra start: CLI exited            {m_cli:7.1f} ms")
        for name, values in phases(repo / ".orchestra" / "logs.jsonl", starts).items():
            print(f"    phase {name:<32} {ms(values):7.1f} ms")
        diff = m_ours - m_raw
        verdict = "ok" if diff <= TARGET_MS else "OVER BUDGET"
        print(
            f"overhead {diff:+.1f} ms ({diff - m_py:+.1f} ms without the agent's interpreter),"
            f" ratio {m_ours / m_raw:.2f}x (target <= +{TARGET_MS:.0f} ms): {verdict}"
        )
    record_from(
        args,
        "Start overhead",
        orchestra=f"start to first output {m_ours:.1f} ms (CLI exits at {m_cli:.1f} ms)",
        reference=f"git worktree add {m_raw:.1f} ms ({args.files} files);"
        f" agent's python alone {m_py:.1f} ms",
        figure=f"{diff:+.1f} ms ({diff - m_py:+.1f} ms without the agent's interpreter)",
        target=f"<= +{TARGET_MS:.0f} ms",
        verdict=verdict,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
