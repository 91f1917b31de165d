"""A one-line filter above a list."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input

LISTS = "LiveTable, WindowTable"  # where the keyboard goes back to


class FilterInput(Input):
    """A one-line filter: Escape or Enter hands the keyboard back to the table below."""

    DEFAULT_CSS = """
    FilterInput {
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
        &:focus { border: none; background: $primary 20%; }
    }
    """
    BINDINGS = [
        Binding("escape", "leave(True)", "Clear filter", show=False),
        Binding("down", "leave(False)", "To the list", show=False),
    ]

    def __init__(self, placeholder: str, *, id: str | None = None) -> None:
        super().__init__(placeholder=placeholder, id=id, select_on_focus=False)

    def action_leave(self, clear: bool) -> None:
        if clear:
            self.value = ""
        self.screen.focus_next(LISTS)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_leave(False)
