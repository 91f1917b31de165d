"""Rollups kept up to date incrementally: a batch's per-minute totals, expanded and upserted.

The ingest side aggregates each batch in memory at the finest grain (account, route, minute);
here that is widened to the account total (route '') and to hours and days, and written with one
upsert per key, so the cost is per key touched, not per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from store.metrics import PEAK_FIELDS, TOTALS_FIELDS, Totals
from store.models import BUCKET_MS
from store.statements import RowsInsert

TOTALS_WIDTH = len(TOTALS_FIELDS)
PEAK_INDEXES = frozenset(TOTALS_FIELDS.index(name) for name in PEAK_FIELDS)
COUNTER_INDEXES = tuple(i for i in range(TOTALS_WIDTH) if i not in PEAK_INDEXES)
FIELD_INDEX = {name: i for i, name in enumerate(TOTALS_FIELDS)}

K = TypeVar("K")
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


def fold_into(rows: dict[K, list[int]], parts: dict[K, list[Sequence[int]]]) -> None:
    """Add each key's parts into its row (a new one if none): counters summed, peaks by max."""
    for key, values in parts.items():
        row = rows.get(key)
        if row is None:
            row = rows[key] = zero()
        for i, column in enumerate(zip(*values, strict=True)):
            row[i] = max(row[i], *column) if i in PEAK_INDEXES else row[i] + sum(column)


def to_totals(values: Sequence[int]) -> Totals:
    return Totals(*values)


def bucket_of(ms: int, period: str) -> int:
    size = BUCKET_MS[period]
    return ms - ms % size


def expand(minute_rows: dict[RollupKey, list[int]]) -> dict[str, dict[RollupKey, list[int]]]:
    """From per-route per-minute totals to minute, hour and day rows, per route and all routes."""
    widened: dict[str, dict[RollupKey, list[int]]] = {period: {} for period in BUCKET_MS}
    for (kind, account, route, minute), values in minute_rows.items():
        routes = (route,) if route == ALL_ROUTES else (route, ALL_ROUTES)
        for period, rows in widened.items():
            bucket = bucket_of(minute, period)
            for each_route in routes:
                key = (kind, account, each_route, bucket)
                row = rows.get(key)
                if row is None:
                    rows[key] = list(values)
                else:
                    add_into(row, values)
    return widened


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
