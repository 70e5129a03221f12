"""What the benchmarks share: a private sandbox, timing helpers, terminals, RESULTS.md.

- `Sandbox`: a temp HOME / XDG dirs / ORCHESTRA_SOCKET (so a private daemon), a
  config file, a scratch git repository, the CLI's argv; stops the daemon and removes
  everything on exit.
- `median`, `percentile`, `ms`: timing arithmetic.
- `Pty`: a program on a pseudo-terminal this process owns (for `orchestra attach` and
  `tmux attach`), read as fast as it can write.
- `machine_info`, `record`: each benchmark replaces its own row of bench/RESULTS.md, a
  Markdown table under a header describing the machine, rewritten atomically.

The scripts are run as `python bench/NAME.py`, so this module is imported as `common`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any

from ptyprocess import PtyProcess

from orchestra.client import Client

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
# The order of the rows in RESULTS.md (issue 7's list); any other benchmark goes last.
ORDER = (
    "CLI latency",
    "Start overhead",
    "Attach throughput",
    "Keystroke latency",
    "Idle cost",
    "RPC throughput",
    "Scale",
    "MCP bridge",
    "Terminal model",
)
COLUMNS = ("benchmark", "orchestra", "reference", "ratio / figure", "target", "verdict", "date")


# ----------------------------------------------------------------------------------
# Timing


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank: an observed value, never interpolated."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def p99(values: Sequence[float]) -> float:
    return percentile(values, 99)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def timed_run(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds to run argv to completion (stdout discarded; a failure raises)."""
    start = time.perf_counter()
    subprocess.run(list(argv), cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie nobody has reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :][:1] not in ("Z", "X")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far (Linux: /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------------
# The sandbox


def orchestra_cli() -> list[str]:
    """The installed console script next to this interpreter, else `python -m orchestra`."""
    exe = Path(sys.executable)
    script = exe.with_name("orchestra")
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestra"]


def toml_argv(argv: Sequence[str]) -> str:
    """A TOML array of strings (JSON strings are valid TOML basic strings)."""
    return "[" + ", ".join(json.dumps(a) for a in argv) + "]"


def agent_toml(name: str, argv: Sequence[str]) -> str:
    return f"\n[agents.{name}]\ncommand = {toml_argv(argv)}\n"


def scratch_parent(arg: Path | None) -> Path:
    """/dev/shm where it is writable (git checkouts there are CPU work, not disk noise)."""
    if arg is not None:
        return arg
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class Sandbox:
    """A private HOME, XDG dirs, socket (so a private daemon) and a scratch repository.

    Use as a context manager: on exit the daemon (if started) is stopped, a tmux server
    made with `tmux()` is killed, and the directory removed.
    """

    def __init__(
        self, *, parent: Path | None = None, config: str | None = None, tmux: bool = False
    ) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="orc-bench-", dir=parent or "/tmp"))
        strip = ("ORCHESTRA_", "XDG_", "TMUX") if tmux else ("ORCHESTRA_", "XDG_")
        self.env: dict[str, str] = {
            **{k: v for k, v in os.environ.items() if not k.startswith(strip)},
            "HOME": str(self.base),
            "XDG_CONFIG_HOME": str(self.base / "config"),
            "XDG_STATE_HOME": str(self.base / "state"),
            "ORCHESTRA_SOCKET": str(self.base / "run" / "orchestra.sock"),
            **GIT_IDENTITY,
        }
        self.cli = orchestra_cli()
        self.repo = self.base / "repo"
        self.repo.mkdir()
        self.project = str(self.repo)
        self.socket = Path(self.env["ORCHESTRA_SOCKET"])
        self.daemon_started = False
        self.daemon: int | None = None  # its pid, once started
        self.tmux_socket: Path | None = None
        if config is not None:
            path = self.base / "config" / "orchestra" / "config.toml"
            path.parent.mkdir(parents=True)
            path.write_text(config)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.tmux_socket is not None:
            subprocess.run(
                [*self.tmux_argv(), "kill-server"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        if self.daemon_started:
            self.stop_daemon()
        shutil.rmtree(self.base, ignore_errors=True)

    def stop_daemon(self, timeout: float = 120.0) -> float:
        """`orchestra daemon stop`, then wait (up to `timeout`) for the daemon's process to
        be gone, since `stop` gives up after 15 s; return the seconds it took."""
        start = time.perf_counter()
        subprocess.run(
            [*self.cli, "daemon", "stop"],
            cwd=self.repo,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        while self.daemon is not None and time.perf_counter() - start < timeout:
            if not alive(self.daemon):
                break
            time.sleep(0.05)
        self.daemon_started = False
        return time.perf_counter() - start

    def run(self, *argv: str, check: bool = True, cwd: Path | None = None) -> None:
        subprocess.run(
            argv, cwd=cwd or self.repo, env=self.env, check=check, stdout=subprocess.DEVNULL
        )

    def git(self, *args: str) -> None:
        self.run("git", *args)

    def orchestra(self, *args: str, check: bool = True) -> None:
        self.run(*self.cli, *args, check=check)

    def git_repo(self, *, commit: bool = True, branch: str | None = "main") -> None:
        """`git init` the scratch repository, with one commit (a README) unless told not to."""
        self.git("init", "-q", *(["-b", branch] if branch else []))
        if commit:
            (self.repo / "README.md").write_text("bench\n")
            self.git("add", "-A")
            self.git("commit", "-q", "-m", "first")

    def start(self) -> None:
        """`orchestra init` the repository, then start its private daemon."""
        self.orchestra("init")
        self.orchestra("daemon", "start")
        self.daemon_started = True
        self.daemon = self.daemon_pid()

    def client(self) -> Client:
        return Client(self.socket)

    def daemon_pid(self) -> int:
        with self.client() as c:
            return int(c.call("daemon.status")["pid"])

    def new_tasks(
        self, c: Client, n: int, *, agent: str | None = None, prefix: str = "task"
    ) -> list[int]:
        ids = []
        for i in range(n):
            params: dict[str, Any] = {
                "project": self.project,
                "slug": f"{prefix}-{i}",
                "description": f"Task {i}\n",
            }
            if agent is not None:
                params["agent"] = agent
            ids.append(int(c.call("task.new", params)["id"]))
        return ids

    # -- a private tmux server, for the references

    def tmux_argv(self) -> list[str]:
        if self.tmux_socket is None:
            self.tmux_socket = self.base / "tmux.sock"
        return ["tmux", "-S", str(self.tmux_socket), "-f", "/dev/null"]

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            [*self.tmux_argv(), *args],
            cwd=self.repo,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout


def have_tmux() -> bool:
    return shutil.which("tmux") is not None


# ----------------------------------------------------------------------------------
# One program behind `orchestra attach`, `tmux attach`, or straight on our terminal

AGENT = "bench"  # the agent profile `program_config` defines
DETACH_KEYS = {"orchestra": b"\x11", "tmux": b"\x02d", "direct": b""}  # ctrl-q; C-b d


def program_config(program: Sequence[str], *, extra: str = "") -> str:
    """A config whose agent `bench` is `python PROGRAM...`, never marked idle meanwhile."""
    return "idle_timeout = 86400.0\n" + extra + agent_toml(AGENT, ["{python}", *program])


def attach_sides(
    sb: Sandbox, program: Sequence[str], *, cols: int, rows: int, direct: bool = False
) -> dict[str, list[str]]:
    """Start `python PROGRAM` as an Orchestra task (the sandbox's config must come from
    `program_config`) and in a private tmux session the same size with its status line
    off (when tmux is installed); return the argv of a client for each side. `direct`
    adds the program itself run on our terminal: the floor, with nothing in between."""
    with sb.client() as c:
        (task,) = sb.new_tasks(c, 1, agent=AGENT, prefix="bench")
        c.call("task.start", {"project": sb.project, "task": task})
    sides = {"orchestra": [*sb.cli, "attach", str(task)]}
    if have_tmux():
        size = ["-x", str(cols), "-y", str(rows)]
        sb.tmux("new-session", "-d", "-s", "bench", *size, sys.executable, *program)
        sb.tmux("set-option", "-g", "status", "off")
        sides["tmux"] = [*sb.tmux_argv(), "attach-session", "-t", "bench"]
    if direct:
        sides["direct"] = [sys.executable, *program]
    return sides


def rotate(sides: Sequence[str], n: int) -> list[str]:
    """The sides in a different order each round, so none always follows another."""
    k = n % len(sides)
    return [*sides[k:], *sides[:k]]


# ----------------------------------------------------------------------------------
# Programs on a terminal we own

DA1_QUERY = b"\x1b[c"
DA1_REPLY = b"\x1b[?62;22c"


class Timeout(RuntimeError):
    pass


class Pty:
    """A program on a PTY of ours, `cols` x `rows`, with TERM=xterm-256color.

    Reads are as large as the kernel gives (one syscall per wakeup, no decoding), so the
    reader is never the slow side. The device attributes query (`CSI c`) is answered
    while waiting in `expect` (`orchestra attach` waits up to 0.5 s for that answer).
    """

    def __init__(
        self, argv: Sequence[str], *, env: dict[str, str], cwd: Path, cols: int, rows: int
    ) -> None:
        self.proc = PtyProcess.spawn(
            list(argv), cwd=str(cwd), env={**env, "TERM": "xterm-256color"}, dimensions=(rows, cols)
        )
        self.fd: int = self.proc.fd
        self.received = 0
        self.eof = False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def read(self, timeout: float) -> bytes:
        """What is there within `timeout` seconds (b"" when nothing came or at EOF)."""
        if self.eof:
            return b""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 1 << 20)
        except OSError:  # EIO: the program's side closed
            data = b""
        if not data:
            self.eof = True
        self.received += len(data)
        return data

    def expect(self, pattern: bytes, timeout: float) -> bytes:
        """Read until `pattern` shows up; return what was read (answering DA1 meanwhile)."""
        seen = bytearray()
        deadline = time.monotonic() + timeout
        answered = 0
        while pattern not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                tail = bytes(seen[-300:])
                raise Timeout(f"{pattern!r} not seen within {timeout:g} s; last output {tail!r}")
            seen += self.read(min(left, 0.2))
            queries = seen.count(DA1_QUERY)
            if queries > answered:
                self.write(DA1_REPLY * (queries - answered))
                answered = queries
        return bytes(seen)

    def drain_until(self, marker: bytes, timeout: float) -> int:
        """Read as fast as possible until `marker` has been read; return the bytes read."""
        fd, keep, got = self.fd, len(marker) - 1, 0
        tail = b""
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                if time.monotonic() > deadline:
                    raise Timeout(f"{marker!r} not seen within {timeout:g} s ({got} bytes read)")
                continue
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                raise Timeout(f"EOF before {marker!r} ({got} bytes read)")
            got += len(chunk)
            if marker in chunk or marker in tail + chunk[:keep]:
                self.received += got
                return got
            tail = chunk[-keep:] if len(chunk) >= keep else (tail + chunk)[-keep:]

    def wait_exit(self, timeout: float) -> bool:
        """Read (and drop) output until the program exits; False if it outlived `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.eof or not self.proc.isalive():
                return True
            self.read(0.05)
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.isalive():
                os.kill(self.proc.pid, signal.SIGTERM)
                if not self.wait_exit(2.0):
                    os.kill(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.proc.close(force=True)


# ----------------------------------------------------------------------------------
# Machine info and RESULTS.md


def _version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else "?"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _ram() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    return "?"


def machine_info() -> dict[str, str]:
    from orchestra.adapters.terminal import default_engine

    return {
        "CPUs": str(os.cpu_count() or "?"),
        "CPU": _cpu_model(),
        "RAM": _ram(),
        "kernel": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "git": _version(["git", "--version"]).removeprefix("git version "),
        "tmux": _version(["tmux", "-V"]).removeprefix("tmux "),
        "terminal engine": default_engine(),
    }


def _fingerprint(info: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:12]


_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_FINGERPRINT = re.compile(r"<!-- machine: ([0-9a-f]+) -->")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _read_rows(text: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]]
        if len(cells) != len(COLUMNS) or cells[0] == COLUMNS[0] or set(cells[0]) <= {"-", ":"}:
            continue
        rows[cells[0]] = cells
    return rows


def _sort_key(name: str) -> tuple[int, str]:
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def render(rows: dict[str, list[str]], info: dict[str, str]) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Written by the scripts in `bench/` (`just bench` runs them all); each script",
        "replaces its own row. Every figure is measured against its reference in the same",
        "run, on this machine:",
        "",
        f"<!-- machine: {_fingerprint(info)} -->",
        *(f"- {k}: {v}" for k, v in info.items()),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(" --- " for _ in COLUMNS) + "|",
    ]
    for name in sorted(rows, key=_sort_key):
        lines.append("| " + " | ".join(rows[name]) + " |")
    return "\n".join(lines) + "\n"


def add_record_args(parser: Any) -> None:
    """`--results PATH` and `--no-record`, for every script that writes a row."""
    parser.add_argument(
        "--results", type=Path, default=None, help=f"the results table (default {RESULTS})"
    )
    parser.add_argument("--no-record", action="store_true", help="do not write a results row")


def record_from(
    args: Any,
    benchmark: str,
    *,
    orchestra: str,
    reference: str,
    figure: str,
    target: str,
    verdict: str,
) -> Path | None:
    """`record`, unless the script was told `--no-record`; `--results` picks the file."""
    if getattr(args, "no_record", False):
        return None
    return record(
        benchmark,
        orchestra=orchestra,
        reference=reference,
        figure=figure,
        target=target,
        verdict=verdict,
        path=getattr(args, "results", None),
    )


def record(
    benchmark: str,
    *,
    orchestra: str,
    reference: str,
    figure: str,
    target: str,
    verdict: str,
    path: Path | None = None,
) -> Path:
    """Replace `benchmark`'s row of RESULTS.md (rows from another machine are dropped)."""
    path = path or Path(os.environ.get("ORCHESTRA_BENCH_RESULTS", RESULTS))
    info = machine_info()
    row = [
        _cell(v)
        for v in (
            benchmark,
            orchestra,
            reference,
            figure,
            target,
            verdict,
            date.today().isoformat(),
        )
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # scripts run at once must not lose each other's rows
        old = path.read_text() if path.exists() else ""
        rows = _read_rows(old)
        mark = _FINGERPRINT.search(old)
        if rows and mark and mark.group(1) != _fingerprint(info):
            print(f"{path.name}: measured on another machine before; its old rows are dropped")
            rows = {}
        rows[benchmark] = row
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(render(rows, info))
        os.replace(tmp, path)
    finally:
        os.close(lock)
    print(f"{path}: row {benchmark!r} written")
    return path
