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


def row_text(table: LiveTable, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


async def test_columns_follow_every_cell_as_they_all_change():
    """A tab whose every row ticks (the ages of calls in progress, the times of the latest
    calls) shows each new value whole, its columns as wide as their widest cell: wider when
    one grows, narrower once the widest is gone."""
    app = TableApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(LiveTable)
        table.set_rows([(f"call{n}", (f"{n} s ago", "● answered")) for n in range(50)])
        await pilot.pause()
        table.set_rows([(f"call{n}", (f"{n} min ago", "● answered")) for n in range(50)])
        await pilot.pause()
        assert row_text(table, 1).split() == ["0", "min", "ago", "●", "answered"]
        assert row_text(table, 1).index("●") == len(" 49 min ago  ")
        table.set_rows([(f"call{n}", (f"{n}", "● answered")) for n in range(3)])
        await pilot.pause()
        assert row_text(table, 1).index("●") == len(" Name  ")


async def test_rows_gone_by_the_dozen_leave_the_rest_in_order_under_the_cursor():
    """Calls in progress end by the dozen between two reads: those left keep their order and
    the cursor stays on the call it was on; Enter opens that call."""
    app = TableApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(LiveTable)
        table.set_rows([(f"call{n}", (f"call {n}", "answered")) for n in range(100)])
        await pilot.pause()
        table.move_cursor(row=50)
        left = [n for n in range(100) if n % 3 == 0 or n == 50] + [100, 101]
        table.set_rows([(f"call{n}", (f"call {n}", "answered")) for n in left])
        await pilot.pause()
        assert [row.key.value for row in table.ordered_rows] == [f"call{n}" for n in left]
        assert table.row_count == len(left)
        assert table.highlighted_key == "call50"
        assert "call 50" in row_text(table, table.cursor_row + 1 - round(table.scroll_y))


class RulesLikeApp(App):
    def compose(self) -> ComposeResult:
        yield LiveTable([Col("rule", "Rule"),
                         Col("condition", "Condition", fill=True, keeps_whole=True),
                         Col("value", "Value", drop=1)])


async def test_a_column_that_keeps_whole_is_cut_at_a_word_only_when_nothing_else_can_go():
    """A rule's condition at 80 columns: the Value column goes first, then the condition is
    shortened at a word with "…" (it was cut inside, "clears at ≤" with its number gone)."""
    condition = "Consec. failures ≥ 1,000, clears at ≤ 0"
    for width, shown in ((100, condition), (60, condition), (50, "Consec. failures ≥ 1,000,…")):
        app = RulesLikeApp()
        async with app.run_test(size=(width, 6)) as pilot:
            table = app.query_one(LiveTable)
            table.set_rows([("down", ("Carrier down", condition, "2,890 Borealis Telecom"))])
            await pilot.pause()
            row = row_text(table, 1)
            assert shown in row
            assert ("Borealis" in row) == (width == 100)
