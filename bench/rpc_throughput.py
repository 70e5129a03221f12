"""RPC throughput: calls/s on one connection, and with 50 concurrent clients.

A private daemon with one project of `--tasks` tasks. Each figure is the number of
completed calls in `--seconds` of calling back to back, divided by the time:

- sequential: one connection (the blocking `orchestra.client.Client`), one call at a
  time: `daemon.ping` and `task.get` (a task of the project);
- concurrent: `--clients` threads, each with its own connection, all calling at once
  for the same window (total calls/s, and each call's median latency).

The reference, measured the same way in the same run: a minimal JSON-RPC server
(this script with `--reference-server`): trio, a Unix socket, NDJSON lines, one task per
connection, `json` to parse and encode, answering every request with the result
`{"pong": true}`: what any trio NDJSON server in Python pays before dispatch,
validation and the daemon's own work. The figure is ours over the reference.

    python bench/rpc_throughput.py [--seconds S] [--clients N] [--tasks N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from common import Sandbox, add_record_args, cpu_seconds, median, record_from

from orchestra.client import Client

THIS = Path(__file__).resolve()


# ----------------------------------------------------------------------------------
# The reference server


def reference_server(path: str) -> int:
    import trio

    async def handle(stream: trio.SocketStream) -> None:
        buf = bytearray()
        async with stream:
            while True:
                try:
                    chunk = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return
                if not chunk:
                    return
                buf += chunk
                while (end := buf.find(b"\n")) >= 0:
                    request = json.loads(bytes(buf[:end]))
                    del buf[: end + 1]
                    reply = {"jsonrpc": "2.0", "id": request.get("id"), "result": {"pong": True}}
                    try:
                        await stream.send_all(json.dumps(reply).encode() + b"\n")
                    except trio.BrokenResourceError:
                        return

    async def main() -> None:
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        await sock.bind(path)
        sock.listen(256)
        await trio.serve_listeners(handle, [trio.SocketListener(sock)])

    trio.run(main)
    return 0


def start_reference(path: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, str(THIS), "--reference-server", str(path)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with Client(path, timeout=1.0) as c:
                c.call("daemon.ping")
            return proc
        except Exception:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("the reference server did not start")


# ----------------------------------------------------------------------------------
# Measuring


@attrs.frozen
class Rate:
    calls: int
    seconds: float
    latencies: list[float]
    busy: float = 0.0  # the server's CPU time over the window / the window

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds

    @property
    def cpu_per_call(self) -> float:
        """Seconds of the server's CPU per call: its cost, whoever the bottleneck is."""
        return self.busy * self.seconds / self.calls


def sequential(path: Path, method: str, params: Mapping[str, Any] | None, seconds: float) -> Rate:
    with Client(path) as c:
        for _ in range(50):  # warm-up
            c.call(method, params)
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            c.call(method, params)
            calls += 1
            if calls % 64 == 0 and time.perf_counter() >= deadline:
                break
        return Rate(calls, time.perf_counter() - start, [])


def concurrent(
    path: Path, method: str, params: Mapping[str, Any] | None, seconds: float, clients: int
) -> Rate:
    """`clients` threads, each on its own connection, calling until a shared deadline."""
    ready = threading.Barrier(clients + 1)
    counts = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    window: list[float] = []

    def worker(i: int) -> None:
        try:
            with Client(path) as c:
                c.call(method, params)
                ready.wait()
                ready.wait()  # the main thread has set the deadline
                deadline = window[0]
                mine = latencies[i]
                while True:
                    t = time.perf_counter()
                    c.call(method, params)
                    done = time.perf_counter()
                    mine.append(done - t)
                    if done >= deadline:
                        break
                counts[i] = len(mine)
        except BaseException as exc:
            errors.append(exc)
            ready.abort()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    ready.wait()  # all connected
    start = time.perf_counter()
    window.append(start + seconds)
    ready.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return Rate(sum(counts), elapsed, [x for xs in latencies for x in xs])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="the window of each figure")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--reference-server", metavar="PATH", help=argparse.SUPPRESS)
    add_record_args(parser)
    args = parser.parse_args()
    if args.reference_server:
        return reference_server(args.reference_server)

    with Sandbox() as sb:
        sb.git_repo()
        sb.start()
        with sb.client() as c:
            ids = sb.new_tasks(c, args.tasks)
        get = {"project": sb.project, "task": ids[len(ids) // 2]}
        ref_path = sb.base / "reference.sock"
        ref = start_reference(ref_path)
        try:
            n, daemon = args.clients, sb.daemon_pid()
            figures: dict[str, Rate] = {}

            def measure(key: str, pid: int, run: Callable[[], Rate]) -> None:
                cpu = cpu_seconds(pid)
                rate = run()
                busy = (cpu_seconds(pid) - cpu) / rate.seconds
                figures[key] = attrs.evolve(rate, busy=busy)

            # Interleaved: ours, reference, ours...
            s, path, ping = args.seconds, sb.socket, "daemon.ping"
            measure("ping 1", daemon, lambda: sequential(path, ping, None, s))
            measure("ref 1", ref.pid, lambda: sequential(ref_path, ping, None, s))
            measure("get 1", daemon, lambda: sequential(path, "task.get", get, s))
            measure("ping n", daemon, lambda: concurrent(path, ping, None, s, n))
            measure("ref n", ref.pid, lambda: concurrent(ref_path, ping, None, s, n))
            measure("get n", daemon, lambda: concurrent(path, "task.get", get, s, n))
        finally:
            ref.terminate()
            ref.wait(10)

    def line(label: str, key: str) -> None:
        r = figures[key]
        lat = f"   median call {median(r.latencies) * 1000:6.2f} ms" if r.latencies else ""
        print(
            f"  {label:<38} {r.per_second:8,.0f} calls/s   server CPU {r.busy:4.0%},"
            f" {r.cpu_per_call * 1e6:4.0f} us a call{lat}"
        )

    print(f"{args.seconds:g} s per figure; {args.tasks} tasks in the project:")
    line("daemon.ping, one connection", "ping 1")
    line("reference server, one connection", "ref 1")
    line("task.get, one connection", "get 1")
    line(f"daemon.ping, {n} clients at once", "ping n")
    line(f"reference server, {n} clients at once", "ref n")
    line(f"task.get, {n} clients at once", "get n")
    seq = figures["ping 1"].per_second / figures["ref 1"].per_second
    par = figures["ping n"].per_second / figures["ref n"].per_second
    print(f"ping vs reference: {seq:.2f}x on one connection, {par:.2f}x with {n} clients")
    print("(a server well below 100% CPU was waiting for the clients, all in this process)")
    record_from(
        args,
        "RPC throughput",
        orchestra=f"ping {figures['ping 1'].per_second:,.0f}/s, task.get"
        f" {figures['get 1'].per_second:,.0f}/s (1 connection); ping"
        f" {figures['ping n'].per_second:,.0f}/s, task.get {figures['get n'].per_second:,.0f}/s"
        f" ({n} clients)",
        reference=f"minimal trio NDJSON server: {figures['ref 1'].per_second:,.0f}/s (1),"
        f" {figures['ref n'].per_second:,.0f}/s ({n})",
        figure=f"ping {seq:.2f}x (1 connection), {par:.2f}x ({n} clients) of the reference;"
        f" server CPU a call: ping {figures['ping 1'].cpu_per_call * 1e6:.0f} us (reference"
        f" {figures['ref 1'].cpu_per_call * 1e6:.0f} us), task.get"
        f" {figures['get 1'].cpu_per_call * 1e6:.0f} us",
        target="none set (report)",
        verdict="info",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
