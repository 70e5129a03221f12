"""Whether an agent's screen shows it waiting for the person (issue 17).

The fallback where an agent's hooks are missing or miss a moment: a profile's patterns
(`AgentProfile.screen_patterns`, built in per agent and configurable in `[agents.NAME]`),
matched on the terminal model's screen text (not the byte stream, where a prompt arrives
in pieces and cursor moves). The first pattern found wins. Pure: no I/O.
"""

from __future__ import annotations

import re
from functools import lru_cache

from orchestra.core.agents import AgentProfile


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.MULTILINE)


def waiting_reason(profile: AgentProfile, text: str) -> str | None:
    """The reason the screen `text` shows the agent waiting (e.g. "permission"), or None."""
    for item in profile.screen_patterns:
        if _compiled(item.pattern).search(text):
            return item.reason
    return None
