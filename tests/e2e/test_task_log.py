"""`task.log`: a task's records in the project's event log, read back from the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.adapters.logs import task_lines
from tests.conftest import Env, ProjectApi

# The log read is the project's own (a fresh one per test): the daemon can be shared.
pytestmark = pytest.mark.shared_daemon


def test_a_tasks_log_has_its_own_records_oldest_first(env: Env, project: Path, daemon: Env) -> None:
    """Created, started, stopped: the task's records in order, none of another task's."""
    api = ProjectApi(env, project)
    with api.client:
        api("task.new", slug="one")
        api("task.new", slug="two")
        api("task.start", task="one")
        api("task.stop", task="one")
        found = api("task.log", task="one")
        assert found["task"] == "1-one"
        events = [r["event"] for r in found["lines"]]
        assert events[0] == "task.created" and "task.status" in events
        assert {r["task_id"] for r in found["lines"]} == {1}
        assert [r["event"] for r in api("task.log", task="one", lines=1)["lines"]] == events[-1:]
        assert api.error("task.log", task="one", lines=0).remote_code == -32602
        assert api.error("task.log", task="nope").remote_code == -32001


def test_reading_back_skips_garbage_and_finds_ids_exactly(tmp_path: Path) -> None:
    """Task 1's records are not task 10's; a torn or foreign line is skipped; a missing
    log has no records; only the last `limit` come, from a log of many blocks."""
    log = tmp_path / "logs.jsonl"
    lines = [json.dumps({"task_id": 10, "n": i}) for i in range(3)]
    lines += ["not json", '{"task_id": 1, "n": "torn"', json.dumps([1])]
    lines += [json.dumps({"task_id": 1, "n": i, "pad": "x" * 500}) for i in range(400)]
    log.write_text("\n".join(lines) + "\n")
    got = task_lines(log, 1, 5)
    assert [r["n"] for r in got] == [395, 396, 397, 398, 399]
    assert [r["n"] for r in task_lines(log, 10, 100)] == [0, 1, 2]
    assert task_lines(tmp_path / "none.jsonl", 1, 5) == []
