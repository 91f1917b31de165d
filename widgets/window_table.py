"""A table of any number of rows that holds only those around what is shown.

Drawn a line at a time (Textual's Line API), it knows how many rows there are, holds a window of
them (given by whoever reads them, e.g. from the store with ORDER BY ... LIMIT) and asks for
another window (`Wanted`) when the rows on screen are not all held. Its cursor is a place in the
whole list; Enter (or a click on the highlighted row) selects the row under it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from widgets.live_table import SCROLLBAR, Cell, Col, fit_columns

PADDING = 1  # cells each side of a column


class WindowTable(ScrollView, can_focus=True):
    """`show_window(total, offset, rows)`: rows are (key, cells) from place `offset` on, out of
    `total`; `cursor` is a place among the `total`."""

    COMPONENT_CLASSES = {"window-table--header", "window-table--cursor"}
    DEFAULT_CSS = """
    WindowTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        & > .window-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .window-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .window-table--header { background-tint: $foreground 5%; }
            & > .window-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move_to(0)", "First", show=False),
        Binding("end", "move_to(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    class Wanted(Message):
        """Rows from place `offset` on are on screen, or about to be, and not held."""

        def __init__(self, table: WindowTable, offset: int, limit: int) -> None:
            super().__init__()
            self.table, self.offset, self.limit = table, offset, limit

    class Highlighted(Message):
        def __init__(self, table: WindowTable, key: str | None) -> None:
            super().__init__()
            self.table, self.key = table, key

    class Selected(Message):
        def __init__(self, table: WindowTable, key: str) -> None:
            super().__init__()
            self.table, self.key = table, key

    def __init__(self, columns: Sequence[Col], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.specs = tuple(columns)
        self.total = 0
        self.first = 0
        self.rows: tuple[tuple[str, tuple[Text, ...]], ...] = ()
        self.cursor = 0
        self._shown: tuple[Col, ...] = self.specs
        self._widths = {col.key: len(col.label) for col in self.specs}
        self._lines: dict[int, Strip] = {}  # place -> its line as last drawn
        self._asked: tuple[int, int] | None = None
        self._announced: str | None = None  # the key last said to be highlighted

    # What it holds --------------------------------------------------------------------------

    def show_window(self, total: int, offset: int, rows: Sequence[tuple[str, Sequence[Cell]]],
                    cursor: int | None = None) -> None:
        """Hold these rows, from place `offset` on, out of `total`; move the cursor to place
        `cursor` if given (scrolled into view), else keep it where it is (within the total)."""
        self.total, self.first = total, offset
        self.rows = tuple((key, tuple(self._cell(value, col.justify)
                                      for value, col in zip(cells, self.specs, strict=True)))
                          for key, cells in rows)
        self._asked = None
        self._measure()
        self.virtual_size = Size(self.size.width, total + 1)
        self._lines.clear()
        self.refresh()
        place = self.cursor if cursor is None else cursor
        self._move_cursor(max(0, min(place, total - 1)), scroll=cursor is not None)
        self._want_rows()

    def window_wanted(self) -> tuple[int, int]:
        """The window to read: the rows on screen with half a screenful either side."""
        page = max(1, self.size.height - 1)
        start = max(0, round(self.scroll_y) - page // 2)
        return start, 2 * page

    @property
    def highlighted_key(self) -> str | None:
        return self.key_at(self.cursor)

    def key_at(self, place: int) -> str | None:
        index = place - self.first
        return self.rows[index][0] if 0 <= index < len(self.rows) else None

    def _cell(self, value: Cell, justify: str) -> Text:
        text = self.cell_text(value)
        if text is value:  # the caller's own: not to be changed here
            text = text.copy()
        text.justify, text.no_wrap = justify, True
        return text

    def cell_text(self, value: Cell) -> Text:
        """A cell as drawn: never markup. Showing outside text, override it to make the text
        printable too (screens.tables does)."""
        return value if isinstance(value, Text) else Text(value)

    # Drawing -------------------------------------------------------------------------------

    def _measure(self) -> None:
        widths = {col.key: len(col.label) for col in self.specs}
        for _, cells in self.rows:
            for col, cell in zip(self.specs, cells, strict=True):
                widths[col.key] = max(widths[col.key], cell.cell_len)
        self._widths = widths
        room = self.size.width - SCROLLBAR
        self._shown = fit_columns(self.specs, {c: widths[c.key] + 2 * PADDING
                                               for c in self.specs}, room)

    def on_resize(self, event: events.Resize) -> None:
        self._measure()
        self.virtual_size = Size(event.size.width, self.total + 1)
        self._lines.clear()
        self._want_rows()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._line(self._header_cells(), self.get_component_rich_style(
                "window-table--header"), width)
        place = round(self.scroll_y) + y - 1
        if place >= self.total:
            return Strip.blank(width, self.rich_style)
        if place not in self._lines:
            row = self.key_at(place)
            if row is None:  # not held yet: asked for
                return Strip.blank(width, self.rich_style)
            cells = self.rows[place - self.first][1]
            cursor = place == self.cursor
            style = self.get_component_rich_style("window-table--cursor") if cursor \
                else self.rich_style
            self._lines[place] = self._line(
                [cell for cell, col in zip(cells, self.specs, strict=True) if col in self._shown],
                style, width, on_top=cursor)
        return self._lines[place]

    def _header_cells(self) -> list[Text]:
        return [Text(col.label, justify=col.justify) for col in self._shown]

    def _line(self, cells: Sequence[Text], style: Style, width: int, *,
              on_top: bool = False) -> Strip:
        """Cells drawn in their own styles over `style`, or under it if `on_top` (the cursor's
        colours win, as in Textual's DataTable)."""
        console = self.app.console
        segments: list[Segment] = []
        pad = Segment(" " * PADDING, style)
        for col, cell in zip(self._shown, cells, strict=True):
            room = self._widths[col.key]
            if cell.cell_len > room:
                cell = cell.copy()
                cell.truncate(room, overflow="ellipsis")
            space = room - cell.cell_len
            before = space if col.justify == "right" else 0
            own = console.get_style(cell.style) if cell.style else Style()
            filled = (own + style) if on_top else (style + own)  # the cell's room, as it is
            segments += [pad, Segment(" " * before, filled)]
            segments += [Segment(s.text, (own + s.style + style) if on_top
                                 else (style + own + s.style))
                         for s in cell.render(console) if s.text]
            segments += [Segment(" " * (space - before), filled), pad]
        return Strip(segments).adjust_cell_length(width, style)

    # Moving ---------------------------------------------------------------------------------

    def _move_cursor(self, place: int, *, scroll: bool = True) -> None:
        if self.total == 0:
            self.cursor = 0
            self._announce()
            return
        place = max(0, min(place, self.total - 1))
        old, self.cursor = self.cursor, place
        for each in (old, place):
            self._lines.pop(each, None)
        self.refresh()
        if scroll:
            self.scroll_to_region(Region(0, place + 1, 1, 1), animate=False, force=True,
                                  immediate=True, spacing=None)
        self._announce()

    def _announce(self) -> None:
        """Say which row is highlighted when that changes: the cursor moved, or the rows under
        it came or changed."""
        if self.highlighted_key != self._announced:
            self._announced = self.highlighted_key
            self.post_message(self.Highlighted(self, self._announced))

    def action_move(self, step: int) -> None:
        self._move_cursor(self.cursor + step)

    def action_page(self, step: int) -> None:
        self._move_cursor(self.cursor + step * max(1, self.size.height - 2))

    def action_move_to(self, place: int) -> None:
        self._move_cursor(place if place >= 0 else self.total - 1)

    def action_select(self) -> None:
        key = self.highlighted_key
        if key is not None:
            self.post_message(self.Selected(self, key))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            return
        place = round(self.scroll_y) + event.y - 1
        if place == self.cursor:
            self.action_select()
        elif place < self.total:
            self._move_cursor(place, scroll=False)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._lines.clear()
        self._want_rows()

    def _want_rows(self) -> None:
        """Ask for the rows on screen that are not held (once per window)."""
        top = round(self.scroll_y)
        bottom = min(self.total, top + max(0, self.size.height - 1))
        held = range(self.first, self.first + len(self.rows))
        if top >= bottom or (top in held and bottom - 1 in held):
            return
        wanted = self.window_wanted()
        if wanted != self._asked:
            self._asked = wanted
            self.post_message(self.Wanted(self, *wanted))
