"""SummaryTable: the grid for summary figures (per hour, day or month; per customer or carrier).

Spreadsheet-like: a cell cursor, a rectangular range selection (shift+arrows or a mouse drag), a
status line with the count, sum and average of the selection, copy as TSV and export to CSV, JSON
or XLSX. Drawn with the Line API, so a repaint costs the visible rows only, however long the table.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from itertools import accumulate
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from widgets import LOADING
from widgets.dialogs import ShowDialog
from widgets.export import ExportResult, ExportScreen, Scope
from widgets.export_files import ExportColumn, Value, export_path, write_table

ColumnKind = Literal["text", "int", "float", "money", "percent", "seconds", "minutes", "ms"]

# Decimals shown per kind. What is shown is what gets summed, copied and exported.
DECIMALS: dict[str, int] = {
    "text": 0,
    "int": 0,
    "float": 2,
    "money": 2,
    "percent": 1,
    "seconds": 1,
    "minutes": 1,
    "ms": 0,
}
# What a selection's status line calls each kind's unit: figures add up within one unit only.
UNITS: dict[str, str] = {
    "int": "counts",
    "float": "numbers",
    "money": "money",
    "percent": "%",
    "seconds": "seconds",
    "minutes": "minutes",
    "ms": "ms",
}
KIND_OF_UNIT = {unit: kind for kind, unit in UNITS.items()}
PAD = 1  # blank cells either side of every value


def format_number(number: float, decimals: int, suffix: str = "") -> str:
    # Adding 0.0 turns a rounded -0.0 into 0.0, so a tiny loss does not show as "-0.00".
    return f"{round(number, decimals) + 0.0:,.{decimals}f}{suffix}"


def _cell_text(column: Column, value: object, number: float | None, missing: str) -> str:
    if value is None:
        return missing
    if number is None:
        return str(value)
    # The text is the shown number, so that screen, status line, copy and export agree.
    return f"{number:,.{column.decimals}f}{column.suffix}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


@dataclass(frozen=True)
class Column:
    """A column. `ratio` marks ratios and averages (ASR, ACD, PDD...), whose mean is only an
    average of averages, not the true figure over the underlying calls."""

    key: str
    label: str
    kind: ColumnKind = "text"
    ratio: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind != "text"

    @cached_property  # read for every cell formatted
    def decimals(self) -> int:
        return DECIMALS[self.kind]

    @cached_property
    def suffix(self) -> str:
        return "%" if self.kind == "percent" else ""

    def shown_number(self, value: object) -> int | float | None:
        """The value as shown (rounded to the column's decimals); None for text and blanks (a
        text in a numeric column, such as "open" for a figure not final yet, included)."""
        if value is None or not self.numeric or isinstance(value, str):
            return None
        number = round(float(value), self.decimals) + 0.0
        return int(number) if self.decimals == 0 else number


class Cell(NamedTuple):
    row: int
    column: int


@dataclass(frozen=True)
class CellRange:
    """A rectangle of cells, both corners included."""

    top: int
    left: int
    bottom: int
    right: int

    @classmethod
    def between(cls, a: Cell, b: Cell) -> CellRange:
        return cls(
            min(a.row, b.row), min(a.column, b.column), max(a.row, b.row), max(a.column, b.column)
        )

    @property
    def rows(self) -> range:
        return range(self.top, self.bottom + 1)

    @property
    def columns(self) -> range:
        return range(self.left, self.right + 1)

    @property
    def cell_count(self) -> int:
        return len(self.rows) * len(self.columns)


@dataclass(frozen=True)
class SelectionStats:
    count: int  # cells selected
    numeric_count: int  # of which numbers; text and blank cells are never counted
    sum: float | None  # of the shown values; None without numbers or across units
    average: float | None  # mean of the shown values; None without numbers or across units
    includes_ratio: bool  # a ratio column is selected: its mean is an average of averages
    units: tuple[str, ...] = ()  # of the numbers selected (UNITS), in column order


@dataclass(frozen=True)
class _Sheet:
    """The data as shown, prepared once per `set_data` so that drawing only slices it."""

    columns: tuple[Column, ...] = ()
    row_keys: tuple[str, ...] = ()
    values: tuple[Sequence[object], ...] = ()
    numbers: tuple[list[int | float | None], ...] = ()  # shown numbers; None: text or blank
    texts: tuple[list[str], ...] = ()
    total_texts: tuple[str, ...] | None = None  # the totals row, pinned under the rows
    widths: tuple[int, ...] = ()  # widest text per column, padding excluded
    edges: tuple[int, ...] = (0,)  # x where each column starts, then the total width
    row_index: dict[str, int] = field(default_factory=dict)
    column_index: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        columns: Sequence[Column],
        rows: Sequence[tuple[str, Sequence[object]]],
        missing: str,
        previous: _Sheet,
        totals: Sequence[object] | None = None,
    ) -> _Sheet:
        """Format `rows` (and `totals`, the figures of all of them); a row whose values are as
        in `previous` reuses its formatting, so a live update pays only for the rows that
        changed."""
        columns = tuple(columns)
        reusable = previous.row_index if previous.columns == columns else {}
        numbers, texts = [], []
        for key, values in rows:
            old = reusable.get(key)
            if old is not None and previous.values[old] == values:
                numbers.append(previous.numbers[old])
                texts.append(previous.texts[old])
                continue
            if len(values) != len(columns):
                raise ValueError(f"row {key!r} has {len(values)} values for {len(columns)} columns")
            shown = [
                column.shown_number(value) for column, value in zip(columns, values, strict=True)
            ]
            numbers.append(shown)
            texts.append(
                [
                    _cell_text(column, value, number, missing)
                    for column, value, number in zip(columns, values, shown, strict=True)
                ]
            )
        total_texts = None if totals is None else tuple(
            _cell_text(column, value, column.shown_number(value), missing)
            for column, value in zip(columns, totals, strict=True))
        shown_texts = texts if total_texts is None else [*texts, total_texts]
        widths = tuple(
            max(
                cell_len(column.label),
                # Numbers are formatted in ASCII: len() is their width, and much quicker.
                max(map(len if column.numeric else cell_len,
                        (row[index] for row in shown_texts)), default=0),
            )
            for index, column in enumerate(columns)
        )
        return cls(
            columns=columns,
            row_keys=tuple(key for key, _ in rows),
            values=tuple(values for _, values in rows),
            numbers=tuple(numbers),
            texts=tuple(texts),
            total_texts=total_texts,
            widths=widths,
            edges=tuple(accumulate((width + 2 * PAD for width in widths), initial=0)),
            row_index={key: index for index, (key, _) in enumerate(rows)},
            column_index={column.key: index for index, column in enumerate(columns)},
        )

    @property
    def frozen_width(self) -> int:
        """Width of the first column, which stays put while scrolling sideways."""
        return self.edges[1] if self.columns else 0

    @property
    def all_cells(self) -> CellRange:
        return CellRange(0, 0, len(self.row_keys) - 1, len(self.columns) - 1)

    def clamp(self, cell: Cell) -> Cell:
        return Cell(
            min(max(cell.row, 0), max(len(self.row_keys) - 1, 0)),
            min(max(cell.column, 0), max(len(self.columns) - 1, 0)),
        )


class SummaryGrid(ScrollView, can_focus=False):
    """The scrolling part of a SummaryTable: the header row, the frozen first column, the cells.

    It draws the table's state and turns mouse gestures into table calls; the table owns the
    data, the cursor and the selection, and takes the focus and the keys.
    """

    ALLOW_SELECT = False  # a drag selects cells, not the screen's text
    DEFAULT_CSS = """
    SummaryGrid {
        height: auto;
        max-height: 100%;
        background: transparent;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, table: SummaryTable) -> None:
        super().__init__()
        self.table = table
        self._drag: Literal["cells", "columns"] | None = None
        self._drag_column = 0  # where a drag along the headers started

    @property
    def fixed_lines(self) -> int:
        """Lines that do not scroll: the header, and the totals row when there is one."""
        return 1 if self.table.sheet.total_texts is None else 2

    @property
    def page_height(self) -> int:
        """Data rows visible at once."""
        return max(1, self.scrollable_content_region.height - self.fixed_lines)

    def scroll_to_cell(self, cell: Cell) -> None:
        """Scroll as little as needed to show `cell` below the header, right of the frozen
        column."""
        sheet = self.table.sheet
        x, y = self.scroll_offset
        if cell.row < y:
            y = cell.row
        elif cell.row >= y + self.page_height:
            y = cell.row - self.page_height + 1
        if cell.column > 0:
            start = sheet.edges[cell.column] - sheet.frozen_width
            end = sheet.edges[cell.column + 1] - sheet.frozen_width
            visible = self.scrollable_content_region.width - sheet.frozen_width
            if start < x:
                x = start
            elif end > x + visible:
                # Start the view at a column's edge: a sliver of a column would read as a value.
                edge = sheet.edges[bisect_left(sheet.edges, end - visible + sheet.frozen_width)]
                x = min(start, edge - sheet.frozen_width)
        self.scroll_to(x, y, animate=False)

    def render_line(self, y: int) -> Strip:
        sheet = self.table.sheet
        width = self.scrollable_content_region.width
        base = self.rich_style
        row = self.scroll_offset.y + y - 1
        totals_line = self._is_totals_line(y)
        if not sheet.columns or (y > 0 and not totals_line and row >= len(sheet.row_keys)):
            return Strip.blank(width, base)
        if y == 0:
            cells = self._header(base)
        elif totals_line:
            cells = self._totals(base)
        else:
            cells = self._row(row, base)
        frozen = Strip(cells[:1], sheet.frozen_width)
        scrolled = Strip(cells[1:], sheet.edges[-1] - sheet.frozen_width)
        left, right = self._visible_span(width)
        return Strip.join([frozen, scrolled.crop(left, right)]).crop_extend(0, width, base)

    def _is_totals_line(self, y: int) -> bool:
        """The totals row is drawn right under the last row, or at the bottom while they
        scroll."""
        sheet = self.table.sheet
        last = min(self.scrollable_content_region.height, len(sheet.row_keys) + 2) - 1
        return sheet.total_texts is not None and y == last

    def _visible_span(self, width: int) -> tuple[int, int]:
        """The x span of the scrolled columns in view, ending at a column's edge: a sliver of a
        column at the right would read as a value. A column wider than the view is cut."""
        frozen = self.table.sheet.frozen_width
        edges = self.table.sheet.edges
        left = self.scroll_offset.x
        available = max(width - frozen, 0)
        right = edges[bisect_right(edges, left + frozen + available) - 1] - frozen
        return left, right if right > left else left + available

    def _header(self, base: Style) -> list[Segment]:
        table = self.table
        sheet = table.sheet
        plain = base + table.get_component_rich_style("summary-table--header")
        active = base + table.get_component_rich_style("summary-table--header-selected")
        return [
            Segment(
                _pad(column.label, width, column.numeric),
                active if index in table.target.columns else plain,
            )
            for index, (column, width) in enumerate(zip(sheet.columns, sheet.widths, strict=True))
        ]

    def _totals(self, base: Style) -> list[Segment]:
        sheet = self.table.sheet
        style = base + self.table.get_component_rich_style("summary-table--header")
        return [
            Segment(_pad(text, width, column.numeric), style)
            for column, width, text in zip(sheet.columns, sheet.widths, sheet.total_texts or (),
                                           strict=True)
        ]

    def _row(self, row: int, base: Style) -> list[Segment]:
        table = self.table
        sheet = table.sheet
        cursor, selection = table.cursor, table.selection
        cursor_style = base + table.get_component_rich_style("summary-table--cursor")
        selection_style = base + table.get_component_rich_style("summary-table--selection")
        negative_style = base + table.get_component_rich_style("summary-table--negative")
        row_selected = selection is not None and selection.top <= row <= selection.bottom
        segments = []
        for index, (column, width, text, number) in enumerate(
            zip(sheet.columns, sheet.widths, sheet.texts[row], sheet.numbers[row], strict=True)
        ):
            if row == cursor.row and index == cursor.column:
                style = cursor_style
            elif row_selected and selection.left <= index <= selection.right:
                style = selection_style
            elif number is not None and number < 0:
                style = negative_style
            else:
                style = base
            segments.append(Segment(_pad(text, width, column.numeric), style))
        return segments

    def _cell_at(self, x: int, y: int) -> Cell:
        """The body cell under a point of the widget, clamped to the table."""
        sheet = self.table.sheet
        virtual_x = x if x < sheet.frozen_width else x + self.scroll_offset.x
        column = bisect_right(sheet.edges, virtual_x) - 1
        return sheet.clamp(Cell(self.scroll_offset.y + y - 1, column))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if event.button != 1 or not self.table.sheet.row_keys or self._is_totals_line(event.y):
            return
        cell = self._cell_at(event.x, event.y)
        if event.y == 0:
            self._drag, self._drag_column = "columns", cell.column
            self.table.select_columns(cell.column, cell.column)
        else:
            self._drag = "cells"
            self.table.move_cursor(cell.row, cell.column, extend=event.shift)
        self.capture_mouse()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._drag is None:
            return
        cell = self._cell_at(event.x, event.y)
        if self._drag == "columns":
            self.table.select_columns(self._drag_column, cell.column)
        elif cell != self.table.cursor:
            self.table.move_cursor(cell.row, cell.column, extend=True)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._drag is not None:
            self._drag = None
            self.release_mouse()


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - cell_len(text))
    return " " * PAD + (gap + text if right else text + gap) + " " * PAD


def _cursor_bindings(key: str, action: str, where: str) -> list[Binding]:
    """A key that moves the cursor, and its shift+ variant that extends the selection."""
    return [
        Binding(key, f"{action})", f"Move {where}", show=False),
        Binding(f"shift+{key}", f"{action}, True)", f"Extend selection {where}", show=False),
    ]


class SummaryTable(Widget, can_focus=True):
    """Summary figures with a cell cursor, range selection, sum and average, copy and export.

    Feed it with `set_data(columns, rows)`, again whenever the figures change: rows keep their
    place by key, and so do the cursor, the selection and the scroll position.
    """

    ALLOW_SELECT = False
    BINDING_GROUP_TITLE = "Summary table"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "summary-table--header",
        "summary-table--header-selected",
        "summary-table--cursor",
        "summary-table--selection",
        "summary-table--negative",
    }
    DEFAULT_CSS = """
    SummaryTable {
        height: auto;
        max-height: 100%;
        background: $surface;
        & > .status {
            dock: bottom;
            height: 1;
            padding: 0 1;
            background: $panel;
            color: $text;
        }
        /* Plain colours, no blends: in 16-colour terminals blends collapse into the background. */
        & > .summary-table--header {
            text-style: bold;
            color: $foreground;
            background: $panel;
        }
        & > .summary-table--header-selected {
            text-style: bold;
            color: $text;
            background: $primary;
        }
        & > .summary-table--cursor {
            color: $text;
            background: $accent-muted;
        }
        &:focus > .summary-table--cursor {
            color: $text;
            background: $accent;
            text-style: bold;
        }
        & > .summary-table--selection {
            color: $text;
            background: $primary;
        }
        & > .summary-table--negative {
            color: $text-error;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        # Tooltips complete the descriptions in the key help panel: "Copy as tab-separated values".
        Binding("c", "copy", "Copy", tooltip="as tab-separated values"),
        Binding("C", "copy(True)", "Copy+headers"),
        Binding("e", "export", "Export", tooltip="to CSV, JSON or XLSX"),
        Binding("ctrl+a", "select_all", "Select all", show=False),
        Binding("escape", "clear_selection", "Clear selection", show=False),
        *_cursor_bindings("up", "move(-1, 0", "up"),
        *_cursor_bindings("down", "move(1, 0", "down"),
        *_cursor_bindings("left", "move(0, -1", "left"),
        *_cursor_bindings("right", "move(0, 1", "right"),
        *_cursor_bindings("pageup", "page(-1", "a page up"),
        *_cursor_bindings("pagedown", "page(1", "a page down"),
        *_cursor_bindings("home", "edge(-1", "to the first row"),
        *_cursor_bindings("end", "edge(1", "to the last row"),
    ]

    class SelectionChanged(Message):
        """The cursor, the selected range or the figures under them changed."""

        def __init__(self, table: SummaryTable, stats: SelectionStats) -> None:
            super().__init__()
            self.table = table
            self.stats = stats

        @property
        def control(self) -> SummaryTable:
            return self.table

    def __init__(
        self,
        *,
        export_name: str | None = None,
        export_folder: Path = Path("~"),
        ascii_only: bool = False,
        now: Callable[[], datetime] = datetime.now,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """`export_name` names export files (default: the name or id), which go by default to
        `export_folder`; `ascii_only` draws blanks as "-" instead of "–"; `now` is the clock
        stamped into export file names."""
        super().__init__(name=name, id=id, classes=classes)
        self.export_name = export_name or name or id or "summary"
        self.export_folder = export_folder
        self.ascii_only = ascii_only
        self._now = now
        self.sheet = _Sheet()
        self._loaded = False  # no data given yet: "No data" would be a statement
        self._cursor = Cell(0, 0)
        self._anchor: Cell | None = None  # where a shift+move or drag started the selection
        self._selection: CellRange | None = None
        self._announced: tuple[object, ...] | None = None  # the last SelectionChanged state

    def compose(self) -> ComposeResult:
        yield SummaryGrid(self)
        yield Static(classes="status", markup=False)

    def on_mount(self) -> None:
        self._redraw()

    @property
    def cursor(self) -> Cell:
        return self._cursor

    @property
    def selection(self) -> CellRange | None:
        """The selected range; None when only the cursor cell is."""
        return self._selection

    @property
    def target(self) -> CellRange:
        """The cells that statistics, copy and export act on: the selection, or the cursor."""
        return self._selection or CellRange.between(self._cursor, self._cursor)

    def set_data(
        self, columns: Sequence[Column], rows: Sequence[tuple[str, Sequence[object]]],
        totals: Sequence[object] | None = None,
    ) -> None:
        """Show `rows` of `(row key, values)`; values may be None (blank, never counted).
        `totals`, the figures of all the rows, stay in view under them; a selection, copy and
        export hold the rows only, so that nothing is counted twice."""
        old = self.sheet
        self._loaded = True
        self.sheet = _Sheet.build(columns, rows, "-" if self.ascii_only else "–", old, totals)
        self._cursor = self._relocated(self._cursor, old)
        if self._anchor is not None:
            self._anchor = self._relocated(self._anchor, old)
        if self._selection is not None:
            selection = self._selection
            self._selection = CellRange.between(
                self._relocated(Cell(selection.top, selection.left), old),
                self._relocated(Cell(selection.bottom, selection.right), old),
            )
        if self.is_mounted:
            with self.app.batch_update():
                self._redraw()
            self.refresh_bindings()  # copy and export are greyed out while empty

    def move_cursor(self, row: int, column: int, *, extend: bool = False) -> None:
        """Put the cursor on a cell (clamped to the table); `extend` selects up to it from the
        anchor (where the extending started), else the selection is cleared."""
        if not self.sheet.row_keys:
            return
        cell = self.sheet.clamp(Cell(row, column))
        if extend:
            if self._anchor is None:
                self._anchor = self._cursor
            self._selection = CellRange.between(self._anchor, cell)
        else:
            self._anchor = self._selection = None
        self._cursor = cell
        self._changed()

    def select_columns(self, first: int, last: int) -> None:
        """Select whole columns, as a click or drag on their headers does."""
        if not self.sheet.row_keys:
            return
        self._anchor = self.sheet.clamp(Cell(0, first))
        self._cursor = self.sheet.clamp(Cell(self._cursor.row, last))
        self._selection = CellRange.between(
            self._anchor, Cell(len(self.sheet.row_keys) - 1, self._cursor.column)
        )
        self._changed()

    def clear_selection(self) -> None:
        self._anchor = self._selection = None
        self._changed()

    def selection_stats(self) -> SelectionStats:
        """Count, sum and mean of the shown numbers in the selection (or the cursor cell)."""
        if not self.sheet.row_keys:
            return SelectionStats(0, 0, None, None, includes_ratio=False)
        cells = self.target
        rows = self.sheet.numbers[cells.top : cells.bottom + 1]
        numbers = [n for row in rows for n in row[cells.left : cells.right + 1] if n is not None]
        units = tuple(dict.fromkeys(
            UNITS[self.sheet.columns[index].kind]
            for index in cells.columns
            if any(row[index] is not None for row in rows)
        ))
        total = math.fsum(numbers) if numbers and len(units) == 1 else None
        return SelectionStats(
            count=cells.cell_count,
            numeric_count=len(numbers),
            sum=total,
            average=None if total is None else total / len(numbers),
            includes_ratio=any(self.sheet.columns[index].ratio for index in cells.columns),
            units=units,
        )

    def _labelled(self, cells: CellRange) -> list[int]:
        """The columns of `cells`, after the row labels (the first column) if it is not one of
        them: figures with headers are read by their row."""
        return [*([0] if cells.left > 0 else []), *cells.columns]

    def selection_as_tsv(self, *, with_headers: bool = False) -> str:
        """The selection (or the cursor cell) as shown, tab-separated, a line per row. Blank
        cells are empty, so that they paste as blanks into a spreadsheet."""
        cells = self.target
        sheet = self.sheet
        columns = self._labelled(cells) if with_headers else list(cells.columns)
        lines = [[sheet.columns[index].label for index in columns]] if with_headers else []
        lines += [
            ["" if sheet.values[row][index] is None else sheet.texts[row][index]
             for index in columns]
            for row in cells.rows
        ]
        return "\n".join("\t".join(line) for line in lines)

    def export(self, path: str | Path, scope: Scope = "all") -> int:
        """Write the whole table, or the selection (or the cursor cell), to `path` in the format
        of its extension (.csv, .json, .xlsx), with headers and row labels; return the rows
        written. Raises ExportError."""
        sheet = self.sheet
        cells = self.target if scope == "selection" else sheet.all_cells
        indexes = self._labelled(cells)
        header = [
            ExportColumn(column.label, column.decimals if column.numeric else None, column.suffix)
            for column in (sheet.columns[index] for index in indexes)
        ]
        rows = [[self._export_value(row, index) for index in indexes] for row in cells.rows]
        write_table(Path(path).expanduser(), header, rows)
        return len(rows)

    def _export_value(self, row: int, column: int) -> Value:
        value, number = self.sheet.values[row][column], self.sheet.numbers[row][column]
        return number if number is not None or value is None else str(value)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_selection":
            return self._selection is not None  # else escape goes on to the screen
        if action in ("copy", "export", "select_all"):
            return True if self.sheet.row_keys else None
        return True

    def action_move(self, rows: int, columns: int, extend: bool = False) -> None:
        self.move_cursor(self._cursor.row + rows, self._cursor.column + columns, extend=extend)

    def action_page(self, direction: int, extend: bool = False) -> None:
        self.action_move(direction * self.query_one(SummaryGrid).page_height, 0, extend)

    def action_edge(self, direction: int, extend: bool = False) -> None:
        self.action_move(direction * len(self.sheet.row_keys), 0, extend)

    def action_select_all(self) -> None:
        self._anchor = Cell(0, 0)
        self._selection = self.sheet.all_cells
        self._changed()

    def action_clear_selection(self) -> None:
        self.clear_selection()

    def action_copy(self, with_headers: bool = False) -> None:
        self.app.copy_to_clipboard(self.selection_as_tsv(with_headers=with_headers))
        copied = _count(self.target.cell_count, "cell")
        self.notify(f"Copied {copied} with headers" if with_headers else f"Copied {copied}")

    def action_export(self) -> None:
        stamp = self._now().strftime("%Y%m%d-%H%M%S")
        selection = self._selection
        self.post_message(ShowDialog(
            ExportScreen(
                f"Export {self.export_name}",
                str(export_path(self.export_folder, self.export_name, stamp)),
                self.export,
                selection_label=None
                if selection is None
                else f"Selection ({_count(selection.cell_count, 'cell')})",
                all_label=f"Whole table ({_count(len(self.sheet.row_keys), 'row')})",
            ),
            self._exported,
        ))

    def _exported(self, result: ExportResult | None) -> None:
        if result is not None:
            self.notify(f"Exported {_count(result.rows, 'row')} to {result.path}")

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # The grid draws with this widget's component styles (cursor colour follows focus).
        for grid in self.query(SummaryGrid):
            grid.refresh()

    def _relocated(self, cell: Cell, old: _Sheet) -> Cell:
        """Where a cell of the `old` sheet is now: same row and column keys, else clamped."""
        row, column = cell
        if row < len(old.row_keys):
            row = self.sheet.row_index.get(old.row_keys[row], row)
        if column < len(old.columns):
            column = self.sheet.column_index.get(old.columns[column].key, column)
        return self.sheet.clamp(Cell(row, column))

    def _changed(self) -> None:
        """After a cursor or selection change: keep the cursor in view, redraw, tell."""
        grid = self.query_one(SummaryGrid)
        grid.scroll_to_cell(self._cursor)
        grid.refresh()
        self._show_stats()

    def _redraw(self) -> None:
        grid = self.query_one(SummaryGrid)
        grid.virtual_size = Size(self.sheet.edges[-1], len(self.sheet.row_keys) + grid.fixed_lines)
        grid.refresh()
        self._show_stats()

    def _show_stats(self) -> None:
        stats = self.selection_stats()
        self.query_one(".status", Static).update(self._status_text(stats))
        state = (self._cursor, self._selection, stats)
        if state != self._announced:
            self._announced = state
            self.post_message(self.SelectionChanged(self, stats))

    def _status_text(self, stats: SelectionStats) -> str:
        if not self.sheet.row_keys:
            return "No data" if self._loaded else LOADING
        counted = _count(stats.count, "cell")
        if 0 < stats.numeric_count < stats.count:
            counted += f", {stats.numeric_count:,} numeric"
        separator = " | " if self.ascii_only else " · "
        if len(stats.units) > 1:
            return f"{counted}{separator}no sum or average across units ({', '.join(stats.units)})"
        if stats.sum is None or stats.average is None:
            return counted
        kind = KIND_OF_UNIT[stats.units[0]]  # shown as its columns show their figures
        decimals, suffix = DECIMALS[kind], "%" if kind == "percent" else ""
        average = f"avg {format_number(stats.average, max(decimals, 1), suffix)}"
        if stats.includes_ratio and stats.numeric_count > 1:  # the mean of one is no average
            average += " (avg of averages)"
        parts = [counted, f"sum {format_number(stats.sum, decimals, suffix)}", average]
        return separator.join(parts)
