"""Exports a spreadsheet cannot be fooled by, readable by their owner only; and exports that fail:
a full disk says so, and leaves no half-written file under the name asked for (an older file
there is kept whole)."""

from __future__ import annotations

import csv
import re
import stat
import threading
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from textual.app import App

from console.shell.cli import main
from console.testing import until
from store.database import prepare
from tests.diskkit import fill, small_disk
from widgets.export import ExportScreen
from widgets.export_files import ExportColumn, ExportError, export_path, write_table

COLUMNS = (ExportColumn("raw"), ExportColumn("profit", 2))
ROWS = [
    ('=HYPERLINK("https://evil.example","click")', -3.5),
    ("+1+2", -4),
    ("-2+3", 0.0),
    ("@SUM(A1)", 1),
    ("\t=1+1", 2),
    ("\r=1+1", 3),
    ("plain text", 4),
]


def test_csv_text_cells_that_are_formulas_are_quoted_and_numbers_stay_numbers(tmp_path: Path):
    target = tmp_path / "out.csv"
    write_table(target, COLUMNS, ROWS)
    rows = list(csv.reader(target.open(encoding="utf-8", newline="")))
    assert rows[0] == ["raw", "profit"]
    assert [row[0] for row in rows[1:]] == [
        '\'=HYPERLINK("https://evil.example","click")', "'+1+2", "'-2+3", "'@SUM(A1)",
        "'\t=1+1", "'\r=1+1", "plain text"]
    assert [row[1] for row in rows[1:]] == ["-3.5", "-4", "0.0", "1", "2", "3", "4"]


def test_xlsx_formula_text_is_quote_prefixed_and_numbers_stay_numbers(tmp_path: Path):
    target = tmp_path / "out.xlsx"
    write_table(target, COLUMNS, ROWS)
    with zipfile.ZipFile(target) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        styles = book.read("xl/styles.xml").decode()
    cells = {ref: (kind, style) for ref, style, kind in re.findall(
        r'<c r="([A-Z]+\d+)"(?: s="(\d+)")?(?: t="(\w+)")?', sheet)}
    formats = re.findall(r"<xf [^>]*?(?:/>|>.*?</xf>)",
                         styles.split("<cellXfs")[1].split("</cellXfs>")[0])
    quoted = {str(index) for index, xf in enumerate(formats) if 'quotePrefix="1"' in xf}
    assert "<f>" not in sheet  # no cell is a formula
    assert all(cells[f"A{row}"][0] == "s" and cells[f"A{row}"][1] in quoted
               for row in range(2, 8))
    assert cells["A8"][1] not in quoted  # plain text is left as it is
    numbers = dict(re.findall(r'<c r="(B\d+)"[^>]*><v>([^<]*)</v>', sheet))
    assert (numbers["B2"], numbers["B3"]) == ("-3.5", "-4")
    assert cells["B2"][0] == ""  # a number, not a string


def test_an_export_is_its_owners_only_even_over_an_existing_file(tmp_path: Path):
    for name in ("new.csv", "old.json", "old.xlsx"):
        target = tmp_path / name
        if name.startswith("old"):
            target.write_text("world-readable")
            target.chmod(0o644)
        write_table(target, COLUMNS, ROWS)
        assert stat.S_IMODE(target.stat().st_mode) == 0o600, name


def test_a_default_file_name_is_safe_whatever_the_account_id():
    folder = Path("/data/exports")
    assert export_path(folder, "../../etc/passwd", "asr", "20261120-115830") == \
        folder / "noc-etc-passwd-asr-20261120-115830.csv"
    assert export_path(folder, "Daily summary", suffix=".xlsx") == \
        folder / "noc-daily-summary.xlsx"


def test_noc_alerts_export_writes_a_file_its_owner_only_can_read(tmp_path: Path):
    prepare(tmp_path / "noc.db")
    target = tmp_path / "rules.toml"
    target.write_text("old")
    target.chmod(0o644)
    result = CliRunner().invoke(main, ["alerts", "export", str(target), "--db",
                                       str(tmp_path / "noc.db")])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


FULL_DISK_COLUMNS = (ExportColumn("customer"), ExportColumn("attempts", 0),
                     ExportColumn("asr", 1, "%"))
FULL_DISK_ROWS = [(f"customer-{n}", n, n / 7) for n in range(40_000)]  # more than it has room for


# xlsxwriter leaves its zip file to the garbage collector when a write fails, whose own close then
# fails again on the full disk: a warning of the library's, not a failure of the export's.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("suffix", [".csv", ".json", ".xlsx"])
def test_an_export_on_a_full_disk_fails_saying_why_and_leaves_no_partial_file(tmp_path, suffix):
    with small_disk(tmp_path / "disk", size="1m") as disk:
        target = disk / f"summary{suffix}"
        target.write_text("the last export\n")
        fill(disk / "ballast")
        with pytest.raises(ExportError, match=f"Cannot write {target}: No space left on device"):
            write_table(target, FULL_DISK_COLUMNS, FULL_DISK_ROWS)
        assert target.read_text() == "the last export\n"
        assert sorted(path.name for path in disk.iterdir()) == ["ballast", target.name]
        (disk / "ballast").unlink()
        write_table(target, FULL_DISK_COLUMNS, FULL_DISK_ROWS[:100])  # room again: it works
        assert target.read_bytes() != b"the last export\n"


async def test_an_export_runs_on_a_thread_and_the_dialog_says_so_meanwhile(tmp_path: Path):
    """The export (which may read a busy store) is not run by the event loop: the dialog says
    it is exporting while it runs, and closes with the rows written."""
    let_go, on_main_thread, results = threading.Event(), [], []

    def export(path: Path, _scope) -> int:
        on_main_thread.append(threading.current_thread() is threading.main_thread())
        let_go.wait(30)
        write_table(path, COLUMNS, ROWS)
        return len(ROWS)

    class ExportApp(App):
        def on_mount(self) -> None:
            self.push_screen(ExportScreen("Export", str(tmp_path / "out.csv"), export,
                                          selection_label=None, all_label="Every row"),
                             results.append)

    app = ExportApp()
    try:
        async with app.run_test() as pilot:
            await until(pilot, lambda: isinstance(app.screen, ExportScreen))
            message = app.screen.query_one(".message")
            await pilot.press("enter")
            await until(pilot, lambda: on_main_thread)
            assert on_main_thread == [False]
            assert str(message.render()).startswith("Exporting to")
            let_go.set()
            await until(pilot, lambda: results)
    finally:
        let_go.set()
    assert results[0].rows == len(ROWS) and (tmp_path / "out.csv").exists()
