"""Rollups kept up to date incrementally: a batch's per-minute totals, widened and upserted.

The ingest side aggregates each batch in memory at the finest grain (account, route, minute) as
events arrive; here SQLite widens that to the account total (route '') and to hours and days, with
one upsert per key, so the cost is per key touched, not per event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from store.metrics import PEAK_FIELDS, TOTALS_FIELDS, Totals
from store.models import BUCKET_MS, ROLLUP_TABLES
from store.statements import RowsInsert

TOTALS_WIDTH = len(TOTALS_FIELDS)
PEAK_INDEXES = frozenset(TOTALS_FIELDS.index(name) for name in PEAK_FIELDS)
COUNTER_INDEXES = tuple(i for i in range(TOTALS_WIDTH) if i not in PEAK_INDEXES)
FIELD_INDEX = {name: i for i, name in enumerate(TOTALS_FIELDS)}
# The SQL that sums rollup rows into one: counters added, peaks the highest.
ROLLUP_SUMS = ", ".join(f"max({name})" if name in PEAK_FIELDS else f"sum({name})"
                        for name in TOTALS_FIELDS)

RollupKey = tuple[str, str, str, int]  # kind, account, route ('' = all routes), bucket start ms
ALL_ROUTES = ""


def zero() -> list[int]:
    return [0] * TOTALS_WIDTH


def add_into(target: list[int], source: Sequence[int]) -> None:
    for i in COUNTER_INDEXES:
        target[i] += source[i]
    for i in PEAK_INDEXES:
        if source[i] > target[i]:
            target[i] = source[i]


def to_totals(values: Sequence[int]) -> Totals:
    return Totals(*values)


def bucket_of(ms: int, period: str) -> int:
    size = BUCKET_MS[period]
    return ms - ms % size


def upsert(table: str) -> RowsInsert:
    columns = ("kind", "account", "route", "bucket", *TOTALS_FIELDS)
    updates = ", ".join(
        f"{name} = max({name}, excluded.{name})" if name in PEAK_FIELDS
        else f"{name} = {name} + excluded.{name}"
        for name in TOTALS_FIELDS
    )
    return RowsInsert(
        f"INSERT INTO {table} ({', '.join(columns)})",
        len(columns),
        f" ON CONFLICT(kind, account, route, bucket) DO UPDATE SET {updates}",
    )


def upsert_rows(rows: dict[RollupKey, list[int]]) -> list[tuple]:
    return [key + tuple(values) for key, values in rows.items()]


# A batch's per-route per-minute rows, widened into the rollups by SQLite (write_batch).
_BATCH = "rollup_batch"
_BATCH_INSERT = RowsInsert(f"INSERT INTO temp.{_BATCH}", 4 + TOTALS_WIDTH)
_WIDENED = [
    f"{upsert(ROLLUP_TABLES[period].__tablename__).head} "
    f"SELECT kind, account, {route}, bucket - bucket % {size}, {ROLLUP_SUMS} "
    f"FROM temp.{_BATCH} WHERE {where} GROUP BY kind, account, {route}, bucket - bucket % {size}"
    f"{upsert(ROLLUP_TABLES[period].__tablename__).tail}"
    for period, size in BUCKET_MS.items()
    # Each route's own rows, and every row again in its account's total (route '').
    for route, where in (("route", "route != ''"), ("''", "true"))
]


def create_batch_table(db: sqlite3.Connection) -> None:
    """The writer connection's own scratch table for write_batch (in memory, never committed)."""
    columns = ", ".join(("kind", "account", "route", "bucket", *TOTALS_FIELDS))
    db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_BATCH} ({columns})")


def write_batch(db: sqlite3.Connection, minute_rows: dict[RollupKey, list[int]]) -> None:
    """Add a batch's per-route per-minute totals to the minute, hour and day rollups, per route
    and for all routes (''). SQLite sums them into each bucket, one statement per table and
    route (the GIL released meanwhile), rather than a pass of Python over every row."""
    db.execute(f"DELETE FROM temp.{_BATCH}")
    _BATCH_INSERT.run(db, upsert_rows(minute_rows))
    for statement in _WIDENED:
        db.execute(statement)
