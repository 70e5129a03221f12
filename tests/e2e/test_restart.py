"""The queue across a daemon restart: queued tasks keep their places and are served."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Env
from tests.daemon.wire import log_lines, wait_until
from tests.e2e.support import Api, configure


def statuses(api: Api) -> dict[str, str]:
    return {t["slug"]: t["status"] for t in api("task.list")["tasks"]}


def test_the_queue_survives_a_restart_and_is_served(env: Env, project: Path) -> None:
    """A daemon stopping with a task running and two queued does not start the queue as it
    goes; the next daemon stops what ran (its agent is gone), which frees the slot for
    the oldest queued task."""
    configure(project, "max_running = 1")
    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        for slug in ("first", "second", "third"):
            api.new(slug)
            api("task.start", task=slug)
        assert statuses(api) == {"first": "running", "second": "queued", "third": "queued"}
    finally:
        api.close()
    env.run("daemon", "stop", check=True)
    assert not [x for x in log_lines(project) if x.get("why") == "a running slot freed"]

    env.run("daemon", "start", check=True)
    api = Api(env, project)
    try:
        wait_until(lambda: statuses(api)["second"] == "running", "the queue to be served")
        assert statuses(api) == {"first": "stopped", "second": "running", "third": "queued"}
        assert api.get("second")["queue_position"] is None
        assert api.get("third")["queue_position"] == 1
    finally:
        api.close()
