"""The small questions the alerts views ask: a comment to acknowledge an alert, and what to
silence, for how long and why."""

from __future__ import annotations

import re
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, RadioSet, Static

from screens.safe_text import plain
from widgets.toggles import MarkedRadioButton

DURATIONS = {"15 min": 900, "1 h": 3_600, "4 h": 14_400, "1 day": 86_400}
UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400}
MAX_SILENCE_S = 30 * 86_400


def duration_s(text: str) -> int | None:
    """`90s`, `30m`, `2h`, `1d`, or a number of minutes; None if unreadable."""
    found = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text.lower())
    if not found:
        return None
    return int(found[1]) * UNITS.get(found[2] or "m", 60)


class AcknowledgeDialog(ModalScreen[str | None]):
    """Dismisses with the comment (maybe empty) on Enter, None on Escape."""

    CSS_PATH = "alert_dialogs.tcss"
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical() as dialog:
            dialog.border_title = "Acknowledge"
            dialog.border_subtitle = "Enter acknowledge · Esc cancel"
            yield Static(plain(self.what))
            yield Static("It stops repeating until it resolves; the history keeps who and why.",
                         classes="hint")
            yield Static()
            yield Label("Comment")
            yield Input(placeholder="e.g. carrier's NOC informed, ticket 4711", compact=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())


@dataclass(frozen=True)
class SilenceChoice:
    scope: str  # one of the SilenceDialog's scope names
    seconds: int
    comment: str


class SilenceDialog(ModalScreen[SilenceChoice | None]):
    """What to silence (the choices the caller offers), for how long, and why."""

    CSS_PATH = "alert_dialogs.tcss"
    BINDINGS = [
        Binding("enter", "silence", "Silence", priority=True),
        Binding("escape", "dismiss(None)", "Cancel"),
    ]

    def __init__(self, scopes: dict[str, str]) -> None:
        """`scopes`: name -> label, e.g. {"alert": "Carrier down for Atlas Voice", ...}."""
        super().__init__()
        self.scopes = scopes

    def compose(self) -> ComposeResult:
        with Vertical() as dialog:
            dialog.border_title = "Silence"
            dialog.border_subtitle = "Enter silence · Esc cancel"
            yield Static("A silenced alert still changes state and is recorded, but sends "
                         "nothing and penalises no one.", classes="hint")
            yield Label("What  [dim](↑↓ or space to choose)[/]")
            with RadioSet(id="scope"):
                for number, (name, label) in enumerate(self.scopes.items()):
                    yield MarkedRadioButton(plain(label), value=number == 0, name=name)
            yield Label("For  [dim](15 min, 1 h, 4 h, 1 day, or e.g. 90m, 2h, 3d)[/]")
            yield Input("1 h", id="duration", compact=True)
            yield Label("Comment")
            yield Input(placeholder="e.g. planned maintenance", id="comment", compact=True)
            yield Static(classes="message", markup=False)

    def action_silence(self) -> None:
        typed = self.query_one("#duration", Input).value.strip()
        seconds = DURATIONS.get(typed) or duration_s(typed)
        message = self.query_one(".message", Static)
        if not seconds:
            message.update(f"✖ For: {typed!r} is not a duration (e.g. 30m, 2h, 1d)")
            self.query_one("#duration", Input).focus()
            return
        if seconds > MAX_SILENCE_S:
            message.update("✖ For: at most 30 days; disable the rule for longer")
            return
        pressed = self.query_one(RadioSet).pressed_button
        scope = pressed.name if pressed is not None else next(iter(self.scopes))
        self.dismiss(SilenceChoice(scope, seconds,
                                   self.query_one("#comment", Input).value.strip()))
