"""The customer and carrier lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from console.feed.printable import printable
from screens.base import DataScreen
from screens.chrome import NocHeader
from screens.formats import (
    SEVERITY_MARK,
    STATUS_LOOK,
    cut,
    marked,
    money,
    pdd,
    percent,
    recent_time,
    seconds,
    used_of,
)
from screens.safe_text import plain
from screens.tables import LiveTable
from store.views import AccountRow, ConsoleData, FeedView, failures_severity
from widgets.filter_input import FilterInput
from widgets.key_bar import KeyBar
from widgets.live_table import Cell, Col

NAME_CHARS = 24  # longer names are cut (the search and the detail screen have them whole)


# The account lists ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AccountsSnapshot:
    now_ms: int
    feed: FeedView
    accounts: tuple[AccountRow, ...]


@dataclass(frozen=True)
class Sort:
    label: str
    key: Callable[[AccountRow], tuple]


SORTS = {
    "name": Sort("name", lambda a: (a.name.casefold(),)),
    "channels": Sort("channels", lambda a: (-a.channels, a.name.casefold())),
    "asr": Sort("ASR, worst first", lambda a: (a.asr is None, a.asr or 0.0, -a.attempts)),
    "attempts": Sort("attempts", lambda a: (-a.attempts, a.name.casefold())),
    "failures": Sort("consec. fails",
                     lambda a: (-(a.consecutive_failures or 0), a.name.casefold())),
    "balance": Sort("balance, lowest first",
                    lambda a: (a.balance is None, a.balance or 0.0, a.name.casefold())),
}
SORTS_BY_KIND = {
    "customer": ("name", "channels", "asr", "attempts", "balance"),
    "carrier": ("name", "channels", "asr", "attempts", "failures"),
}
class AccountListScreen(DataScreen):
    """Every account of `KIND` with its state now and its last hour; Enter opens one."""

    KIND = "customer"
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("s", "next_sort", "Sort"),
    ]
    DEFAULT_CSS = """
    AccountListScreen {
        & #list-bar { height: 1; background: $boost; }
        & #search { width: 1fr; max-width: 36; }
        & #list-status { width: 1fr; padding: 0 1; color: $text-muted; text-align: right; }
    }
    """
    AUTO_FOCUS = "#accounts"

    def __init__(self) -> None:
        super().__init__()
        self.plural = f"{self.KIND}s"
        self.sorts = SORTS_BY_KIND[self.KIND]
        self.sort = self.sorts[0]

    def compose(self) -> ComposeResult:
        yield NocHeader(self.plural.capitalize())
        with Horizontal(id="list-bar"):
            yield FilterInput(f"/ search {self.plural} by name or id", id="search")
            yield Static(id="list-status")
        yield LiveTable(self._columns(), id="accounts")
        yield KeyBar()

    def _columns(self) -> list[Col]:
        money_or_failures = (Col("balance", "Balance", "right") if self.KIND == "customer"
                             else Col("failures", "Consec. fails", "right"))
        return [
            Col("name", "Name"),
            money_or_failures,
            Col("channels", "Channels", "right"),
            Col("cps", "CPS", "right", drop=4),
            Col("asr", "ASR", "right"),
            Col("acd", "ACD", "right", drop=3),
            Col("pdd", "PDD", "right", drop=5),
            Col("attempts", "Att. 1h", "right", drop=1),
            Col("last", "Last call", "right", drop=6),
            Col("status", "Status"),
        ]

    # Reading and showing --------------------------------------------------------------

    def gather(self, data: ConsoleData, now_ms: int) -> AccountsSnapshot:
        return AccountsSnapshot(now_ms, data.feed(), tuple(data.accounts(self.KIND, now_ms)))

    def show(self, snapshot: AccountsSnapshot) -> None:
        self.query_one(NocHeader).show_feed(
            snapshot.feed, snapshot.now_ms, role=self.app.role, read_only=self.app.read_only,
            tz=self.tz,
        )
        self._show_rows()

    def _show_rows(self) -> None:
        snapshot: AccountsSnapshot | None = self._last_snapshot
        if snapshot is None:
            return
        needle = self.query_one("#search", Input).value.strip().casefold()
        found = [a for a in snapshot.accounts
                 if needle in a.id.casefold() or needle in a.name.casefold()]
        found.sort(key=SORTS[self.sort].key)
        self.query_one(LiveTable).set_rows((a.id, self._cells(a, snapshot.now_ms))
                                           for a in found)
        total = len(snapshot.accounts)
        count = f"{total} {self.plural}" if len(found) == total else f"{len(found)} of {total}"
        if needle and not found:
            count = f"no {self.KIND} matches “{needle}”"
        self.query_one("#list-status", Static).update(
            plain(f"{count} · sort: {SORTS[self.sort].label} (s)"))

    def _cells(self, a: AccountRow, now_ms: int) -> tuple[Cell, ...]:
        return (
            cut(printable(a.name), NAME_CHARS),
            self._balance(a) if self.KIND == "customer" else _failures(a.consecutive_failures),
            used_of(a.channels, a.channel_limit),
            used_of(a.cps, a.cps_limit),
            percent(a.asr),
            seconds(a.acd),
            pdd(a.pdd_ms),
            f"{a.attempts:,}",
            recent_time(a.last_call_ms, now_ms, self.tz),
            self._status(a, now_ms),
        )

    @staticmethod
    def _balance(a: AccountRow) -> Cell:
        amount = money(a.balance, a.currency)
        if a.balance is not None and a.balance <= 0:
            return Text(f"✖ {amount}", style="bold red")
        return Text(f"▼ {amount}", style="yellow") if a.low_balance else amount

    def _status(self, a: AccountRow, now_ms: int) -> Text:
        text = a.status
        if a.status == "penalty" and a.penalty_until_ms is not None:
            text = f"penalty →{recent_time(a.penalty_until_ms, now_ms, self.tz, '%H:%M')}"
        return marked(STATUS_LOOK.get(a.status, ("?", "")), text)

    # Actions --------------------------------------------------------------------------

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_next_sort(self) -> None:
        self.sort = self.sorts[(self.sorts.index(self.sort) + 1) % len(self.sorts)]
        self._show_rows()

    def on_input_changed(self, event: Input.Changed) -> None:
        self._show_rows()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_account(self.KIND, event.row_key.value)


def _failures(count: int | None) -> Cell:
    severity = failures_severity(count or 0)
    text = f"{count or 0:,}"
    return marked(SEVERITY_MARK[severity], text) if severity else text
