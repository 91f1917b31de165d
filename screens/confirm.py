"""A yes/no question before anything that acts on the network (ending a call, disabling)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from screens.safe_text import plain_lines


class Confirm(ModalScreen[bool]):
    """Dismisses with True only on an explicit yes; "No" has the focus, so a stray Enter is
    harmless."""

    CSS_PATH = "confirm.tcss"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    AUTO_FOCUS = "#no"

    def __init__(self, question: str, *, yes: str = "Yes", title: str = "Are you sure?") -> None:
        super().__init__()
        self.question = question
        self.yes = yes
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical() as dialog:
            dialog.border_title = self.title_text
            dialog.border_subtitle = "y yes · n / Esc no"
            yield Static(plain_lines(self.question), id="question")
            with Horizontal():
                yield Button(self.yes, variant="error", id="yes")
                yield Button("No", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
