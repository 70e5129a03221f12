"""Task files on disk: `.orchestra/tasks/{id}-{slug}.md`.

Blocking I/O; the daemon calls it from a worker thread while holding the
project's lock, so each method may assume it is the only writer in-process.
Cross-process safety (ids, creation) comes from an flock on `.orchestra/.lock`.
Every write is atomic: temp file in the same directory, fsync, rename, fsync dir.
Nothing is read through a symbolic link (`.orchestra/` itself is checked when the
daemon opens the project: paths.check_dot), and a write `.orchestra/` refuses is an
`Unwritable` error naming the directory, not an internal error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs

from orchestra.adapters.faults import crash_point
from orchestra.adapters.paths import ProjectPaths, open_nofollow, symlink_refused
from orchestra.core import names
from orchestra.core.errors import Conflict, NotFound, OrchestraError, TaskFileError, Unwritable
from orchestra.core.tasks import Task, TaskDocument, parse_task_text

_FILE = re.compile(r"(?P<id>[1-9][0-9]*)-(?P<slug>[a-z0-9][a-z0-9-]{0,62})\.md")


@contextlib.contextmanager
def writing(where: Path) -> Iterator[None]:
    """Report a write that `where` (a directory or file) refuses as `Unwritable`."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise Unwritable(
            f"cannot write in {where}: {exc.strerror}; make it writable for you"
            f" (`chmod u+w {where}`), or run Orchestra as the user who owns it",
            path=str(where),
        ) from None


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash leaves the old or the new file, never half.

    The rename replaces `path` itself, so a symbolic link there is replaced, not followed.
    """
    with writing(path.parent):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@attrs.frozen
class Loaded:
    """A task file read from disk, with the document to edit it by."""

    path: Path
    doc: TaskDocument
    task: Task


@attrs.frozen
class Broken:
    """A task file that cannot be read; other tasks keep working."""

    path: Path
    error: TaskFileError


@attrs.define
class TaskStore:
    paths: ProjectPaths
    # path -> ((mtime_ns, size, inode), parsed): re-parse only files that changed.
    _cache: dict[Path, tuple[tuple[int, int, int], Loaded | Broken]] = attrs.field(
        factory=dict, init=False
    )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The project's cross-process lock (ids, creation, renames)."""
        lock = self.paths.lock
        with writing(lock if os.path.lexists(lock) else self.paths.dot):
            fd = open_nofollow(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def scan(self) -> list[Loaded | Broken]:
        """Every task file, by id; parsed files are reused while unchanged on disk."""
        found: list[tuple[int, Loaded | Broken]] = []
        seen: set[Path] = set()
        try:
            entries = list(os.scandir(self.paths.tasks))
        except FileNotFoundError:
            entries = []
        for entry in entries:
            match = _FILE.fullmatch(entry.name)
            if not match or not (entry.is_file() or entry.is_symlink()):
                continue
            path = Path(entry.path)
            seen.add(path)
            info = entry.stat(follow_symlinks=False)
            key = (info.st_mtime_ns, info.st_size, info.st_ino)
            cached = self._cache.get(path)
            if cached is None or cached[0] != key:
                cached = (key, self._read(path, int(match["id"]), match["slug"]))
                self._cache[path] = cached
            found.append((int(match["id"]), cached[1]))
        for stale in set(self._cache) - seen:
            del self._cache[stale]
        return [item for _, item in sorted(found, key=lambda pair: pair[0])]

    def _read(self, path: Path, task_id: int, slug: str) -> Loaded | Broken:
        source = str(path)
        try:
            text = read_text(path)
            doc = parse_task_text(text, source=source)
            return Loaded(path=path, doc=doc, task=doc.to_task(task_id, slug, source=source))
        except TaskFileError as exc:
            return Broken(path=path, error=exc)
        except OrchestraError as exc:  # a symbolic link or not a file: refused, named
            return Broken(path=path, error=TaskFileError(exc.message, file=source))
        except (OSError, UnicodeDecodeError) as exc:
            return Broken(
                path=path, error=TaskFileError(f"{source}: cannot read: {exc}", file=source)
            )

    def find(self, ref: int | str) -> Loaded:
        """The task named by id or slug; a broken file raises its own error."""
        for item in self.scan():
            path_id, slug = self._name(item.path)
            if ref in (path_id, slug):
                if isinstance(item, Broken):
                    raise item.error
                return item
        raise NotFound(f"no task {ref!r} in {self.paths.root}", task=ref)

    @staticmethod
    def _name(path: Path) -> tuple[int, str]:
        match = _FILE.fullmatch(path.name)
        assert match is not None
        return int(match["id"]), match["slug"]

    def create(self, slug: str, doc: TaskDocument) -> Loaded:
        """Allocate the next id and write the new task file, under the project lock."""
        names.check_slug(slug)
        with self.locked():
            self._make_tasks_dir()
            items = self.scan()
            if any(self._name(item.path)[1] == slug for item in items):
                raise Conflict(f"a task with slug {slug!r} already exists", slug=slug)
            task_id = self._next_id(items)
            path = self.paths.tasks / f"{names.task_stem(task_id, slug)}.md"
            # Persist the counter first: an id is never handed out twice, even after a crash.
            write_atomic(self.paths.next_id, f"{task_id + 1}\n")
            crash_point("task.new:counter")
            write_atomic(path, doc.render())
            crash_point("task.new:file")
        return self._reload(path)

    def _make_tasks_dir(self) -> None:
        """Recreate a missing `tasks/` (git keeps no empty directory: a fresh clone of a
        project whose task files are not committed has none)."""
        if not os.path.lexists(self.paths.tasks):
            with writing(self.paths.dot), contextlib.suppress(FileExistsError):
                self.paths.tasks.mkdir()
        if self.paths.tasks.is_symlink():
            raise symlink_refused(self.paths.tasks)

    def _next_id(self, items: list[Loaded | Broken]) -> int:
        counter = 1
        with contextlib.suppress(FileNotFoundError, ValueError):
            counter = int(read_text(self.paths.next_id).strip())
        used = [self._name(item.path)[0] for item in items]
        if self.paths.archive.is_dir():
            used += [
                int(m["id"]) for p in self.paths.archive.iterdir() if (m := _FILE.fullmatch(p.name))
            ]
        return max([counter, *(i + 1 for i in used)])

    def save(self, loaded: Loaded) -> Loaded:
        """Write an edited document back to the same file."""
        try:
            write_atomic(loaded.path, loaded.doc.render())
        except BaseException:
            self._cache.pop(loaded.path, None)  # its doc holds the unwritten edit: re-read it
            raise
        return self._reload(loaded.path)

    def save_text(self, loaded: Loaded, text: str) -> Loaded:
        write_atomic(loaded.path, text)
        return self._reload(loaded.path)

    def _reload(self, path: Path) -> Loaded:
        task_id, slug = self._name(path)
        self._cache.pop(path, None)
        item = self._read(path, task_id, slug)
        if isinstance(item, Broken):
            raise item.error
        return item


def read_text(path: Path) -> str:
    """A file's text, refusing a symbolic link (UnsafeProject) or anything but a regular
    file (a FIFO would block the reader: O_NONBLOCK opens it, fstat then refuses it)."""
    fd = open_nofollow(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TaskFileError(f"{path} is not a regular file: move it away", file=str(path))
        return f.read().decode("utf-8")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)
