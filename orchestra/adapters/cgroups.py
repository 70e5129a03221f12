"""A cgroup (v2) per run, where the system delegates one to us.

A run's processes are found by their tree and by the marker in their environment
(adapters/procs.py), but a process that forks, calls `setsid`, forks again and execs
with an empty environment carries neither. A cgroup holds it anyway: membership is
inherited through every fork and cannot be dropped without write access to another
cgroup. So where we may create cgroups below our own (cgroup v2 mounted, our cgroup
writable: root, or a systemd service with `Delegate=yes`), each run gets one, named by
its run id, which its agent and setup command join before they exec; ending a run then
ends every process in its cgroup, and a daemon started after a `kill -9` of the last
one ends what is left in the cgroups that daemon recorded.

Where we may not (cgroup v1 only, macOS, an undelegated cgroup), the subreaper
(procs.adopted) catches what escapes instead. Nothing here raises for lack of
cgroups: `Hierarchy.find` returns None, `Cgroup.create` reports False.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs

NO_CGROUPS_ENV = "ORCHESTRA_NO_CGROUPS"  # set (non-empty) in the daemon's environment
_NAME = re.compile(r"run-[0-9a-f]{32}")


@attrs.frozen
class Cgroup:
    """One run's cgroup (the directory may not exist yet, or any more)."""

    path: Path

    def create(self) -> bool:
        """Make the cgroup; False where the system refuses it (the run goes without)."""
        try:
            self.path.mkdir()
        except FileExistsError:
            pass
        except OSError:
            return False
        return True

    def join_in_child(self) -> None:
        """Move the calling process into the cgroup: a `preexec_fn`, run in the child
        between fork and exec, so the program is inside before it can fork.

        Only syscalls, and no exception: a child that cannot join still runs, and the
        parent sees it is not inside (`holds`)."""
        try:
            fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)
        except OSError:
            return
        try:
            os.write(fd, b"0")
        except OSError:
            pass
        finally:
            os.close(fd)

    def pids(self) -> set[int]:
        """The processes inside (empty once the cgroup is gone)."""
        try:
            raw = (self.path / "cgroup.procs").read_text()
        except OSError:
            return set()
        return {int(line) for line in raw.split()}

    def holds(self, pid: int) -> bool:
        return pid in self.pids()

    def kill(self) -> None:
        """SIGKILL everything inside, including what forks meanwhile (`cgroup.kill`,
        Linux 5.14+); before 5.14 the caller's SIGKILL rounds over `pids()` do it."""
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")

    def remove(self) -> bool:
        """Remove the cgroup once it is empty; True when it is gone."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:  # EBUSY: a process is still inside (a zombie not yet reaped)
            return False
        return True


@attrs.frozen
class Hierarchy:
    """Where this daemon makes its runs' cgroups: directly below its own."""

    base: Path

    @classmethod
    def find(cls, environ: Mapping[str, str] = os.environ) -> Hierarchy | None:
        """Our own cgroup v2 directory, if we may create cgroups in it; None otherwise."""
        if environ.get(NO_CGROUPS_ENV) or not sys.platform.startswith("linux"):
            return None
        base = _own_cgroup_dir()
        if base is None or not os.access(base, os.W_OK | os.X_OK):
            return None
        # Moving a process needs write access to the cgroup.procs of the common ancestor.
        if not os.access(base / "cgroup.procs", os.W_OK):
            return None
        return cls(base=base)

    def for_run(self, run_id: str) -> Cgroup:
        return Cgroup(self.base / f"run-{run_id}")


def recorded(raw: object) -> Cgroup | None:
    """A run's cgroup as a previous daemon recorded it, if it is one of ours: a
    `run-<hex id>` directory below the cgroup v2 mount (never any other path)."""
    if not isinstance(raw, str) or "\x00" in raw:
        return None
    path = Path(raw)
    if not _NAME.fullmatch(path.name) or not path.is_absolute() or ".." in path.parts:
        return None
    mount = _cgroup2_mount()
    if mount is None or not path.is_relative_to(mount):
        return None
    return Cgroup(path)


def _cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `.../unified` on a
    hybrid system)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        # id parent major:minor root mountpoint options ... - fstype source superoptions
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            fields = left.split()
            if fields[3] == "/":  # the whole hierarchy, not a bind mount of a part
                return Path(fields[4].replace("\\040", " "))
    return None


def _own_cgroup_dir() -> Path | None:
    mount = _cgroup2_mount()
    if mount is None:
        return None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            own = line[3:].strip()
            if own.endswith(" (deleted)"):
                return None
            path = mount / own.lstrip("/")
            return path if path.is_dir() else None
    return None
