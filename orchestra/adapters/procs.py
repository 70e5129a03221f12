"""Processes: who is in a task's tree, how to end them all, and who reaps them.

Agents escape their process group: Codex starts helpers that call `setsid` and
outlive the TUI; Gemini CLI relaunches itself. So a task's processes are found
two ways, and both are used:

- the parent tree under the agent (walking /proc), and
- a marker in the environment (`ORCHESTRA_RUN_ID`) that every descendant
  inherits, whatever it does with sessions, groups or double forks.

A process that also drops its environment (fork, `setsid`, fork, exec with an
empty environment) carries neither: its run's cgroup holds it where there is one
(adapters/cgroups.py). Elsewhere, on Linux the daemon is a child subreaper
(`PR_SET_CHILD_SUBREAPER`), so such orphans are re-parented to it rather than to
init: one that carries no run's marker is its run's when it was born during that
run (`ProcessTable.adopted`), and the `Reaper` reaps them all. The reaper never
reaps a child the daemon started for itself (git, setup commands): those go
through `run()`, which registers their pid first, so `subprocess` keeps their
exit status.

Portable path (macOS, or no /proc): no subreaper, orphans go to launchd; the
reaper waits on each registered agent pid by pid; the tree walk uses `ps`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path

import attrs
import trio

from orchestra.adapters.cgroups import Cgroup

PROC = Path("/proc")
HAVE_PROC = PROC.joinpath("self", "stat").exists()
RUN_ID_VAR = "ORCHESTRA_RUN_ID"
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


# -- discovery ------------------------------------------------------------------


def _fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name, None when it is gone:
    [0] is the state letter, [1] the ppid, [19] the start time in clock ticks since boot."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # comm may contain spaces and parens: the fields after the last ')' are safe.
    return raw[raw.rfind(b")") + 2 :].split()


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, ppid) of a process, None when it is gone."""
    fields = _fields(pid)
    return None if fields is None else (fields[0].decode(), int(fields[1]))


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def boot_clock() -> float:
    """Seconds since boot, the clock of a process's start time in /proc (Linux)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir(PROC) if p.isdigit()]


def _run_id(pid: int) -> str | None:
    """The task marker in a process's environment, if it carries one."""
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    if _MARKER not in environ:  # most processes: no need to split
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(_MARKER):
            return entry[len(_MARKER) :].decode(errors="replace")
    return None


_MARKER = f"{RUN_ID_VAR}=".encode()
# Whether /proc lists each thread's children (CONFIG_PROC_CHILDREN; not on every kernel).
_CHILDREN_LISTED = PROC.joinpath("self", "task", str(os.getpid()), "children").exists()


@attrs.frozen
class ProcessTable:
    """One look at every process we can see: who is whose parent, who is still alive, and
    which task each marked process belongs to."""

    parents: dict[int, int]  # pid -> ppid
    live: frozenset[int]  # running or stopped (zombies are gone: they only wait to be reaped)
    marked: dict[str, set[int]]  # run id -> processes carrying its marker
    # The daemon's own live children, each with its start (`boot_clock`): the agents, the
    # commands it runs, and the orphans it adopted as subreaper.
    children_of_me: dict[int, float] = attrs.field(factory=dict)
    # ppid -> pids, once per table: every teardown sharing it walks its tree.
    children: dict[int, list[int]] = attrs.field(
        init=False, default=attrs.Factory(lambda self: _children(self.parents), takes_self=True)
    )

    def task(self, root_pid: int | None, run_id: str, also: Iterable[int] = ()) -> set[int]:
        """Every live process of a task: the trees under `root_pid` and the pids in `also`
        (its cgroup, its adopted orphans), plus any carrying its marker."""
        found = {pid for pid in (root_pid, *also) if pid is not None and pid in self.parents}
        children = self.children
        stack = list(found)
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        found |= self.marked.get(run_id, set())
        return found & self.live

    def adopted(self, since: float, known: Iterable[int]) -> set[int]:
        """The daemon's children started at or after `since` that are none of `known`
        (agents, commands it runs) and carry no run's marker: orphans it adopted that
        dropped their environment. Without a cgroup nothing else ties them to a run; one
        born while several runs lived is ended with the first of them to stop."""
        marked = set().union(*self.marked.values())
        skip = set(known)
        return {
            pid
            for pid, born in self.children_of_me.items()
            if born >= since and pid not in skip and pid not in marked
        }


def _children(parents: dict[int, int]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    return children


def scan_processes() -> ProcessTable:
    """Read every process once (blocking: call it from a worker thread)."""
    if not HAVE_PROC:
        out = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid=,stat="], capture_output=True, text=True, check=False
        )
        rows = [line.split() for line in out.stdout.splitlines()]
        rows = [r for r in rows if len(r) == 3]
        return ProcessTable(
            parents={int(r[0]): int(r[1]) for r in rows},
            live=frozenset(int(r[0]) for r in rows if not r[2].startswith("Z")),
            marked={},
        )
    me = os.getpid()
    parents: dict[int, int] = {}
    live: set[int] = set()
    marked: dict[str, set[int]] = {}
    mine: dict[int, float] = {}
    for pid in _all_pids():
        fields = _fields(pid)
        if fields is None:
            continue
        parents[pid] = ppid = int(fields[1])
        if fields[0] in (b"Z", b"X"):
            continue
        live.add(pid)
        if ppid == me:
            mine[pid] = int(fields[19]) / _TICKS
        run_id = _run_id(pid) if pid != me else None
        if run_id is not None:
            marked.setdefault(run_id, set()).add(pid)
    return ProcessTable(parents=parents, live=frozenset(live), marked=marked, children_of_me=mine)


def alive(pid: int) -> bool:
    """Running or stopped; a zombie counts as gone (it only waits to be reaped)."""
    if HAVE_PROC:
        st = _stat(pid)
        return st is not None and st[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


# -- spawning our own helpers -----------------------------------------------------


class Reaper:
    """Reaps the daemon's children: agents (reporting their status) and adopted orphans.

    Invariants, under `_lock` (held for bookkeeping only, never across a fork: a fork
    and its child's way to exec take 10-30 ms of a large daemon, and the event loop takes
    the lock at every SIGCHLD): a pid in `_foreign` belongs to a `subprocess` wait
    elsewhere and is never reaped here; while `_forks` is not 0 a child of ours may exist
    whose pid is not registered yet (`watch`, `_foreign`), so only the agents' pids are
    reaped, and the rest once the last fork is done (`_deferred`).
    """

    def __init__(self, *, umask: int | None = None) -> None:
        # The umask the children get (None: the daemon's own); the daemon's is 077.
        self.umask = umask
        self._lock = threading.Lock()
        self._forks = 0  # forks under way, in any thread
        self._begun = 0  # forks ever begun: a scan of /proc saw none begin if unchanged
        self._deferred = False  # a reap left unknown children for the end of the forks
        self._foreign: set[int] = set()
        self._waiters: dict[int, trio.Event] = {}
        self.statuses: dict[int, int] = {}  # pid -> exit code (negative: killed by signal)
        # The event loop's (set in `serve`): a thread asks it to reap through its token.
        self._token: trio.lowlevel.TrioToken | None = None
        self._loop_thread: int | None = None
        self._due = trio.Event()  # a reap is asked for (SIGCHLD, the end of the forks)

    # Children the daemon waits for itself (git, setup/teardown commands).
    def run(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        merge_stderr: bool = False,
        cgroup: Cgroup | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Blocking `subprocess.run` (call it from a worker thread) safe from the reaper;
        the command joins `cgroup` before it execs."""
        with self.spawning():
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=None if env is None else dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                start_new_session=True,
                umask=-1 if self.umask is None else self.umask,
                # Only syscalls between fork and exec (Cgroup.join_in_child).
                preexec_fn=None if cgroup is None else cgroup.join_in_child,
            )
            with self._lock:
                self._foreign.add(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        finally:
            with self._lock:
                self._foreign.discard(proc.pid)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def spawned(self) -> set[int]:
        """The children the daemon started itself: agents and the commands it runs."""
        with self._lock:
            return set(self._waiters) | self._foreign

    def child_setup(self, cgroup: Cgroup | None) -> Callable[[], None] | None:
        """What a child forked by someone else (ptyprocess) runs before exec: our umask for
        it, and its run's cgroup. Only syscalls: it runs between fork and exec."""
        umask = self.umask
        if umask is None and cgroup is None:
            return None

        def setup() -> None:
            if umask is not None:
                os.umask(umask)
            if cgroup is not None:
                cgroup.join_in_child()

        return setup

    @contextlib.contextmanager
    def spawning(self) -> Iterator[None]:
        """Around a fork (in any thread) whose child is registered before the block ends:
        `watch()` for an agent, foreign for a command the caller waits for itself."""
        with self._lock:
            self._forks += 1
            self._begun += 1
        try:
            yield
        finally:
            with self._lock:
                self._forks -= 1
                again = self._deferred and self._forks == 0
                if again:
                    self._deferred = False
            if again:
                self._ask()

    def watch(self, pid: int) -> trio.Event:
        """An event set when `pid` (a child of ours) exits; its code lands in `statuses`.
        Callable from any thread (an agent is spawned in a worker thread)."""
        with self._lock:
            event = self._waiters.setdefault(pid, trio.Event())
        if self._token is None or threading.get_ident() == self._loop_thread:
            self._reap(pid)  # it may already have exited
        else:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._reap, pid)
        return event

    def forget(self, pid: int) -> None:
        with self._lock:
            self._waiters.pop(pid, None)
        self.statuses.pop(pid, None)

    def _candidates(self) -> set[int]:
        """The children that may be reaped: the agents', and (no fork under way) every
        child that is not foreign. Reads /proc: a worker thread may call it."""
        with self._lock:
            agents = set(self._waiters)
            if self._forks:
                self._deferred = True
                return agents
            begun = self._begun
        kids = self._children()
        with self._lock:
            if self._forks or self._begun != begun:  # a child listed may be unregistered
                self._deferred = True
                return set(self._waiters)
            return (kids | agents) - self._foreign

    def _reap(self, pid: int) -> bool:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return False
        if got == 0:
            return False
        code = os.waitstatus_to_exitcode(status)
        with self._lock:
            event = self._waiters.get(pid)
        if event is not None:
            self.statuses[pid] = code
            event.set()
        return True

    def _reap_unlisted(self) -> None:
        """Where the kernel does not list a process's children (no CONFIG_PROC_CHILDREN),
        adopted orphans are found by asking which child has exited, without reaping it
        (`WNOWAIT`), so a foreign child is left to its own wait."""
        while True:
            with self._lock:
                if self._forks:
                    self._deferred = True
                    return
                try:
                    info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:
                    return
                if info is None or info.si_pid in self._foreign:
                    return  # a foreign child first in line: the rest at the next round
                pid = info.si_pid
            if not self._reap(pid):
                return

    def _children(self) -> set[int]:
        """Our children, zombies included, as /proc lists them under each of our threads
        (an empty set where it does not)."""
        kids: set[int] = set()
        if _CHILDREN_LISTED:
            with contextlib.suppress(OSError):
                for task in os.listdir(PROC / "self" / "task"):
                    with contextlib.suppress(OSError):
                        raw = (PROC / "self" / "task" / task / "children").read_bytes()
                        kids.update(int(x) for x in raw.split())
        return kids

    def _ask(self) -> None:
        """Ask the event loop for a reap (from any thread)."""
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(lambda: self._due.set())

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reap on every SIGCHLD (and when the forks that held a reap back are done), and
        once a second in case signals were coalesced. /proc is read in a worker thread:
        the event loop would wait on the GIL at each of its syscalls while threads work."""
        self._token = trio.lowlevel.current_trio_token()
        self._loop_thread = threading.get_ident()
        with trio.open_signal_receiver(signal.SIGCHLD) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._hear, signals)
                task_status.started()
                while True:
                    with trio.move_on_after(1.0):
                        await self._due.wait()
                    self._due = trio.Event()
                    for pid in await trio.to_thread.run_sync(self._candidates):
                        self._reap(pid)
                    if HAVE_PROC and not _CHILDREN_LISTED:
                        self._reap_unlisted()

    async def _hear(self, signals: AsyncIterator[int]) -> None:
        async for _ in signals:
            self._due.set()


@attrs.frozen
class Teardown:
    """What a teardown did, for the log."""

    signalled: tuple[int, ...]  # every process of the task found at the start
    killed: tuple[int, ...]  # still alive after SIGTERM's grace: SIGKILLed
    survivors: tuple[int, ...]  # alive even after SIGKILL (should be empty)


Tables = Callable[[], Awaitable[ProcessTable]]  # a fresh ProcessTable (scanned after asking)


@attrs.frozen
class Belonging:
    """What makes a process one of a run's: its tree under `root_pid`, its marker, its
    cgroup, and (without a cgroup) the unmarked orphans adopted since `since`, except
    the daemon's other children (`known`: agents, commands it runs)."""

    root_pid: int | None
    run_id: str
    cgroup: Cgroup | None = None
    since: float | None = None
    known: Callable[[], Iterable[int]] = frozenset

    def of(self, table: ProcessTable) -> set[int]:
        also = self.cgroup.pids() if self.cgroup is not None else set()
        if self.since is not None:
            also |= table.adopted(self.since, self.known())
        return table.task(self.root_pid, self.run_id, also)


async def _wait_gone(tables: Tables, who: Belonging, pids: set[int], within: float) -> set[int]:
    """Wait until none of `pids` is alive or `within` seconds pass, then return the run's
    live processes. Polling reads only those pids' own /proc entries; the scan at the end
    also finds anything they started meanwhile."""
    with trio.move_on_after(within):
        while any(alive(pid) for pid in pids):  # noqa: ASYNC110 - no event says "pid gone"
            await trio.sleep(0.02)
    return who.of(await tables())


async def scan_in_thread() -> ProcessTable:
    return await trio.to_thread.run_sync(scan_processes)


async def terminate(who: Belonging, *, grace: float, tables: Tables = scan_in_thread) -> Teardown:
    """SIGHUP, then SIGTERM, then SIGKILL after `grace`: to every process of the run;
    then its cgroup is removed. `tables` gives the process scans (the daemon shares them
    among its teardowns).

    Run it shielded: it is the cleanup of a cancelled task and must finish.
    """
    first = who.of(await tables())
    signal_all(first, signal.SIGHUP)
    left = await _wait_gone(tables, who, first, min(grace, 1.0))
    signal_all(left, signal.SIGTERM)
    signal_all(left, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    left = await _wait_gone(tables, who, left, grace)
    killed: set[int] = set()
    for _ in range(3):  # a process forked at the last moment gets its SIGKILL too
        if not left:
            break
        killed |= left
        if who.cgroup is not None:
            who.cgroup.kill()  # and whatever forks while we signal
        signal_all(left, signal.SIGKILL)
        left = await _wait_gone(tables, who, left, 5.0)
    if who.cgroup is not None:
        await _remove(who.cgroup)
    return Teardown(
        signalled=tuple(sorted(first)), killed=tuple(sorted(killed)), survivors=tuple(sorted(left))
    )


async def _remove(group: Cgroup) -> None:
    """Remove an emptied cgroup: its last processes leave it only once reaped, a moment
    after they died."""
    with trio.move_on_after(5.0):
        while not group.remove():  # noqa: ASYNC110 - cgroup.events could say; rare path
            await trio.sleep(0.02)
