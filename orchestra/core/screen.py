"""Whether an agent's screen shows it waiting for the person (issue 17's contract).

The fallback where an agent's hooks are missing or miss a moment: a profile's patterns,
matched on the terminal model's screen text (not the byte stream, where a prompt arrives
in pieces and cursor moves). Pure: no I/O.
"""

from __future__ import annotations

from orchestra.core.agents import AgentProfile


def waiting_reason(profile: AgentProfile, text: str) -> str | None:
    """The reason the screen `text` shows the agent waiting (e.g. "permission"), or None."""
    return None
