"""Finding a task's processes: one scan of /proc gives every task's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from orchestra.adapters import procs
from orchestra.adapters.procs import ProcessTable

pytestmark = pytest.mark.skipif(not procs.HAVE_PROC, reason="needs /proc")


def test_a_task_is_its_tree_and_its_marked_processes() -> None:
    table = ProcessTable(
        parents={10: 1, 11: 10, 12: 11, 13: 1, 20: 1, 21: 20, 30: 1},
        live=frozenset({10, 11, 13, 20, 21, 30}),  # 12 is a zombie
        marked={"run-a": {13}, "run-b": {20, 30}},
    )
    assert table.task(10, "run-a") == {10, 11, 13}  # 13 left the tree but carries the marker
    assert table.task(None, "run-b") == {20, 30}  # 21 is under 20 but found only by tree
    assert table.task(99, "run-c") == set()  # gone, unmarked


def test_a_scan_finds_a_marked_process_outside_the_tree() -> None:
    """A child in a session of its own, carrying the marker: found by it, and by tree."""
    run_id = f"test-{os.getpid()}"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        env={**os.environ, procs.RUN_ID_VAR: run_id},
        start_new_session=True,
    )
    try:
        table = procs.scan_processes()
        assert child.pid in table.marked[run_id]
        assert table.task(None, run_id) == {child.pid}
        assert table.task(os.getpid(), "no-such-run") >= {os.getpid(), child.pid}
        assert os.getpid() not in table.marked.get(run_id, set())
    finally:
        child.kill()
        child.wait()
    assert child.pid not in procs.scan_processes().live
