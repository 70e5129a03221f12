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


def test_adopted_orphans_are_the_unmarked_children_born_since() -> None:
    """A run's adopted orphans are the daemon's children born since the run began that it
    did not start itself and that carry no run's marker; their trees come with them."""
    table = ProcessTable(
        parents={40: 1, 41: 1, 42: 1, 43: 1, 44: 43, 45: 1},
        live=frozenset({40, 41, 42, 43, 44, 45}),
        marked={"run-b": {42}},
        children_of_me={40: 5.0, 41: 12.0, 42: 12.0, 43: 15.0, 45: 20.0},
    )
    assert table.adopted(10.0, known={45}) == {41, 43}  # 40: before; 42: marked; 45: ours
    who = procs.Belonging(None, "run-a", since=10.0, known=lambda: {45})
    assert who.of(table) == {41, 43, 44}


def test_a_scan_lists_the_children_of_this_process_with_their_birth() -> None:
    """The scan gives this process's children and when each started, on the boot clock."""
    before = procs.boot_clock()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        born = procs.scan_processes().children_of_me[child.pid]
        assert before - 0.05 <= born <= procs.boot_clock()
    finally:
        child.kill()
        child.wait()
