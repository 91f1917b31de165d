"""Rollups kept up to date incrementally: a batch's per-minute totals, widened and upserted.

The ingest side aggregates each batch in memory at the finest grain (account, route, minute) as
events arrive; here SQLite widens that to the account total (route '') and to hours and days, with
one upsert per key, so the cost is per key touched, not per event.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence

from store import metrics
from store.metrics import PEAK_FIELDS, TOTALS_FIELDS, CallRecord, Totals
from store.models import BUCKET_MS, ENDED_TABLES, ROLLUP_TABLES
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


def ended_rows(call: CallRecord) -> Iterator[tuple[tuple[str, str, int], tuple[int, ...]]]:
    """What a stored call adds to the rollups by the minute things ended, as the ingest adds it:
    a failed attempt when it ended, the call and its answered attempt and failovers when the
    call ended. A call still open (`end_ms` None) holds its failed attempts only."""
    for attempt in call.attempts:
        if not metrics.is_answered(attempt.code):
            yield _minute_key("carrier", attempt.carrier, attempt.end_ms), \
                metrics.attempt_totals_row(attempt)
    if call.end_ms is None:
        return
    ended = call.end_ms
    yield _minute_key("customer", call.customer, ended), metrics.call_totals_row(call)
    for attempt in call.attempts:
        if metrics.is_answered(attempt.code):
            yield _minute_key("carrier", attempt.carrier, ended), \
                metrics.attempt_totals_row(attempt)
    for failed, next_answered in metrics.call_failovers(call):
        yield _minute_key("carrier", failed.carrier, ended), \
            metrics.failover_totals(failed, next_answered).as_tuple()


def _minute_key(kind: str, account: str, ms: int) -> tuple[str, str, int]:
    return kind, account, ms - ms % 60_000


def upsert(table: str) -> RowsInsert:
    columns = ("kind", "account", "route", "bucket", *TOTALS_FIELDS)
    updates = ", ".join(
        # Qualified, and CASE rather than SQLite's max(a, b): the same SQL for PostgreSQL.
        f"{name} = CASE WHEN {table}.{name} > excluded.{name} THEN {table}.{name} "
        f"ELSE excluded.{name} END" if name in PEAK_FIELDS
        else f"{name} = {table}.{name} + excluded.{name}"
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


def _widening(tables: Mapping[str, type]) -> list[str]:
    """The statements that widen the batch table into `tables` (period -> model)."""
    return [
        f"{upsert(tables[period].__tablename__).head} "
        f"SELECT kind, account, {route}, bucket - bucket % {size}, {ROLLUP_SUMS} "
        f"FROM temp.{_BATCH} WHERE {where} "
        "GROUP BY 1, 2, 3, 4"  # by position: PostgreSQL refuses a constant ('') by name
        f"{upsert(tables[period].__tablename__).tail}"
        for period, size in BUCKET_MS.items()
        # Each route's own rows, and every row again in its account's total (route '').
        for route, where in (("route", "route != ''"), ("''", "true"))
    ]


_WIDENED = _widening(ROLLUP_TABLES)
_WIDENED_ENDED = _widening(ENDED_TABLES)


def create_batch_table(db: sqlite3.Connection) -> None:
    """The writer connection's own scratch table for write_batch (in memory, never committed)."""
    columns = ", ".join((*(f"{name} VARCHAR" for name in ("kind", "account", "route")),
                         *(f"{name} BIGINT" for name in ("bucket", *TOTALS_FIELDS))))
    db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_BATCH} ({columns})")


def write_batch(db: sqlite3.Connection, minute_rows: dict[RollupKey, list[int]]) -> None:
    """Add a batch's per-route per-minute totals to the minute, hour and day rollups, per route
    and for all routes (''). SQLite sums them into each bucket, one statement per table and
    route (the GIL released meanwhile), rather than a pass of Python over every row."""
    _widen(db, minute_rows, _WIDENED)


def write_ended(db: sqlite3.Connection, minute_rows: dict[tuple[str, str, int], list[int]],
                ) -> None:
    """Add a batch's per-account totals by the minute things ended to the minute, hour and day
    rollups by end time (all routes only)."""
    _widen(db, {(kind, account, ALL_ROUTES, minute): values
                for (kind, account, minute), values in minute_rows.items()}, _WIDENED_ENDED)


def _widen(db: sqlite3.Connection, minute_rows: dict[RollupKey, list[int]],
           statements: Sequence[str]) -> None:
    db.execute(f"DELETE FROM temp.{_BATCH}")
    _BATCH_INSERT.run(db, upsert_rows(minute_rows))
    for statement in statements:
        db.execute(statement)
