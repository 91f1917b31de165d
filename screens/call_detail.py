"""One call opened from Latest Calls: what the customer got, and each carrier attempt on the way,
so that why it failed over (or did not) can be read at a glance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from screens.formats import (
    DASH,
    code_mark,
    code_style,
    figure,
    local_time,
    money,
    name_of,
    names_of,
    pdd,
    pdd_figure,
    seconds,
    sip_code,
)
from screens.safe_text import plain
from screens.stats import SIP_PHRASES
from screens.tables import LiveTable
from store.views import AttemptRow, CallRow
from widgets.live_table import Col

STOPS_ROUTING = frozenset({404, 480, 486})  # the switch does not fail over on these


def code_text(code: int | None) -> str:
    if code is None:
        return "in progress"
    phrase = SIP_PHRASES.get(code)
    return f"{code} {phrase}" if phrase else str(code)


def reject_reason(reason: str) -> str:
    return reason.replace("_", " ").replace("cps", "CPS")


def why(call: CallRow, attempts: Sequence[AttemptRow],
        names: Mapping[tuple[str, str], str] | None = None) -> str:
    """One sentence on how the call ended and how routing got there, carriers by `names`."""
    if call.rejected:
        return (f"Refused by the switch before routing ({reject_reason(call.reason)}, "
                f"{code_text(call.code)}): no carrier was tried.")
    if not attempts:
        return f"Ended with {code_text(call.code)}; no carrier attempt was stored."
    *failed, last = attempts

    def carrier(attempt: AttemptRow) -> str:
        return name_of(names or {}, "carrier", attempt.carrier)

    if last.code is None:
        outcome = f"Still in progress on {carrier(last)}"
    elif 200 <= last.code < 300:
        outcome = f"Answered by {carrier(last)}"
    elif last.code in STOPS_ROUTING:
        outcome = (f"{carrier(last)} answered {code_text(last.code)}, which stops routing "
                   "(no failover on 404, 480, 486)")
    elif last.code == 487:
        outcome = f"The caller gave up while {carrier(last)} was ringing"
    else:
        outcome = (f"Failed: the last carrier tried, {carrier(last)}, answered "
                   f"{code_text(last.code)}")
    if not failed:
        return outcome + "."
    tried = ", then ".join(f"{carrier(a)} ({a.code if a.code is not None else DASH})"
                           for a in failed)
    return f"{outcome}, after failing over from {tried}."


class CallDetail(ModalScreen[None]):
    """A call and its routing attempts (read once, on a worker thread); Escape closes."""

    CSS_PATH = "call_detail.tcss"
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, call: CallRow, tz: tzinfo, currency: str | None = None) -> None:
        super().__init__()
        self.call = call
        self.tz = tz
        self.currency = currency  # the customer's, which the charge is in

    def compose(self) -> ComposeResult:
        call = self.call
        with Vertical() as dialog:
            dialog.border_title = plain(f"Call {call.call_id}" if call.call_id
                                        else f"Reject #{call.seq}")
            dialog.border_subtitle = "Esc close"
            yield Static(self._facts(), id="call-facts")
            yield Static("Reading the attempts…", id="call-why")
            attempts = LiveTable([
                Col("attempt", "#", "right"), Col("carrier", "Carrier"),
                Col("route", "Route", drop=3), Col("start", "Start", drop=5), Col("code", "Code"),
                Col("reason", "Reason", drop=1), Col("pdd", "PDD (s)", "right", drop=2),
                Col("duration", "Duration (s)", "right", drop=4),
            ])
            attempts.show_cursor = False  # a read-only list: nothing to pick
            attempts.can_focus = False
            yield attempts

    def _facts(self) -> Text:
        call = self.call
        facts = Text()
        facts.append(local_time(call.start_ms, self.tz, "%Y-%m-%d %H:%M:%S %Z"), style="bold")
        facts.append_text(plain(f"   {call.cli or DASH} → {call.dst}", style="bold"))
        facts.append("\n")
        facts.append_text(plain(f"route {call.route or DASH} · "))
        facts.append(" ".join(part for part in (code_text(call.code), code_mark(call.code))
                              if part), style=code_style(call.code))
        if call.rejected:
            facts.append(f" · refused: {reject_reason(call.reason)}", style="bold red")
        else:
            if 200 <= call.code < 300:
                facts.append(f" · talked {seconds(call.duration_s)} · charge "
                             f"{money(call.charge, self.currency, 4)}")
            facts.append(f" · PDD {pdd(call.pdd_ms)} · hung up by {call.hangup or DASH}")
        return facts

    def on_mount(self) -> None:
        if self.call.rejected:
            self._show(([], {}))
        else:
            self.run_worker(self._read, thread=True, exit_on_error=False)

    def _read(self) -> tuple[list[AttemptRow], dict[tuple[str, str], str]]:
        data = self.app.data
        return data.call_attempts(self.call.seq), names_of(data)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.SUCCESS:
            self._show(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self.query_one("#call-why", Static).update(
                plain(f"Could not read the attempts: {event.worker.error}"))

    def _show(self, read: tuple[list[AttemptRow], dict[tuple[str, str], str]]) -> None:
        attempts, names = read
        self.query_one("#call-why", Static).update(plain(why(self.call, attempts, names)))
        table = self.query_one(LiveTable)
        table.display = bool(attempts)
        table.set_rows((str(a.attempt), (
            str(a.attempt), name_of(names, "carrier", a.carrier), a.route,
            local_time(a.start_ms, self.tz),
            sip_code(a.code),
            a.reason or SIP_PHRASES.get(a.code, ""), pdd_figure(a.pdd_ms),
            figure(a.duration_s) if a.duration_s else DASH,
        )) for a in attempts)
