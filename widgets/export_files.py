"""Writing table figures to CSV, JSON or XLSX (the export dialog, widgets/export.py, asks where).

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import xlsxwriter
from xlsxwriter.exceptions import XlsxWriterException

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
