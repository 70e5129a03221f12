"""Orchestra: parallel AI coding agents, one git worktree each, under one daemon."""

__version__ = "0.1.0"
