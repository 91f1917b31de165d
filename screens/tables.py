"""The tables of noc's screens: those of widgets/, their cells made printable, for they hold
the feed's text (names, numbers, reasons): see screens.safe_text."""

from __future__ import annotations

from rich.text import Text

from screens.safe_text import plain, printable_text
from widgets import live_table, window_table
from widgets.live_table import Cell


class PrintableCells:
    def cell_text(self, value: Cell) -> Text:
        return printable_text(value) if isinstance(value, Text) else plain(value)


class LiveTable(PrintableCells, live_table.LiveTable):
    """A short list fed whole, changed in place (widgets.live_table)."""


class WindowTable(PrintableCells, window_table.WindowTable):
    """A list of any length, holding only the rows around those shown (widgets.window_table)."""
