"""Attach throughput: a 50 MB burst of terminal output through `orchestra attach` vs tmux.

The program (this script with `--emit`) makes a deterministic burst of realistic
terminal output: TUI redraws (synchronized frames, cursor moves, 256-colour and
true-colour SGR, box drawing, a spinner, a reverse-video status line), long wrapped
log lines with colour runs, and blocks of short test-runner lines. It puts its
terminal in raw mode, prints `READY-<n>`, and on the key `g` writes the burst as fast
as the terminal takes it, then `BURST-END-<n>.` and `READY-<n+1>`.

The same program runs as an Orchestra agent (a private daemon) and in a private tmux
server (status line off, so both panes are the same size). Each round, for each side
(alternating which goes first), a client is started on a PTY this script owns,
`--cols` x `--rows` (`orchestra attach TASK`, or `tmux attach`), and once it shows
`READY-<n>` the key `g` is typed and the client's output is drained as fast as
possible until the end marker. Throughput is the burst's size over that time (tmux
may skip frames it had no time to draw and so write fewer bytes; the time to the
final screen is what a person waits for). Then the client detaches (ctrl-q; C-b d).
The program run straight on our PTY is measured the same way, as the floor (no
multiplexer in between). Medians over `--rounds` (after one warm-up round).
Target: faster than tmux.

    python bench/attach_throughput.py [--mb 50] [--rounds 3] [--cols 120] [--rows 40]
                                      [--mix mixed|text|tui]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import attrs
from common import (
    DETACH_KEYS,
    Pty,
    Sandbox,
    add_record_args,
    attach_sides,
    median,
    ms,
    program_config,
    record_from,
    rotate,
)

THIS = Path(__file__).resolve()
WARMUP = 1
GO = b"g"


def ready(n: int) -> bytes:
    return b"READY-%03d" % n


def end_marker(n: int) -> bytes:
    return b"BURST-END-%03d." % n


# ----------------------------------------------------------------------------------
# The burst

TEXT = (
    "the agent reads src/orchestra/daemon/runner.py and edits _pump so that a viewer "
    "which falls behind gets a redraw instead of an unbounded queue; tests pass: "
    "42 passed, 1 skipped in 3.21s. Thinking about the next step: refactor attach, "
    "run ruff, mypy, commit. diff --git a/orchestra/cli/attach.py b/orchestra/cli/attach.py "
    "@@ -120,7 +120,9 @@ def _pump(sock, leftover, matcher, read_only): return outcome "
    "const value = await fetch(url); if (!response.ok) throw new Error(status) "
    "Compiling orchestra v0.3.0 warning: unused variable `frame` --> src/lib.rs:88:9"
)
WORDS = TEXT.split()
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
UNIQUE = 4 << 20  # bytes of distinct content; the burst repeats it


def _sgr(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.35:
        return f"\x1b[38;5;{rng.randrange(256)}m"
    if pick < 0.6:
        return f"\x1b[38;2;{rng.randrange(256)};{rng.randrange(256)};{rng.randrange(256)}m"
    if pick < 0.7:
        return f"\x1b[1;{rng.choice((31, 32, 33, 34, 35, 36))}m"
    if pick < 0.8:
        return f"\x1b[48;5;{rng.randrange(256)}m"
    if pick < 0.9:
        return "\x1b[2m"
    return "\x1b[0m"


def _text(rng: random.Random, width: int) -> str:
    """About `width` cells of words (all one cell wide), cut to `width` exactly at most."""
    out: list[str] = []
    size = 0
    while size < width:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:width]


def _spans(rng: random.Random, width: int) -> str:
    parts: list[str] = []
    left = width
    while left > 0:
        n = min(left, rng.randint(3, 30))
        parts.append(_sgr(rng) + _text(rng, n))
        left -= n
    return "".join(parts) + "\x1b[0m"


def _tui_frame(rng: random.Random, cols: int, rows: int, full: bool) -> str:
    parts = ["\x1b[?2026h\x1b[?25l"]
    if full:
        parts.append("\x1b[H\x1b[2J")
        parts.append("\x1b[1;1H\x1b[38;5;245m╭" + "─" * (cols - 2) + "╮\x1b[0m")
        body = list(range(2, rows - 2))
    else:
        body = list(range(2, rows - 2))
        body = sorted(rng.sample(body, k=min(len(body), rng.randint(1, 8))))
    for r in body:
        parts.append(f"\x1b[{r};1H\x1b[38;5;245m│\x1b[0m ")
        parts.append(_spans(rng, rng.randint(cols // 3, cols - 4)))
        parts.append(f"\x1b[K\x1b[{r};{cols}H\x1b[38;5;245m│\x1b[0m")
    if full:
        parts.append(f"\x1b[{rows - 2};1H\x1b[38;5;245m╰" + "─" * (cols - 2) + "╯\x1b[0m")
    spin = SPINNER[rng.randrange(len(SPINNER))]
    parts.append(f"\x1b[{rows - 1};2H\x1b[38;5;208m{spin}\x1b[0m {_text(rng, 30)}\x1b[K")
    parts.append(f"\x1b[{rows};1H\x1b[7m{_text(rng, cols).ljust(cols)}\x1b[0m")
    parts.append(f"\x1b[{rng.randint(2, rows - 3)};{rng.randint(3, cols - 3)}H\x1b[?25h")
    parts.append("\x1b[?2026l")
    return "".join(parts)


def _long_line(rng: random.Random, rows: int) -> str:
    return f"\x1b[{rows};1H\r\n" + _spans(rng, rng.randint(300, 3000)) + "\r\n"


def _short_lines(rng: random.Random, rows: int) -> str:
    lines = [f"\x1b[{rows};1H"]
    for _ in range(rng.randint(5, 30)):
        status = rng.choice(("\x1b[32mPASS", "\x1b[32mPASS", "\x1b[31mFAIL", "\x1b[33mSKIP"))
        lines.append(
            f"\r\n{status}\x1b[0m {_text(rng, rng.randint(5, 60))}"
            f" \x1b[2m({rng.randint(1, 999)} ms)\x1b[0m"
        )
    return "".join(lines) + "\r\n"


# The share of each kind of segment, cumulated: partial TUI frames, full frames, long
# lines, then blocks of short lines. "text" is a scrolling log; "tui" is redraws only.
MIXES = {"mixed": (0.5, 0.6, 0.75), "text": (0.0, 0.0, 0.5), "tui": (0.8, 1.0, 1.0)}


def burst(size: int, cols: int, rows: int, mix: str = "mixed", seed: int = 7) -> bytes:
    """At least `size` bytes (whole segments) of output, the same for a given mix and seed."""
    rng = random.Random(seed)
    partial, full, long = MIXES[mix]
    segments: list[bytes] = []
    made = 0
    while made < min(size, UNIQUE):
        pick = rng.random()
        if pick < partial:
            seg = _tui_frame(rng, cols, rows, full=False)
        elif pick < full:
            seg = _tui_frame(rng, cols, rows, full=True)
        elif pick < long:
            seg = _long_line(rng, rows)
        else:
            seg = _short_lines(rng, rows)
        encoded = seg.encode()
        segments.append(encoded)
        made += len(encoded)
    out: list[bytes] = []
    total = 0
    while total < size:
        for piece in segments:
            out.append(piece)
            total += len(piece)
            if total >= size:
                break
    return b"".join(out)


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def emit(args: argparse.Namespace) -> int:
    """The program: raw mode, then a burst on each `g`, forever (until stdin closes)."""
    import tty

    tty.setraw(0)
    data = burst(int(args.mb * 1e6), args.cols, args.rows, args.mix)
    n = args.first
    _write_all(b"\x1b[H\x1b[2J" + ready(n) + b"\r\n")
    while True:
        key = os.read(0, 1)
        if not key:
            return 0
        if key != GO:
            continue
        _write_all(data)
        _write_all(b"\x1b[0m\x1b[%d;1H\r\n%s\r\n%s\r\n" % (args.rows, end_marker(n), ready(n + 1)))
        n += 1


# ----------------------------------------------------------------------------------
# The measurement


@attrs.frozen
class Round:
    seconds: float  # "g" typed -> end marker read
    received: int  # bytes the client wrote to our terminal meanwhile
    attach: float  # client started -> the program's screen shown


def one_round(side: str, argv: list[str], n: int, sb: Sandbox, args: argparse.Namespace) -> Round:
    if side == "direct":
        argv = [*argv, "--first", str(n)]  # a fresh program each round
    started = time.perf_counter()
    term = Pty(argv, env=sb.env, cwd=sb.repo, cols=args.cols, rows=args.rows)
    try:
        term.expect(ready(n), timeout=60)
        shown = time.perf_counter() - started
        term.write(GO)
        t0 = time.perf_counter()
        got = term.drain_until(end_marker(n), timeout=300)
        elapsed = time.perf_counter() - t0
        if side != "direct":
            term.write(DETACH_KEYS[side])
            if not term.wait_exit(10):
                print(f"  {side}: the client did not exit after detaching", file=sys.stderr)
        return Round(seconds=elapsed, received=got, attach=shown)
    finally:
        term.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="burst size, megabytes (1e6)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cols", type=int, default=120)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--mix", choices=sorted(MIXES), default="mixed", help="what to emit")
    parser.add_argument("--emit", action="store_true", help="be the program (internal)")
    parser.add_argument("--first", type=int, default=1, help="the program's first round")
    add_record_args(parser)
    args = parser.parse_args()
    if args.emit:
        return emit(args)

    size = len(burst(int(args.mb * 1e6), args.cols, args.rows, args.mix))
    program = [str(THIS), "--emit", "--mb", str(args.mb), "--cols", str(args.cols)]
    program += ["--rows", str(args.rows), "--mix", args.mix]
    with Sandbox(config=program_config(program), tmux=True) as sb:
        sb.git_repo()
        sb.start()
        sides = attach_sides(sb, program, cols=args.cols, rows=args.rows, direct=True)
        results: dict[str, list[Round]] = {side: [] for side in sides}
        for n in range(1, WARMUP + args.rounds + 1):
            for side in rotate(list(sides), n):
                got = one_round(side, sides[side], n, sb, args)
                label = "warm-up" if n <= WARMUP else f"round {n - WARMUP}"
                print(
                    f"  {label:<8} {side:<9} {size / got.seconds / 1e6:7.1f} MB/s"
                    f"  ({got.seconds:.2f} s, {got.received / 1e6:.1f} MB to the terminal,"
                    f" attach to screen {ms(got.attach)})"
                )
                if n > WARMUP:
                    results[side].append(got)

    def rate(side: str) -> float:
        return size / median([r.seconds for r in results[side]]) / 1e6

    print(
        f"{size / 1e6:.1f} MB burst ({args.mix}), {args.cols}x{args.rows},"
        f" median of {args.rounds} rounds:"
    )
    names = {"orchestra": "orchestra attach", "tmux": "tmux attach", "direct": "direct (floor)"}
    for side in sides:
        rs = results[side]
        print(
            f"  {names[side]:<17} {rate(side):7.1f} MB/s   client start to screen"
            f" {ms(median([r.attach for r in rs])):>9}"
            f"   {median([r.received for r in rs]) / 1e6:5.1f} MB written to the terminal"
        )
    ours = f"{rate('orchestra'):.1f} MB/s"
    if "tmux" not in sides:
        print("tmux is not installed: no reference")
        record_from(
            args,
            "Attach throughput",
            orchestra=ours,
            reference="tmux not installed",
            figure="-",
            target="faster than tmux",
            verdict="no reference",
        )
        return 0
    ratio = rate("orchestra") / rate("tmux")
    verdict = "ok" if ratio > 1 else "SLOWER THAN TMUX"
    print(f"ratio {ratio:.2f}x tmux's throughput (target > 1x): {verdict}")
    record_from(
        args,
        "Attach throughput",
        orchestra=ours,
        reference=f"tmux attach {rate('tmux'):.1f} MB/s",
        figure=f"{ratio:.2f}x ({size / 1e6:.0f} MB {args.mix} output at {args.cols}x{args.rows};"
        f" program straight on a PTY {rate('direct'):.0f} MB/s)",
        target="faster than tmux (> 1x)",
        verdict=verdict,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
