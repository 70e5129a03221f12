"""What a client knows without asking the daemon: the project, the user's settings, the socket.

Every front end (the CLI, the MCP bridge, the dashboard) starts here: find the project
around a directory, read the config layers it needs itself (the socket, `autostart`,
`confirm`, `detach_keys`), connect (autostarting the daemon where allowed), and make a
repository a project (`init_project`, which needs no daemon). The daemon validates
the rest of the config itself; `effective_config` validates it all, for display.

Stdlib only on the way to a call (the CLI's fast path): `tomllib` only when a config
file exists, git and cattrs only for `init_project` and `effective_config`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestra.adapters import config_files, paths
from orchestra.client.connection import Client
from orchestra.client.lifecycle import connect, inside_agent
from orchestra.core import remote
from orchestra.core.errors import ConfigError, NotAProject, OrchestraError

HOST_VAR = "ORCHESTRA_HOST"

Layers = list[tuple[str, dict[str, Any]]]


def find_project(start: Path) -> Path:
    """The project root holding `start`: the nearest dir with `.orchestra/`.

    Inside a task's worktree (`<root>/.orchestra/worktrees/<stem>/...`) that is the
    outer project, not a `.orchestra/` the worktree checked out of git.
    """
    start = start.resolve()
    parts = start.parts
    for i in range(len(parts) - 1, 0, -1):
        if parts[i] == "worktrees" and parts[i - 1] == paths.DOT:
            return Path(*parts[: i - 1])
    for candidate in (start, *start.parents):
        if (candidate / paths.DOT).is_dir():
            return candidate
    raise NotAProject(
        f"{start} is not inside an Orchestra project: run `orchestra init` in a git repository",
        path=str(start),
    )


class Local:
    """One front end's view of the user's side: the daemon's host (`target`; None for
    this machine's), `project` (given, else the host's default, else the one around the
    working directory), the config layers, the socket. Read lazily, each once."""

    def __init__(
        self,
        project: Path | None,
        environ: Mapping[str, str] = os.environ,
        host: str | None = None,
    ) -> None:
        self.environ = environ
        self._project_arg = project
        self._host_arg = host
        self._project: Path | None = None
        self._layers: Layers | None = None
        self._global: Layers | None = None
        self._target: tuple[remote.Target | None] | None = None

    @property
    def target(self) -> remote.Target | None:
        """The host whose daemon we talk to, None for this machine's: `--host`, else
        ORCHESTRA_HOST, else `host` in the config of the project around the working
        directory (when no project is given), else in the global config. `local` is this
        machine whatever the defaults say."""
        if self._target is None:
            self._target = (self._find_target(),)
        return self._target[0]

    @property
    def host_named(self) -> bool:
        """Whether a host was named for this command (--host or ORCHESTRA_HOST), not only
        set as a default in a config file."""
        return bool(self._host_arg or self.environ.get(HOST_VAR))

    def _find_target(self) -> remote.Target | None:
        name = self._host_arg or self.environ.get(HOST_VAR)
        if not name and inside_agent(self.environ):
            return None  # an agent's own daemon is the one that runs it, whatever the default
        global_layers = self.global_layers()
        if not name and self._project_arg is None:
            with contextlib.suppress(OrchestraError):
                here = config_files.raw_layers(find_project(Path.cwd()), self.environ)
                name = config_files.light_value(here, "host", str, None)
        if not name:
            name = config_files.light_value(global_layers, "host", str, None)
        if not name or name == remote.LOCAL:
            return None
        hosts = config_files.light_value(global_layers, "hosts", dict, {})
        ssh = config_files.light_value(global_layers, "ssh", list, ["ssh"])
        return remote.target(name, hosts, ssh)

    @property
    def project(self) -> Path:
        """The project root (NotAProject when there is none around it). On another host:
        the path given, else the host's `project`, as the host knows it."""
        if self._project is None:
            t = self.target
            if t is not None:
                self._project = remote_project(t, self._project_arg)
            else:
                self._project = find_project(self._project_arg or Path.cwd())
        return self._project

    def layers(self) -> Layers:
        """The config layers the client reads itself (`autostart`, `confirm`, `detach_keys`).
        A project config that does not parse is left out, not fatal: read commands go on
        (the daemon reports it with their results), the others fail in the daemon."""
        if self._layers is None:
            project = None
            if self.target is None:  # another host's project config is that host's
                with contextlib.suppress(OrchestraError):
                    project = self.project
            try:
                self._layers = config_files.raw_layers(project, self.environ)
            except ConfigError:
                if project is None:
                    raise  # the global file: without it there is no socket to trust
                self._layers = config_files.raw_layers(None, self.environ)
        return self._layers

    def setting(self, key: str, kind: type, default: Any) -> Any:
        """The topmost value of `key` of the right type, else `default` (the daemon
        validates the config; a client only takes what it can use)."""
        return config_files.light_value(self.layers(), key, kind, default)

    @property
    def socket(self) -> Path:
        """The daemon's socket. A per-user daemon: it comes from the global file and the
        environment only, so a connected call never reads (or parses) the project's config."""
        return config_files.socket_path(self.global_layers(), self.environ)

    def global_layers(self) -> Layers:
        """The global file's and the environment's layers (no project's), read once: the
        socket, the host and the ssh settings all come from them."""
        if self._global is None:
            self._global = config_files.raw_layers(None, self.environ)
        return self._global

    @property
    def state_dir(self) -> Path:
        """Where a started daemon's output goes (`daemon.out`)."""
        return paths.state_home(self.environ)

    @property
    def autostart(self) -> bool:
        return bool(self.setting("autostart", bool, True))

    def connect(self, *, start: bool = True) -> Client:
        """A connected client, the daemon started first if it is not running, `start` is
        set and autostart allows it (on another host, its bridge does that, by that
        host's settings)."""
        t = self.target
        if t is not None:
            from orchestra.client.remote import open_link

            return Client.over(*open_link(t, control_dir=self.control_dir, start=start))
        return connect(self.socket, autostart=start and self.autostart, log_dir=self.state_dir)

    @property
    def control_dir(self) -> Path:
        """Where shared ssh connections live: beside the daemon's socket, as private."""
        return self.socket.parent / "ssh"

    def detach_keys(self) -> tuple[str, bytes]:
        """The detach keys as configured ("ctrl-b,d") and as the bytes they send; a spec
        that does not parse is a ConfigError naming it."""
        from orchestra.core.detach import DEFAULT_DETACH_KEYS, parse_detach_keys

        spec = str(self.setting("detach_keys", str, DEFAULT_DETACH_KEYS))
        try:
            return spec, parse_detach_keys(spec)
        except ValueError as exc:
            raise ConfigError(str(exc), key="detach_keys") from None

    def effective_config(self) -> tuple[Path | None, list[dict[str, Any]]]:
        """(the project, if any; every key, its value and where it came from), validated."""
        from orchestra.core.config import describe

        project = None
        with contextlib.suppress(OrchestraError):
            project = self.project
        return project, describe(config_files.load(project, self.environ))


def remote_project(t: remote.Target, given: Path | None) -> Path:
    """The project on host `t`: the path given (as the host knows it: absolute, since no
    working directory of ours means anything there), else the host's `project`."""
    raw = str(given) if given is not None else t.project
    if raw is None:
        raise NotAProject(
            f"which project on {t.name}? give its path there (-C /path/on/{t.name}), or set"
            f" hosts.{t.name}.project in the global config",
            host=t.name,
        )
    if not raw.startswith("/"):
        raise NotAProject(
            f"a project on {t.name} is given by its absolute path there, not {raw!r}",
            host=t.name,
            path=raw,
        )
    return Path(raw)


CONFIG_TEMPLATE = """\
# Orchestra project config. Values here override ~/.config/orchestra/config.toml;
# ORCHESTRA_SOCKET, ORCHESTRA_LOG and ORCHESTRA_DETACH_KEYS override both.
# Every key is optional; the commented values are the defaults.
# `orchestra config` shows the effective values and where each comes from.

# log_level = "info"        # off | warn | info | debug | trace (.orchestra/logs.jsonl)
# idle_timeout = 30.0       # seconds without agent output before a task is idle
# idle_dwell = 3.0          # seconds of output before an idle task counts as running again
# max_running = 4           # agents running at once; more starts are queued
# confirm = "ask"           # destructive commands: ask | yes (never ask) | no (always need -y)
# detach_keys = "ctrl-q"    # keys that detach from an agent's terminal (or "ctrl-b,d")
# default_agent = "claude"  # claude | codex | opencode | gemini | aider | shell | demo
# base_branch = "main"      # branch new tasks start from (default: the current branch)
# autostart = true          # start the daemon when a command needs it

# setup = []               # argv run in each new worktree before the agent, no shell:
#                           #   e.g. setup = ["npm", "ci"]
# teardown = []             # argv run before a task's worktree is removed
# stop_grace = 5.0          # seconds between SIGTERM and SIGKILL when stopping an agent
# port_base = 20000         # ORCHESTRA_PORT of task 1; each task gets port_block ports
# port_block = 10

# [merge]                   # orchestra merge
# strategy = "squash"       # squash | merge | rebase
# cleanup = true            # afterwards: teardown, remove the worktree, delete the branch

# [agents.claude]           # override one field of a built-in agent (docs/agents.md)
# env = { CLAUDE_CODE_USE_BEDROCK = "1" }
# [agents.mine]             # or add one: {prompt} {session_id} {python} {shell}
# command = ["my-agent", "--session", "{session_id}", "--", "{prompt}"]
# resume = ["my-agent", "--resume", "{session_id}"]
"""

IGNORED = (
    "/.orchestra/worktrees/",
    "/.orchestra/logs.jsonl",
    "/.orchestra/.lock",
    "/.orchestra/next_id",  # this clone's id counter: ids come from the task files too
    "/.orchestra/.*.tmp",
)
HEADER = "# orchestra: local files"


def _ensure_lines(file: Path, lines: tuple[str, ...]) -> list[str]:
    """Append the lines `file` lacks (idempotent); return those added."""
    text = file.read_text() if file.exists() else ""
    existing = text.splitlines()
    missing = [line for line in lines if line not in existing]
    if missing:
        if text and not text.endswith("\n"):
            text += "\n"
        if HEADER not in existing:
            text += HEADER + "\n"
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text + "\n".join(missing) + "\n")
    return missing


def init_project(cwd: Path, *, gitignore: bool) -> dict[str, Any]:
    """Make the git repository around `cwd` a project (safe to run again): `.orchestra/`
    (config.toml with commented defaults, tasks/, worktrees/) at the root of its main
    checkout, 0700, and Orchestra's local files ignored (in .gitignore with `gitignore`,
    else in .git/info/exclude). Returns what it did: project, dot, created, ignored_in,
    ignore_added."""
    from orchestra.adapters import git

    root = git.toplevel(cwd)
    p = paths.ProjectPaths(root)
    created = []
    for d in (p.dot, p.tasks, p.worktrees):
        if not d.is_dir():
            d.mkdir(mode=0o700)  # the user's alone, as all Orchestra writes
            created.append(str(d))
    if not p.config.exists():
        fd = os.open(p.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(CONFIG_TEMPLATE)
        created.append(str(p.config))
    ignore_file = root / ".gitignore" if gitignore else git.git_path(root, "info/exclude")
    added = _ensure_lines(ignore_file, IGNORED)
    return {
        "project": str(root),
        "dot": str(p.dot),
        "created": created,
        "ignored_in": str(ignore_file),
        "ignore_added": added,
    }
