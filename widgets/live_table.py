"""A table fed whole row sets at the refresh rate that changes only the cells that differ,
keeping rows keyed and the cursor on the row it was on; when the terminal is too narrow for every
column, the least important ones are left out (the rest still scroll sideways). For the short
lists of noc's screens (hundreds of rows): a list of any length is a WindowTable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual._two_way_dict import TwoWayDict
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowKey

SCROLLBAR = 2  # the vertical scrollbar's cells, which the columns cannot use

Cell = str | Text


@dataclass(frozen=True)
class Col:
    """A column: `drop` 0 is always shown; when the width runs short, higher numbers go first.
    A `fill` column (the last) takes the room the others leave, its texts shortened at a word
    with "…": a number is shown whole or not at all, never cut into another one. One that
    `keeps_whole` is shortened only once every column with a `drop` has made room for it."""

    key: str
    label: str
    justify: str = "left"
    drop: int = 0
    fill: bool = False
    keeps_whole: bool = False


def shortened(text: Text, width: int) -> Text:
    """`text` in `width` cells: whole, or cut after a word and ended with "…"."""
    if text.cell_len <= width:
        return text
    cut = text.plain.rfind(" ", 0, max(width, 1))
    short = text[:cut if cut > 0 else max(width - 1, 0)]
    short.rstrip()
    short.append("…")
    return short


def fit_columns(columns: Sequence[Col], needs: Mapping[Col, int], room: int) -> tuple[Col, ...]:
    """The columns that fit in `room` cells, each needing `needs[col]`: those with the highest
    `drop` are left out first."""
    shown = list(columns)
    for col in sorted((c for c in columns if c.drop), key=lambda c: -c.drop):
        if sum(needs[c] for c in shown) <= room:
            break
        shown.remove(col)
    return tuple(shown)


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
        self._fill_width = 0  # the cells of a `fill` column, as last fitted

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

    def relabel(self, key: str, label: str) -> None:
        """Give the column `key` a new header (`Charge (EUR)` once the currency is read)."""
        specs = tuple(replace(col, label=label) if col.key == key else col for col in self.specs)
        if specs != self.specs:
            self.specs = specs
            self._shown = ()
            self._fit()

    def set_rows(self, rows: Iterable[tuple[str, Sequence[Cell]]]) -> None:
        """Show these rows, in this order: only changed cells, new and gone rows are touched."""
        new: dict[str, tuple[Text, ...]] = {}
        for key, cells in rows:
            new[key] = tuple(self._cell(value, col.justify)
                             for value, col in zip(cells, self.specs, strict=True))
        old, self._rows = self._rows, new
        if not self._fit():
            with self.app.batch_update():
                self._apply(old)

    def _cell(self, value: Cell, justify: str) -> Text:
        # A fresh Text per cell, never shared between rows: rows are ordered by identity.
        text = self.cell_text(value).copy()
        text.justify = justify
        return text

    def cell_text(self, value: Cell) -> Text:
        """A cell as drawn: never markup. Showing outside text, override it to make the text
        printable too (screens.tables does)."""
        return value if isinstance(value, Text) else Text(value)

    def _apply(self, old: dict[str, tuple[Text, ...]]) -> None:
        cursor_key = self.highlighted_key
        shown = [(index, col.key) for index, col in enumerate(self.specs) if col in self._shown]
        gone = old.keys() - self._rows.keys()
        self._remove_rows(gone)
        changed = bool(gone)
        for key, cells in self._rows.items():
            if key not in old:
                self.add_row(*(self._shown_cell(cells, index) for index, _ in shown), key=key)
                changed = True
                continue
            for index, column in shown:
                if cells[index] != old[key][index]:
                    self.update_cell(key, column, self._shown_cell(cells, index))
                    changed = True
        if changed:
            self._set_widths()
        self._order_rows()
        self._keep_cursor_on(cursor_key)

    def _remove_rows(self, keys: set[str]) -> None:
        """Remove these rows at once: DataTable's remove_row renumbers every row after the one
        removed and sets the cursor again, so calls in progress ending by the dozen between two
        reads (Dialogs) cost each a pass over all 200."""
        if not keys:
            return
        gone = {RowKey(key) for key in keys}
        kept = sorted((index, key) for key in self._row_locations
                      if key not in gone for index in (self._row_locations.get(key),))
        self._row_locations = TwoWayDict({key: index for index, (_, key) in enumerate(kept)})
        for key in gone:
            for column in self._data[key]:
                self._updated_cells.discard(CellKey(key, column))
            self._new_rows.discard(key)
            del self.rows[key], self._data[key]
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate  # kept within the rows left
        self._update_count += 1
        self.refresh(layout=True)

    def _set_widths(self) -> None:
        """Give each column the width of its widest cell, measured here once a change: left
        to DataTable, every cell changed measured its whole column again when it narrowed (a
        tab of 200 calls whose times all tick: 40,000 cells measured, 600 ms of CPU), and every
        new row was measured cell by cell. Rows are one line high, so a cell's width is all
        DataTable would measure."""
        changed = False
        for index, col in enumerate(self.specs):
            column = self.columns.get(ColumnKey(col.key))
            if column is None:
                continue
            width = max([cell_len(col.label), *(self._shown_cell(cells, index).cell_len
                                                for cells in self._rows.values())])
            if column.content_width != width:
                column.content_width, changed = width, True
        self._new_rows.clear()  # measured above
        if changed:
            self._require_update_dimensions = True  # the scrollable width, and a frame drawn

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
        needs = {col: self._width(index, whole=not col.fill or col.keeps_whole)
                 + 2 * self.cell_padding for index, col in enumerate(self.specs)}
        shown = fit_columns(self.specs, needs, room)
        fills = [index for index, col in enumerate(self.specs) if col.fill and col in shown]
        fill_width = 0
        if fills:
            others = sum(needs[c] for c in shown if not c.fill) + 2 * self.cell_padding
            fill_width = max(room - others, self._width(fills[0], whole=False))
            if self.specs[fills[0]].keeps_whole:  # no wider than its widest text
                fill_width = min(fill_width, self._width(fills[0]))
        if shown == self._shown and fill_width == self._fill_width:
            return False
        self._fill_width = fill_width
        self._show_columns(shown)
        return True

    def _width(self, index: int, *, whole: bool = True) -> int:
        """The widest cell of a column (only its label, for a `fill` column, which fits)."""
        label = len(self.specs[index].label)
        if not whole:
            return label
        return max([label, *(row[index].cell_len for row in self._rows.values())])

    def _shown_cell(self, cells: Sequence[Text], index: int) -> Text:
        if self.specs[index].fill:
            return shortened(cells[index], self._fill_width)
        return cells[index]

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
                self.add_row(*(self._shown_cell(cells, index) for index in indexes), key=key)
            self._set_widths()
            self._keep_cursor_on(cursor_key)
