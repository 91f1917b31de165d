"""SQL statements that write many rows at once, built from the SQLModel tables.

`executemany` steps one row at a time and takes the GIL back after each row, so on the writer's
thread it waits for the event loop's thread at every row. These statements carry many rows each.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlmodel import SQLModel

MAX_PARAMETERS = 4096  # a statement: well under any SQLite's limit (32,766 by default since 3.32)


def chunks(total: int, largest: int) -> Iterator[tuple[int, int]]:
    """(start, size) pieces of range(total), sizes powers of two up to `largest`, biggest first:
    a statement per size is prepared once and stays in the connection's statement cache."""
    size = 1 << largest.bit_length() - 1
    start = 0
    while start < total:
        while size > total - start:
            size //= 2
        yield start, size
        start += size


@dataclass(frozen=True)
class RowsInsert:
    """An INSERT of many rows per statement (at most MAX_PARAMETERS parameters)."""

    head: str  # INSERT INTO table (columns)
    width: int  # columns per row
    tail: str = ""  # ON CONFLICT ...

    @functools.cache  # noqa: B019 - a handful of module-level statements, kept for good
    def sql(self, rows: int) -> str:
        row = f"({', '.join('?' * self.width)})"
        return f"{self.head} VALUES {', '.join([row] * rows)}{self.tail}"

    def run(self, db: sqlite3.Connection, rows: Sequence[tuple]) -> None:
        flat = itertools.chain.from_iterable
        for start, size in chunks(len(rows), MAX_PARAMETERS // self.width):
            db.execute(self.sql(size), list(flat(rows[start : start + size])))


def rows_insert(model: type[SQLModel], *, upsert_keys: tuple[str, ...] = (), skip=()) -> RowsInsert:
    columns = columns_of(model, skip)
    tail = ""
    if upsert_keys:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in upsert_keys)
        tail = f" ON CONFLICT({', '.join(upsert_keys)}) DO UPDATE SET {updates}"
    head = f"INSERT INTO {model.__tablename__} ({', '.join(columns)})"
    return RowsInsert(head, len(columns), tail)


def delete_seqs(db: sqlite3.Connection, table: str, seqs: Sequence[int]) -> None:
    """DELETE by primary key `seq`, many keys per statement."""
    for start, size in chunks(len(seqs), MAX_PARAMETERS):
        marks = ", ".join("?" * size)
        db.execute(f"DELETE FROM {table} WHERE seq IN ({marks})", seqs[start : start + size])


def columns_of(model: type[SQLModel], skip=()) -> tuple[str, ...]:
    return tuple(c.name for c in model.__table__.columns if c.name not in skip)
