"""Orchestra over SSH: a one-shot command and keystrokes, against plain ssh in the same run.

A real sshd on 127.0.0.1 (tests/remote/sshd.py; it needs openssh-server) logs the user in
with a key of its own, and serves the same private daemon the local client uses, so the
only difference between the two sides is the link.

- `status --json` on 100 tasks through `--host box` with a warm shared connection, vs the
  same command locally, and vs `ssh box true` on the same shared connection (the link's
  own round trip) and `python -c pass` (the bridge is a Python start on the host). Target:
  over SSH costs the local command, one round trip and one Python start, plus <= 30 ms.
- Keystroke latency through `orchestra --host box attach`, vs the same echo program run
  by plain `ssh -tt box` (the issue's reference: the network plus a small constant).

    python bench/remote.py [--rounds N] [--tasks N] [--keys N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from common import (
    Pty,
    Sandbox,
    add_record_args,
    median,
    p99,
    program_config,
    record_from,
    rotate,
    timed_run,
)
from keystroke_latency import READY, type_keys

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the sshd harness of the remote tests

from orchestra.core.remote import control_name, target  # noqa: E402
from tests.remote.sshd import ALIAS, SSHD, ssh_server  # noqa: E402

ECHO = [str(ROOT / "bench" / "keystroke_latency.py"), "--echo"]
EXTRA_TARGET = 0.030  # s: what over SSH may add to a local command, past one round trip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--gap", type=float, default=5.0, help="ms to wait after each echo")
    add_record_args(parser)
    args = parser.parse_args()
    if SSHD is None:
        print("no sshd on this machine (apt install openssh-server): nothing measured")
        return 1

    with Sandbox(config=program_config(ECHO)) as sb:
        sb.git_repo()
        sb.start()
        with ssh_server(sb.base / "sshd", sb.env) as server:
            config = sb.base / "config" / "orchestra" / "config.toml"
            config.write_text(config.read_text() + server.host_config())
            with sb.client() as c:
                sb.new_tasks(c, args.tasks)
            status = _status(sb, server.ssh, args)
            keys = _keystrokes(sb, server.ssh, args)
            subprocess.run(
                [*server.ssh, "-o", _control(sb, server.ssh), "-O", "exit", ALIAS],
                capture_output=True,
                check=False,
            )
    _report(args, status, keys)
    return 0


def _control(sb: Sandbox, ssh: list[str]) -> str:
    """The ssh option that uses the client's shared connection to `box`."""
    name = control_name(target(ALIAS, {}, ssh))
    return f"ControlPath={sb.socket.parent / 'ssh' / name}"


def _status(sb: Sandbox, ssh: list[str], args: argparse.Namespace) -> dict[str, float]:
    """Medians of the one-shot command locally, over SSH, and of ssh's own round trip."""
    control = _control(sb, ssh)
    sides = {
        "local": [*sb.cli, "status", "--json"],
        "ssh": [*sb.cli, "--host", ALIAS, "-C", sb.project, "status", "--json"],
        "ssh true": [*ssh, "-T", "-o", control, ALIAS, "true"],
        "python": [sys.executable, "-c", "pass"],
    }
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(3):  # the first makes the shared connection; all warm the page cache
        for argv in sides.values():
            timed_run(argv, sb.repo, sb.env)
    for i in range(args.rounds):
        for side in rotate(list(sides), i):
            times[side].append(timed_run(sides[side], sb.repo, sb.env))
    return {side: median(t) for side, t in times.items()}


def _keystrokes(sb: Sandbox, ssh: list[str], args: argparse.Namespace) -> dict[str, list[float]]:
    """Round trips of single keys through `orchestra --host box attach` and `ssh -tt box`."""
    with sb.client() as c:
        (task,) = sb.new_tasks(c, 1, agent="bench", prefix="echo")
        c.call("task.start", {"project": sb.project, "task": task})
    control = _control(sb, ssh)
    sides = {
        "orchestra": [*sb.cli, "--host", ALIAS, "-C", sb.project, "attach", str(task)],
        "ssh -tt": [*ssh, "-tt", "-o", control, ALIAS, sys.executable, *ECHO],
    }
    terms: dict[str, Pty] = {}
    try:
        for side, argv in sides.items():
            terms[side] = Pty(argv, env=sb.env, cwd=sb.repo, cols=120, rows=40)
            terms[side].expect(READY, timeout=30)
        times = type_keys(terms, args.keys, args.gap)
        terms["orchestra"].write(b"\x11")  # ctrl-q: detach
        terms["orchestra"].wait_exit(5)
    finally:
        for term in terms.values():
            term.close()
    return times


def _report(
    args: argparse.Namespace, status: dict[str, float], keys: dict[str, list[float]]
) -> None:
    def ms(s: float) -> str:
        return f"{s * 1000:.1f} ms"

    print(f"status --json, {args.tasks} tasks, medians of {args.rounds}:")
    for side, t in status.items():
        print(f"  {side:<9} {ms(t)}")
    # Over SSH = the local command + ssh's round trip + the bridge's start on the host (a
    # Python start: `python -c pass`) + what is left, which is ours to keep small.
    extra = status["ssh"] - status["local"] - status["ssh true"] - status["python"]
    ratio = status["ssh"] / status["local"]
    verdict = "ok" if extra <= EXTRA_TARGET else "OVER"
    print(
        f"over SSH: {ratio:.2f}x local; past ssh's round trip and a Python start on the host"
        f" it adds {ms(extra)}"
        f" (target <= {ms(EXTRA_TARGET)}): {verdict}"
    )
    record_from(
        args,
        "Remote status over SSH",
        orchestra=f"--host status --json {ms(status['ssh'])} ({args.tasks} tasks, warm link)",
        reference=f"local {ms(status['local'])}; ssh true {ms(status['ssh true'])};"
        f" python -c pass {ms(status['python'])}",
        figure=f"{ratio:.2f}x local; local + ssh true + python -c pass + {ms(extra)}",
        target=f"local + ssh true + python -c pass + <= {ms(EXTRA_TARGET)}",
        verdict=verdict,
    )
    ours, ref = keys["orchestra"], keys["ssh -tt"]
    print(f"keystrokes, {args.keys} per side:")
    for side, k in keys.items():
        print(f"  {side:<9} median {ms(median(k))}  p99 {ms(p99(k))}")
    added = median(ours) - median(ref)
    r_median = median(ours) / median(ref)
    k_verdict = "ok" if added <= 0.005 else "OVER"
    print(f"over plain ssh -tt: +{added * 1000:.2f} ms median ({r_median:.2f}x): {k_verdict}")
    record_from(
        args,
        "Keystroke latency over SSH",
        orchestra=f"--host attach: median {ms(median(ours))}, p99 {ms(p99(ours))}",
        reference=f"ssh -tt echo: median {ms(median(ref))}, p99 {ms(p99(ref))}",
        figure=f"+{added * 1000:.2f} ms median ({r_median:.2f}x), p99 {p99(ours) / p99(ref):.2f}x",
        target="ssh's own + <= 5 ms (median)",
        verdict=k_verdict,
    )


if __name__ == "__main__":
    raise SystemExit(main())
