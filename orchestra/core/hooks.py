"""What an agent's own hook says about its run, as one report (issue 17's contract).

`orchestra hook EVENT` passes the agent's event name and its JSON payload to the daemon
(`task.report`); the daemon reads them here, by the kind of hooks the run's profile
installs (`AgentProfile.hooks`). Each vendor names its events and shapes its payloads
its own way; this module is the one place that knows them (sources: docs/agents.md).

Pure: no I/O. An event we do not know, or a payload not shaped as documented, gives None:
the hook is a hint, and a wrong hint must never move a run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

Activity = Literal["working", "waiting", "exited"]
ACTIVITIES: Final = ("working", "waiting", "exited")

# The kinds of hooks a profile may install (AgentProfile.hooks); "" installs none.
# "orchestra": our own protocol, for the demo agent and custom profiles: EVENT is the
# activity itself and the payload may carry "reason" and "session_id".
KINDS: Final = ("", "orchestra", "claude", "codex", "gemini", "opencode", "aider")


@attrs.frozen
class Report:
    """One hook's meaning. `activity` None: the event tells nothing of the activity (it
    may still carry a session id, e.g. a session start)."""

    activity: Activity | None
    reason: str = ""  # e.g. "permission", "turn-done", "question", "prompt", "tool"
    session_id: str | None = None


def interpret(kind: str, event: str, payload: Mapping[str, Any]) -> Report | None:
    """The report of one hook of a profile of `kind`, or None when it means nothing."""
    if kind == "orchestra":
        return _orchestra(event, payload)
    return None


def _text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None


def _orchestra(event: str, payload: Mapping[str, Any]) -> Report | None:
    if event not in ACTIVITIES:
        return None
    activity: Activity = event  # type: ignore[assignment]  # checked just above
    return Report(activity, _text(payload, "reason") or "", _text(payload, "session_id"))
