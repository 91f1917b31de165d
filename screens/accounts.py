"""The customer and carrier lists."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Static

from console.feed.printable import printable
from screens.base import DataScreen, live_as_of
from screens.chrome import NocHeader
from screens.formats import (
    SEVERITY_MARK,
    STATUS_LOOK,
    as_of,
    cut_names,
    figure,
    marked,
    money,
    pdd_figure,
    penalty_until,
    percent,
    recent_time,
    used_of,
)
from screens.navigation import OpenAccount
from screens.safe_text import plain
from screens.tables import WindowTable
from store.views import AccountPage, AccountRow, ConsoleData, FeedView, failures_severity
from widgets.filter_input import FilterInput
from widgets.key_bar import KeyBar
from widgets.live_table import Cell, Col

# The account lists ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ListQuery:
    """What a list asks the store for: a window of its rows, sorted and searched."""

    sort: str
    search: str = ""
    offset: int = 0
    limit: int = 100
    keep: str | None = None  # the highlighted account, whose place is read too
    follow: bool = False  # read the window around `keep` (after the sort or search changed)


@dataclass(frozen=True)
class AccountsSnapshot:
    now_ms: int
    feed: FeedView
    query: ListQuery
    page: AccountPage


SORT_LABELS = {  # the sorts of store.views.ACCOUNT_SORTS as the status line names them, k9s'
    # way: ▼ the most (of trouble, channels...) first, ▲ the least (A first, the lowest ASR)
    "trouble": "trouble ▼",
    "name": "name ▲",
    "channels": "channels ▼",
    "asr": "ASR ▲",
    "attempts": "attempts ▼",
    "failures": "consec. fails ▼",
    "balance": "balance ▲",
}
SORTS_BY_KIND = {  # the first is the default: failing, penalised, over a limit first
    "customer": ("trouble", "name", "channels", "asr", "attempts", "balance"),
    "carrier": ("trouble", "name", "channels", "asr", "attempts", "failures"),
}


class AccountListScreen(DataScreen):
    """Every account of `KIND` with its state now and its last hour; Enter opens one. The store
    sorts and searches the list and reads only the rows around those shown, so that a list of
    tens of thousands shows, sorts and searches as quickly as one of ten."""

    KIND = "customer"
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("s", "next_sort", "Sort"),
    ]
    CSS_PATH = [*DataScreen.CSS_PATH, "accounts.tcss"]
    AUTO_FOCUS = "#accounts"

    def __init__(self) -> None:
        super().__init__()
        self.plural = f"{self.KIND}s"
        self.sorts = SORTS_BY_KIND[self.KIND]
        self.list_query = ListQuery(self.sorts[0])

    @property
    def sort(self) -> str:
        return self.list_query.sort

    def compose(self) -> ComposeResult:
        yield NocHeader(self.plural.capitalize())
        with Horizontal(id="list-bar"):
            yield FilterInput(f"/ search {self.plural} by name or id", id="search")
            yield Static(id="list-status")
        yield WindowTable(self._columns(), id="accounts")
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
            Col("acd", "ACD (s)", "right", drop=3),
            Col("pdd", "PDD (s)", "right", drop=5),
            Col("attempts", "Att. 1h", "right", drop=1),
            Col("last", "Last call", "right", drop=6),
            Col("status", "Status"),
        ]

    # Reading and showing --------------------------------------------------------------

    def gather(self, data: ConsoleData, now_ms: int) -> AccountsSnapshot:
        query = self.list_query  # read once: the UI thread replaces it, never changes it
        found = data.account_page(self.KIND, now_ms, sort=query.sort, search=query.search,
                                  offset=query.offset, limit=query.limit, keep=query.keep,
                                  follow=query.follow)
        return AccountsSnapshot(now_ms, data.feed(), query, found)

    def show(self, snapshot: AccountsSnapshot) -> None:
        self.query_one(NocHeader).show_feed(
            snapshot.feed, snapshot.now_ms, role=self.app.role, read_only=self.app.read_only,
            tz=self.tz,
        )
        page, query = snapshot.page, snapshot.query
        table = self.query_one(WindowTable)
        if query.follow:  # the highlighted account where the new order puts it, or the top
            cursor: int | None = page.kept or 0
            self.list_query = replace(self.list_query, offset=page.offset, follow=False)
        elif page.kept is not None and page.offset <= page.kept < page.offset + len(page.rows):
            cursor = page.kept  # the cursor stays on its account as the order changes
        else:
            cursor = None
        as_of_ms = live_as_of(snapshot.feed, snapshot.now_ms, self.app.role)
        names = cut_names([printable(a.name) for a in page.rows])
        table.show_window(page.matched, page.offset,
                          [(a.id, self._cells(a, name, snapshot.now_ms,
                                              stale=as_of_ms is not None))
                           for a, name in zip(page.rows, names, strict=True)], cursor)
        # From now on, read as many rows as the table holds at its size.
        self.list_query = replace(self.list_query, limit=table.window_wanted()[1])
        count = (f"{page.total:,} {self.plural}" if page.matched == page.total
                 else f"{page.matched:,} of {page.total:,}")
        if query.search.strip() and not page.matched:
            count = f"no {self.KIND} matches “{query.search.strip()}”"
        status = plain(f"{count} · sorted by {SORT_LABELS[query.sort]} (s)")
        if as_of_ms is not None:  # the writer is gone: channels and CPS are its last
            status.append(f" · channels {as_of(as_of_ms, snapshot.now_ms, self.tz)}", style="dim")
        self.query_one("#list-status", Static).update(status)

    def _ask(self, **changes) -> None:
        """Read the list again, asked differently."""
        self.list_query = replace(self.list_query, **changes)
        self.refresh_now()

    def _cells(self, a: AccountRow, name: str, now_ms: int, *,
               stale: bool = False) -> tuple[Cell, ...]:
        """`name` as cut for the list it is in; `stale`: the channels and CPS are the gone
        writer's last, greyed."""
        live = [used_of(a.channels, a.channel_limit), used_of(a.cps, a.cps_limit)]
        if stale:
            live = [Text(cell.plain, style="dim") for cell in live]
        return (
            name,
            self._balance(a) if self.KIND == "customer" else _failures(a.consecutive_failures),
            *live,
            percent(a.asr),
            figure(a.acd),
            pdd_figure(a.pdd_ms),
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
            text = f"penalty {penalty_until(a.penalty_until_ms, now_ms, self.tz)}"
        return marked(STATUS_LOOK.get(a.status, ("?", "")), text)

    # Actions --------------------------------------------------------------------------

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_next_sort(self) -> None:
        self._ask(sort=self.sorts[(self.sorts.index(self.sort) + 1) % len(self.sorts)],
                  follow=True)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.value != self.list_query.search:
            self._ask(search=event.value, follow=True)

    def on_window_table_wanted(self, event: WindowTable.Wanted) -> None:
        self._ask(offset=event.offset, limit=event.limit)

    def on_window_table_highlighted(self, event: WindowTable.Highlighted) -> None:
        self.list_query = replace(self.list_query, keep=event.key)

    def on_window_table_selected(self, event: WindowTable.Selected) -> None:
        self.post_message(OpenAccount(self.KIND, event.key))


def _failures(count: int | None) -> Cell:
    severity = failures_severity(count or 0)
    text = f"{count or 0:,}"
    return marked(SEVERITY_MARK[severity], text) if severity else text
