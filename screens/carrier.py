"""One carrier: is it connecting calls (Main), which of its failures another carrier answered
(Failover), its graphs (Stats), and its checks and penalties (Alerts).

Only the tab being looked at reads the store: the screen's snapshot is the header's data plus
the active pane's own snapshot (see screens.panes), and each part is drawn only when it changed.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from screens.account_alerts import AccountAlertsPane
from screens.base import DataScreen
from screens.call_detail import CallDetail
from screens.chrome import NocHeader
from screens.formats import (
    DASH,
    SEVERITY_MARK,
    figure,
    money,
    name_of,
    names_of,
    pdd,
    percent,
    recent_time,
    seconds,
    sip_code,
)
from screens.navigation import Back
from screens.panes import AccountTabs, DataPane
from screens.stats import SIP_PHRASES, StatsPane
from screens.summary import SummaryPane
from screens.tables import LiveTable
from store import metrics
from store.metrics import Totals
from store.views import (
    HOUR_MS,
    CallRow,
    CarrierMainView,
    CodeConsistency,
    ConsoleData,
    FailoverRow,
    FeedView,
    SummaryRow,
    failures_severity,
)
from widgets import LOADING
from widgets.big_number import BigNumber
from widgets.dialogs import ShowDialog
from widgets.key_bar import KeyBar
from widgets.live_table import Col

CARRIER = "carrier"
FAILURES_NOTE = ("Carrier failures (408, 5xx) since the last answered call; wrong-number "
                 "traffic does not count")
NEVER_404_WARNING = ("▲ WARNING  busy carrier never returned 404: it may be answering calls to "
                     "numbers that do not exist (false answer supervision)")


def facts_table(*facts: tuple[str, list[str]]) -> Table:
    """`label  a · b · c` lines, labels bold in a column of their own so wrapped lines align."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for label, parts in facts:
        table.add_row(label, " · ".join(parts))
    return table


def failures_caption(severity: str | None) -> str:
    """The caption under the big number, with the severity's mark: it reads without colour."""
    return f"{SEVERITY_MARK[severity][0] if severity else '✓'} consecutive failures"


def failover_facts(failover: int, answered: int) -> list[str]:
    return [f"{failover:,} failed here, retried elsewhere", f"{answered:,} answered there"]


# Main -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MainSnapshot:
    view: CarrierMainView
    summary: tuple[SummaryRow, ...]
    currency: str | None = None
    as_of: str = ""  # when the live figures were current, if not now ("as of 12:04")


def consistency_table(day: CodeConsistency, all_time: CodeConsistency) -> Table:
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("Code consistency", style="bold", no_wrap=True)
    table.add_column("24 h", justify="right", no_wrap=True)
    table.add_column("all time", justify="right", no_wrap=True)
    table.add_row("200 answered", f"{day.code_200:,}", f"{all_time.code_200:,}")
    table.add_row("404 not found", f"{day.code_404:,}", f"{all_time.code_404:,}")
    table.add_row("404 share", percent(day.share_404), percent(all_time.share_404))
    return table


def day_facts(day: Totals, currency: str | None = None) -> list[str]:
    return [
        f"{day.attempts:,} attempts", f"ASR {percent(metrics.asr(day))}",
        f"ACD {seconds(metrics.acd(day))}", f"PDD {pdd(metrics.pdd_ms(day))}",
        f"{metrics.minutes(day):,.0f} min", f"revenue {money(metrics.revenue(day), currency)}",
        f"cost {money(metrics.cost(day), currency)}",
        f"profit {money(metrics.profit(day), currency)}",
    ]


class MainPane(DataPane):
    """Consecutive failures, code consistency, failovers, the last 24 h and the summary."""

    def __init__(self, carrier: str) -> None:
        super().__init__(id="main-pane")
        self.account = carrier
        self.summary_mode = "live"
        self._shown: MainSnapshot | None = None

    def for_account(self, account: str) -> None:
        super().for_account(account)
        self._shown = None
        if self.is_mounted:
            self.query_one(SummaryPane).name_exports(f"carrier {account} summary")

    def compose(self) -> ComposeResult:
        # Until the first read: nothing said of the carrier, only that it is being read.
        with Horizontal(id="top"):
            yield BigNumber(None, "consecutive failures", id="failures")
            yield Static(LOADING, id="consistency")
        yield Static(id="failures-note", markup=False)
        never_404 = Static(NEVER_404_WARNING, id="never-404", markup=False)
        never_404.display = False
        yield never_404
        yield Static(id="facts")
        yield SummaryPane(f"carrier {self.account} summary", id="summary")

    def gather(self, data: ConsoleData, now_ms: int) -> MainSnapshot:
        return MainSnapshot(
            view=data.carrier_main(self.account, now_ms),
            summary=tuple(data.summary(CARRIER, self.account, self.summary_mode, now_ms)),
            currency=data.currency(),
            as_of=self.live_as_of(data, now_ms),
        )

    def show(self, snapshot: MainSnapshot) -> None:
        shown, self._shown = self._shown, snapshot
        money_and_time = (snapshot.currency, snapshot.as_of)
        if shown is None or (snapshot.view, *money_and_time) != (shown.view, shown.currency,
                                                                 shown.as_of):
            self._show_view(snapshot.view, *money_and_time)
        if shown is None or (snapshot.summary, *money_and_time) != (shown.summary,
                                                                    shown.currency, shown.as_of):
            self.query_one(SummaryPane).show_rows(snapshot.summary, *money_and_time)

    def _show_view(self, view: CarrierMainView, currency: str | None, as_of: str) -> None:
        severity = failures_severity(view.consecutive_failures)
        self.query_one(BigNumber).update_value(
            view.consecutive_failures, failures_caption(severity), severity or "ok")
        self.query_one("#consistency", Static).update(
            consistency_table(view.codes_24h, view.codes_all_time))
        changed = self.screen.when(view.failures_updated_ms, "%H:%M:%S")
        self.query_one("#failures-note", Static).update(f"{FAILURES_NOTE} · updated {changed}")
        self.query_one("#never-404").display = view.never_404
        self.query_one("#facts", Static).update(facts_table(
            ("Failover 24 h", failover_facts(view.failover, view.failover_answered)),
            ("Last 24 h", day_facts(view.last_24h, currency)),
            # What the writer last saw, once it is gone: not `Now`.
            (as_of.capitalize() or "Now", [f"{view.channels:,} channels"]),
        ))

    def on_summary_pane_mode_changed(self, event: SummaryPane.ModeChanged) -> None:
        event.stop()
        self.summary_mode = event.mode
        self.refresh_now()


# Failover -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FailoverSnapshot:
    now_ms: int
    failover: int
    failover_answered: int
    rows: tuple[FailoverRow, ...]
    names: tuple[tuple[tuple[str, str], str], ...] = ()
    summary: tuple[tuple[int, str, int], ...] = ()  # (code failed, answered by, calls)


SUMMARY_MIN_HEIGHT = 40  # terminal lines from which the failover summary has the room
SUMMARY_LINES = 5  # (code, carrier) pairs shown; the rest are counted on one line


def failover_summary_table(summary: Sequence[tuple[int, str, int]],
                           names: Mapping[tuple[str, str], str]) -> Table:
    """The failovers by the code this carrier failed with and the carrier that answered, the
    most first: what 2,973 near-identical rows say, at a glance."""
    table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
    table.add_column("Failed here with", no_wrap=True)
    table.add_column("Answered by", no_wrap=True)
    table.add_column("Calls, 7 days", justify="right", no_wrap=True)
    for code, answered_by, count in summary[:SUMMARY_LINES]:
        table.add_row(sip_code(code, SIP_PHRASES.get(code, "")),
                      name_of(names, CARRIER, answered_by), f"{count:,}")
    rest = summary[SUMMARY_LINES:]
    if rest:
        table.add_row(Text(f"{len(rest):,} more pairs", style="dim"), "",
                      f"{sum(count for *_, count in rest):,}")
    return table


class FailoverPane(DataPane):
    """Calls that failed on this carrier and were answered by the next one, newest first: what
    it failed, others connected. Enter opens the call with its attempts."""

    def __init__(self, carrier: str) -> None:
        super().__init__(id="failover-pane")
        self.account = carrier
        self._rows: dict[str, FailoverRow] = {}
        self._has_summary = False

    def for_account(self, account: str) -> None:
        super().for_account(account)
        self._rows = {}

    def compose(self) -> ComposeResult:
        yield Static(id="failover-counts")
        yield Static(id="failover-hint", markup=False)
        yield Static(id="failover-summary")
        yield LiveTable([
            Col("when", "When"), Col("customer", "Customer", drop=1), Col("cli", "CLI", drop=3),
            Col("dst", "Destination"), Col("route", "Route", drop=2),
            Col("failed", "Failed here"), Col("answered_by", "Answered by"),
            Col("talk", "Talk (s)", "right"),
        ], id="failovers")

    def gather(self, data: ConsoleData, now_ms: int) -> FailoverSnapshot:
        view = data.carrier_main(self.account, now_ms)
        return FailoverSnapshot(now_ms, view.failover, view.failover_answered,
                                tuple(data.failovers(self.account, now_ms)),
                                tuple(names_of(data).items()),
                                tuple(data.failover_summary(self.account, now_ms)))

    def show(self, snapshot: FailoverSnapshot) -> None:
        self.query_one("#failover-counts", Static).update(facts_table(
            ("Failover 24 h", failover_facts(snapshot.failover, snapshot.failover_answered))))
        self.query_one("#failover-hint", Static).update(
            "Failed here, answered elsewhere · 7 days, newest first · Enter: the call"
            if snapshot.rows else
            "No call failed here and was answered elsewhere in the last 7 days.")
        self._rows = {str(row.call_seq): row for row in snapshot.rows}
        tz = self.app.display_tz
        names = dict(snapshot.names)
        self._has_summary = bool(snapshot.summary)
        self.query_one("#failover-summary", Static).update(
            failover_summary_table(snapshot.summary, names))
        self._fit_summary()
        table = self.query_one(LiveTable)
        table.set_rows((key, (
            recent_time(r.start_ms, snapshot.now_ms, tz), name_of(names, "customer", r.customer),
            r.cli or DASH, r.dst,
            r.route or DASH,
            sip_code(r.failed_code, r.failed_reason or SIP_PHRASES.get(r.failed_code, "")),
            Text(name_of(names, CARRIER, r.answered_by), style="bold"), figure(r.duration_s),
        )) for key, r in self._rows.items())
        table.display = bool(snapshot.rows)

    def _fit_summary(self) -> None:
        """The summary where the terminal has the room for it above the list."""
        self.query_one("#failover-summary").display = (
            self._has_summary and self.app.size.height >= SUMMARY_MIN_HEIGHT)

    def on_resize(self) -> None:
        self._fit_summary()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self._rows.get(event.row_key.value or "")
        if row is not None:
            self.run_worker(lambda: self._find_call(row), thread=True, group="call",
                            exit_on_error=False)

    def _find_call(self, row: FailoverRow) -> None:
        """Read the call (worker thread): it started before this attempt, by seconds."""
        now_ms = self.app.clock()
        calls = self.app.data.latest_calls(row.customer, now_ms, number=row.dst,
                                           window_ms=now_ms - row.start_ms + HOUR_MS)
        call = next((c for c in calls if c.seq == row.call_seq), None)
        self.app.call_from_thread(self._open_call, row, call)

    def _open_call(self, row: FailoverRow, call: CallRow | None) -> None:
        if call is None:
            self.notify(f"Call {row.call_id} is no longer stored", severity="warning")
        else:
            self.post_message(ShowDialog(CallDetail(call, self.app.display_tz)))


# The screen -----------------------------------------------------------------------------------

TABS = {"main": "Main", "failover": "Failover", "stats": "Stats", "alerts": "Alerts"}


@dataclass(frozen=True)
class CarrierSnapshot:
    now_ms: int
    feed: FeedView
    name: str
    tab: str
    pane: Hashable


class CarrierScreen(AccountTabs, DataScreen):
    """A carrier's tabs; `<` `>` (or ctrl+PgUp/PgDn, or ←/→ on the tab bar) switch them,
    Escape goes back to the list."""

    CSS_PATH = [*DataScreen.CSS_PATH, "stats.tcss", "account_alerts.tcss", "summary.tcss",
                "carrier.tcss"]
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("greater_than_sign,ctrl+pagedown", "switch_tab(1)", "Next tab", key_display=">"),
        Binding("less_than_sign,ctrl+pageup", "switch_tab(-1)", "Previous tab",
                key_display="<"),
    ]

    def __init__(self, carrier: str) -> None:
        super().__init__()
        self.account = carrier
        self.panes: dict[str, DataPane] = {
            "main": MainPane(carrier),
            "failover": FailoverPane(carrier),
            "stats": StatsPane(CARRIER, carrier, id="stats-pane"),
            "alerts": AccountAlertsPane(CARRIER, carrier),
        }
        self.active = "main"  # read by gather on the worker thread: kept in a plain attribute
        self._header: tuple | None = None
        self._shown: dict[str, Hashable] = {}

    @property
    def carrier(self) -> str:
        return self.account

    def compose(self) -> ComposeResult:
        yield NocHeader(f"Carriers › {LOADING}")
        with TabbedContent(initial=self.active):
            for tab, label in TABS.items():
                with TabPane(label, id=tab):
                    yield self.panes[tab]
        yield KeyBar()

    # Reading and showing --------------------------------------------------------------

    def gather(self, data: ConsoleData, now_ms: int) -> CarrierSnapshot:
        tab = self.active
        names = {(kind, id_): name for kind, id_, name in data.account_names()}
        return CarrierSnapshot(now_ms, data.feed(), names.get((CARRIER, self.carrier),
                                                              self.carrier),
                               tab, self.panes[tab].gather(data, now_ms))

    def show(self, snapshot: CarrierSnapshot) -> None:
        header = (snapshot.feed, snapshot.now_ms, snapshot.name)
        if header != self._header:
            self._header = header
            chrome = self.query_one(NocHeader)
            chrome.show_feed(snapshot.feed, snapshot.now_ms, role=self.app.role,
                             read_only=self.app.read_only, tz=self.tz)
            chrome.set_where(f"Carriers › {snapshot.name}")
        if snapshot.tab == self.active and self._shown.get(snapshot.tab) != snapshot.pane:
            self._shown[snapshot.tab] = snapshot.pane
            self.show_pane(snapshot.tab, snapshot.pane)

    def forget_account(self) -> None:
        self._header, self._shown = None, {}
        self.query_one(NocHeader).set_where(f"Carriers › {LOADING}")

    def action_back(self) -> None:
        self.post_message(Back())
