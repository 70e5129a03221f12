"""The scheduler and the task service in-process, under trio's mock clock (so a wait that
would never end fails at once): real task files
and a real git repository, the real supervisor, and in place of each agent's whole run a
stand-in whose setup and exit the test controls (Supervisor.run_task)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

from orchestra.adapters.paths import ProjectPaths
from orchestra.adapters.procs import Reaper
from orchestra.core import api
from orchestra.core.errors import OrchestraError
from orchestra.core.states import Status
from orchestra.daemon.events import EventHub
from orchestra.daemon.project import Project
from orchestra.daemon.relay import Relay
from orchestra.daemon.runner import Run
from orchestra.daemon.scheduler import Scheduler
from orchestra.daemon.supervisor import Supervisor
from orchestra.daemon.tasks import TaskService


class SetupBroke(OrchestraError):
    kind = "setup_failed"


@attrs.define
class Agents:
    """Stand-ins for runs: each waits for its setup to be let through (if held), says it
    started, then lives until stopped or told to exit."""

    held: dict[str, trio.Event] = attrs.field(factory=dict)  # slug -> let its setup end
    broken: set[str] = attrs.field(factory=set)  # slugs whose setup fails
    exits: dict[str, trio.Event] = attrs.field(factory=dict)
    started: list[str] = attrs.field(factory=list)

    def exit(self, slug: str) -> None:
        self.exits.setdefault(slug, trio.Event()).set()

    async def run_task(self, run: Run, *, resume: bool, task_status: trio.TaskStatus[Run]) -> None:
        with run.scope:
            if run.slug in self.held:
                await self.held[run.slug].wait()
            if run.slug in self.broken:
                raise SetupBroke(f"setup of {run.slug} failed")
            self.started.append(run.slug)
            task_status.started(run)
            await self.exits.setdefault(run.slug, trio.Event()).wait()
            run.exit_code = 0


@attrs.define
class World:
    project: Project
    scheduler: Scheduler
    agents: Agents

    def status(self, slug: str) -> Status:
        return next(t.status for t in self.project.tasks._index.values() if t.slug == slug)

    async def new(self, *slugs: str) -> None:
        for slug in slugs:
            await self.project.new(
                api.NewParams(project=self.project.root, slug=slug, description=f"Do {slug}.")
            )

    async def start(self, slug: str) -> Status:
        return Status((await self.scheduler.start(self.project, slug))["status"])


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README").write_text("hello\n")
    git(root, "add", "README")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    (root / ".orchestra").mkdir()
    (root / ".orchestra" / "config.toml").write_text("max_running = 1\n")
    return root


@pytest.fixture
async def world(repo: Path, tmp_path: Path) -> AsyncIterator[World]:
    agents = Agents()
    async with trio.open_nursery() as nursery:
        reaper, relay = Reaper(), Relay()
        await nursery.start(reaper.serve)
        await nursery.start(relay.serve)
        supervisor = Supervisor(
            nursery=nursery,
            reaper=reaper,
            relay=relay,
            state_file=tmp_path / "state" / "runs.json",
            run_task=agents.run_task,
        )
        scheduler = Scheduler(supervisor=supervisor, socket=tmp_path / "sock")
        await nursery.start(scheduler.serve)
        project = Project(
            paths=ProjectPaths(repo), hub=EventHub(), runs=supervisor, socket=scheduler.socket
        )
        await project.recover()
        scheduler.watch(project)
        yield World(project, scheduler, agents)
        for slug in list(agents.exits) + [run.slug for run in supervisor.runs.values()]:
            agents.exit(slug)
        nursery.cancel_scope.cancel()
        project.close()


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Mock time that jumps ahead only once the loop has been idle for 50 ms of real time:
    the task files and git are read in worker threads, which autojump's usual threshold
    (0) would count as idle, running the clock out under a test's feet."""
    return trio.testing.MockClock(autojump_threshold=0.05)


async def until(condition: Callable[[], object]) -> None:
    """Wait (in mock time, 10 s at most) until `condition()` holds: what it waits for is
    done in worker threads, which no trio event reports."""
    with trio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - see above
            await trio.sleep(0.001)


async def test_a_stop_returns_before_the_queued_task_it_frees_has_started(
    world: World, clock: trio.testing.MockClock
) -> None:
    """Stopping the running task returns once its own run is torn down and recorded, while
    the queued task it lets start is still in its setup (held here forever: a stop that
    waited for it would never return)."""
    await world.new("fast", "slow")
    world.agents.held["slow"] = trio.Event()
    assert await world.start("fast") is Status.RUNNING
    assert await world.start("slow") is Status.QUEUED

    with trio.fail_after(5):
        stopped = await world.scheduler.stop(world.project, "fast")
    assert (stopped["status"], stopped["stopped_agent"]) == ("stopped", True)
    assert stopped["end_reason"] == "stopped on request" and stopped["run"] is None
    await until(lambda: world.status("slow") is Status.RUNNING)
    assert world.agents.started == ["fast"]

    world.agents.held["slow"].set()
    await until(lambda: world.agents.started == ["fast", "slow"])


async def test_the_queue_is_served_in_the_order_tasks_were_queued(
    world: World, repo: Path, clock: trio.testing.MockClock
) -> None:
    """Tasks queued as 4, 2, 3 start in that order as slots free, and a fresh task service
    over the same files derives the same queue."""
    await world.new("t1", "t2", "t3", "t4")
    await world.start("t1")
    for slug in ("t4", "t2", "t3"):
        assert await world.start(slug) is Status.QUEUED
    fresh = TaskService(ProjectPaths(repo), world.project.log)
    await fresh.scan()
    assert fresh.queue() == world.project.tasks.queue() == [4, 2, 3]

    for running, following in (("t1", "t4"), ("t4", "t2"), ("t2", "t3")):
        world.agents.exit(running)
        await until(lambda: world.agents.started[-1] == following)  # noqa: B023 - awaited here
        assert world.status(running) is Status.STOPPED
    assert world.agents.started == ["t1", "t4", "t2", "t3"]
    assert world.project.tasks.queue() == []


async def test_a_report_frees_the_slot_while_the_agent_lives_on(
    world: World, clock: trio.testing.MockClock
) -> None:
    """A task reported complete holds no slot: the queued task starts while the completed
    task's agent still runs."""
    await world.new("done", "next")
    await world.start("done")
    await world.start("next")
    await world.project.set_status(
        api.SetStatusParams(project=world.project.root, task="done", status="complete")
    )
    await until(lambda: world.agents.started == ["done", "next"])
    assert world.project.run(1) is not None and world.status("done") is Status.COMPLETED


async def test_the_end_of_a_run_is_recorded_before_its_stop_returns(
    world: World, tmp_path: Path, clock: trio.testing.MockClock
) -> None:
    """When stop returns, the run's exit and reason are the task's, its file says stopped,
    and runs.json no longer lists it; an agent that exits by itself is recorded the same."""
    await world.new("a", "b")
    await world.start("a")
    records = tmp_path / "state" / "runs.json"
    assert len(json.loads(records.read_text())) == 1
    await world.scheduler.stop(world.project, "a")
    outcome = world.project.outcomes[1]
    assert (outcome.reason, world.status("a")) == ("stopped on request", Status.STOPPED)
    assert json.loads(records.read_text()) == {}

    await world.start("b")
    world.agents.exit("b")
    await until(lambda: world.status("b") is Status.STOPPED)
    assert world.project.outcomes[2].exit_code == 0
    assert world.project.outcomes[2].reason == "agent exited"


async def test_a_failed_start_fails_the_task_and_the_queue_goes_on(
    world: World, clock: trio.testing.MockClock
) -> None:
    """A queued task whose start fails is failed (its error kept in the log) and the next
    queued task takes the slot."""
    await world.new("first", "broken", "third")
    world.agents.broken.add("broken")
    await world.start("first")
    await world.start("broken")
    await world.start("third")
    world.agents.exit("first")
    await until(lambda: world.agents.started == ["first", "third"])
    assert world.status("broken") is Status.FAILED
    failed = [
        json.loads(line)
        for line in world.project.paths.log.read_text().splitlines()
        if '"task.start_failed"' in line
    ]
    assert [x["task_id"] for x in failed] == [2]


async def test_a_start_when_the_slots_are_full_is_refused_unless_draft(
    world: World, clock: trio.testing.MockClock
) -> None:
    """A stopped task started while the slots are full is refused, naming max_running; a
    draft one is queued; a task with a live agent cannot start twice."""
    await world.new("a", "b")
    await world.start("b")
    await world.scheduler.stop(world.project, "b")
    await world.start("a")
    with pytest.raises(OrchestraError, match="max_running"):
        await world.start("b")
    with pytest.raises(OrchestraError, match=r"already has a running agent|not allowed"):
        await world.start("a")
