"""Runs' cgroups: only a `run-<id>` directory below the cgroup v2 mount is ever taken from
the state file, and a cgroup that cannot be made is reported, not raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestra.adapters import cgroups


@pytest.mark.parametrize(
    "raw",
    [
        None,
        42,
        "",
        "relative/run-" + "a" * 32,
        "/home/me/run-" + "a" * 32,
        "/sys/fs/cgroup/../../home/run-" + "a" * 32,
        "/sys/fs/cgroup/system.slice",
        "/sys/fs/cgroup/run-" + "a" * 31,
        "/sys/fs/cgroup/run-\x00" + "a" * 32,
    ],
)
def test_a_recorded_cgroup_that_is_not_a_runs_is_refused(raw: object) -> None:
    """A state file naming anything but a run's cgroup below the mount names nothing."""
    assert cgroups.recorded(raw) is None


def test_a_recorded_runs_cgroup_below_the_mount_is_taken() -> None:
    """A run's cgroup below the cgroup v2 mount, where there is one, is taken as recorded."""
    mount = cgroups._cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup v2 mount here")
    raw = str(mount / "some.slice" / ("run-" + "0123456789abcdef" * 2))
    group = cgroups.recorded(raw)
    assert group is not None and group.path == Path(raw)


def test_a_cgroup_that_cannot_be_made_says_so(tmp_path: Path) -> None:
    """Creating a cgroup where no directory can be made reports False; joining it in a
    child, reading or removing it neither raises nor finds anything."""
    group = cgroups.Cgroup(tmp_path / "missing" / "run-x")
    assert group.create() is False
    group.join_in_child()
    assert group.pids() == set()
    assert group.remove() is True


def test_the_switch_turns_cgroups_off() -> None:
    """ORCHESTRA_NO_CGROUPS in the daemon's environment gives its runs no cgroups."""
    assert cgroups.Hierarchy.find({cgroups.NO_CGROUPS_ENV: "1"}) is None
