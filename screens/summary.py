"""The summary table as every screen shows it: Live (24 h by hour), Daily, Monthly, in UTC;
each figure's unit in its column's header, the totals under the rows."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Tab, Tabs

from store.views import SummaryRow, summary_cells, summary_total
from widgets.summary_table import Column, SummaryTable

MODES = {"live": "Live 24 h", "daily": "Daily", "monthly": "Monthly"}


def columns(currency: str | None, as_of: str = "") -> tuple[Column, ...]:
    """The summary's columns; money in `currency` when the figures have one; calls in
    progress `as_of` when, if they are not current."""
    money = f" ({currency})" if currency else ""
    return (
        Column("date", "Date (UTC)"),
        Column("attempts", "Attempts", "int"),
        # A row with calls going on is open.
        Column("in_progress", f"In progress {as_of}".rstrip(), "int"),
        Column("connected", "Connected", "int"),
        Column("asr", "ASR", "percent", ratio=True),
        Column("acd", "ACD (s)", "seconds", ratio=True),
        Column("duration", "Minutes", "minutes"),
        Column("billed", "Billed (min)", "minutes"),
        Column("revenue", f"Revenue{money}", "money"),
        Column("cost", f"Cost{money}", "money"),
        Column("profit", f"Profit{money}", "money"),
        Column("profit_pct", "Profit %", "percent", ratio=True),
        Column("pdd", "PDD (s)", "seconds", ratio=True),
        Column("ner", "NER", "percent", ratio=True),
    )


def since_data(rows: Sequence[SummaryRow]) -> list[SummaryRow]:
    """The rows (newest first) from the oldest that holds a call on: the empty hours before
    the data begins say nothing."""
    rows = list(rows)
    while rows and not rows[-1].totals.attempts and not rows[-1].in_progress:
        rows.pop()
    return rows


def table_rows(rows: Sequence[SummaryRow]) -> list[tuple[str, tuple]]:
    return [(str(row.bucket_ms), summary_cells(row)) for row in rows]


class SummaryPane(Vertical):
    """Mode tabs over a SummaryTable; `m` cycles the mode. The screen supplies the rows."""

    BINDINGS = [Binding("m", "next_mode", "Live/Daily/Monthly")]

    class ModeChanged(Message):
        def __init__(self, mode: str) -> None:
            super().__init__()
            self.mode = mode

    def __init__(self, export_name: str, *, now=None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.export_name = export_name
        self.now = now
        self.mode = "live"

    def compose(self) -> ComposeResult:
        yield Tabs(*(Tab(label, id=mode) for mode, label in MODES.items()))
        options = {"now": self.now} if self.now is not None else {}
        yield SummaryTable(export_name=self.export_name, export_folder=self.app.options.exports,
                           **options)

    def name_exports(self, export_name: str) -> None:
        """Name export files after another account (the pane is kept for the next one)."""
        self.export_name = self.table.export_name = export_name

    @property
    def table(self) -> SummaryTable:
        return self.query_one(SummaryTable)

    def show_rows(self, rows: Sequence[SummaryRow], currency: str | None = None,
                  as_of: str = "") -> None:
        """`as_of`: when the calls in progress were counted, if not now ("as of 12:04")."""
        rows = since_data(rows)
        self.table.set_data(columns(currency, as_of), table_rows(rows),
                            summary_cells(summary_total(rows)) if rows else None)

    def action_next_mode(self) -> None:
        modes = list(MODES)
        self.query_one(Tabs).active = modes[(modes.index(self.mode) + 1) % len(modes)]

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab.id and event.tab.id != self.mode:
            self.mode = event.tab.id
            self.post_message(self.ModeChanged(self.mode))
