"""The customer and carrier lists, and the live table every list of noc's detail screens uses.

A list is fed whole row sets at the refresh rate and changes only the cells that differ, keeping
rows keyed and the cursor on the row it was on; when the terminal is too narrow for every
column, the least important ones are left out (the rest still scroll sideways).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from console.feed.printable import printable
from screens.base import DataScreen
from screens.chrome import NocHeader
from screens.dashboard import SEVERITY_MARK
from screens.safe_text import plain, printable_text
from store.views import DAY_MS, AccountRow, ConsoleData, FeedView, failures_severity
from widgets.key_bar import KeyBar

DASH = "–"
SCROLLBAR = 2  # the vertical scrollbar's cells, which the columns cannot use
NEAR_LIMIT = 0.9  # channels or CPS this close to the limit are marked
NAME_CHARS = 24  # longer names are cut (the search and the detail screen have them whole)


# Formatting shared by the lists --------------------------------------------------------------

def local_time(ms: int | None, tz: tzinfo, pattern: str = "%H:%M:%S") -> str:
    if ms is None:
        return DASH
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).strftime(pattern)


def iso_utc(ms: int, timespec: str = "milliseconds") -> str:
    """For exports: ISO 8601, UTC, whatever the display time zone."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec=timespec)


def recent_time(ms: int | None, now_ms: int, tz: tzinfo, pattern: str = "%H:%M:%S") -> str:
    """A time of day within a day of now, else the date too."""
    if ms is not None and abs(now_ms - ms) >= DAY_MS:
        return local_time(ms, tz, "%m-%d %H:%M")
    return local_time(ms, tz, pattern)


def percent(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}%"


def seconds(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f}s"


def pdd(ms: float | None) -> str:
    return DASH if ms is None else f"{ms / 1000:.1f}s"


def money(amount: float | None, currency: str | None = None) -> str:
    if amount is None:
        return DASH
    return f"{amount:,.2f} {currency or ''}".rstrip()


def used_of(used: int, limit: float | None) -> Text:
    """'52/60', or '52/–' without a limit (0 means unlimited); marked from 90 % of the limit,
    red at it."""
    if not limit:
        return Text(f"{used:,}/{DASH}")
    text = f"{used:,}/{limit:,.0f}"
    if used >= limit:
        return Text(f"▲ {text}", style="bold red")
    return Text(f"▲ {text}", style="yellow") if used >= NEAR_LIMIT * limit else Text(text)


def cut(text: str, width: int) -> str:
    """At most `width` characters, the last an ellipsis when cut."""
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def marked(mark_and_style: tuple[str, str], text: str) -> Text:
    mark, style = mark_and_style
    return Text(f"{mark} {text}", style=style)


# The live table -------------------------------------------------------------------------------

Cell = str | Text


@dataclass(frozen=True)
class Col:
    """A column: `drop` 0 is always shown; when the width runs short, higher numbers go first."""

    key: str
    label: str
    justify: str = "left"
    drop: int = 0


class LiveTable(DataTable):
    """A row-cursor DataTable fed whole row sets (`set_rows`) and changed in place."""

    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    LiveTable > .datatable--header { text-style: bold; }
    """

    def __init__(self, columns: Sequence[Col], *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", id=id)
        self.specs = tuple(columns)
        self._rows: dict[str, tuple[Text, ...]] = {}  # key -> every column's cell, in row order
        self._shown: tuple[Col, ...] = ()

    @property
    def highlighted_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def on_mount(self) -> None:
        self._show_columns(self.specs)

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    async def _on_idle(self, event: events.Idle) -> None:
        # DataTable measures new cells when idle, but its render caches are not keyed by column
        # widths: a frame drawn in between would keep stale widths until the next change,
        # which a quiet console may never bring. So draw afresh once measured.
        measuring = self._require_update_dimensions or bool(self._updated_cells)
        await super()._on_idle(event)
        if measuring:
            self._update_count += 1
            self.refresh()

    def set_rows(self, rows: Iterable[tuple[str, Sequence[Cell]]]) -> None:
        """Show these rows, in this order: only changed cells, new and gone rows are touched."""
        new: dict[str, tuple[Text, ...]] = {}
        for key, cells in rows:
            new[key] = tuple(_cell(value, col.justify)
                             for value, col in zip(cells, self.specs, strict=True))
        old, self._rows = self._rows, new
        if not self._fit():
            with self.app.batch_update():
                self._apply(old)

    def _apply(self, old: dict[str, tuple[Text, ...]]) -> None:
        cursor_key = self.highlighted_key
        shown = [(index, col.key) for index, col in enumerate(self.specs) if col in self._shown]
        for key in old.keys() - self._rows.keys():
            self.remove_row(key)
        for key, cells in self._rows.items():
            if key not in old:
                self.add_row(*(cells[index] for index, _ in shown), key=key)
                continue
            for index, column in shown:
                if cells[index] != old[key][index]:
                    self.update_cell(key, column, cells[index])
        self._order_rows()
        self._keep_cursor_on(cursor_key)

    def _keep_cursor_on(self, key: str | None) -> None:
        """Follow the highlighted row to where it went (moving only then: a cursor move
        scrolls it into view)."""
        if key in self._rows and self.get_row_index(key) != self.cursor_row:
            self.move_cursor(row=self.get_row_index(key), animate=False)

    def _order_rows(self) -> None:
        wanted = list(self._rows)
        if [row.key.value for row in self.ordered_rows] == wanted or not self._shown:
            return
        # DataTable sorts on cell values only: each row's first cell is an object of its own
        # (see _cell), so its identity tells the row apart.
        first = self._shown[0].key
        rank = {id(self.get_cell(key, first)): index for index, key in enumerate(wanted)}
        self.sort(first, key=lambda cell: rank[id(cell)])

    def _fit(self) -> bool:
        """Show the columns that fit the width; True if the table was rebuilt for it."""
        if not self.size.width:
            return False
        room = self.size.width - SCROLLBAR
        needs = {col: self._width(index) + 2 * self.cell_padding
                 for index, col in enumerate(self.specs)}
        shown = list(self.specs)
        for col in sorted((c for c in self.specs if c.drop), key=lambda c: -c.drop):
            if sum(needs[c] for c in shown) <= room:
                break
            shown.remove(col)
        if tuple(shown) == self._shown:
            return False
        self._show_columns(shown)
        return True

    def _width(self, index: int) -> int:
        label = len(self.specs[index].label)
        return max([label, *(row[index].cell_len for row in self._rows.values())])

    def _show_columns(self, columns: Sequence[Col]) -> None:
        """Rebuild with these columns: only when the set that fits the width changes."""
        cursor_key = self.highlighted_key
        self._shown = tuple(columns)
        indexes = [index for index, col in enumerate(self.specs) if col in self._shown]
        with self.app.batch_update():
            self.clear(columns=True)
            for col in self._shown:
                self.add_column(Text(col.label, justify=col.justify), key=col.key)
            for key, cells in self._rows.items():
                self.add_row(*(cells[index] for index in indexes), key=key)
            self._keep_cursor_on(cursor_key)


def _cell(value: Cell, justify: str) -> Text:
    """A fresh Text per cell (never shared between rows: LiveTable orders rows by identity),
    printable, never markup: cells hold the feed's text."""
    text = printable_text(value).copy() if isinstance(value, Text) else plain(value)
    text.justify = justify
    return text


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
        self.screen.focus_next(LiveTable)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_leave(False)


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
STATUS_LOOK = {
    "active": ("●", "green"),
    "inactive": ("○", "dim"),
    "disabled": ("✖", "bold red"),
    "penalty": ("▲", "bold yellow"),
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
