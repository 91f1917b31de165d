"""SummaryTable: range selection, status line, copy, export, live updates, and how it looks."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Input

from console.testing import until
from widgets.dialogs import DialogHost
from widgets.export import ExportScreen
from widgets.summary_table import Cell, CellRange, Column, SummaryGrid, SummaryTable

COLUMNS = [
    Column("date", "Date"),
    Column("attempts", "Attempts", "int"),
    Column("connected", "Connected", "int"),
    Column("asr", "ASR", "percent", ratio=True),
    Column("acd", "ACD", "seconds", ratio=True),
    Column("duration", "Minutes", "minutes"),
    Column("billed", "Billed", "minutes"),
    Column("revenue", "Revenue", "money"),
    Column("cost", "Cost", "money"),
    Column("profit", "Profit", "money"),
    Column("margin", "Profit %", "percent", ratio=True),
    Column("pdd", "PDD", "ms", ratio=True),
    Column("ner", "NER", "percent", ratio=True),
]

# day, attempts, connected, ACD, revenue, cost, PDD, NER: ten days of one customer.
DAYS = [
    (1, 47305, 22011, 112.8, 5088.30, 4209.30, 2897, 96.3),
    (2, 51548, 19857, 117.8, 4796.70, 3960.30, 2688, 97.5),
    (3, 45943, 17833, 114.1, 4171.40, 3937.90, 2053, 99.3),
    (4, 12004, 5239, 137.6, 1478.30, 1340.20, 2612, 96.2),
    (5, 45622, 17527, 133.6, 4801.40, 4145.70, 2095, 97.9),
    (6, 51353, 20939, 131.7, 5654.30, 4789.80, 2991, 98.0),
    (7, 45078, 18640, 119.6, 4572.00, 4754.90, 1922, 98.2),
    (8, 50133, 22120, 114.2, 5180.40, 4492.00, 2999, 99.2),
    (9, 47924, 19504, 130.7, 5227.70, 4834.80, None, 96.3),
    (10, 46919, 20046, 134.4, 5522.30, 5132.50, 2389, 98.1),
]


def summary_row(day, attempts, connected, acd, revenue, cost, pdd, ner):
    date = f"2026-11-{day:02d}"
    minutes = connected * acd / 60
    traffic = (attempts, connected, 100 * connected / attempts, acd, minutes, minutes * 1.018)
    profit = revenue - cost
    money = (revenue, cost, profit, 100 * profit / revenue)
    return date, (date, *traffic, *money, pdd, ner)


ROWS = [summary_row(*day) for day in DAYS]
NOW = datetime(2026, 11, 21, 9, 30, 0)


class TableApp(DialogHost, App):
    """One SummaryTable with ten days of figures, focused, over a footer."""

    BINDINGS = [Binding("escape", "escaped", "Back")]

    def __init__(self, **table_options) -> None:
        super().__init__()
        self.table_options = table_options
        self.announced: list[SummaryTable.SelectionChanged] = []
        self.escapes = 0

    def compose(self) -> ComposeResult:
        yield SummaryTable(export_name="Daily summary", now=lambda: NOW, **self.table_options)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(SummaryTable)
        table.set_data(COLUMNS, ROWS)
        table.focus()

    def on_summary_table_selection_changed(self, event: SummaryTable.SelectionChanged) -> None:
        self.announced.append(event)

    def action_escaped(self) -> None:
        self.escapes += 1


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path, so that the modal tests type short relative file names."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def status_line(app: App) -> str:
    return str(app.query_one(".status").render())


async def test_shift_arrows_select_a_range_with_count_sum_and_average():
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("right", "shift+down", "shift+down")
        table = app.query_one(SummaryTable)
        assert table.selection == CellRange(0, 1, 2, 1)
        stats = table.selection_stats()
        assert (stats.count, stats.numeric_count) == (3, 3)
        assert stats.sum == 47305 + 51548 + 45943
        assert stats.average == pytest.approx((47305 + 51548 + 45943) / 3)
        assert not stats.includes_ratio
        assert status_line(app) == "3 cells · sum 144,796 · avg 48,265.3"
        assert app.announced[-1].stats == stats


async def test_ratio_columns_say_the_average_is_an_average_of_averages():
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("right", "right", "right", *["shift+down"] * 3)
        stats = app.query_one(SummaryTable).selection_stats()
        shown_asr = [round(100 * connected / attempts, 1) for _, attempts, connected, *_ in DAYS]
        assert stats.includes_ratio
        assert stats.average == pytest.approx(sum(shown_asr[:4]) / 4)
        assert status_line(app) == "4 cells · sum 167.4% · avg 41.9% (avg of averages)"


async def test_text_and_blank_cells_are_counted_as_cells_but_not_as_numbers():
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(SummaryTable)
        table.move_cursor(7, 11)  # PDD of day 8; day 9 has none
        await pilot.press("shift+down", "shift+down")
        assert status_line(app) == "3 cells, 2 numeric · sum 5,388 · avg 2,694.0 (avg of averages)"
        await pilot.press("home", "shift+end")
        stats = table.selection_stats()
        assert (stats.count, stats.numeric_count) == (10, 9)
        table.move_cursor(0, 0)
        await pilot.press("shift+right", "shift+down")
        assert status_line(app).startswith("4 cells, 2 numeric · sum 98,853 · ")


async def test_columns_of_one_unit_sum_and_average_every_numeric_cell():
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("right", "shift+right", "shift+down")
        stats = app.query_one(SummaryTable).selection_stats()
        assert stats.sum == 47305 + 22011 + 51548 + 19857
        assert status_line(app) == "4 cells · sum 140,721 · avg 35,180.2"


async def test_figures_of_different_units_are_not_added_up():
    """Profit (money), Profit % and PDD (ms) summed together would be a number of no unit."""
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(SummaryTable)
        table.move_cursor(0, 9)
        await pilot.press("shift+right", "shift+right", "shift+down")
        stats = table.selection_stats()
        assert (stats.count, stats.numeric_count, stats.sum, stats.average) == (6, 6, None, None)
        assert stats.units == ("money", "%", "ms")
        assert status_line(app) == "6 cells · no sum or average across units (money, %, ms)"
        table.move_cursor(0, 1)
        await pilot.press("shift+right", "shift+right", "shift+down")  # counts and ASR
        assert status_line(app) == "6 cells · no sum or average across units (counts, %)"
        table.move_cursor(0, 7)
        await pilot.press("shift+right", "shift+right", "shift+down")  # revenue, cost, profit
        assert status_line(app) == "6 cells · sum 19,770.00 · avg 3,295.00"


async def test_ctrl_a_selects_all_and_escape_clears_the_selection():
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(SummaryTable)
        await pilot.press("down", "ctrl+a")
        assert table.selection == CellRange(0, 0, 9, 12)
        assert table.selection_stats().count == 130
        assert table.cursor == Cell(1, 0)
        await pilot.press("escape")
        assert table.selection is None
        assert status_line(app) == "1 cell"  # a date: nothing to add up, nothing to say
        assert app.escapes == 0
        await pilot.press("escape")  # nothing left to clear: the key goes on to the app
        assert app.escapes == 1


async def test_c_copies_the_selection_as_tab_separated_shown_values():
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("down", "shift+right", "shift+right", "shift+down", "c")
        assert app.clipboard == "2026-11-02\t51,548\t19,857\n2026-11-03\t45,943\t17,833"
        assert "Copied 6 cells" in [notice.message for notice in app._notifications]


async def test_shift_c_copies_with_headers_and_blanks_as_empty_cells():
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        app.query_one(SummaryTable).move_cursor(7, 10)
        await pilot.press("shift+right", "shift+down", "C")
        # With headers, each row keeps its label: the figures read by their date.
        assert app.clipboard == "Date\tProfit %\tPDD\n2026-11-08\t13.3%\t2,999\n2026-11-09\t7.5%\t"


async def test_mouse_click_sets_the_cursor_and_drag_selects_a_range():
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(SummaryTable)
        grid = app.query_one(SummaryGrid)
        attempts_x = table.sheet.edges[1] + 2
        connected_x = table.sheet.edges[2] + 2
        await pilot.click(grid, offset=(attempts_x, 2))  # header is line 0: day 2
        assert table.cursor == Cell(1, 1) and table.selection is None
        await pilot.mouse_down(grid, offset=(attempts_x, 1))
        await pilot.hover(grid, offset=(connected_x, 3))
        await pilot.mouse_up(grid, offset=(connected_x, 3))
        assert table.selection == CellRange(0, 1, 2, 2)
        await pilot.click(grid, offset=(connected_x, 0))  # a header selects its column
        assert table.selection == CellRange(0, 2, 9, 2)


async def test_new_figures_update_in_place_keeping_cursor_and_selection_by_key():
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(SummaryTable)
        await pilot.press("down", "right", "shift+down")
        changed = [(key, (values[0], values[1] + 1000, *values[2:])) for key, values in ROWS]
        newest_first = [summary_row(11, *DAYS[0][1:]), *reversed(changed)]
        table.set_data(COLUMNS, newest_first)
        await pilot.pause()
        # Days 2 and 3 are now rows 9 and 8: the range and the cursor (on day 3) followed.
        assert table.cursor == Cell(8, 1)
        assert table.selection == CellRange(8, 1, 9, 1)
        assert table.selection_stats().sum == 51548 + 45943 + 2000
        assert status_line(app) == "2 cells · sum 99,491 · avg 49,745.5"


async def test_export_through_the_modal_writes_csv_of_the_selection(in_tmp: Path):
    app = TableApp()
    target = in_tmp / "days.csv"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("shift+right", "shift+down", "e")
        assert isinstance(app.screen, ExportScreen)
        path_input = app.screen.query_one(Input)
        assert path_input.value == "~/noc-daily-summary-20261121-093000.csv"
        await pilot.press("ctrl+u", *"days.csv", "enter")
        await until(pilot, lambda: not isinstance(app.screen, ExportScreen))
        assert list(csv.reader(target.open())) == [
            ["Date", "Attempts"],
            ["2026-11-01", "47305"],
            ["2026-11-02", "51548"],
        ]
        assert f"Exported 2 rows to {target}" in [n.message for n in app._notifications]


async def test_export_modal_defaults_to_the_whole_table_without_a_selection(in_tmp: Path):
    app = TableApp()
    target = in_tmp / "all.json"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e", "ctrl+u", *"all.json", "enter")
        await until(pilot, lambda: not isinstance(app.screen, ExportScreen))
        records = json.loads(target.read_text())
        assert len(records) == 10
        assert records[8]["PDD"] is None
        assert records[0] == {
            "Date": "2026-11-01", "Attempts": 47305, "Connected": 22011, "ASR": 46.5,
            "ACD": 112.8, "Minutes": 41380.7, "Billed": 42125.5, "Revenue": 5088.3,
            "Cost": 4209.3, "Profit": 879.0, "Profit %": 17.3, "PDD": 2897, "NER": 96.3,
        }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("days.txt", "Unknown file type '.txt': use .csv, .json, .xlsx"),
        ("missing/days.csv", "Folder {tmp}/missing does not exist"),
    ],
)
async def test_export_modal_shows_errors_and_stays_open(in_tmp: Path, name: str, error: str):
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e", "ctrl+u", *name, "enter")
        message = app.screen.query_one(".message")
        await until(pilot, lambda: str(message.render()) == error.format(tmp=in_tmp))
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, ExportScreen)
        assert list(in_tmp.iterdir()) == []


async def test_export_modal_asks_before_overwriting(in_tmp: Path):
    app = TableApp()
    target = in_tmp / "days.csv"
    target.write_text("keep me")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e", "ctrl+u", *"days.csv", "enter")
        assert isinstance(app.screen, ExportScreen)
        assert target.read_text() == "keep me"
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ExportScreen))
        assert target.read_text().startswith("Date,Attempts,")


async def test_export_writes_xlsx_with_a_header_and_numbers_as_numbers(tmp_path: Path):
    app = TableApp()
    async with app.run_test(size=(120, 40)):
        table = app.query_one(SummaryTable)
        table.move_cursor(0, 1)
        table.move_cursor(1, 3, extend=True)  # the row labels go with it
        assert table.export(tmp_path / "days.xlsx", scope="selection") == 2
    with zipfile.ZipFile(tmp_path / "days.xlsx") as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = re.findall(r"<t>([^<]*)</t>", book.read("xl/sharedStrings.xml").decode())
    cells = dict(re.findall(r'<c r="([A-Z]+\d+)"[^>]*>(?:<f>[^<]*</f>)?<v>([^<]*)</v>', sheet))
    shared = {ref: strings[int(cells[ref])] for ref in ("A1", "B1", "D1", "A2", "A3")}
    assert shared == {
        "A1": "Date", "B1": "Attempts", "D1": "ASR", "A2": "2026-11-01", "A3": "2026-11-02",
    }  # fmt: skip
    assert (cells["B2"], cells["C3"], cells["D2"]) == ("47305", "19857", "46.5")


async def test_export_writes_the_whole_table_as_csv(tmp_path: Path):
    app = TableApp()
    async with app.run_test(size=(120, 40)):
        assert app.query_one(SummaryTable).export(tmp_path / "all.csv") == 10
    lines = list(csv.reader((tmp_path / "all.csv").open()))
    assert lines[0] == [column.label for column in COLUMNS]
    assert lines[9][11] == ""  # no PDD that day
    assert lines[7][9] == "-182.9"  # a loss


async def test_ascii_only_draws_blanks_and_separators_in_ascii():
    app = TableApp(ascii_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(SummaryTable)
        table.move_cursor(8, 11)
        await pilot.press("shift+up")
        assert table.sheet.texts[8][11] == "-"
        assert status_line(app) == "2 cells, 1 numeric | sum 2,999 | avg 2,999.0"


async def test_footer_and_key_help_show_copy_and_export():
    app = TableApp()
    async with app.run_test(size=(120, 40)):
        shown = {
            binding.key: binding.description
            for _, binding, enabled, _ in app.screen.active_bindings.values()
            if binding.show and enabled
        }
        assert shown == {"c": "Copy", "C": "Copy+headers", "e": "Export", "escape": "Back"}


async def test_the_totals_row_stays_under_the_rows_and_is_never_counted_twice():
    rows = [(str(day), summary_row(day % 28 + 1, *DAYS[day % 10][1:])[1]) for day in range(60)]
    attempts = sum(values[1] for _, values in rows)
    totals = ("Total", attempts, *[None] * (len(COLUMNS) - 2))
    app = TableApp()
    async with app.run_test(size=(120, 24)) as pilot:
        table = app.query_one(SummaryTable)
        grid = app.query_one(SummaryGrid)
        table.set_data(COLUMNS, rows, totals)
        await pilot.pause()

        def lines() -> list[str]:
            return [grid.render_line(y).text for y in range(grid.scrollable_content_region.height)]

        for key in ("home", "end", "pageup"):
            await pilot.press(key)
            await pilot.pause()
            shown = lines()
            assert shown[-1].split()[:2] == ["Total", f"{attempts:,}"], key
            assert sum("Total" in line for line in shown) == 1
        await pilot.press("end")
        await pilot.pause()
        assert lines()[-2].split()[0] == rows[-1][1][0]  # the last row, right above the totals
        await pilot.press("home", "right", "ctrl+a")
        assert table.selection_stats().count == 60 * len(COLUMNS)
        await pilot.press("escape", "shift+end")
        assert table.selection_stats().sum == attempts
        table.set_data(COLUMNS, rows[:3], ("Total", 1, *[None] * (len(COLUMNS) - 2)))
        await pilot.pause()
        assert [line.split()[0] for line in lines()[:5]] == [
            "Date", *(values[0] for _, values in rows[:3]), "Total"]


async def test_changing_every_value_of_500_rows_redraws_the_new_values():
    """Live updates replace every value in place (its speed: bench/summary_table.py)."""
    rows = [(str(day), summary_row(day % 28 + 1, *DAYS[day % 10][1:])[1]) for day in range(500)]
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(SummaryTable)
        grid = app.query_one(SummaryGrid)
        table.set_data(COLUMNS, rows)
        await pilot.pause()
        changed = [(key, (values[0], 1_234_567, *values[2:])) for key, values in rows]
        table.set_data(COLUMNS, changed)
        await pilot.pause()
        drawn = [grid.render_line(y).text for y in range(grid.size.height)]
        assert sum("1,234,567" in line for line in drawn) == grid.size.height - 1  # + header


async def test_export_to_a_path_that_cannot_be_written_says_why(in_tmp: Path):
    (in_tmp / "days.csv").mkdir()
    app = TableApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e", "ctrl+u", *"days.csv", "enter")
        message = str(app.screen.query_one(".message").render())
        assert message == f"Cannot write {in_tmp}/days.csv: Is a directory"


def at_selection(*keys: str):
    async def run_before(pilot) -> None:
        await pilot.press(*keys)

    return run_before


def test_snapshot_80x24_scrolled_right_with_a_selection(snap_compare):
    keys = ["down", *["right"] * 9, "shift+right", "shift+right", *["shift+down"] * 4]
    assert snap_compare(TableApp(), terminal_size=(80, 24), run_before=at_selection(*keys))


def test_snapshot_120x40_with_a_selection(snap_compare):
    keys = ["down", "right", "shift+right", "shift+down", "shift+down", "shift+down"]
    assert snap_compare(TableApp(), terminal_size=(120, 40), run_before=at_selection(*keys))


def test_snapshot_80x24_export_modal(snap_compare):
    keys = ["right", "shift+down", "shift+down", "e"]
    assert snap_compare(TableApp(), terminal_size=(80, 24), run_before=at_selection(*keys))
