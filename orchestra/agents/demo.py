"""The `demo` agent: a small terminal program that behaves like a TUI coding agent.

It lets every Orchestra feature run without API keys. It takes the alternate
screen, draws a title, a log, a status line and an input line, "works" on its
prompt for a few steps (writing DEMO_NOTES.md in its current directory and
committing it there), then waits for input with its own line editing:

    done [SUMMARY]   report the task complete through the daemon's API
    fail [SUMMARY]   report it failed
    idle             report it idle
    ask              it asks you a question; your next line is the answer
    quit, exit, ^D   exit 0
    anything else    another step of work: a note, a commit and a reply

Inside a task it reports what it does as real agents' hooks do, through `orchestra hook`
(the profile's hooks are "orchestra": the event is the activity): `working` when it
works (with its session id), `waiting` with reason `question` when it asks, and
`waiting` with reason `turn-done` when a turn ends.

    python -m orchestra.agents.demo [--resume SESSION_ID] [PROMPT...]

Environment: ORCHESTRA_SOCKET, ORCHESTRA_PROJECT, ORCHESTRA_TASK_ID and
ORCHESTRA_TASK_SLUG (set by the daemon); ORCHESTRA_DEMO_STEP_DELAY (seconds
per step, default 0.5); ORCHESTRA_DEMO_EXIT=N (exit with N right after the
work). SIGTERM, SIGHUP and SIGINT restore the terminal and exit 128+signal.

Stdlib only, and orchestra.client is imported only to report, so it starts fast.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

NOTES = "DEMO_NOTES.md"
WORK = (
    "reading the task",
    "looking around the worktree",
    "planning the change",
    f"writing {NOTES}",
    "checking the result",
)
WAITING = "waiting for input — type `done` to finish"
QUESTION = "Which name should the new section have? (type your answer)"
REPORTS = {"done": "complete", "fail": "fail", "idle": "idle"}
# Arrow keys, function keys and other escape sequences: this line editor ignores them.
ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|O.|.)?", re.DOTALL)
# Used only for the identity git has no value for: the user's config and GIT_* env win.
FALLBACK_IDENTITY = {"user.name": "Orchestra demo", "user.email": "demo@orchestra.invalid"}
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
N = TypeVar("N", int, float)
USAGE = "usage: python -m orchestra.agents.demo [--resume SESSION_ID] [PROMPT...]\n"


class GitError(Exception):
    """A git command failed; the message is git's last line of complaint."""


class Screen:
    """A title, a scrolling log, a status line and an input line, redrawn in place."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.log: list[str] = []  # every line ever logged; the screen shows the tail
        self.status = ""
        self.input = ""
        self.cursor = False  # shown only while waiting for input

    def write(self, text: str) -> None:
        sys.stdout.buffer.write(text.encode("utf-8", "replace"))
        sys.stdout.buffer.flush()

    def add(self, text: str) -> None:
        self.log.extend(text.splitlines() or [""])
        self.draw()

    def set_status(self, status: str, *, cursor: bool = False) -> None:
        self.status, self.cursor = status, cursor
        self.draw()

    def draw(self) -> None:
        cols, rows = terminal_size()
        body = rows - 4  # title, rule, ..., status, input
        shown: list[str] = []  # the tail of the log, long lines wrapped
        for line in reversed(self.log):
            shown[:0] = [line[i : i + cols] for i in range(0, len(line), cols)] or [""]
            if len(shown) >= body:
                break
        shown = shown[-body:]
        parts = [
            "\x1b[?25l",
            f"\x1b[1;1H\x1b[1m{self.title[:cols]}\x1b[0m\x1b[K",
            f"\x1b[2;1H\x1b[2m{'─' * cols}\x1b[0m",
        ]
        for i in range(body):
            line = shown[i] if i < len(shown) else ""
            parts.append(f"\x1b[{3 + i};1H{line}\x1b[K")
        parts.append(f"\x1b[{rows - 1};1H\x1b[7m{self.status[:cols].ljust(cols)}\x1b[0m")
        self.write("".join(parts))
        self.draw_input()

    def draw_input(self) -> None:
        cols, rows = terminal_size()
        line = f"> {self.input}"
        if len(line) >= cols:
            line = "…" + line[len(line) - cols + 2 :]
        show = "\x1b[?25h" if self.cursor else ""
        self.write(f"\x1b[{rows};1H{line}\x1b[K{show}")


class Agent:
    def __init__(self, prompt: str, resume: str | None) -> None:
        self.prompt = prompt
        self.resume = resume
        ref = "-".join(
            filter(None, (os.environ.get(k) for k in ("ORCHESTRA_TASK_ID", "ORCHESTRA_TASK_SLUG")))
        )
        self.label = f"demo agent · task {ref}" if ref else "demo agent · no task"
        self.screen = Screen(f"✻ Orchestra demo agent — {ref or 'no task'}")
        self.notes = Path.cwd() / NOTES
        self.in_repo = False
        # No signing: a passphrase prompt would land in the middle of this screen.
        self.options = ["-c", "commit.gpgsign=false"]  # for git commit; check_repo adds more
        self.commits = 0
        self.delay = 0.5  # seconds per step of "work"
        self.resized = False  # set by SIGWINCH, redrawn by the input loop
        self.session = resume or uuid.uuid4().hex  # reported with its hooks
        self.asking = False  # it asked a question: the next line is the answer

    # --- the session ---------------------------------------------------------

    def run(self, fd: int) -> int:
        self.status("starting…")
        self.delay = max(self.env_number("ORCHESTRA_DEMO_STEP_DELAY", float, 0.5) or 0.0, 0.0)
        exit_code = self.env_number("ORCHESTRA_DEMO_EXIT", int, None)
        self.work()
        if exit_code is not None:
            self.screen.add(f"exiting with status {exit_code} (ORCHESTRA_DEMO_EXIT)")
            return exit_code
        return self.interact(fd)

    def work(self) -> None:
        self.status("working…")
        hook("working", reason="prompt", session_id=self.session)
        if self.resume:
            self.screen.add(f"Resuming session {self.resume}.")
        self.screen.add(f"Task: {self.prompt or '(no prompt)'}")
        self.check_repo()
        heading = self.prompt or (f"resumed session {self.resume}" if self.resume else "no prompt")
        self.note(f"\n## {heading}\n")
        for number, step in enumerate(WORK, 1):
            if self.delay:
                time.sleep(self.delay)
            self.note(f"- step {number}: {step}")
            self.screen.add(f"  ✓ {step}")
        self.commit(f"demo: {first_line(self.prompt) or 'notes'}")
        self.screen.add("Finished the first pass. Tell me more, or type `done`.")
        hook("waiting", reason="turn-done")

    def interact(self, fd: int) -> int:
        """Read keys until quit, exit or end of input; return the exit status."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.status(WAITING)
        while True:
            ready, _, _ = select.select([fd, wake_r], [], [])
            if wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 512)
                if self.resized:
                    self.resized = False
                    self.screen.draw()
            if fd not in ready:
                continue
            data = os.read(fd, 4096)
            if not data:
                return 0
            for char in ESCAPES.sub("", decoder.decode(data)):
                code = self.key(char)
                if code is not None:
                    return code

    def key(self, char: str) -> int | None:
        screen = self.screen
        if char in "\r\n":
            line, screen.input = screen.input.strip(), ""
            screen.draw_input()
            return self.submit(line) if line else None
        if char in "\x7f\x08":
            screen.input = screen.input[:-1]
        elif char == "\x15":  # ^U
            screen.input = ""
        elif char == "\x04":  # ^D on an empty line
            return 0 if not screen.input else None
        elif char == "\x03":  # ^C when the terminal sends it as a key
            return 128 + signal.SIGINT
        elif char.isprintable():
            screen.input += char
        screen.draw_input()
        return None

    def submit(self, line: str) -> int | None:
        self.screen.add(f"> {line}")
        word, _, rest = line.partition(" ")
        if self.asking:
            self.asking = False
            self.reply(f"the section is called {line}")
            return None
        if word.lower() in ("quit", "exit"):
            return 0
        if word.lower() == "ask":
            self.asking = True
            self.screen.add(QUESTION)
            hook("waiting", reason="question")
            return None
        if word.lower() in REPORTS:
            self.report(REPORTS[word.lower()], rest.strip())
        else:
            self.reply(line)
        return None

    def reply(self, line: str) -> None:
        self.status("working…")
        hook("working", reason="prompt")
        if self.delay:
            time.sleep(self.delay)
        self.note(f"- reply: {line}")
        self.screen.add(f"  ✓ noted in {NOTES}")
        self.commit(f"demo: {first_line(line)}")
        self.screen.add(f"Done: “{line}” is in {NOTES}. Anything else? (`done` to finish)")
        self.status(WAITING)
        hook("waiting", reason="turn-done")

    def report(self, status: str, summary: str) -> None:
        default = {
            "complete": f"demo agent finished: {self.commits} commit(s), notes in {NOTES}",
            "fail": "demo agent gave up, as asked",
            "idle": "demo agent is waiting for input",
        }
        try:
            task = report_status(status, summary or default[status])
        except Exception as exc:  # whatever went wrong, say it and keep running
            self.screen.add(f"  ✗ could not report {status}: {exc}")
        else:
            ref, now = task.get("ref"), task.get("status")
            self.screen.add(f"  ✓ reported {status}: task {ref} is now {now}")
        self.status(WAITING)
        hook("waiting", reason="turn-done")

    # --- helpers -------------------------------------------------------------

    def status(self, text: str) -> None:
        self.screen.set_status(f"{self.label} · {text}", cursor=text == WAITING)

    def env_number(self, name: str, kind: Callable[[str], N], default: N | None) -> N | None:
        raw = os.environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return kind(raw)
        except ValueError:
            self.screen.add(f"ignoring {name}={raw!r}: expected a number")
            return default

    def note(self, line: str) -> None:
        try:
            with self.notes.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            self.screen.add(f"  ✗ cannot write {self.notes}: {exc.strerror}")

    def check_repo(self) -> None:
        try:
            self.in_repo = git("rev-parse", "--is-inside-work-tree").strip() == "true"
        except GitError:
            self.in_repo = False
        if not self.in_repo:
            self.screen.add(f"{Path.cwd()} is not a git repository: nothing will be committed.")
            return
        for key, value in FALLBACK_IDENTITY.items():
            try:
                git("config", "--get", key)
            except GitError:
                self.options += ["-c", f"{key}={value}"]

    def commit(self, message: str) -> None:
        if not self.in_repo:
            return
        try:
            git("add", "--", NOTES)
            git(*self.options, "commit", "-q", "-m", message, "--", NOTES)
            sha = git("rev-parse", "--short", "HEAD").strip()
        except GitError as exc:
            self.screen.add(f"  ✗ git: {exc}")
            return
        self.commits += 1
        self.screen.add(f"  ✓ committed {sha}: {message}")


def terminal_size() -> tuple[int, int]:
    """Columns and rows of our terminal (80x24 when it has none), at least 10x5."""
    try:
        cols, rows = os.get_terminal_size(sys.stdout.fileno())
    except (OSError, ValueError):
        cols, rows = 0, 0
    return max(cols or 80, 10), max(rows or 24, 5)


def git(*args: str) -> str:
    with STOP.deferred():
        try:
            proc = subprocess.run(
                ["git", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True
            )
        except OSError as exc:
            raise GitError(f"cannot run git ({exc.strerror})") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(lines[-1] if lines else f"git {args[0]} exited {proc.returncode}")
    return proc.stdout


def hook(event: str, **payload: str) -> None:
    """Report the activity as an agent's hook does (`orchestra hook EVENT`, the payload on
    its stdin), inside a task only; it never fails nor prints (the hook sees to that)."""
    if not os.environ.get("ORCHESTRA_RUN_ID"):
        return
    with STOP.deferred(), contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [sys.executable, "-m", "orchestra", "hook", event],
            input=json.dumps(payload).encode(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=5,
            check=False,
        )


def report_status(status: str, summary: str) -> Any:
    """Call task.set_status for the task named by the environment the daemon gave us."""
    names = ("ORCHESTRA_SOCKET", "ORCHESTRA_PROJECT", "ORCHESTRA_TASK_ID")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        raise LookupError(f"{', '.join(missing)} not set (start me with `orchestra start`)")
    task = os.environ["ORCHESTRA_TASK_ID"]
    if not task.isdigit():
        raise ValueError(f"ORCHESTRA_TASK_ID should be a task id, not {task!r}")
    from orchestra.client import Client

    with Client(Path(os.environ["ORCHESTRA_SOCKET"]), timeout=10) as client:
        params = {
            "project": os.environ["ORCHESTRA_PROJECT"],
            "task": int(task),
            "status": status,
            "summary": summary,
        }
        return client.call("task.set_status", params)


def first_line(text: str) -> str:
    line = text.strip().partition("\n")[0]
    return line if len(line) <= 60 else line[:59] + "…"


def parse_args(args: list[str]) -> tuple[str, str | None]:
    """The prompt (the words joined) and the session id to resume, if any."""
    words: list[str] = []
    resume = None
    rest = iter(args)
    for arg in rest:
        if arg == "--resume":
            resume = next(rest, "")
            if not resume:
                raise ValueError("--resume needs a session id")
        elif arg.startswith("--resume="):
            resume = arg.partition("=")[2]
        else:
            words.append(arg)
    return " ".join(words), resume


@contextlib.contextmanager
def terminal(screen: Screen, fd: int) -> Iterator[None]:
    """The alternate screen, and our own line editing (no echo, no canonical mode)."""
    screen.write("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J")
    saved = None
    with contextlib.suppress(termios.error):
        saved = termios.tcgetattr(fd)
        mode = termios.tcgetattr(fd)
        mode[0] &= ~termios.IXON  # ^S and ^Q are keys, not flow control
        mode[3] &= ~(termios.ICANON | termios.ECHO | termios.IEXTEN)  # ISIG stays: ^C stops us
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
        termios.tcsetattr(fd, termios.TCSADRAIN, mode)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, termios.error):
            if saved is not None:
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        with contextlib.suppress(OSError):
            screen.write("\x1b[?25h\x1b[?1049l")


class Stop:
    """SIGTERM, SIGHUP and SIGINT exit with 128+signal, through every `finally` on the way.

    Not while git runs: killed mid-commit it would leave its index.lock behind, so
    a signal then waits for git to finish.
    """

    def __init__(self) -> None:
        self.signum: int | None = None  # the first stop signal received
        self.holding = False  # git is running: the exit waits for it

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:  # one clean exit: no second signal in the middle of cleanup
            signal.signal(sig, signal.SIG_IGN)
        self.signum = signum
        if not self.holding:
            raise SystemExit(128 + signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
            if self.signum is not None:
                raise SystemExit(128 + self.signum)


STOP = Stop()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]):
        sys.stdout.write(USAGE + (__doc__ or ""))
        return 0
    try:
        prompt, resume = parse_args(args)
    except ValueError as exc:
        sys.stderr.write(f"demo: {exc}\n{USAGE}")
        return 2
    agent = Agent(prompt, resume)
    for sig in STOP_SIGNALS:
        signal.signal(sig, STOP.handle)
    signal.signal(signal.SIGWINCH, lambda _s, _f: setattr(agent, "resized", True))
    fd = sys.stdin.fileno()
    with terminal(agent.screen, fd):
        code = agent.run(fd)
    print(f"demo agent: {agent.commits} commit(s) in {Path.cwd()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
