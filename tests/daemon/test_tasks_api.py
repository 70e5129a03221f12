"""The task.* and events.* methods against a real daemon and real task files."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import Env, ProjectApi, git
from tests.daemon.wire import Raw, log_lines, stop_and_forget, wait_until

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


# One daemon for the module, a fresh project for each test (tests/conftest.py).
pytestmark = pytest.mark.shared_daemon


class Api(ProjectApi):
    """Calls on one project, over one connection kept for the whole test."""

    def file(self, name: str) -> Path:
        return self.root / ".orchestra" / "tasks" / name


@pytest.fixture
def api(daemon: Env, project: Path) -> Iterator[Api]:
    """A running daemon and a client bound to an initialised project."""
    a = Api(daemon, project)
    try:
        yield a
    finally:
        a.client.close()
        if daemon.host is None:  # a shared daemon keeps running (see tests/conftest.py)
            stop_and_forget(daemon)


def events(c: Raw, count: int) -> list[dict[str, Any]]:
    """The next `count` events.task_changed notifications on a subscribed connection."""
    got = []
    for _ in range(count):
        message = c.recv()
        assert message["method"] == "events.task_changed", message
        assert "id" not in message
        got.append(message["params"])
    return got


async def trio_call(api: Api, request_id: int, method: str, **params: Any) -> Any:
    """One call on its own fresh connection, from trio; returns the result."""
    stream = await trio.open_unix_socket(str(api.env.socket))
    async with stream:
        request = {
            "jsonrpc": "2.0",
            "method": method,
            "params": {"project": str(api.root), **params},
            "id": request_id,
        }
        await stream.send_all(json.dumps(request).encode() + b"\n")
        data = b""
        while b"\n" not in data:
            chunk = await stream.receive_some(65536)
            assert chunk, "the daemon hung up"
            data += chunk
    reply = json.loads(data.partition(b"\n")[0])
    assert reply["id"] == request_id
    assert "result" in reply, reply
    return reply["result"]


async def run_together(calls: list[Callable[[], Awaitable[None]]]) -> None:
    """Start every call, wait until all are parked at the gate, then release them at once."""
    go = trio.Event()

    async def gated(fn: Callable[[], Awaitable[None]]) -> None:
        await go.wait()
        await fn()

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for fn in calls:
                nursery.start_soon(gated, fn)
            await trio.testing.wait_all_tasks_blocked()
            go.set()


async def test_twenty_concurrent_new_get_distinct_ids(api: Api) -> None:
    """Twenty task.new calls on twenty connections at once get ids 1 to 20, one file each."""
    ids: dict[int, int] = {}

    async def new(i: int) -> None:
        ids[i] = (await trio_call(api, i, "task.new", slug=f"t{i}"))["id"]

    await run_together([functools.partial(new, i) for i in range(20)])
    assert sorted(ids.values()) == list(range(1, 21))
    files = sorted(p.name for p in (api.root / ".orchestra" / "tasks").glob("*.md"))
    assert files == sorted(f"{ids[i]}-t{i}.md" for i in range(20))


@pytest.mark.own_daemon  # counts the daemon's subscribers
def test_two_clients_one_subscribed(api: Api) -> None:
    """A subscribed client receives events.task_changed for what another client does."""
    root = str(api.root)
    with Raw(api.env.socket) as sub, Raw(api.env.socket) as everything:
        assert sub.request("events.subscribe", {"project": root})["result"] == {
            "subscribed": True,
            "project": root,
        }
        assert everything.request("events.subscribe")["result"]["project"] is None
        assert api.client.call("daemon.status")["subscribers"] == 2

        api("task.new", slug="watched", description="Watch me.")
        api("task.update", task="watched", labels=["ui"])
        api("task.start", task="watched")
        api("task.set_status", task=1, status="complete", summary="done")
        changes = events(sub, 4)
        assert [(e["change"], e["task"]["status"], e.get("previous_status")) for e in changes] == [
            ("created", "draft", None),
            ("updated", "draft", None),
            ("status", "running", "draft"),
            ("status", "completed", "running"),
        ]
        assert all(e["project"] == root and e["task"]["slug"] == "watched" for e in changes)
        assert changes[1]["task"]["labels"] == ["ui"]
        assert "description" not in changes[0]["task"]
        assert events(everything, 4) == changes
        sub.ping()  # a subscribed connection still answers calls


@pytest.mark.own_daemon  # reads daemon.status, which lists every project served
def test_broken_task_file(api: Api) -> None:
    """A task file with bad TOML shows in task.list's errors by file and line; others still list,
    and task.get on it fails with -32004 naming the file and line."""
    api("task.new", slug="good")
    broken = api.file("2-x.md")
    broken.write_text('+++\nstatus = "draft"\nagent = \n+++\n\nBroken by hand.\n')
    api("task.new", slug="after")

    listed = api("task.list")
    assert [(t["id"], t["slug"]) for t in listed["tasks"]] == [(1, "good"), (3, "after")]
    [error] = listed["errors"]
    assert error["file"] == str(broken)
    assert error["line"] == 3
    assert f"{broken}:3:" in error["message"]

    for ref in (2, "x"):
        err = api.error("task.get", task=ref)
        assert err.remote_code == -32004
        assert f"{broken}:3:" in err.message
        assert (err.data["file"], err.data["line"]) == (str(broken), 3)
    assert api("task.get", task="good")["status"] == "draft"
    counts = api.client.call("daemon.status")["projects"][0]["tasks"]
    assert counts == {"draft": 2, "broken": 1}


def test_task_file_with_a_bad_value(api: Api) -> None:
    """A task file whose TOML is fine but whose status is unknown is reported naming the key."""
    api.file("1-odd.md").write_text(
        '+++\nstatus = "sleeping"\nagent = "claude"\ncreated_at = 2026-01-01T00:00:00Z\n+++\n'
    )
    [error] = api("task.list")["errors"]
    assert error["key"] == "status"
    assert "sleeping" in error["message"]
    assert api.error("task.get", task="odd").remote_code == -32004


def test_update_fields_keeps_a_persons_edits(api: Api) -> None:
    """task.update changes only the fields given and keeps comments and unknown keys."""
    created = api("task.new", slug="edit-me", title="Old", description="Old text.\n")
    path = Path(created["file"])
    text = path.read_text()
    path.write_text(text.replace("+++\n", '+++\n# keep this comment\npriority = "high"\n', 1))
    git("branch", "develop", cwd=api.root)  # a base must exist

    updated = api(
        "task.update",
        task="edit-me",
        title="New title",
        labels=["ui", "backend"],
        agent="codex",
        base_branch="develop",
        description="New text.\n",
    )
    assert (updated["title"], updated["labels"], updated["agent"], updated["base_branch"]) == (
        "New title",
        ["ui", "backend"],
        "codex",
        "develop",
    )
    assert updated["description"] == "New text.\n"
    on_disk = path.read_text()
    assert "# keep this comment" in on_disk
    assert 'priority = "high"' in on_disk
    assert on_disk.endswith("+++\n\nNew text.\n")
    assert api("task.get", task=1) == updated

    cleared = api("task.update", task=1, title="")
    assert cleared["title"] is None
    assert cleared["labels"] == ["ui", "backend"]
    assert "title" not in path.read_text()


def test_update_whole_text(api: Api) -> None:
    """task.update with `text` stores the file verbatim, and refuses a status change or bad TOML."""
    created = api("task.new", slug="whole", description="Before.\n")
    path = Path(created["file"])
    original = path.read_text()
    text = original.replace("labels = []", 'labels = ["docs"] # from the editor') + "More.\n"
    updated = api("task.update", task="whole", text=text)
    assert path.read_text() == text
    assert updated["labels"] == ["docs"]
    assert updated["description"] == "Before.\nMore.\n"

    err = api.error("task.update", task="whole", text=text.replace('"draft"', '"completed"'))
    assert err.remote_code == -32002
    assert "draft" in err.message
    err = api.error("task.update", task="whole", text=text.replace("labels =", "labels ="[:-1]))
    assert err.remote_code == -32004
    assert "whole.md" in err.message
    assert re.search(r":\d+:", err.message)
    assert path.read_text() == text  # refused edits change nothing


def test_set_status_legal_and_illegal(api: Api) -> None:
    """task.set_status follows the state table; an illegal move gets -32002 naming the current
    state and the allowed moves, and leaves the task as it was."""
    api("task.new", slug="walk")
    err = api.error("task.set_status", task="walk", status="complete")
    assert err.remote_code == -32002
    assert "is draft" in err.message
    assert "queued, running" in err.message
    assert (err.data["current"], err.data["allowed"]) == ("draft", ["queued", "running"])
    assert api("task.get", task="walk")["status"] == "draft"

    walk = [("idle", "idle"), ("complete", "completed"), ("reviewed", "reviewed")]
    assert api("task.start", task="walk")["status"] == "running"
    for word, state in walk:
        assert api("task.set_status", task="walk", status=word)["status"] == state

    err = api.error("task.set_status", task="walk", status="fail")
    assert err.remote_code == -32002
    assert "is reviewed" in err.message
    assert err.data["allowed"] == ["running", "merged"]

    bad = api.error("task.set_status", task="walk", status="merged")
    assert bad.remote_code == -32602  # not a word set_status knows
    assert api("task.get", task="walk")["status"] == "reviewed"


def test_session_set_and_path(api: Api) -> None:
    """task.session_set stores and clears the session id; task.path names worktree and branch."""
    created = api("task.new", slug="sess")
    assert created["session_id"] is None
    assert api("task.session_set", task="sess", session_id="abc-123")["session_id"] == "abc-123"
    assert 'session_id = "abc-123"' in Path(created["file"]).read_text()
    assert api("task.get", task=1)["session_id"] == "abc-123"
    assert api("task.session_set", task=1, session_id=None)["session_id"] is None
    assert api("task.get", task=1)["session_id"] is None

    path = api("task.path", task="sess")
    assert path == {
        "worktree": str(api.root / ".orchestra" / "worktrees" / "1-sess"),
        "exists": False,
        "branch": created["branch"],
    }
    assert api("task.path", task="1")["worktree"] == path["worktree"]  # "1" names task 1


def test_large_description_round_trips(api: Api) -> None:
    """A 1 MB description (well under the line limit) is stored and read back intact."""
    text = "".join(f"line {i} — ünïcode\n" for i in range(50_000))
    assert len(text.encode()) > 1_000_000
    created = api("task.new", slug="big", description=text)
    assert created["description"] == text
    assert api("task.get", task="big")["description"] == text


def test_not_found_and_conflict(api: Api) -> None:
    """An unknown task gets -32001; a slug already taken gets -32003."""
    api("task.new", slug="taken")
    for method in ("task.get", "task.path", "task.start", "task.stop"):
        err = api.error(method, task="missing")
        assert err.remote_code == -32001
        assert "missing" in err.message
    err = api.error("task.new", slug="taken")
    assert err.remote_code == -32003
    assert "taken" in err.message


def test_start_stop_and_max_running_queue(api: Api) -> None:
    """With max_running = 1 a second start queues; the slot frees when the first task
    completes (its agent living on holds none), and the queue runs oldest first; stop sends
    queued back to draft and running to stopped, and a completed task's agent away."""
    config = api.root / ".orchestra" / "config.toml"
    config.write_text(config.read_text() + "\nmax_running = 1\n")
    for slug in ("first", "second", "third"):
        api("task.new", slug=slug)

    assert api("task.start", task="first")["status"] == "running"
    assert api("task.start", task="second")["status"] == "queued"
    assert api("task.start", task="third")["status"] == "queued"
    assert api("task.stop", task="third")["status"] == "draft"
    assert api("task.start", task="third")["status"] == "queued"

    api("task.set_status", task="first", status="complete")
    assert api("task.get", task="first")["run"] is not None  # its agent lives on
    statuses = {t["slug"]: t["status"] for t in api("task.list")["tasks"]}
    assert statuses == {"first": "completed", "second": "running", "third": "queued"}
    stopped = api("task.stop", task="first")
    assert (stopped["status"], stopped["stopped_agent"], stopped["run"]) == (
        "completed",
        True,
        None,
    )
    statuses = {t["slug"]: t["status"] for t in api("task.list")["tasks"]}
    assert statuses == {"first": "completed", "second": "running", "third": "queued"}
    slot = [x for x in log_lines(api.root) if x.get("why") == "a running slot freed"]
    assert [(x["slug"], x["previous"], x["status"]) for x in slot] == [
        ("second", "queued", "running")
    ]

    err = api.error("task.start", task="first")  # completed -> running is legal, but no slot
    assert err.remote_code == -32002
    assert "max_running (1)" in err.message

    assert api("task.stop", task="second")["status"] == "stopped"
    assert api("task.get", task="third")["status"] == "running"
    err = api.error("task.stop", task="first")
    assert err.remote_code == -32002
    assert "is completed and has no running agent" in err.message


def test_list_filters(api: Api) -> None:
    """task.list filters by status and label and includes descriptions only on request."""
    api("task.new", slug="a", labels=["ui"], description="A.")
    api("task.new", slug="b", description="B.")
    api("task.start", task="b")
    assert [t["slug"] for t in api("task.list", status=["running"])["tasks"]] == ["b"]
    assert [t["slug"] for t in api("task.list", label="ui")["tasks"]] == ["a"]
    plain = api("task.list")["tasks"]
    assert all("description" not in t for t in plain)
    full = api("task.list", description=True)["tasks"]
    assert [t["description"] for t in full] == ["A.\n", "B.\n"]
    err = api.error("task.list", status=["asleep"])
    assert err.remote_code == -32602
    assert any("asleep" in p and "field 'status'" in p for p in err.data["problems"])
    assert err.data["fields"] == ["status"]


def test_logs_jsonl_lines(api: Api) -> None:
    """Every line of .orchestra/logs.jsonl is a JSON object with an RFC 3339 UTC timestamp,
    level, event and message, and task lines carry task_id and slug."""
    api("task.new", slug="logged")
    api("task.update", task="logged", labels=["x"])
    api("task.start", task="logged")
    api("task.session_set", task="logged", session_id="s1")
    api("task.set_status", task="logged", status="fail", summary="tests broke")
    wait_until(lambda: len(log_lines(api.root)) >= 5, "five log lines")
    lines = log_lines(api.root)
    for line in lines:
        assert {"timestamp", "level", "event", "message"} <= set(line), line
        assert RFC3339_UTC.fullmatch(line["timestamp"]), line["timestamp"]
        stamp = dt.datetime.fromisoformat(line["timestamp"])
        assert stamp.utcoffset() == dt.timedelta(0)
        assert abs(dt.datetime.now(dt.UTC) - stamp) < dt.timedelta(minutes=5)
        assert line["level"] == "info"
    task_lines = [x for x in lines if x["event"].startswith(("task.", "agent."))]
    assert [x["event"] for x in task_lines] == [
        "task.created",
        "task.updated",
        "task.status",
        "task.worktree",
        "agent.started",
        "task.session",
        "task.status",
    ]
    assert all((x["task_id"], x["slug"]) == (1, "logged") for x in task_lines)
    last = task_lines[-1]
    assert (last["previous"], last["status"], last["summary"]) == (
        "running",
        "failed",
        "tests broke",
    )
    assert "tests broke" in last["message"]


async def test_concurrent_starts_respect_max_running(api: Api) -> None:
    """Starts racing on separate connections never run more than max_running tasks at once."""
    config = api.root / ".orchestra" / "config.toml"
    config.write_text(config.read_text() + "\nmax_running = 2\n")
    for i in range(8):
        api("task.new", slug=f"t{i}")
    got: dict[int, str] = {}

    async def start(i: int) -> None:
        got[i] = (await trio_call(api, i, "task.start", task=f"t{i}"))["status"]

    await run_together([functools.partial(start, i) for i in range(8)])
    assert sorted(got.values()) == ["queued"] * 6 + ["running"] * 2
    statuses = sorted(t["status"] for t in api("task.list")["tasks"])
    assert statuses == ["queued"] * 6 + ["running"] * 2


async def test_concurrent_stops_fill_each_slot_once(api: Api) -> None:
    """Two running tasks stopped at once both stop, and each freed slot starts exactly one
    queued task, oldest first."""
    config = api.root / ".orchestra" / "config.toml"
    config.write_text(config.read_text() + "\nmax_running = 2\n")
    for i in range(5):
        api("task.new", slug=f"t{i}")
        api("task.start", task=f"t{i}")
    got: dict[int, str] = {}

    async def stop(i: int) -> None:
        reply = await trio_call(api, i, "task.stop", task=f"t{i}")
        got[i] = reply["status"]

    await run_together([functools.partial(stop, i) for i in range(2)])
    assert got == {0: "stopped", 1: "stopped"}
    statuses = {t["slug"]: t["status"] for t in api("task.list")["tasks"]}
    assert statuses == {
        "t0": "stopped",
        "t1": "stopped",
        "t2": "running",
        "t3": "running",
        "t4": "queued",
    }
