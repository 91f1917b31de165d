"""One message of the alerts' outbox, whole: to whom, what, and whether it went."""

from __future__ import annotations

from datetime import tzinfo

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from screens.formats import local_time
from screens.safe_text import plain, plain_lines
from store.alerting import OutboxRow


class MessageModal(ModalScreen):
    CSS_PATH = "alert_message.tcss"
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("c", "copy", "Copy"),
    ]

    def __init__(self, message: OutboxRow, tz: tzinfo) -> None:
        super().__init__()
        self.message = message
        self.tz = tz

    def compose(self) -> ComposeResult:
        m = self.message
        when = "%Y-%m-%d %H:%M:%S %Z"
        status = {"sent": f"sent {local_time(m.sent_ms, self.tz, when)}",
                  "failed": f"failed: {m.last_error}"}.get(
            m.status, f"waiting ({m.attempts} tries{': ' + m.last_error if m.last_error else ''})")
        with Vertical() as box:
            box.border_title = plain(f"Message · {m.event}")
            box.border_subtitle = "c copy · Esc closes"
            yield Static(plain(f"To {m.recipient} by {m.channel} · queued "
                               f"{local_time(m.created_ms, self.tz, when)} · {status}"),
                         id="message-facts")
            yield Static(plain(m.subject), id="message-subject")
            with VerticalScroll():
                yield Static(plain_lines(m.body))

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(f"Subject: {self.message.subject}\n\n{self.message.body}")
        self.notify("Copied the message")
