"""One customer: its graphs, routes, latest calls, calls in progress, alerts and summary.

Only the tab being looked at reads the store: the screen's snapshot is the account strip plus
the active pane's own snapshot (see screens.panes).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static, TabbedContent, TabPane

from screens.account_alerts import AccountAlertsPane
from screens.base import DataScreen, live_as_of
from screens.call_detail import CallDetail, reject_reason
from screens.chrome import NocHeader
from screens.confirm import Confirm
from screens.formats import (
    DASH,
    STATUS_LOOK,
    as_of,
    figure,
    marked,
    money,
    name_of,
    names_of,
    pdd,
    pdd_figure,
    penalty_until,
    percent,
    recent_time,
    seconds,
    sip_code,
    used_of,
)
from screens.navigation import Back
from screens.panes import AccountTabs, DataPane
from screens.safe_text import plain, printable_text
from screens.stats import StatsPane
from screens.summary import SummaryPane
from screens.tables import LiveTable
from store.views import (
    AccountRow,
    CallRow,
    ConsoleData,
    DialogRow,
    FeedView,
    RouteStat,
    SummaryRow,
)
from widgets import LOADING
from widgets.dialogs import ShowDialog
from widgets.filter_input import FilterInput
from widgets.key_bar import KeyBar
from widgets.live_table import Cell, Col

CUSTOMER = "customer"


def status_line(*parts: str | Text) -> Text:
    """One line of parts, which may hold the feed's text (made printable)."""
    line = Text(no_wrap=True, overflow="ellipsis")
    for part in parts:
        line.append(part)
    return printable_text(line)


# Route Stats ----------------------------------------------------------------------------------

ROUTES_NOTE = "Last 24 h per route · live channels {when} · a breach is a call refused over a limit"


class RoutesPane(DataPane):
    """Per route over the last 24 h: traffic, and the calls refused for breaching a limit."""

    def __init__(self, customer: str) -> None:
        super().__init__(id="routes-pane")
        self.account = customer

    def compose(self) -> ComposeResult:
        yield Static(status_line(ROUTES_NOTE.format(when="now")), classes="pane-note")
        yield LiveTable([
            Col("route", "Route"), Col("channels", "Live ch.", "right"),
            Col("attempts", "Attempts", "right"), Col("asr", "ASR", "right"),
            Col("acd", "ACD (s)", "right", drop=1), Col("channel", "Ch. breach", "right"),
            Col("cps", "CPS breach", "right"), Col("other", "Other", "right", drop=2),
        ])

    def gather(self, data: ConsoleData, now_ms: int) -> tuple[tuple[RouteStat, ...], str]:
        return tuple(data.route_stats(self.account, now_ms)), self.live_as_of(data, now_ms)

    def show(self, snapshot: tuple[tuple[RouteStat, ...], str]) -> None:
        stats, when = snapshot
        self.query_one(".pane-note", Static).update(
            status_line(ROUTES_NOTE.format(when=when or "now")))
        look = "dim" if when else ""  # not current: greyed
        self.query_one(LiveTable).set_rows(
            (s.route or "-", (s.route or "(no route)", Text(f"{s.channels:,}", style=look),
                              f"{s.attempts:,}",
                              percent(s.asr), figure(s.acd), _breach(s.channel_breaches),
                              _breach(s.cps_breaches), _breach(s.other_breaches)))
            for s in stats)


def _breach(count: int) -> Cell:
    return Text(f"▲ {count:,}", style="yellow") if count else "0"


# Latest Calls ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class CallFilter:
    """`44 code:503 carrier:atlas`: a number (part of CLI or destination), a code, a carrier."""

    number: str = ""
    code: int | None = None
    carrier: str = ""
    problem: str = ""

    @classmethod
    def parse(cls, text: str) -> CallFilter:
        number, code, carrier, problems = "", None, "", []
        for word in text.split():
            name, _, value = word.partition(":")
            if name == "code" and value.isdigit():
                code = int(value)
            elif name == "carrier" and value:
                carrier = value.casefold()
            elif not value and word.lstrip("+").isdigit():
                number = word.lstrip("+")
            else:
                problems.append(f"“{word}”")
        problem = (f"ignored {', '.join(problems)}: type a number, code:NNN or carrier:NAME"
                   if problems else "")
        return cls(number, code, carrier, problem)


@dataclass(frozen=True)
class CallsSnapshot:
    now_ms: int
    filter: CallFilter
    carrier: str  # the carrier id the filter's name found
    problem: str
    calls: tuple[CallRow, ...]
    names: tuple[tuple[tuple[str, str], str], ...] = ()
    currency: str | None = None  # the customer's, which its charges are in


class CallsPane(DataPane):
    """The customer's newest ended calls and rejects; Enter opens a call's attempts."""

    BINDINGS = [Binding("slash", "filter", "Filter")]
    LIMIT = 200

    def __init__(self, customer: str) -> None:
        super().__init__(id="calls-pane")
        self.account = customer
        self.filter = CallFilter()
        self._calls: dict[str, CallRow] = {}
        self._currency: str | None = None

    def for_account(self, account: str) -> None:
        super().for_account(account)
        self.filter, self._calls = CallFilter(), {}
        if self.is_mounted:
            with self.prevent(Input.Changed):
                self.query_one("#calls-filter", Input).value = ""

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-bar"):
            yield FilterInput("/ filter: 44  code:503  carrier:atlas", id="calls-filter")
            yield Static(id="calls-status")
        yield LiveTable([
            Col("time", "Time"), Col("cli", "CLI"), Col("dst", "Destination"),
            Col("route", "Route", drop=3), Col("carrier", "Carrier", drop=1),
            Col("code", "Code"), Col("duration", "Dur. (s)", "right", drop=2),
            Col("attempts", "Att.", "right", drop=6), Col("pdd", "PDD (s)", "right", drop=5),
            Col("charge", "Charge", "right", drop=4),
        ])

    def gather(self, data: ConsoleData, now_ms: int) -> CallsSnapshot:
        wanted = self.filter
        carrier, problem = wanted.carrier, wanted.problem
        if carrier and not problem:
            carrier, problem = _find_carrier(data, carrier)
        calls = data.latest_calls(self.account, now_ms, number=wanted.number, code=wanted.code,
                                  carrier=carrier, limit=self.LIMIT)
        return CallsSnapshot(now_ms, wanted, carrier, problem, tuple(calls),
                             tuple(names_of(data).items()), data.currency(CUSTOMER, self.account))

    def show(self, snapshot: CallsSnapshot) -> None:
        self._calls = {_call_key(c): c for c in snapshot.calls}
        tz = self.app.display_tz
        names = dict(snapshot.names)
        self._currency = snapshot.currency
        table = self.query_one(LiveTable)
        table.relabel("charge", f"Charge ({snapshot.currency})" if snapshot.currency
                      else "Charge")
        table.set_rows((key, _call_cells(c, snapshot.now_ms, tz, names))
                       for key, c in self._calls.items())
        count = len(snapshot.calls)
        newest = f"newest {count} calls" if count == self.LIMIT else f"{count:,} calls"
        scope = " in 7 days" if snapshot.filter != CallFilter() else ""
        if snapshot.carrier:
            scope += f" · carrier {name_of(names, 'carrier', snapshot.carrier)}"
        problem = Text(f" · {snapshot.problem}", style="yellow") if snapshot.problem else ""
        self.query_one("#calls-status", Static).update(status_line(newest, scope, problem))

    def action_filter(self) -> None:
        self.query_one("#calls-filter", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter = CallFilter.parse(event.value)
        self.refresh_now()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        call = self._calls.get(event.row_key.value)
        if call is not None:
            self.post_message(ShowDialog(CallDetail(call, self.app.display_tz, self._currency)))


def _find_carrier(data: ConsoleData, text: str) -> tuple[str, str]:
    """The carrier id a typed name means, and a problem when it means none or several."""
    carriers = [(id_, name) for kind, id_, name in data.account_names() if kind == "carrier"]
    exact = [id_ for id_, name in carriers if text in (id_.casefold(), name.casefold())]
    found = exact or [id_ for id_, name in carriers
                      if text in id_.casefold() or text in name.casefold()]
    if len(found) == 1:
        return found[0], ""
    if not found:
        return text, f"no carrier matches “{text}”"
    return text, f"“{text}” matches {', '.join(found)}"


def _call_key(call: CallRow) -> str:
    return f"r{call.seq}" if call.rejected else str(call.seq)


def _call_cells(c: CallRow, now_ms: int, tz,
                names: Mapping[tuple[str, str], str]) -> tuple[Cell, ...]:
    answered = 200 <= c.code < 300
    if c.rejected:
        code = Text(f"{c.code} ⊘ {reject_reason(c.reason)}", style="red")
    else:
        code = sip_code(c.code)
    return (
        recent_time(c.start_ms, now_ms, tz), c.cli or DASH, c.dst, c.route or DASH,
        name_of(names, "carrier", c.carrier) if c.carrier else DASH, code,
        figure(c.duration_s) if answered else DASH,
        str(c.attempts) if c.attempts else DASH, pdd_figure(c.pdd_ms),
        f"{c.charge:.4f}" if c.charge else DASH,
    )


# Dialogs --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DialogsSnapshot:
    total: int
    answered: int
    dialogs: tuple[DialogRow, ...]  # the newest SHOWN
    names: tuple[tuple[tuple[str, str], str], ...] = ()
    as_of: str = ""  # when the writer last saw these calls, if not now ("as of 12:04")


DIALOG_STATE_STYLE = {"answered": "green", "ringing": "yellow", "trying": "dim"}


class DialogsPane(DataPane):
    """Calls in progress, newest first; `k` asks the writer to end the highlighted one."""

    BINDINGS = [Binding("k", "end_call", "End call")]
    SHOWN = 200  # beyond a screenful or ten nobody reads them, and every age ticks each refresh

    def __init__(self, customer: str) -> None:
        super().__init__(id="dialogs-pane")
        self.account = customer
        self._dialogs: dict[str, DialogRow] = {}
        self._names: dict[tuple[str, str], str] = {}

    def for_account(self, account: str) -> None:
        super().for_account(account)
        self._dialogs = {}

    def compose(self) -> ComposeResult:
        yield Static(classes="pane-note", id="dialogs-status")
        yield LiveTable([
            Col("age", "Age (s)", "right"), Col("state", "State"), Col("carrier", "Carrier"),
            Col("cli", "CLI", drop=2), Col("dst", "Destination"), Col("route", "Route", drop=3),
            Col("attempt", "Att.", "right", drop=4), Col("talk", "Talk (s)", "right", drop=1),
        ])

    def gather(self, data: ConsoleData, now_ms: int) -> DialogsSnapshot:
        dialogs = data.dialogs(self.account, now_ms)
        answered = sum(d.state == "answered" for d in dialogs)
        return DialogsSnapshot(len(dialogs), answered, tuple(dialogs[:self.SHOWN]),
                               tuple(names_of(data).items()), self.live_as_of(data, now_ms))

    def show(self, snapshot: DialogsSnapshot) -> None:
        self._dialogs = {d.call_id: d for d in snapshot.dialogs}
        self._names = names = dict(snapshot.names)
        stale = "dim" if snapshot.as_of else ""  # as the gone writer last saw them: greyed
        self.query_one(LiveTable).set_rows((d.call_id, (
            Text(figure(d.age_s), style=stale),
            Text(d.state, style=stale or DIALOG_STATE_STYLE.get(d.state, "")),
            name_of(names, "carrier", d.carrier) if d.carrier else DASH, d.cli or DASH, d.dst,
            d.route or DASH,
            str(d.attempt) if d.attempt else DASH, Text(figure(d.answered_s), style=stale),
        )) for d in snapshot.dialogs)
        ending = ("read-only console: calls cannot be ended here" if self.app.read_only
                  else "k ends the highlighted call")
        shown = f" (newest {len(snapshot.dialogs)} shown)" if snapshot.total > self.SHOWN else ""
        going = Text(f"{snapshot.total:,} calls in progress, {snapshot.answered:,} "
                     f"answered{shown}")
        if snapshot.as_of:  # the writer is gone: they may have ended since
            going = Text(f"{going.plain} {snapshot.as_of}", style="dim")
        self.query_one("#dialogs-status", Static).update(status_line(
            going, " · ", Text(ending, style="dim")))

    def action_end_call(self) -> None:
        if self.app.read_only:
            self.notify("Read-only console: ending calls is forbidden", severity="warning")
            return
        key = self.query_one(LiveTable).highlighted_key
        dialog = self._dialogs.get(key or "")
        if dialog is None:
            self.notify("No call is highlighted", severity="warning")
            return
        question = (f"End call {dialog.call_id}?\n\n{dialog.cli or DASH} → {dialog.dst}\n"
                    f"{dialog.state} on {self._carrier_name(dialog)} for {seconds(dialog.age_s)}")

        def answered(yes: bool | None) -> None:
            if yes:
                self._end(dialog)

        self.post_message(ShowDialog(Confirm(question, yes="End call", title="End a call"),
                                     answered))

    def _carrier_name(self, dialog: DialogRow) -> str:
        return name_of(self._names, "carrier", dialog.carrier) if dialog.carrier else DASH

    def _end(self, dialog: DialogRow) -> None:
        self.write(lambda: self.app.request_control(
            action="hangup", call_id=dialog.call_id, kind=CUSTOMER, account=self.account,
            reason="ended from the console"), f"Asked the writer to end call {dialog.call_id}")


# Summary --------------------------------------------------------------------------------------

class SummaryTab(DataPane):
    """The billing summary of this customer: Live 24 h, Daily, Monthly (UTC)."""

    def __init__(self, customer: str) -> None:
        super().__init__(id="summary-pane")
        self.account = customer
        self.mode = "live"

    def compose(self) -> ComposeResult:
        yield SummaryPane(f"{self.account} summary", now=self._now)

    def for_account(self, account: str) -> None:
        super().for_account(account)
        if self.is_mounted:
            self.query_one(SummaryPane).name_exports(f"{account} summary")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.app.clock() / 1000, UTC)

    def gather(self, data: ConsoleData, now_ms: int) -> tuple[tuple[SummaryRow, ...], str | None,
                                                              str]:
        return (tuple(data.summary(CUSTOMER, self.account, self.mode, now_ms)), data.currency(),
                self.live_as_of(data, now_ms))

    def show(self, snapshot: tuple[tuple[SummaryRow, ...], str | None, str]) -> None:
        self.query_one(SummaryPane).show_rows(*snapshot)

    def on_summary_pane_mode_changed(self, event: SummaryPane.ModeChanged) -> None:
        self.mode = event.mode
        self.refresh_now()


# The screen -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CustomerSnapshot:
    now_ms: int
    feed: FeedView
    account: AccountRow | None
    tab: str
    pane: Hashable


TABS = {"stats": "Stats", "routes": "Route Stats", "calls": "Latest Calls",
        "dialogs": "Dialogs", "alerts": "Alerts", "summary": "Summary"}


class CustomerScreen(AccountTabs, DataScreen):
    """A customer's tabs; `<` `>` (or ctrl+PgUp/PgDn, or ←/→ on the tab bar) switch them."""

    CSS_PATH = [*DataScreen.CSS_PATH, "stats.tcss", "account_alerts.tcss", "summary.tcss",
                "customer.tcss"]
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("greater_than_sign,ctrl+pagedown", "switch_tab(1)", "Next tab", key_display=">"),
        Binding("less_than_sign,ctrl+pageup", "switch_tab(-1)", "Previous tab",
                key_display="<"),
    ]

    def __init__(self, account: str) -> None:
        super().__init__()
        self.account = account
        self.name_shown: str | None = None  # until the store is read
        self.panes: dict[str, DataPane] = {
            "stats": StatsPane(CUSTOMER, account, id="stats-pane"),
            "routes": RoutesPane(account),
            "calls": CallsPane(account),
            "dialogs": DialogsPane(account),
            "alerts": AccountAlertsPane(CUSTOMER, account),
            "summary": SummaryTab(account),
        }
        self.active = "stats"  # read by gather on the worker thread: kept in a plain attribute

    def compose(self) -> ComposeResult:
        yield NocHeader(f"Customers › {LOADING}")
        yield Static(LOADING, id="strip")
        with TabbedContent(initial=self.active):
            for tab, label in TABS.items():
                with TabPane(label, id=tab):
                    yield self.panes[tab]
        yield KeyBar()

    # Reading and showing --------------------------------------------------------------

    def gather(self, data: ConsoleData, now_ms: int) -> CustomerSnapshot:
        tab = self.active
        account = data.account(CUSTOMER, self.account, now_ms)
        return CustomerSnapshot(now_ms, data.feed(), account, tab,
                                self.panes[tab].gather(data, now_ms))

    def show(self, snapshot: CustomerSnapshot) -> None:
        header = self.query_one(NocHeader)
        header.show_feed(snapshot.feed, snapshot.now_ms, role=self.app.role,
                         read_only=self.app.read_only, tz=self.tz)
        name = self.account if snapshot.account is None else snapshot.account.name
        if name != self.name_shown:
            self.name_shown = name
            header.set_where(f"Customers › {name}")
        strip = self.query_one("#strip", Static)
        line = self._strip(snapshot, strip.content_size.width)
        line.truncate(strip.content_size.width or line.cell_len, overflow="ellipsis")
        strip.update(line)
        if snapshot.tab == self.active:
            self.show_pane(snapshot.tab, snapshot.pane)

    def forget_account(self) -> None:
        self.name_shown = None
        self.query_one(NocHeader).set_where(f"Customers › {LOADING}")
        self.query_one("#strip", Static).update(LOADING)

    def _strip(self, snapshot: CustomerSnapshot, width: int) -> Text:
        """The account's line; of the last hour's figures, as many as fit in `width` whole
        (never `PDD 2.…`)."""
        a = snapshot.account
        if a is None:
            return plain(f"✖ no customer “{self.account}” in the store", style="bold red")
        balance = Text(money(a.balance, a.currency), style="bold")
        if a.low_balance:
            balance = Text(f"▼ {balance.plain} low", style="bold red")
        status = a.status
        if a.status == "penalty":
            status = f"penalty {penalty_until(a.penalty_until_ms, snapshot.now_ms, self.tz)}"
        channels, cps = used_of(a.channels, a.channel_limit), used_of(a.cps, a.cps_limit)
        live = Text.assemble("Channels ", channels, "  CPS ", cps)
        as_of_ms = live_as_of(snapshot.feed, snapshot.now_ms, self.app.role)
        if as_of_ms is not None:  # as the writer last saw them: greyed, and said when
            live = Text(f"Channels {channels.plain}  CPS {cps.plain} "
                        f"{as_of(as_of_ms, snapshot.now_ms, self.tz)}", style="dim")
        line = status_line(
            "Balance ", balance, "  ", live, "  ",
            marked(STATUS_LOOK.get(a.status, ("?", "")), status),
        )
        for part in (f"   last hour: {a.attempts:,} attempts", f" · ASR {percent(a.asr)}",
                     f" · ACD {seconds(a.acd)}", f" · PDD {pdd(a.pdd_ms)}"):
            if width and line.cell_len + len(part) > width:
                break
            line.append(part, style="dim")
        return line

    def action_back(self) -> None:
        self.post_message(Back())
