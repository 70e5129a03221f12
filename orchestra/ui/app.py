"""`orchestra ui`: every task of a project on one page, the selected agent's screen live.

A Textual app in its own process (asyncio), a front end like the CLI: every action is one
call to the daemon through `ui/link.py`, and what it shows comes from the daemon alone
(the list from `task.list`, reloaded on each `events.task_changed`; the preview from
`pty.screen`'s long poll, drawn from the daemon's terminal model with its colours: the
dashboard has no terminal emulator of its own). Two dashboards and the CLI always agree.

`Enter` attaches in this process: the app suspends (Textual gives the terminal back), the
attach session every front end shares (`orchestra.client.attach`) runs in it on a blocking
connection of its own, and the detach keys bring the dashboard back, same selection.

Several daemons may be shown at once (`orchestra ui --host a --host b`, or `ui.hosts`): each
has its link and its event stream, every row names its host, and every action goes to the
daemon of the row it is about.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static, TabbedContent, TabPane

from orchestra.client.attach import DEFAULT_DETACH, attach_session, own_terminal
from orchestra.core.errors import EXIT_OK, OrchestraError
from orchestra.ui import rows as rowmod
from orchestra.ui.driver import Driver
from orchestra.ui.first import FirstList
from orchestra.ui.link import Daemon, Link, watch_screen

COLUMNS: Final = ("", "id", "slug", "state", "agent", "age", "waiting", "ahead", "labels", "title")
W = TypeVar("W", bound=Widget)
RELOAD_AFTER: Final = 0.05  # coalesce a burst of events into one task.list
DETAILS: Final = {"tab-diff": "diff", "tab-task": "file", "tab-log": "log"}  # tab -> view
FIRST_WAIT: Final = 2.0  # seconds the mounted app waits for the list asked for at start


class Dashboard(App[None]):
    """The dashboard of one project (or of every project, `all_projects`)."""

    TITLE = "orchestra"
    CSS = """
    #status { height: auto; max-height: 3; }
    #main { height: 1fr; }
    #tasks { width: 2fr; min-width: 40; }
    #tabs { width: 3fr; }
    #screen { width: 1fr; height: 1fr; }
    #screen-note { height: 1; }
    #filter { dock: bottom; margin-bottom: 1; display: none; }
    #keys { dock: bottom; height: 1; background: $panel; }
    .dialog { width: 60%; height: auto; max-height: 90%; border: thick $accent;
              background: $surface; padding: 1 2; }
    .dialog.wide { width: 80%; }
    .question { text-style: bold; margin-bottom: 1; }
    .detail { margin-bottom: 1; }
    .buttons { height: auto; margin-top: 1; }
    #prompt { height: 10; }
    Confirm, Ask, NewTask, Merge { align: center middle; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(key, action, text, show=show, id=name)
        for name, key, action, text, show in (
            ("quit", "q", "quit", "Quit", True),
            ("attach", "enter", "attach", "Attach", True),
            ("new", "n", "new", "New", True),
            ("start", "s", "start", "Start", True),
            ("stop", "x", "stop", "Stop", True),
            ("complete", "c", "report('complete')", "Complete", True),
            ("fail", "f", "report('fail')", "Fail", True),
            ("reviewed", "r", "report('reviewed')", "Reviewed", True),
            ("type", "i", "type_line", "Type", True),
            ("merge", "m", "merge", "Merge", True),
            ("gc", "g", "gc", "GC", True),
            ("edit", "e", "edit", "Edit", True),
            ("filter", "slash", "filter", "Filter", True),
            ("order", "o", "order", "Order", True),
            ("down", "j", "cursor(1)", "Down", False),
            ("up", "k", "cursor(-1)", "Up", False),
            ("help", "question_mark", "help", "Help", True),
        )
    ]

    def __init__(
        self,
        *,
        project: str | None,
        socket: Path,
        state_dir: Path | None = None,
        autostart: bool = False,
        attach_argv: list[str] | None = None,
        keys: dict[str, str] | None = None,
        detach_keys: tuple[str, bytes] = DEFAULT_DETACH,
        relay: bool = False,
        first: FirstList | None = None,
        daemons: list[Daemon] | None = None,
    ) -> None:
        super().__init__(driver_class=Driver)
        self.keymap = keys or {}  # config `[ui.keys]`: action name -> its keys (core/config.py)
        if keys:
            self.set_keymap(keys)
        self.project = project  # None: every project the daemon serves (`ui --all`)
        self.socket = socket
        # The daemons shown, by host ("" is this machine's); the first one's project is the
        # default of an action that names no task.
        self.daemons = daemons or [Daemon(socket, project)]
        self.links = {
            d.host: Link(d, state_dir, autostart=autostart and d.target is None)
            for d in self.daemons
        }
        self.link = self.links[self.daemons[0].host]
        self.lists: dict[str, list[tuple[str, dict[str, Any]]]] = {}  # by host
        # How `e` edits: `orchestra edit` in the terminal the app hands back.
        self.attach_argv = attach_argv or [sys.executable, "-m", "orchestra"]
        # How Enter attaches: the detach keys (spec, bytes), and whether to relay keys and
        # screen instead of handing the terminal to the daemon (the caller's choice).
        self.detach_keys = detach_keys
        self.relay = relay
        self.first = first  # the list asked for during start-up, if any
        whole = any(d.project is None for d in self.daemons)
        several = len(self.daemons) > 1
        self.columns = (*(("host",) if several else ()), *(("project",) if whole else ()), *COLUMNS)
        self.tasks: list[rowmod.Row] = []
        self.shown: list[rowmod.Row] = []  # the rows of the list, top to bottom
        self.shown_cells: list[list[Text | str]] = []  # their cells, as written
        self.painted = False  # the list was filled once
        self.order = "attention"
        self.query_text = ""
        self.selected: str | None = None  # the key of the row under the cursor
        self.watched: str | None = None  # the row whose screen the preview follows
        self._reload: asyncio.TimerHandle | None = None

    # -- layout ---------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        with Horizontal(id="main"):
            yield DataTable(id="tasks", cursor_type="row", zebra_stripes=True)
            with TabbedContent(id="tabs"):
                with TabPane("screen", id="tab-screen"):
                    yield Static("", id="screen-note")
                    yield Static("", id="screen")
                with TabPane("diff", id="tab-diff"), VerticalScroll():
                    yield Static("", id="diff", markup=False)
                with TabPane("task", id="tab-task"), VerticalScroll():
                    yield Static("", id="file", markup=False)
                with TabPane("log", id="tab-log"), VerticalScroll():
                    yield Static("", id="log", markup=False)
        yield Input(
            placeholder="filter: words of id, slug, state, agent, labels, title", id="filter"
        )
        yield Static("", id="keys", markup=False)

    def on_mount(self) -> None:
        table = self.query_one("#tasks", DataTable)
        for name in self.columns:
            table.add_column(name, key=name or "glyph")
        table.focus()
        self.main("#keys", Static).update(self.key_line())
        self.sub_title = " · ".join(
            ":".join(filter(None, (d.host, d.project or "every project"))) for d in self.daemons
        )
        lists = self.first.take(FIRST_WAIT) if self.first is not None else None
        if lists is not None:
            self.show_lists(lists, self.daemons[0].host)
        self.follow_events()

    def key_line(self) -> Text:
        """The footer: the keys shown, as bound now (after `[ui.keys]`). One line of text:
        Textual's Footer mounts a widget per key, again whenever the bindings change (a
        focus moves), which was most of the time to the first frame."""
        line = Text(no_wrap=True, overflow="ellipsis")
        for listed in self.BINDINGS:
            assert isinstance(listed, Binding) and listed.id is not None
            if listed.show:
                key = self.keymap.get(listed.id, listed.key).split(",")[0].strip()
                shown = self.get_key_display(Binding(key, listed.action))
                line.append(f" {shown} ", style="bold")
                line.append(f"{listed.description} ")
        return line

    def main(self, selector: str, kind: type[W]) -> W:
        """A widget of the dashboard's own screen, whatever dialog is open above it (a
        reload or a screen update arrives while the person types in one)."""
        return self.screen_stack[0].query_one(selector, kind)

    # -- the list -------------------------------------------------------------

    def follow_events(self) -> None:
        """Follow every daemon's events, each on its own link and worker."""
        for daemon in self.daemons:
            self.run_worker(self._follow(daemon), group=f"events:{daemon.host}", exclusive=True)

    async def _follow(self, daemon: Daemon) -> None:
        async def on_link(problem: str | None) -> None:
            await self._on_link(f"{daemon.host}: {problem}" if problem and daemon.host else problem)

        await self.links[daemon.host].follow(daemon.project, self._on_event, on_link)

    async def _on_event(self, method: str, params: Any) -> None:
        # Any event (a change, or events.dropped: we read too slowly and missed some)
        # means the list may be stale: read it again, once for a burst.
        self.schedule_reload()

    async def _on_link(self, problem: str | None) -> None:
        self.say(problem or "")
        if problem is None:
            await self.reload()

    def schedule_reload(self) -> None:
        if self._reload is None:
            loop = asyncio.get_running_loop()
            self._reload = loop.call_later(RELOAD_AFTER, lambda: self.run_worker(self.reload()))

    async def reload(self) -> None:
        """Every daemon's lists, asked for at once; one that cannot answer keeps the rows
        it had, and says why."""
        self._reload = None
        found = await asyncio.gather(
            *(self._lists_of(d) for d in self.daemons), return_exceptions=True
        )
        problems = []
        for daemon, got in zip(self.daemons, found, strict=True):
            if isinstance(got, OrchestraError):
                problems.append(f"{daemon.host}: {got}" if daemon.host else str(got))
            elif isinstance(got, BaseException):
                raise got
            else:
                self.lists[daemon.host] = got
        if problems:
            self.say("; ".join(problems))
        self.show_lists()

    async def _lists_of(self, daemon: Daemon) -> list[tuple[str, dict[str, Any]]]:
        link = self.links[daemon.host]
        if daemon.project is not None:
            roots = [daemon.project]
        else:
            status = await link.call("daemon.status")
            roots = [p["root"] for p in status["projects"]]
        return [(root, await link.call("task.list", project=root)) for root in roots]

    def show_lists(
        self, lists: list[tuple[str, dict[str, Any]]] | None = None, host: str = ""
    ) -> None:
        """Each root's `task.list` reply (`lists`, of `host`'s daemon, when given), and the
        others' as last read, in the list."""
        if lists is not None:
            self.lists[host] = lists
        tasks: list[rowmod.Row] = []
        broken: list[dict[str, Any]] = []
        for daemon in self.daemons:
            for root, result in self.lists.get(daemon.host, []):
                tasks += rowmod.rows(result["tasks"], root, daemon.host)
                broken += result.get("errors") or []
        self.tasks = tasks
        if broken:
            self.say(f"{len(broken)} task file(s) cannot be read: {broken[0]['message']}")
        self.refresh_table()

    def refresh_table(self) -> None:
        """The list drawn from `tasks`: when the same rows are shown in the same order (an
        event about one task), only the cells that changed are written; else it is rebuilt."""
        try:
            table = self.main("#tasks", DataTable)
        except NoMatches:  # a reload that came before the screen was composed, or after
            return
        shown = rowmod.filtered(rowmod.ordered(self.tasks, self.order), self.query_text)
        cells = [self._cells(r) for r in shown]
        if [r.key for r in shown] == [r.key for r in self.shown] and table.row_count == len(shown):
            for r, new, old in zip(shown, cells, self.shown_cells, strict=True):
                for column, value, was in zip(self.columns, new, old, strict=True):
                    if value != was:
                        table.update_cell(r.key, column or "glyph", value, update_width=True)
        else:
            table.clear()
            for r, row_cells in zip(shown, cells, strict=True):
                table.add_row(*row_cells, key=r.key)
        self.shown, self.shown_cells = shown, cells
        if not shown:
            self.select(None)
            return
        index = next((i for i, r in enumerate(shown) if r.key == self.selected), 0)
        if table.cursor_row != index:
            table.move_cursor(row=index)
        if self.painted:
            self.select(shown[index].key)
        else:  # the list first, then the preview and the tabs (their calls and drawing)
            self.painted = True
            self.call_after_refresh(self.select, shown[index].key)

    def _cells(self, r: rowmod.Row) -> list[Text | str]:
        """The row's cells, one per column (`columns`)."""
        own = self._own_cells(r)
        if "project" in self.columns:
            own = [Path(r.project).name, *own]
        return [r.host or "here", *own] if "host" in self.columns else own

    def _own_cells(self, r: rowmod.Row) -> list[Text | str]:
        style = "bold yellow" if r.waits else ("green" if r.status == "completed" else "")
        if r.status == "failed":
            style = "red"
        waiting = rowmod.ago(r.waiting_since)
        if r.waits and r.reason:
            waiting = f"{waiting} {r.reason}"
        return [
            Text(r.glyph, style=style),
            str(r.id),
            r.slug,
            Text(r.state, style=style),
            r.agent,
            rowmod.ago(r.created),
            waiting,
            "" if r.ahead is None else str(r.ahead),
            ",".join(r.labels),
            r.title,
        ]

    @on(DataTable.RowHighlighted, "#tasks")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.select(event.row_key.value)

    @on(DataTable.RowSelected, "#tasks")
    def _chosen(self, event: DataTable.RowSelected) -> None:
        self.action_attach()  # Enter on the list (the table takes Enter before the app)

    def current(self) -> rowmod.Row | None:
        return next((r for r in self.tasks if r.key == self.selected), None)

    def select(self, key: str | None) -> None:
        changed = key != self.selected
        self.selected = key
        row = self.current()
        want = row if row is not None and row.running else None
        if (want and want.key) != self.watched or (changed and want is None):
            self.watched = want.key if want else None
            self.follow_screen(want)
        if changed:
            self.show_details()

    # -- the preview ----------------------------------------------------------

    @work(group="screen", exclusive=True)
    async def follow_screen(self, row: rowmod.Row | None) -> None:
        view = self.main("#screen", Static)
        if row is None:
            now = self.current()
            view.update(Text(f"{now.ref}: no running agent ({now.state})" if now else "no task"))
            self.main("#screen-note", Static).update("")
            return
        version = None
        try:
            async for screen in watch_screen(self.daemon_of(row), row.project, row.id):
                if screen["version"] != version:
                    version = screen["version"]
                    view.update(render_screen(screen))
                    self.note_screen(row, screen)
        except OrchestraError as exc:
            view.update(Text(str(exc)))
            self.schedule_reload()

    def note_screen(self, row: rowmod.Row, screen: dict[str, Any]) -> None:
        """Above the preview: whose screen, its size, and whether the pane crops it."""
        size = self.main("#screen", Static).size
        cols, rows = screen["cols"], screen["rows"]
        note = f"{row.ref} · {cols}x{rows}"
        if cols > size.width or rows > size.height:
            note += f" · cropped to {min(cols, size.width)}x{min(rows, size.height)} (Enter: all)"
        self.main("#screen-note", Static).update(Text(note, style="dim"))

    @on(TabbedContent.TabActivated, "#tabs")
    def _tab_shown(self, _event: TabbedContent.TabActivated) -> None:
        self.show_details()

    @work(group="details", exclusive=True)
    async def show_details(self) -> None:
        """The tab shown, for the selected task (the others are read when shown: a
        selection change asks the daemon for the screen alone, not a diff too)."""
        try:
            shown = self.main("#tabs", TabbedContent).active
        except NoMatches:
            return
        if shown not in DETAILS:
            return
        view = self.main(f"#{DETAILS[shown]}", Static)
        row = self.current()
        if row is None:
            view.update("")
            return
        try:
            if shown == "tab-log":
                found = await self.link_of(row).call("task.log", project=row.project, task=row.id)
                view.update(render_log(found["lines"]))
            elif shown == "tab-task":
                task = await self.link_of(row).call("task.get", project=row.project, task=row.id)
                view.update(render_task(task))
            else:
                found = await self.link_of(row).call(
                    "task.diff", project=row.project, task=row.id, color=True
                )
                text = (found["committed"] + found["uncommitted"]) or "no changes"
                view.update(Text.from_ansi(text))
        except OrchestraError as exc:
            view.update(str(exc))

    # -- actions ----------------------------------------------------------------

    def say(self, message: str) -> None:
        self.main("#status", Static).update(Text(message, style="bold red" if message else ""))

    def daemon_of(self, row: rowmod.Row) -> Daemon:
        return self.links[row.host].daemon

    def link_of(self, row: rowmod.Row) -> Link:
        return self.links[row.host]

    def here(self) -> tuple[str, str | None]:
        """The host and project an action that names no task is for: the selected row's,
        else the first daemon's."""
        row = self.current()
        if row is not None:
            return row.host, row.project
        return self.daemons[0].host, self.daemons[0].project

    async def act(self, method: str, project: str | None, *, host: str = "", **params: Any) -> Any:
        """One call to `host`'s daemon on `project`; its refusal is shown, never raised."""
        if project is None:
            self.say("no project here: select a task of the project first")
            return None
        try:
            result = await self.links[host].call(method, project=project, **params)
        except OrchestraError as exc:
            self.say(str(exc))
            return None
        self.say("")
        return result

    def action_cursor(self, step: int) -> None:
        table = self.main("#tasks", DataTable)
        table.move_cursor(row=max(0, table.cursor_row + step))

    def action_order(self) -> None:
        self.order = rowmod.next_order(self.order)
        self.notify(f"sorted by {self.order}")
        self.refresh_table()

    def action_filter(self) -> None:
        box = self.main("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self.refresh_table()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        box = self.main("#filter", Input)
        box.display = bool(event.value)
        self.main("#tasks", DataTable).focus()

    async def action_start(self) -> None:
        if (row := self.current()) is not None:
            await self.act("task.start", row.project, host=row.host, task=row.id)

    @work
    async def action_stop(self) -> None:
        from orchestra.ui.screens import Confirm  # dialogs: loaded when first opened

        row = self.current()
        if row is not None and await self.push_screen_wait(Confirm(f"Stop {row.ref}?")):
            await self.act("task.stop", row.project, host=row.host, task=row.id)

    async def action_report(self, status: str) -> None:
        if (row := self.current()) is not None:
            await self.act(
                "task.set_status", row.project, host=row.host, task=row.id, status=status
            )

    @work
    async def action_type_line(self) -> None:
        from orchestra.ui.screens import Ask

        row = self.current()
        if row is None:
            return
        line = await self.push_screen_wait(Ask(f"Type into {row.ref} (Enter sends it)"))
        if line is not None:
            await self.act(
                "task.send_input", row.project, host=row.host, task=row.id, text=line + "\r"
            )

    @work
    async def action_new(self) -> None:
        from orchestra.ui.screens import NewTask

        host, project = self.here()
        choice = await self.push_screen_wait(NewTask())
        if choice is not None and await self.act("task.new", project, host=host, **choice):
            self.notify(f"created {choice['slug']}")

    def action_edit(self) -> None:
        """The task file in $EDITOR, as `orchestra edit` does it (the daemon checks the
        edited copy and writes it)."""
        if (row := self.current()) is not None:
            self.in_terminal(row, "edit")

    @work
    async def action_merge(self) -> None:
        from orchestra.ui.screens import Merge

        row = self.current()
        if row is None:
            return
        plan = await self.act("task.merge", row.project, host=row.host, task=row.id, dry_run=True)
        if plan is None:
            return
        choice = await self.push_screen_wait(Merge(row.ref, plan, plan.get("strategy")))
        if choice is None:
            return
        done = await self.act("task.merge", row.project, host=row.host, task=row.id, **choice)
        if done is not None:
            self.notify(f"merged {row.ref} into {done['merge']['target']}")

    @work
    async def action_gc(self) -> None:
        from orchestra.ui.screens import Confirm

        host, project = self.here()
        plan = await self.act("project.gc", project, host=host, dry_run=True)
        if plan is None:
            return
        actions = plan.get("actions", [])
        if not actions:
            self.notify("nothing to clean up")
            return
        detail = "\n".join(
            f"{a['kind']}: {a.get('path') or a.get('branch') or ''}" for a in actions
        )
        if await self.push_screen_wait(Confirm(f"Clean up {len(actions)} thing(s)?", detail)):
            await self.act("project.gc", project, host=host, only=[a["key"] for a in actions])

    def action_help(self) -> None:
        """Every key as it is bound now (after `[ui.keys]`)."""
        from orchestra.ui.screens import Confirm

        lines = [
            f"{key:>14}  {active.binding.description}"
            for key, active in sorted(self.active_bindings.items())
            if active.binding.id is not None
        ]
        self.push_screen(Confirm("Keys (close with n)", "\n".join(lines)))

    def action_attach(self) -> None:
        row = self.current()
        if row is None or not row.running:
            self.say("no running agent to attach to" if row else "")
            return
        try:
            client = self.daemon_of(row).blocking()
        except OrchestraError as exc:
            self.say(str(exc))
            return
        # Our driver (not the headless one of tests) keeps the alternate screen meanwhile:
        # the agent's screen replaces ours, with no shell shown in between.
        driver = self._driver if isinstance(self._driver, Driver) else None
        try:
            if driver is not None:
                driver.keep_screen = True
            with self.suspend():
                ending = attach_session(
                    client,
                    row.project,
                    str(row.id),
                    detach_keys=self.detach_keys,
                    # Another host's daemon cannot be handed a terminal: frames carry it.
                    terminal=None if self.relay or client.remote else own_terminal(),
                    announce=False,
                    leave_screen=driver is None,
                )
        except OrchestraError as exc:
            self.say(str(exc))
        else:
            if ending.signalled:  # SIGTERM or SIGHUP while attached: meant for the dashboard too
                self.exit()
                return
            self.say("" if ending.code == EXIT_OK else f"{ending.why}: {row.ref}")
        finally:
            if driver is not None:
                driver.keep_screen = False
            client.close()
        self.schedule_reload()
        self.show_details()

    def in_terminal(self, row: rowmod.Row, command: str) -> None:
        """`orchestra COMMAND TASK` in the terminal the app hands back meanwhile (`e`: the
        editor's start-up dwarfs the CLI's); its last line on stderr is shown if it failed."""
        host = ["--host", row.host] if row.host else []
        argv = [*self.attach_argv, *host, "--project", row.project, command, str(row.id)]
        with self.suspend():
            done = subprocess.run(argv, check=False, stderr=subprocess.PIPE, text=True)
        message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        self.say("" if done.returncode == 0 else message)
        self.schedule_reload()
        self.show_details()


def render_screen(screen: dict[str, Any]) -> Text:
    """A `pty.screen` reply (with `ansi`) as Rich text, in the agent's colours."""
    lines = screen.get("ansi") or screen.get("lines") or []
    text = Text(no_wrap=True, overflow="crop")  # a narrower pane crops, never rewraps
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        text.append(Text.from_ansi(line) if "\x1b" in line else Text(line))
    return text


def render_log(records: list[dict[str, Any]]) -> Text:
    """`task.log` records, one line each: time, level, message."""
    text = Text()
    for r in records:
        stamp = str(r.get("timestamp", ""))[11:19]  # HH:MM:SS of the RFC 3339 time
        level = str(r.get("level", ""))
        text.append(f"{stamp} ", style="dim")
        text.append(f"{level:<5} ", style="red" if level in ("error", "warning") else "")
        text.append(f"{r.get('message', '')}\n")
    return text or Text("no log records for this task (see log_level)")


def render_task(task: dict[str, Any]) -> Text:
    """A task object: its fields, then its description."""
    text = Text()
    for key in ("ref", "title", "status", "agent", "base_branch", "branch", "labels", "worktree"):
        value = task.get(key)
        if value not in (None, "", []):
            text.append(f"{key}: ", style="bold")
            text.append(f"{', '.join(value) if isinstance(value, list) else value}\n")
    text.append("\n")
    text.append(task.get("description") or "")
    return text


def run(
    project: str | None,
    socket: Path,
    state_dir: Path | None,
    *,
    autostart: bool,
    keys: dict[str, str] | None = None,
    detach_keys: tuple[str, bytes] = DEFAULT_DETACH,
    relay: bool = False,
    first: FirstList | None = None,
    daemons: list[Daemon] | None = None,
) -> None:
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    Dashboard(
        project=project,
        socket=socket,
        state_dir=state_dir,
        autostart=autostart,
        keys=keys,
        detach_keys=detach_keys,
        relay=relay,
        first=first,
        daemons=daemons,
    ).run()
