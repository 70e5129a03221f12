"""Agents' hooks on disk: a run's own directory, what we read of the user's setup, cleanup.

core/hooks.py decides what a run needs (argv, environment, files); this writes the files
in the daemon's state directory (`$XDG_STATE_HOME/orchestra/runs/RUN_ID/`, 0700), never
in the worktree or the user's home, and reads (never writes) the user's own agent
settings that ours must add to rather than replace. The directory goes when the run ends.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from orchestra.adapters import paths
from orchestra.adapters.store import write_atomic
from orchestra.core import hooks
from orchestra.core.agents import Launch

log = logging.getLogger("orchestra.daemon")


def run_dir(run_id: str, environ: Mapping[str, str] = os.environ) -> Path:
    """The directory of one run's hook files (it may not exist)."""
    return paths.state_home(environ) / "runs" / run_id


def hook_argv(python: str) -> list[str]:
    """The hook command without its EVENT: `orchestra hook` on the daemon's Python."""
    return [python, "-m", "orchestra", "hook"]


def install(
    spec: Launch,
    kind: str,
    *,
    run_id: str,
    python: str,
    environ: Mapping[str, str] = os.environ,
) -> Launch:
    """`spec` with the hooks of `kind` installed for run `run_id`: its files written, its
    arguments and environment added. Kinds that need nothing give `spec` back."""
    where = run_dir(run_id, environ)
    env = {**environ, **spec.env}
    plan = hooks.install(kind, hook_argv(python), where, found(kind, env))
    if plan.files:
        paths.private_dir(where)
        for name, text in plan.files.items():
            write_atomic(where / name, text)
    if not plan.args and not plan.env:
        return spec
    return attrs.evolve(
        spec, argv=hooks.add_args(spec.argv, plan.args), env={**spec.env, **plan.env}
    )


def remove(run_id: str, environ: Mapping[str, str] = os.environ) -> None:
    """Remove a run's hook files (nothing if it had none)."""
    shutil.rmtree(run_dir(run_id, environ), ignore_errors=True)


def found(kind: str, environ: Mapping[str, str]) -> hooks.Found:
    """What of the user's own setup our hooks of `kind` must keep (read only)."""
    if kind == "gemini":
        return hooks.Found(gemini_defaults=_json_file(gemini_defaults_path(environ)))
    if kind == "codex":
        return hooks.Found(codex_notify=_codex_notify(environ))
    if kind == "opencode":
        return hooks.Found(opencode_config=environ.get(hooks.OPENCODE_VAR))
    return hooks.Found()


def gemini_defaults_path(environ: Mapping[str, str]) -> Path:
    """Where Gemini CLI reads its system defaults (its `getSystemDefaultsPath`, 0.61.0)."""
    if environ.get(hooks.GEMINI_DEFAULTS_VAR):
        return Path(environ[hooks.GEMINI_DEFAULTS_VAR])
    if environ.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH"):
        system = Path(environ["GEMINI_CLI_SYSTEM_SETTINGS_PATH"])
    elif sys.platform == "darwin":
        system = Path("/Library/Application Support/GeminiCli/settings.json")
    else:
        system = Path("/etc/gemini-cli/settings.json")
    return system.parent / "system-defaults.json"


def _json_file(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning(
            f"gemini system defaults {path} not kept beside Orchestra's hooks: {exc}",
            extra={"event": "hooks.unreadable", "path": str(path)},
        )
        return None
    return data if isinstance(data, dict) else None


def _codex_notify(environ: Mapping[str, str]) -> bool:
    """Whether the user's Codex config sets its own `notify` program."""
    home = environ.get("CODEX_HOME") or str(Path(environ.get("HOME") or "~") / ".codex")
    try:
        data = tomllib.loads((Path(home) / "config.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(data.get("notify"))
