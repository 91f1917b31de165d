"""LiveTable: rows changed in place, and a cell that grows in place is shown whole."""

from __future__ import annotations

from textual.app import App, ComposeResult

from widgets.live_table import Col, LiveTable


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield LiveTable([Col("name", "Name"), Col("status", "Status")])


async def test_a_cell_that_grows_in_place_widens_its_column():
    """An account going from "● active" to "▲ penalty →17:26" shows the whole of it (its
    column kept the width of "● active", cutting it to "▲ penalt")."""
    app = TableApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(LiveTable)
        table.set_rows([("atlas", ("Atlas Voice", "● active"))])
        await pilot.pause()
        table.set_rows([("atlas", ("Atlas Voice", "▲ penalty →17:26"))])
        await pilot.pause()
        await pilot.pause()
        row = "".join(segment.text for segment in table.render_line(1))
        assert "▲ penalty →17:26" in row
