"""The task state machine: every ordered pair of states, allowed or refused."""

from __future__ import annotations

import itertools

import pytest

from orchestra.core.errors import EXIT_INVALID_STATE, InvalidTransition, OrchestraError
from orchestra.core.states import (
    ACTIVE,
    ALLOWED,
    REPORTABLE,
    TRANSITIONS,
    Status,
    allowed_moves,
    check_transition,
    transition_table_markdown,
)

# The table from issue 2, written out again by hand so a change to TRANSITIONS shows up here:
#   draft -> queued | running; queued -> running | draft; running <-> idle;
#   running | idle -> stopped; stopped | failed -> running;
#   running | idle | stopped -> completed | failed; completed -> reviewed;
#   completed | reviewed -> running; completed | reviewed -> merged;
# and from issue 5: stopped | failed -> merged (`merge --force`).
EXPECTED: frozenset[tuple[str, str]] = frozenset(
    {
        ("draft", "queued"),
        ("draft", "running"),
        ("queued", "running"),
        ("queued", "draft"),
        ("running", "idle"),
        ("idle", "running"),
        ("running", "stopped"),
        ("idle", "stopped"),
        ("stopped", "running"),
        ("failed", "running"),
        ("running", "completed"),
        ("idle", "completed"),
        ("stopped", "completed"),
        ("running", "failed"),
        ("idle", "failed"),
        ("stopped", "failed"),
        ("completed", "reviewed"),
        ("completed", "running"),
        ("reviewed", "running"),
        ("completed", "merged"),
        ("reviewed", "merged"),
        ("stopped", "merged"),
        ("failed", "merged"),
    }
)

STATE_NAMES = (
    "draft",
    "queued",
    "running",
    "idle",
    "stopped",
    "completed",
    "failed",
    "reviewed",
    "merged",
)

ALL_PAIRS = list(itertools.product(Status, Status))


def test_status_values_are_the_documented_states() -> None:
    """The enum holds exactly the nine states the issue names, spelled as on the wire."""
    assert [s.value for s in Status] == list(STATE_NAMES)


def test_table_matches_issue() -> None:
    """TRANSITIONS holds exactly the issue's pairs, each once, each with a cause."""
    pairs = [(str(src), str(dst)) for src, dst, _ in TRANSITIONS]
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == EXPECTED
    assert all(why.strip() for _, _, why in TRANSITIONS)


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_every_pair(current: Status, target: Status) -> None:
    """A move passes exactly when the issue's table lists it, else names the state and the moves."""
    if (current.value, target.value) in EXPECTED:
        check_transition(current, target)
        return
    with pytest.raises(InvalidTransition) as info:
        check_transition(current, target, task="task 3-fix-login")
    err = info.value
    allowed = sorted(dst for src, dst in EXPECTED if src == current.value)
    assert err.message.startswith(f"task 3-fix-login is {current.value};")
    assert f"cannot become {target.value}" in err.message
    if allowed:
        assert all(move in err.message for move in allowed)
    else:
        assert "none (final state)" in err.message
    assert err.data["current"] == current.value
    assert err.data["target"] == target.value
    assert sorted(err.data["allowed"]) == allowed


def test_no_state_may_stay_where_it_is() -> None:
    """Moving a task to the state it already has is refused, for every state."""
    for state in Status:
        with pytest.raises(InvalidTransition):
            check_transition(state, state)


def test_merged_is_final() -> None:
    """Nothing leaves `merged`, and the refusal says so."""
    assert allowed_moves(Status.MERGED) == []
    with pytest.raises(InvalidTransition, match=r"none \(final state\)"):
        check_transition(Status.MERGED, Status.RUNNING)


def test_allowed_and_allowed_moves_agree() -> None:
    """ALLOWED and allowed_moves() give the same set for every state, in table order."""
    for state in Status:
        moves = allowed_moves(state)
        assert set(moves) == ALLOWED[state]
        assert moves == [dst for src, dst, _ in TRANSITIONS if src is state]


def test_invalid_transition_is_an_orchestra_error_with_stable_codes() -> None:
    """A refused move carries the invalid-state exit code and its JSON-RPC code on the wire."""
    with pytest.raises(InvalidTransition) as info:
        check_transition(Status.DRAFT, Status.MERGED)
    err = info.value
    assert isinstance(err, OrchestraError)
    assert err.exit_code == EXIT_INVALID_STATE
    wire = err.to_wire()
    assert wire["code"] == -32002
    assert wire["data"]["kind"] == "invalid_transition"
    assert wire["data"]["allowed"] == ["queued", "running"]


def test_default_task_name_in_message() -> None:
    """Without a task name the message still reads as a sentence about 'the task'."""
    with pytest.raises(InvalidTransition, match=r"^the task is draft; it cannot become idle"):
        check_transition(Status.DRAFT, Status.IDLE)


def test_active_states() -> None:
    """Only running and idle hold a running slot."""
    assert frozenset({Status.RUNNING, Status.IDLE}) == ACTIVE


def test_reportable_words() -> None:
    """task.set_status accepts exactly idle, complete, fail and reviewed, each naming its state."""
    assert REPORTABLE == {
        "idle": Status.IDLE,
        "complete": Status.COMPLETED,
        "fail": Status.FAILED,
        "reviewed": Status.REVIEWED,
    }


def test_every_reportable_state_is_reachable() -> None:
    """Each state a report can ask for is the target of at least one move in the table."""
    targets = {dst for _, dst, _ in TRANSITIONS}
    assert set(REPORTABLE.values()) <= targets


def test_markdown_table_quotes_every_transition() -> None:
    """The docs table has a header, then one row per transition in table order."""
    text = transition_table_markdown()
    assert text.endswith("\n")
    lines = text.splitlines()
    assert lines[:2] == ["| from | to | when |", "| --- | --- | --- |"]
    rows = lines[2:]
    assert len(rows) == len(TRANSITIONS)
    for row, (src, dst, why) in zip(rows, TRANSITIONS, strict=True):
        assert row == f"| {src.value} | {dst.value} | {why} |"
    parsed = {tuple(cell.strip() for cell in row.strip("|").split("|")[:2]) for row in rows}
    assert parsed == EXPECTED
