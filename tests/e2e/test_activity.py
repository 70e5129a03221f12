"""A run's activity end to end: `orchestra hook` feeding a real daemon, the activity in
task.get and events, the lifecycle following it, session ids, the resume fallback, and
the front ends that list and attach to waiting tasks."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ptyprocess import PtyProcess

from tests.cli.test_fast import durations_masked
from tests.conftest import Env
from tests.daemon.wire import Raw, wait_until
from tests.e2e.support import Api, add_agent, configure, environ

pytestmark = pytest.mark.shared_daemon

# An agent whose hooks are Orchestra's own: the test plays its hooks with `orchestra hook`.
HOOKED = "import time\nprint('hooked ready', flush=True)\ntime.sleep(3600)\n"


HOOK_ENV = ("ORCHESTRA_SOCKET", "ORCHESTRA_TASK_ID", "ORCHESTRA_RUN_ID", "ORCHESTRA_PROJECT")


def hooked(api: Api, *slugs: str) -> dict[str, dict[str, str]]:
    """Start a task of the `hooked` agent per slug; return each one's hook environment."""
    configure(api.root, "idle_dwell = 0.2")
    add_agent(api.env, api.root, "hooked", HOOKED)
    configure(api.root, 'agents.hooked.hooks = "orchestra"')
    envs = {}
    for slug in slugs:
        api.new(slug, agent="hooked")
        api("task.start", task=slug)
        api.wait_output(slug, "hooked ready")
        agent = environ(api.pid(slug))
        envs[slug] = {k: agent[k] for k in HOOK_ENV}
    return envs


def hook(api: Api, env: dict[str, str], event: str, payload: Any) -> Any:
    """`orchestra hook EVENT` as an agent runs it, the payload on its stdin."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    proc = api.env.run("hook", event, input=text, extra=env, cwd=api.env.base)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    return proc


def activity(api: Api, slug: str) -> dict[str, Any]:
    run = api.get(slug)["run"]
    assert run is not None
    shown: dict[str, Any] = run["activity"]
    return shown


def wait_activity(api: Api, slug: str, what: str, reason: str | None = None) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        shown = activity(api, slug)
        ok = shown["activity"] == what and (reason is None or shown["reason"] == reason)
        return shown if ok else None

    return wait_until(check, lambda: f"{slug} {what} ({reason}); it is {activity(api, slug)}")


def test_hooks_move_the_activity_the_lifecycle_and_the_session(api: Api) -> None:
    """A hook's waiting makes the run waiting (an `activity` event, the task idle) and
    records its session id; a later hook's working makes it working and running again,
    and its other session id replaces the first (the latest wins)."""
    env = hooked(api, "alpha")["alpha"]
    assert activity(api, "alpha")["activity"] == "working"
    with Raw(api.env.socket) as events:
        assert events.request("events.subscribe", {"project": str(api.root)})["result"]
        before = time.time()
        hook(api, env, "waiting", {"reason": "question", "session_id": "sess-1"})
        shown = wait_activity(api, "alpha", "waiting", "question")
        assert shown["source"] == "hook" and before - 1 <= shown["since"] <= time.time()
        while (note := events.recv())["params"]["change"] != "activity":
            pass
        assert note["method"] == "events.task_changed"
        assert note["params"]["previous_activity"] == "working"
        assert note["params"]["task"]["run"]["activity"]["activity"] == "waiting"
    api.wait_status("alpha", "idle")
    assert api.get("alpha")["session_id"] == "sess-1"
    hook(api, env, "working", {"reason": "prompt", "session_id": "sess-2"})
    wait_activity(api, "alpha", "working", "prompt")
    api.wait_status("alpha", "running")
    assert api.get("alpha")["session_id"] == "sess-2"
    moves = [(e["previous"], e["status"], e["why"]) for e in api.events("task.status", 1)]
    assert ("running", "idle", "waiting: question (hook)") in moves
    assert ("idle", "running", "working: prompt (hook)") in moves


def test_input_answers_a_waiting_agent(api: Api) -> None:
    """The person's input to a waiting agent makes it working at once."""
    env = hooked(api, "alpha")["alpha"]
    hook(api, env, "waiting", {"reason": "permission"})
    wait_activity(api, "alpha", "waiting", "permission")
    api("task.send_input", task="alpha", text="y")
    assert wait_activity(api, "alpha", "working")["reason"] == "input"


def test_a_stale_marker_and_malformed_payloads_are_refused_and_logged(api: Api) -> None:
    """task.report refuses a run marker that names no live run of the task, and a payload
    that is no object (logged); `orchestra hook` with a payload that is no JSON exits 0
    silently and the daemon logs it; nothing of it moves the run."""
    env = hooked(api, "alpha")["alpha"]
    stale = api.error("task.report", task=1, run="0" * 32, event="waiting", payload={})
    assert stale.data["kind"] == "conflict" and "no longer heard" in stale.message
    marker = env["ORCHESTRA_RUN_ID"]
    wrong = api.error("task.report", task=2, run=marker, event="waiting", payload={})
    assert wrong.data["kind"] == "conflict"
    bad = api.error("task.report", task=1, run=marker, event="waiting", payload=[1])
    assert bad.data["kind"] == "invalid_params"
    odd = api.error("task.report", task=1, run=marker, event="no spaces", payload={})
    assert odd.data["kind"] == "invalid_params"
    hook(api, env, "waiting", "{not json")
    wait_until(lambda: len(api.events("task.report_malformed", 1)) >= 2, "two malformed logged")
    ignored = api("task.report", task=1, run=marker, event="Stop", payload={})
    assert ignored["accepted"] is False
    assert activity(api, "alpha")["activity"] == "working"


def test_the_hook_never_holds_an_agent_up(env: Env, tmp_path: Path) -> None:
    """With no daemon, with a daemon that never answers, outside a task: the hook exits 0,
    prints nothing, and returns within a second."""
    silent = tmp_path / "s"
    silent.mkdir(mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(silent / "sock"))
    listener.listen(1)  # accepts (in the kernel) and never answers
    task = {"ORCHESTRA_TASK_ID": "1", "ORCHESTRA_RUN_ID": "ab" * 16}
    cases = [
        {**task, "ORCHESTRA_SOCKET": str(tmp_path / "gone.sock")},
        {**task, "ORCHESTRA_SOCKET": str(silent / "sock")},
        {"ORCHESTRA_SOCKET": str(tmp_path / "gone.sock")},
    ]
    try:
        for extra in cases:
            start = time.monotonic()
            proc = env.run("hook", "waiting", input='{"reason": "question"}', extra=extra)
            took = time.monotonic() - start
            assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
            assert took < 1.0 + STARTUP, f"the hook took {took:.2f} s with {extra}"
    finally:
        listener.close()


STARTUP = 0.5  # what starting the interpreter may take on a loaded machine, beyond the budget


def test_the_demo_agent_goes_working_waiting_working(api: Api) -> None:
    """The demo agent reports as real agents do: working, then waiting (turn-done) when
    its first pass ends, waiting (question) when it asks, working on the answer, then
    waiting (turn-done) again; its session id is on the task."""
    configure(api.root, 'idle_dwell = 0.2\nagents.demo.env = {ORCHESTRA_DEMO_STEP_DELAY = "0.05"}')
    api.new("alpha", agent="demo")
    api("task.start", task="alpha")
    wait_activity(api, "alpha", "waiting", "turn-done")
    api.wait_status("alpha", "idle")
    assert api.get("alpha")["session_id"]
    api("task.send_input", task="alpha", text="ask\r")
    wait_activity(api, "alpha", "waiting", "question")
    api("task.send_input", task="alpha", text="Usage\r")
    api.wait_output("alpha", "the section is called Usage")
    wait_activity(api, "alpha", "waiting", "turn-done")
    changes = [(e["previous_activity"], e["activity"]) for e in api.events("task.activity", 1)]
    assert ("working", "waiting") in changes and ("waiting", "working") in changes


RESUMER = """\
import sys, time
if sys.argv[1:2] == ["resumed"]:
    print("no session", sys.argv[2], flush=True)
    sys.exit(1)
print("fresh start", flush=True)
time.sleep(3600)
"""


def test_a_resume_whose_session_is_gone_starts_afresh_and_says_so(api: Api) -> None:
    """A resume by a recorded id that fails at once is logged and shown, the id is
    forgotten, and the agent starts afresh with the profile's command, still running."""
    add_agent(api.env, api.root, "resumer", RESUMER, resume=("resumed", "{session_id}"))
    api.new("alpha", agent="resumer")
    api("task.start", task="alpha")
    api.wait_output("alpha", "fresh start")
    api("task.stop", task="alpha")
    api("task.session_set", task="alpha", session_id="gone-42")
    api("task.start", task="alpha")
    out = api.wait_output("alpha", "fresh start")
    assert "no session gone-42" in out
    task = api.get("alpha")
    assert task["status"] == "running" and task["session_id"] is None
    assert "gone-42" in task["run"]["resume_failed"]
    (failed,) = api.events("agent.resume_failed", 1)
    assert failed["session_id"] == "gone-42" and failed["exit_code"] == 1


def test_status_waiting_lists_the_longest_waiting_first(api: Api) -> None:
    """`status --waiting` lists only waiting tasks, the one that waited longest first, the
    same on the fast path and Typer's; --json gives the same tasks in the same order."""
    envs = hooked(api, "alpha", "beta", "gamma")
    hook(api, envs["beta"], "waiting", {"reason": "permission"})
    wait_activity(api, "beta", "waiting")
    hook(api, envs["alpha"], "waiting", {"reason": "question"})
    wait_activity(api, "alpha", "waiting")
    fast = api.cli("status", "--waiting")
    slow = api.env.run("status", "--waiting", cwd=api.root, extra={"ORCHESTRA_NO_FAST": "1"})
    assert fast.returncode == slow.returncode == 0
    lines = fast.stdout.splitlines()
    assert "ACTIVITY" in lines[0] and [line.split()[1] for line in lines[1:]] == ["beta", "alpha"]
    assert "! waiting: permission" in lines[1] and "gamma" not in fast.stdout
    assert durations_masked(fast.stdout) == durations_masked(slow.stdout)
    as_json = json.loads(api.cli("status", "--waiting", "--json").stdout)
    assert [t["slug"] for t in as_json["tasks"]] == ["beta", "alpha"]
    everyone = api.cli("status").stdout
    assert "gamma" in everyone and "working" in everyone


def test_status_waiting_says_when_none_waits(api: Api) -> None:
    """With no task waiting, `status --waiting` says so, and `attach --next` refuses in one
    line, exit 1."""
    hooked(api, "alpha")
    assert api.cli("status", "--waiting").stdout == "no task waits for you\n"
    refused = api.cli("attach", "--next")
    assert refused.returncode == 1 and "no task is waiting for you" in refused.stderr


def test_attach_next_attaches_to_the_longest_waiting(api: Api) -> None:
    """`attach --next` attaches a real terminal to the task that has waited longest."""
    envs = hooked(api, "alpha", "beta")
    hook(api, envs["beta"], "waiting", {"reason": "question"})
    wait_activity(api, "beta", "waiting")
    hook(api, envs["alpha"], "waiting", {"reason": "question"})
    wait_activity(api, "alpha", "waiting")
    term = PtyProcess.spawn(
        [sys.executable, "-m", "orchestra", "attach", "--next"],
        cwd=str(api.root),
        env={**api.env.vars, "TERM": "xterm-256color"},
        dimensions=(24, 80),
    )
    try:
        seen = b""
        deadline = time.monotonic() + 15
        while b"[attached to " not in seen:
            assert time.monotonic() < deadline, seen[-400:]
            if term.fd in select_ready(term.fd):
                seen += os.read(term.fd, 65536)
            if b"\x1b[c" in seen:
                os.write(term.fd, b"\x1b[?62;22c")  # the DA1 answer ends the client's query
                seen = seen.replace(b"\x1b[c", b"")
        assert b"2-beta has waited the longest" in seen and b"[attached to 2-beta" in seen
        os.write(term.fd, b"\x11")  # ctrl-q: detach
        term.wait()
    finally:
        if term.isalive():
            term.terminate(force=True)


def select_ready(fd: int) -> list[int]:
    import select

    return select.select([fd], [], [], 0.1)[0]


BELL = """\
import sys, time
print("ringing", flush=True)
time.sleep(0.3)
sys.stdout.write("\\a")
sys.stdout.flush()
time.sleep(3600)
"""


def test_the_bell_makes_an_agent_without_hooks_waiting(api: Api) -> None:
    """An agent with no hooks that rings the bell is waiting (reason bell, source osc)
    until the person types to it."""
    configure(api.root, "idle_dwell = 0.2")
    add_agent(api.env, api.root, "ringer", BELL)
    api.new("alpha", agent="ringer")
    api("task.start", task="alpha")
    shown = wait_activity(api, "alpha", "waiting", "bell")
    assert shown["source"] == "osc"
    api("task.send_input", task="alpha", text="x")
    wait_activity(api, "alpha", "working")
