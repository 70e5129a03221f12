"""Terminal model throughput: MB/s of QueryFilter.feed and Terminal.feed on the recordings.

Each recording (tests/fixtures/terminal) is repeated to about --mb megabytes and fed in
--chunk-byte reads, as the PTY pump would. Two inputs per recording: the raw stream
(its start-up queries repeat with every copy, far more often than in a real session)
and the stream with queries stripped (steady-state drawing). The engine alone (raw
pyghostty / avt) is measured in the same run for reference. Best of --rounds.

    python bench/terminal_model.py [--mb 2] [--chunk 16384] [--rounds 3]
"""

from __future__ import annotations

import argparse
import codecs
import time
from collections.abc import Callable
from pathlib import Path

from common import add_record_args, record_from

from orchestra.adapters.terminal import Terminal, available_engines, default_engine
from orchestra.core.vtscan import QueryFilter

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "terminal"


def mb_per_s(
    chunks: list[bytes], make: Callable[[], Callable[[bytes], object]], rounds: int
) -> float:
    size = sum(map(len, chunks))
    best = 0.0
    for _ in range(rounds):
        feed = make()
        start = time.perf_counter()
        for c in chunks:
            feed(c)
        best = max(best, size / (time.perf_counter() - start) / 1e6)
    return best


def raw_engine(name: str) -> Callable[[], Callable[[bytes], object]]:
    if name == "ghostty":
        import pyghostty

        return lambda: pyghostty.Terminal(cols=100, rows=30).feed

    import avt

    def make() -> Callable[[bytes], object]:
        vt = avt.Vt(100, 30)
        decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        return lambda b: vt.feed_str(decode(b))

    return make


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=2.0)
    parser.add_argument("--chunk", type=int, default=16384)
    parser.add_argument("--rounds", type=int, default=3)
    add_record_args(parser)
    args = parser.parse_args()
    engines = available_engines()
    header = f"{'recording':<34}{'input':<10}{'filter':>8}"
    for e in engines:
        header += f"{'model/' + e:>15}{'raw ' + e:>13}"
    print(header + "   (MB/s)")
    totals: dict[str, list[float]] = {}
    for path in sorted(FIXTURES.glob("*.interactive.*.bin")):
        raw = path.read_bytes()
        for label, data in (("raw", raw), ("stripped", QueryFilter().feed(raw))):
            whole = data * max(1, int(args.mb * 1e6) // len(data))
            chunks = [whole[i : i + args.chunk] for i in range(0, len(whole), args.chunk)]
            row = {"filter": mb_per_s(chunks, lambda: QueryFilter().feed, args.rounds)}
            for e in engines:

                def model(e: str = e) -> Callable[[bytes], object]:
                    t = Terminal(100, 30, engine=e)

                    def feed(b: bytes) -> None:
                        t.feed(b)
                        t.take_answers()

                    return feed

                row["model/" + e] = mb_per_s(chunks, model, args.rounds)
                row["raw " + e] = mb_per_s(chunks, raw_engine(e), args.rounds)
            line = f"{path.name.split('.')[0]:<34}{label:<10}{row['filter']:>8.1f}"
            for e in engines:
                line += f"{row['model/' + e]:>15.1f}{row['raw ' + e]:>13.1f}"
            print(line)
            for k, v in row.items():
                totals.setdefault(f"{label} {k}", []).append(v)
    print()
    for k, vs in totals.items():
        print(f"{k:<24} min {min(vs):7.1f}  median {sorted(vs)[len(vs) // 2]:7.1f}  MB/s")

    def mid(key: str) -> float:
        vs = totals[key]
        return sorted(vs)[len(vs) // 2]

    e = default_engine()
    m_model, m_raw = mid(f"stripped model/{e}"), mid(f"stripped raw {e}")
    record_from(
        args,
        "Terminal model",
        orchestra=f"model ({e}) {m_model:.0f} MB/s ({mid(f'raw model/{e}'):.0f} MB/s with the"
        f" recordings' queries repeated); query filter alone {mid('stripped filter'):.0f} MB/s",
        reference=f"the raw {e} engine {m_raw:.0f} MB/s",
        figure=f"{m_model / m_raw:.2f}x the raw engine (medians over the recordings, queries"
        " stripped)",
        target="none set (report)",
        verdict="info",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
