"""Keystroke latency: key in, echo out, through `orchestra attach` vs through `tmux attach`.

The program (this script with `--echo`) puts its terminal in raw mode, prints
`ECHO-READY`, then answers every read of its input at once with a carriage return and
the last byte it read (so the echo is always drawn at the same place, and the screen
changes with every key: tmux draws changes only).

It runs as an Orchestra agent (a private daemon) and in a private tmux server (status
line off), and each side's client runs on a PTY this script owns, `--cols` x `--rows`.
Keys are typed one at a time, alternating between the two sides, each after the last
one's echo and a short pause: the round trip of one key is from writing it to our
terminal until it shows in what the client writes back (escape sequences aside). The
program run straight on our terminal is measured the same way, as the floor. Median
and p99 per side. Target: not slower than tmux (median and p99).

    python bench/keystroke_latency.py [--keys N] [--gap MS] [--cols 120] [--rows 40]
                                      [--python-relay]

`--python-relay` runs the daemon's relay on its Python inner loop instead of the C one
(daemon/forward.py), and records a row of its own.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

from common import (
    DETACH_KEYS,
    Pty,
    Sandbox,
    Timeout,
    add_record_args,
    attach_sides,
    median,
    p99,
    program_config,
    record_from,
    rotate,
)

from orchestra.daemon.forward import NO_NATIVE_ENV

THIS = Path(__file__).resolve()
READY = b"ECHO-READY"
KEYS = b"abcdefghijklmnopqrstuvwxyz"  # consecutive keys differ, so every echo is a change
WARMUP = 20  # keys per side not counted
# What a client writes around the text: CSI, OSC/DCS strings, two- and three-byte escapes.
ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]P_^][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -/]*[0-~]"
)


def echo() -> int:
    """The program: raw mode; each read of input is echoed at once (CR, last byte)."""
    import tty

    tty.setraw(0)
    os.write(1, b"\x1b[H\x1b[2J" + READY + b"\r\n")
    while True:
        data = os.read(0, 1024)
        if not data:
            return 0
        os.write(1, b"\r" + data[-1:])


def round_trip(term: Pty, key: bytes, timeout: float = 5.0) -> float:
    """Seconds from typing `key` until the client shows it."""
    seen = b""
    start = time.perf_counter()
    term.write(key)
    deadline = start + timeout
    while True:
        chunk = term.read(max(0.0, deadline - time.perf_counter()))
        if chunk:
            seen += chunk
            if key in ESCAPES.sub(b"", seen):
                return time.perf_counter() - start
        elif time.perf_counter() >= deadline or term.eof:
            raise Timeout(f"the echo of {key!r} did not show within {timeout:g} s: {seen!r}")


def type_keys(terms: dict[str, Pty], keys: int, gap: float) -> dict[str, list[float]]:
    """Each side's round trips of `keys` single keys (after WARMUP more), the sides taking
    turns in a rotating order, `gap` ms after each echo."""
    time.sleep(0.3)  # let every client settle (attach-time queries and redraws)
    for term in terms.values():
        while term.read(0.05):
            pass
    times: dict[str, list[float]] = {side: [] for side in terms}
    for i in range(WARMUP + keys):
        key = KEYS[i % len(KEYS) : i % len(KEYS) + 1]
        for side in rotate(list(terms), i):
            rtt = round_trip(terms[side], key)
            if i >= WARMUP:
                times[side].append(rtt)
            time.sleep(gap / 1000)
            while terms[side].read(0):  # anything after the echo
                pass
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=300, help="keys per side (measured)")
    parser.add_argument("--gap", type=float, default=5.0, help="ms to wait after each echo")
    parser.add_argument("--cols", type=int, default=120)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument(
        "--python-relay", action="store_true", help="the daemon's Python inner loop, not C's"
    )
    parser.add_argument("--echo", action="store_true", help="be the program (internal)")
    add_record_args(parser)
    args = parser.parse_args()
    if args.echo:
        return echo()

    program = [str(THIS), "--echo"]
    with Sandbox(config=program_config(program), tmux=True) as sb:
        if args.python_relay:
            sb.env[NO_NATIVE_ENV] = "1"
        sb.git_repo()
        sb.start()
        with sb.client() as client:
            relay = client.call("daemon.status")["relay"]
        sides = attach_sides(sb, program, cols=args.cols, rows=args.rows, direct=True)
        terms: dict[str, Pty] = {}
        times: dict[str, list[float]] = {}
        try:
            for side, argv in sides.items():
                terms[side] = Pty(argv, env=sb.env, cwd=sb.repo, cols=args.cols, rows=args.rows)
                terms[side].expect(READY, timeout=30)
            times = type_keys(terms, args.keys, args.gap)
            for side, term in terms.items():
                if DETACH_KEYS[side]:
                    term.write(DETACH_KEYS[side])
                    term.wait_exit(5)
        finally:
            for term in terms.values():
                term.close()

    names = {"orchestra": "orchestra attach", "tmux": "tmux attach", "direct": "direct (floor)"}
    print(
        f"{args.keys} keys per side (+{WARMUP} warm-up), one at a time, {args.gap:g} ms apart"
        f" (the daemon's relay loop: {relay}):"
    )
    row = "Keystroke latency (Python relay)" if args.python_relay else "Keystroke latency"
    for side in sides:
        t = times[side]
        print(
            f"  {names[side]:<17} median {median(t) * 1000:6.3f} ms   p99 {p99(t) * 1000:6.3f} ms"
            f"   max {max(t) * 1000:6.3f} ms"
        )

    def cell(side: str) -> str:
        t = times[side]
        return f"median {median(t) * 1000:.2f} ms, p99 {p99(t) * 1000:.2f} ms"

    target = "not slower than tmux (median and p99)"
    if "tmux" not in sides:
        print("tmux is not installed: no reference")
        record_from(
            args,
            row,
            orchestra=cell("orchestra"),
            reference="tmux not installed",
            figure="-",
            target=target,
            verdict="no reference",
        )
        return 0
    ours, ref = times["orchestra"], times["tmux"]
    r_median, r_p99 = median(ours) / median(ref), p99(ours) / p99(ref)
    verdict = "ok" if r_median <= 1 and r_p99 <= 1 else "SLOWER THAN TMUX"
    if args.python_relay:  # the fallback: reported, the target is the C loop's
        target, verdict = "none set (the fallback where the C loop is not built)", "info"
    print(f"ratio median {r_median:.2f}x, p99 {r_p99:.2f}x tmux (target <= 1x): {verdict}")
    record_from(
        args,
        row,
        orchestra=cell("orchestra"),
        reference=f"tmux attach: {cell('tmux')}",
        figure=f"median {r_median:.2f}x, p99 {r_p99:.2f}x ({args.keys} keys, relay loop {relay};"
        f" program straight on a PTY: median {median(times['direct']) * 1000:.2f} ms)",
        target=target,
        verdict=verdict,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
