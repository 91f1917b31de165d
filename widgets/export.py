"""Writing table figures to CSV, JSON or XLSX, and the small modal that asks where to.

The format follows the file's extension. Numbers are written as numbers (no thousands
separators, no "%"), rounded as the table shows them, so an export matches the screen. Text that
a spreadsheet would take for a formula (a quarantined frame `=HYPERLINK(...)`) is neutralised,
and the file is its owner's only (0600): it may hold raw feed input and the network's figures.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import xlsxwriter
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, RadioButton, RadioSet, Static
from xlsxwriter.exceptions import XlsxWriterException

Scope = Literal["all", "selection"]
Value = str | int | float | None
# A text cell starting so is a formula to a spreadsheet (tab and CR: some read past them).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700


class ExportError(Exception):
    """The export cannot be written; str() says why, in words meant for the user."""


@dataclass(frozen=True)
class ExportColumn:
    label: str
    decimals: int | None = None  # None for a text column
    suffix: str = ""  # shown after numbers in spreadsheets, e.g. "%"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int


def export_path(folder: Path, *words: str, suffix: str = ".csv") -> Path:
    """`folder/noc-<words>.csv`: the words (an account id may hold `/` or `..`) made safe for
    a file name."""
    slugs = (re.sub(r"[^a-z0-9]+", "-", word.lower()).strip("-") for word in ("noc", *words))
    return folder / ("-".join(slug for slug in slugs if slug) + suffix)


def formula_safe(text: str) -> bool:
    return not text.startswith(FORMULA_STARTS)


def private_file(path: Path) -> None:
    """Create the file `path`, or empty the one there, readable and writable by its owner
    only: the writers then fill it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE)
    finally:
        os.close(descriptor)


def write_table(
    path: Path, columns: Sequence[ExportColumn], rows: Sequence[Sequence[Value]]
) -> None:
    """Write a header and rows to `path`, in the format its extension names."""
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        known = ", ".join(_WRITERS)
        raise ExportError(f"Unknown file type {path.suffix or '(none)'!r}: use {known}")
    if not path.parent.is_dir():
        raise ExportError(f"Folder {path.parent} does not exist")
    # Written beside `path` under a name of its own (created 0600), then renamed: an export that
    # fails half way (a full disk) leaves nothing under `path`, and a file it was to replace is
    # kept whole.
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.close(fd)
    except OSError as err:
        raise ExportError(f"Cannot write {path}: {err.strerror}") from err
    partial = Path(name)
    try:
        writer(partial, columns, rows)
        os.replace(partial, path)
    except (OSError, XlsxWriterException) as err:
        partial.unlink(missing_ok=True)
        raise ExportError(f"Cannot write {path}: {_reason(err)}") from err
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _reason(err: OSError | XlsxWriterException) -> str:
    if isinstance(err, OSError):
        return err.strerror or str(err)
    cause = err.__context__  # xlsxwriter wraps the OSError that stopped it
    return cause.strerror if isinstance(cause, OSError) and cause.strerror else str(err)


def _write_csv(path: Path, columns: Sequence[ExportColumn], rows: Sequence[Sequence[Value]]):
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(column.label for column in columns)
        writer.writerows([_csv_cell(value) for value in row] for row in rows)


def _csv_cell(value: Value) -> Value:
    """Numbers as they are (a negative number is no formula); text that a spreadsheet would
    evaluate behind a quote, which it shows as text."""
    if value is None:
        return ""
    if isinstance(value, str) and not formula_safe(value):
        return f"'{value}"
    return value


def _write_json(path: Path, columns: Sequence[ExportColumn], rows: Sequence[Sequence[Value]]):
    labels = [column.label for column in columns]
    records = [dict(zip(labels, row, strict=True)) for row in rows]
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_xlsx(path: Path, columns: Sequence[ExportColumn], rows: Sequence[Sequence[Value]]):
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    header = workbook.add_format({"bold": True})
    quoted = workbook.add_format({"quote_prefix": True})  # Excel's own "this is text"
    number_formats = [
        None if column.decimals is None else workbook.add_format({"num_format": _excel(column)})
        for column in columns
    ]
    for x, column in enumerate(columns):
        sheet.write_string(0, x, column.label, header)
        width = max((len(str(row[x])) for row in rows), default=0)
        sheet.set_column(x, x, max(width, len(column.label)) + 2)
    for y, row in enumerate(rows, start=1):
        for x, value in enumerate(row):
            if isinstance(value, str):
                sheet.write_string(y, x, value, None if formula_safe(value) else quoted)
            elif value is not None:
                sheet.write_number(y, x, value, number_formats[x])
    sheet.freeze_panes(1, 1)  # header row and first column stay put, as on screen
    workbook.close()


def _excel(column: ExportColumn) -> str:
    """An Excel number format showing the column as the table does, e.g. #,##0.0"%"."""
    decimals = "." + "0" * column.decimals if column.decimals else ""
    suffix = f'"{column.suffix}"' if column.suffix else ""
    return f"#,##0{decimals}{suffix}"


_WRITERS = {".csv": _write_csv, ".json": _write_json, ".xlsx": _write_xlsx}


class ExportScreen(ModalScreen[ExportResult | None]):
    """Asks for a file and a scope, then runs `export` on a thread (it may read the store);
    errors keep the dialog open."""

    CSS_PATH = "export.tcss"

    BINDINGS = [
        # Priority, so that Enter exports from the scope buttons too (space picks one there).
        Binding("enter", "export", "Export", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self,
        title: str,
        default_path: str,
        export: Callable[[Path, Scope], int],
        *,
        selection_label: str | None,
        all_label: str,
    ) -> None:
        """`selection_label` is None when there is no selection to export."""
        super().__init__()
        self._title = title
        self._default_path = default_path
        self._export = export
        self._selection_label = selection_label
        self._all_label = all_label
        self._overwrite: Path | None = None  # the existing file Enter was pressed on once
        self._exporting = False

    def compose(self) -> ComposeResult:
        has_selection = self._selection_label is not None
        with Vertical() as dialog:
            dialog.border_title = Text(self._title)  # may name an account: never markup
            dialog.border_subtitle = "Enter export · Esc cancel"
            yield Label("File  [dim](.csv, .json or .xlsx)[/]")
            yield Input(self._default_path, select_on_focus=False)
            yield Label("Rows  [dim](Tab, then space to choose)[/]")
            with RadioSet():
                yield RadioButton(
                    self._selection_label or "Selection (none)",
                    value=has_selection,
                    disabled=not has_selection,
                    name="selection",
                )
                yield RadioButton(self._all_label, value=not has_selection, name="all")
            yield Static(classes="message", markup=False)

    def action_export(self) -> None:
        typed = self.query_one(Input).value.strip()
        if not typed:
            self._show("Type a file name")
            return
        path = Path(typed).expanduser().absolute()
        if path.is_file() and self._overwrite != path:
            self._overwrite = path
            self._show(f"{path} exists: Enter again to overwrite it", warning=True)
            return
        try:
            self._make_default_folder(path)
        except OSError as err:
            self._show(f"Cannot create folder {path.parent}: {err.strerror}")
            return
        pressed = self.query_one(RadioSet).pressed_button
        scope: Scope = "selection" if pressed and pressed.name == "selection" else "all"
        if self._exporting:
            return
        self._exporting = True
        self._show(f"Exporting to {path}…", warning=True)
        self._run_export(path, scope)

    class Done(Message):
        """An export run on a thread: the rows written, or why it failed."""

        def __init__(self, result: ExportResult | None, error: str = "") -> None:
            super().__init__()
            self.result, self.error = result, error

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _run_export(self, path: Path, scope: Scope) -> None:
        """Read and write on a thread: the console goes on drawing meanwhile, however long a
        busy store or disk makes it."""
        try:
            self.post_message(self.Done(ExportResult(path, self._export(path, scope))))
        except ExportError as err:
            self.post_message(self.Done(None, str(err)))
        except Exception as err:  # a failed read of the store too: said, not a crash
            self.post_message(self.Done(None, f"Export failed: {err}"))

    def on_export_screen_done(self, done: Done) -> None:
        self._exporting = False
        if done.result is None:
            self._show(done.error)
            return
        self.dismiss(done.result)

    def _make_default_folder(self, path: Path) -> None:
        """The folder exports go to by default is made on first use, private (0700); any other
        must exist (a typo is then not a folder made by mistake)."""
        folder = Path(self._default_path).expanduser().absolute().parent
        if path.parent == folder and not folder.exists():
            folder.mkdir(mode=PRIVATE_FOLDER, parents=True)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _show(self, message: str, *, warning: bool = False) -> None:
        status = self.query_one(".message", Static)
        status.update(message)
        status.set_class(warning, "-warning")
