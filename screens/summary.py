"""The summary table as every screen shows it: Live (24 h by hour), Daily, Monthly, in UTC."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Tab, Tabs

from store.views import SummaryRow, summary_cells
from widgets.summary_table import Column, SummaryTable

COLUMNS = (
    Column("date", "Date (UTC)"),
    Column("attempts", "Attempts", "int"),
    Column("in_progress", "In progress", "int"),  # a row with calls going on is open
    Column("connected", "Connected", "int"),
    Column("asr", "ASR", "percent", ratio=True),
    Column("acd", "ACD", "seconds", ratio=True),
    Column("duration", "Minutes", "minutes"),
    Column("billed", "Billed", "minutes"),
    Column("revenue", "Revenue", "money"),
    Column("cost", "Cost", "money"),
    Column("profit", "Profit", "money"),
    Column("profit_pct", "Profit %", "percent", ratio=True),
    Column("pdd", "PDD", "ms", ratio=True),
    Column("ner", "NER", "percent", ratio=True),
)
MODES = {"live": "Live 24 h", "daily": "Daily", "monthly": "Monthly"}


def table_rows(rows: Sequence[SummaryRow]) -> list[tuple[str, tuple]]:
    return [(str(row.bucket_ms), summary_cells(row)) for row in rows]


class SummaryPane(Vertical):
    """Mode tabs over a SummaryTable; `m` cycles the mode. The screen supplies the rows."""

    DEFAULT_CSS = """
    SummaryPane { height: 1fr; }
    SummaryPane > Tabs { height: 2; }
    SummaryPane > SummaryTable { height: 1fr; }
    """
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

    @property
    def table(self) -> SummaryTable:
        return self.query_one(SummaryTable)

    def show_rows(self, rows: Sequence[SummaryRow]) -> None:
        self.table.set_data(COLUMNS, table_rows(rows))

    def action_next_mode(self) -> None:
        modes = list(MODES)
        self.query_one(Tabs).active = modes[(modes.index(self.mode) + 1) % len(modes)]

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        if event.tab.id and event.tab.id != self.mode:
            self.mode = event.tab.id
            self.post_message(self.ModeChanged(self.mode))
