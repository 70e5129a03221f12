"""The task store: task files on disk, ids under a lock, atomic writes, a change-aware cache."""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import pytest

from orchestra.adapters.paths import ProjectPaths
from orchestra.adapters.store import Broken, Loaded, TaskStore, write_atomic
from orchestra.core.errors import Conflict, InvalidParams, NotFound, TaskFileError
from orchestra.core.states import Status
from orchestra.core.tasks import TaskDocument, new_task_document

CREATED = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def paths(tmp_path: Path) -> ProjectPaths:
    p = ProjectPaths(tmp_path / "repo")
    p.tasks.mkdir(parents=True)
    return p


@pytest.fixture
def store(paths: ProjectPaths) -> TaskStore:
    return TaskStore(paths)


def doc(description: str = "Do the thing.\n") -> TaskDocument:
    return new_task_document(
        status=Status.DRAFT,
        agent="claude",
        base_branch=None,
        labels=[],
        created_at=CREATED,
        title=None,
        description=description,
    )


def loaded_only(items: list[Loaded | Broken]) -> list[Loaded]:
    assert all(isinstance(i, Loaded) for i in items)
    return [i for i in items if isinstance(i, Loaded)]


def leftovers(directory: Path) -> list[str]:
    """Temp files a write may have left behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --- creating and ids ---


def test_create_allocates_ids_from_one(store: TaskStore, paths: ProjectPaths) -> None:
    """Ids start at 1 and count up; each task lands in tasks/{id}-{slug}.md."""
    created = [store.create(slug, doc()) for slug in ("alpha", "beta", "gamma")]
    assert [c.task.id for c in created] == [1, 2, 3]
    assert [c.task.slug for c in created] == ["alpha", "beta", "gamma"]
    assert sorted(p.name for p in paths.tasks.iterdir()) == [
        "1-alpha.md",
        "2-beta.md",
        "3-gamma.md",
    ]
    assert created[0].path == paths.tasks / "1-alpha.md"
    assert created[0].path.read_text() == doc().render()
    assert paths.next_id.read_text() == "4\n"


def test_ids_never_reused_after_delete(store: TaskStore, paths: ProjectPaths) -> None:
    """Deleting the newest task file does not free its id: the counter remembers."""
    store.create("alpha", doc())
    last = store.create("beta", doc())
    last.path.unlink()
    assert store.create("gamma", doc()).task.id == 3
    for item in store.scan():
        item.path.unlink()
    assert store.create("delta", doc()).task.id == 4


def test_ids_respect_archive(store: TaskStore, paths: ProjectPaths) -> None:
    """Ids of archived tasks stay taken even if the counter file is lost."""
    paths.archive.mkdir()
    (paths.archive / "7-old.md").write_text(doc().render())
    assert store.create("new", doc()).task.id == 8


def test_ids_survive_a_lost_counter(store: TaskStore, paths: ProjectPaths) -> None:
    """Without next_id (or with garbage in it) the next id is one past the highest file."""
    store.create("alpha", doc())
    store.create("beta", doc())
    paths.next_id.unlink()
    assert store.create("gamma", doc()).task.id == 3
    paths.next_id.write_text("not a number\n")
    assert store.create("delta", doc()).task.id == 4


def test_counter_behind_the_files_is_ignored(store: TaskStore, paths: ProjectPaths) -> None:
    """A counter lower than an existing id never hands that id out again."""
    store.create("alpha", doc())
    store.create("beta", doc())
    paths.next_id.write_text("1\n")
    assert store.create("gamma", doc()).task.id == 3


def test_duplicate_slug_is_a_conflict(store: TaskStore, paths: ProjectPaths) -> None:
    """A second task with the same slug is refused and nothing is written or counted."""
    store.create("alpha", doc())
    with pytest.raises(Conflict, match="'alpha' already exists") as info:
        store.create("alpha", doc("other\n"))
    assert info.value.data == {"slug": "alpha"}
    assert [p.name for p in paths.tasks.iterdir()] == ["1-alpha.md"]
    assert store.create("beta", doc()).task.id == 2


def test_duplicate_slug_of_a_broken_file_is_a_conflict(
    store: TaskStore, paths: ProjectPaths
) -> None:
    """A slug held by a broken file is still taken."""
    (paths.tasks / "1-alpha.md").write_text("not a task file\n")
    with pytest.raises(Conflict):
        store.create("alpha", doc())


@pytest.mark.parametrize("slug", ["../escape", "Alpha", "123", "-x", ""])
def test_create_checks_the_slug(store: TaskStore, paths: ProjectPaths, slug: str) -> None:
    """An invalid slug is refused before any file is touched."""
    with pytest.raises(InvalidParams):
        store.create(slug, doc())
    assert list(paths.tasks.iterdir()) == []
    assert not paths.next_id.exists()


def test_concurrent_creates_get_distinct_ids(paths: ProjectPaths) -> None:
    """Twenty threads, each with its own store, creating at once get distinct ids (the flock)."""
    barrier = threading.Barrier(20)
    ids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        store = TaskStore(paths)
        try:
            barrier.wait()
            task_id = store.create(f"task-{n}", doc()).task.id
            with lock:
                ids.append(task_id)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(ids) == list(range(1, 21))
    assert len(list(paths.tasks.iterdir())) == 20
    assert paths.next_id.read_text() == "21\n"


# --- finding and scanning ---


def test_find_by_id_and_slug(store: TaskStore) -> None:
    """A task is found by its id or its slug, and both give the same file."""
    store.create("alpha", doc())
    beta = store.create("beta", doc())
    assert store.find(2).path == beta.path
    assert store.find("beta").path == beta.path
    assert store.find("beta").task == beta.task
    assert store.find(1).task.slug == "alpha"


@pytest.mark.parametrize("ref", [3, "gamma", 0])
def test_find_missing(store: TaskStore, ref: int | str) -> None:
    """An unknown id or slug is NotFound, naming the reference."""
    store.create("alpha", doc())
    store.create("beta", doc())
    with pytest.raises(NotFound) as info:
        store.find(ref)
    assert repr(ref) in info.value.message
    assert info.value.data == {"task": ref}


def test_scan_is_sorted_by_id(store: TaskStore, paths: ProjectPaths) -> None:
    """scan() returns tasks in id order, numerically (10 after 9)."""
    for n in (10, 2, 9, 1):
        (paths.tasks / f"{n}-t{n}.md").write_text(doc().render())
    assert [i.task.id for i in loaded_only(store.scan())] == [1, 2, 9, 10]


def test_scan_ignores_other_files(store: TaskStore, paths: ProjectPaths) -> None:
    """Only {id}-{slug}.md files are tasks: notes, temp files, id 0, leading zeros are skipped."""
    store.create("alpha", doc())
    for name in (
        "README.md",
        ".1-alpha.md.x.tmp",
        "0-zero.md",
        "01-lead.md",
        "2-Bad.md",
        "3-x.txt",
    ):
        (paths.tasks / name).write_text("junk")
    (paths.tasks / "4-dir.md").mkdir()
    assert [i.path.name for i in store.scan()] == ["1-alpha.md"]


def test_scan_without_tasks_dir(tmp_path: Path) -> None:
    """A project without tasks/ simply has no tasks."""
    assert TaskStore(ProjectPaths(tmp_path)).scan() == []


def test_broken_file_does_not_hide_the_others(store: TaskStore, paths: ProjectPaths) -> None:
    """A file with bad TOML shows up as Broken, with file and line, while the others load."""
    store.create("alpha", doc())
    broken = paths.tasks / "2-beta.md"
    broken.write_text('+++\nstatus = "draft"\nagent = \n+++\n\nBody\n')
    store.create("gamma", doc())
    items = store.scan()
    assert [type(i).__name__ for i in items] == ["Loaded", "Broken", "Loaded"]
    bad = items[1]
    assert isinstance(bad, Broken)
    assert bad.path == broken
    assert bad.error.message.startswith(f"{broken}:3: invalid TOML front matter")
    assert bad.error.data["line"] == 3
    assert store.find("gamma").task.id == 3
    with pytest.raises(TaskFileError) as info:
        store.find(2)
    assert info.value is bad.error
    with pytest.raises(TaskFileError):
        store.find("beta")


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe not utf-8", b"no front matter\n", b'+++\nstatus = "nope"\n+++\n', b""],
)
def test_unreadable_files_are_broken(store: TaskStore, paths: ProjectPaths, content: bytes) -> None:
    """Bad encoding, no fences or a bad field all give Broken with an error naming the file."""
    path = paths.tasks / "1-alpha.md"
    path.write_bytes(content)
    (item,) = store.scan()
    assert isinstance(item, Broken)
    assert item.error.message.startswith(str(path))
    assert item.error.data["file"] == str(path)


# --- writing ---


def test_write_atomic_replaces_and_cleans_up(tmp_path: Path) -> None:
    """write_atomic creates or replaces the file whole and leaves no temp file behind."""
    path = tmp_path / "f.md"
    write_atomic(path, "first\n")
    assert path.read_text() == "first\n"
    inode = path.stat().st_ino
    write_atomic(path, "second, longer ✓\n")
    assert path.read_text(encoding="utf-8") == "second, longer ✓\n"
    assert path.stat().st_ino != inode  # a new file was renamed over the old one
    assert leftovers(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["f.md"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path: Path) -> None:
    """A write that fails midway leaves the old content and no temp file."""
    path = tmp_path / "f.md"
    write_atomic(path, "old\n")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "half \ud800 written\n")  # a lone surrogate cannot be UTF-8
    assert path.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_save_keeps_comments_and_unknown_keys(store: TaskStore) -> None:
    """Saving an edited document changes only the edited key in the person's file."""
    created = store.create("alpha", doc())
    text = created.path.read_text().replace("+++\n", '+++\n# keep me\nowner = "sam"  # mine\n', 1)
    created.path.write_text(text)
    loaded = store.find("alpha")
    loaded.doc.set("status", "running")
    saved = store.save(loaded)
    assert saved.task.status is Status.RUNNING
    assert saved.path.read_text() == text.replace('status = "draft"', 'status = "running"')
    assert leftovers(saved.path.parent) == []


def test_save_text_writes_verbatim(store: TaskStore) -> None:
    """save_text stores the given text exactly and returns the task it describes."""
    created = store.create("alpha", doc())
    text = created.path.read_text().replace("Do the thing.", "Do it  differently.")
    saved = store.save_text(created, text)
    assert saved.path.read_text() == text
    assert saved.task.description == "Do it  differently.\n"


def test_failed_save_does_not_poison_the_cache(store: TaskStore) -> None:
    """After a save that could not be written, the store shows what is on disk, not the edit."""
    store.create("alpha", doc())
    loaded = store.find("alpha")
    loaded.doc.set("title", "bad \ud800")
    with pytest.raises(UnicodeEncodeError):
        store.save(loaded)
    again = store.find("alpha")
    assert again.doc.get("title") is None
    assert again.doc.render() == again.path.read_text()
    again.doc.set("status", "running")
    assert store.save(again).task.status is Status.RUNNING


# --- the cache ---


def test_cache_reuses_unchanged_files(store: TaskStore) -> None:
    """Scanning twice without changes returns the very same parsed objects."""
    store.create("alpha", doc())
    first = store.scan()
    assert store.scan()[0] is first[0]


def test_cache_sees_a_file_changed_on_disk(store: TaskStore) -> None:
    """A person's edit of a task file is picked up on the next scan."""
    created = store.create("alpha", doc())
    assert store.find(1).task.status is Status.DRAFT
    created.path.write_text(created.path.read_text().replace('"draft"', '"completed"'))
    assert store.find(1).task.status is Status.COMPLETED


def test_cache_sees_a_same_size_edit_in_place(store: TaskStore) -> None:
    """An in-place edit that keeps size and inode is still seen, by its new modification time."""
    created = store.create("alpha", doc())
    assert store.find(1).task.description == "Do the thing.\n"
    before = created.path.stat()
    with created.path.open("r+") as f:
        text = f.read()
        f.seek(0)
        f.write(text.replace("Do the thing.", "Do the thong."))
    # Coarse file-system clocks may not move within one test: make the edit visibly later.
    os.utime(created.path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    after = created.path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert store.find(1).task.description == "Do the thong.\n"


def test_cache_forgets_deleted_files(store: TaskStore) -> None:
    """A deleted file disappears from scan() and from find()."""
    store.create("alpha", doc())
    beta = store.create("beta", doc())
    store.scan()
    beta.path.unlink()
    assert [i.path.name for i in store.scan()] == ["1-alpha.md"]
    with pytest.raises(NotFound):
        store.find("beta")
