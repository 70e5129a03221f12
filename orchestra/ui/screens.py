"""The dashboard's dialogs: confirm, one line of text, a new task, a merge.

Each is a Textual `ModalScreen` that returns what the person chose (None: cancelled);
the app turns that into one call to the daemon.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea


class Confirm(ModalScreen[bool]):
    """Yes or no; `y`/Enter say yes, `n`/Escape no."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question, self.detail = question, detail

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            if self.detail:
                yield Static(self.detail, classes="detail", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="primary", id="yes")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Ask(ModalScreen[str | None]):
    """One line of text (Enter sends it, Escape cancels)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.question, self.value, self.placeholder = question, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Input(value=self.value, placeholder=self.placeholder, id="answer")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class NewTask(ModalScreen[dict[str, Any] | None]):
    """A new task: slug, agent, base branch, labels, and the prompt in a multi-line editor.
    Ctrl+S creates it; Escape cancels."""

    BINDINGS = [
        Binding("ctrl+s", "create", "Create"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("New task (ctrl+s creates, escape cancels)", classes="question")
            yield Input(placeholder="slug, e.g. fix-login", id="slug")
            yield Input(placeholder="agent, e.g. claude, codex, demo (config default)", id="agent")
            yield Input(placeholder="base branch (config default)", id="base")
            yield Input(placeholder="labels, comma separated", id="labels")
            yield TextArea(id="prompt")
            with Horizontal(classes="buttons"):
                yield Button("Create (ctrl+s)", variant="primary", id="create")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "create":
            self.action_create()
        else:
            self.dismiss(None)

    def action_create(self) -> None:
        params: dict[str, Any] = {"slug": self.query_one("#slug", Input).value.strip()}
        agent = self.query_one("#agent", Input).value.strip()
        if agent:
            params["agent"] = agent
        base = self.query_one("#base", Input).value.strip()
        if base:
            params["base_branch"] = base
        labels = [x.strip() for x in self.query_one("#labels", Input).value.split(",")]
        if any(labels):
            params["labels"] = [x for x in labels if x]
        params["description"] = self.query_one("#prompt", TextArea).text
        self.dismiss(params)

    def action_cancel(self) -> None:
        self.dismiss(None)


STRATEGIES = ("squash", "merge", "rebase")


class Merge(ModalScreen[dict[str, Any] | None]):
    """A merge's strategy and target; what it would do (the daemon's dry run) is shown
    before the person confirms."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, ref: str, plan: dict[str, Any], strategy: str | None) -> None:
        super().__init__()
        self.ref, self.plan, self.strategy = ref, plan, strategy or plan.get("strategy")

    def compose(self) -> ComposeResult:
        plan = self.plan
        files = ", ".join(f["path"] for f in plan.get("files", [])[:8]) or "none"
        detail = (
            f"{plan.get('commits', 0)} commit(s) of the task into {plan.get('target')}"
            f"; files: {files}" + ("; its agent will be stopped" if plan.get("stops_agent") else "")
        )
        with Vertical(classes="dialog wide"):
            yield Label(f"Merge {self.ref}?", classes="question")
            yield Static(detail, classes="detail", markup=False)
            yield Select(
                [(s, s) for s in STRATEGIES],
                value=self.strategy if self.strategy in STRATEGIES else "squash",
                allow_blank=False,
                id="strategy",
            )
            yield Input(value=str(plan.get("target") or ""), placeholder="into", id="into")
            with Horizontal(classes="buttons"):
                yield Button("Merge", variant="primary", id="merge")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#merge", Button).focus()  # Enter merges; Tab reaches the choices

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id != "merge":
            self.dismiss(None)
            return
        into = self.query_one("#into", Input).value.strip()
        choice: dict[str, Any] = {"strategy": self.query_one("#strategy", Select).value}
        if into:
            choice["into"] = into
        self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
