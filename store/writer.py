"""The one writer: a batch of changes committed in one transaction, feed position included.

Writes go through sqlite3 `executemany` on a dedicated thread (measured at 30x the ORM's rate);
SQLModel stays the source of the schema, from which the statements are built. Because the feed
position is committed with the data it covers, a crash at any point loses nothing and applies
nothing twice: on restart the feed is resumed from the last committed seq.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import SQLModel

from store import models, rollups
from store.database import configure

DAY_MS = 86_400_000


def insert_sql(model: type[SQLModel], *, upsert_keys: tuple[str, ...] = (), skip=()) -> str:
    columns = [c.name for c in model.__table__.columns if c.name not in skip]
    sql = (
        f"INSERT INTO {model.__tablename__} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    if upsert_keys:
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in upsert_keys)
        sql += f" ON CONFLICT({', '.join(upsert_keys)}) DO UPDATE SET {updates}"
    return sql


def columns_of(model: type[SQLModel], skip=()) -> tuple[str, ...]:
    return tuple(c.name for c in model.__table__.columns if c.name not in skip)


CALL_COLUMNS = columns_of(models.Call)
ATTEMPT_COLUMNS = columns_of(models.Attempt)
REJECT_COLUMNS = columns_of(models.Reject)
OPEN_CALL_COLUMNS = columns_of(models.OpenCall)
ACCOUNT_COLUMNS = columns_of(models.Account)

_SQL = {
    "event": insert_sql(models.EventLog),
    "call": insert_sql(models.Call),
    "attempt": insert_sql(models.Attempt),
    "reject": insert_sql(models.Reject),
    "open_call": insert_sql(models.OpenCall, upsert_keys=("seq",)),
    "close_call": "DELETE FROM open_call WHERE seq = ?",
    "account": insert_sql(models.Account, upsert_keys=("kind", "id")),
    "carrier_state": insert_sql(models.CarrierState, upsert_keys=("carrier",)),
    "live_clear": "DELETE FROM live_account",
    "live": insert_sql(models.LiveAccount),
    "quarantine": insert_sql(models.Quarantine, skip=("id",)),
    "gap": insert_sql(models.Gap, skip=("id",)),
    "code": (
        "INSERT INTO code_hour (kind, account, bucket, code, count) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT(kind, account, bucket, code) DO UPDATE SET count = count + excluded.count"
    ),
    "rollup_ended": rollups.upsert_sql(models.RollupEndedMinute.__tablename__),
    **{
        f"rollup_{period}": rollups.upsert_sql(table.__tablename__)
        for period, table in models.ROLLUP_TABLES.items()
    },
}


@dataclass
class Batch:
    """Everything one flush commits. Rows are tuples in the column order of their model."""

    events: list[tuple] = field(default_factory=list)
    calls: list[tuple] = field(default_factory=list)
    attempts: list[tuple] = field(default_factory=list)
    rejects: list[tuple] = field(default_factory=list)
    rollups: dict[rollups.RollupKey, list[int]] = field(default_factory=dict)
    ended: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)  # by end minute
    codes: dict[tuple[str, str, int, int], int] = field(default_factory=dict)
    open_calls: dict[int, tuple] = field(default_factory=dict)
    closed_calls: set[int] = field(default_factory=set)
    accounts: dict[tuple[str, str], tuple] = field(default_factory=dict)
    carrier_state: dict[str, tuple] = field(default_factory=dict)
    live_accounts: list[tuple] | None = None
    quarantine: list[tuple] = field(default_factory=list)
    gaps: list[tuple] = field(default_factory=list)
    feed: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.events) + len(self.quarantine) + len(self.gaps)


@dataclass(frozen=True)
class Retention:
    """How long the bulky tables keep rows; CDRs, hours and days are kept for good."""

    minute_rollup_days: int = 8
    event_log_days: int = 30


class StoreWriter:
    """Owns the writer connection; `write` commits a batch off the event loop."""

    def __init__(self, path: str | Path, retention: Retention = Retention()) -> None:
        self.path = Path(path)
        self.retention = retention
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="noc-writer")
        self._connection: sqlite3.Connection | None = None
        self._last_prune_ms = 0

    async def open(self) -> None:
        await self._run(self.open_now)

    def open_now(self) -> None:
        """Open the connection on the calling thread (tools and tests that write synchronously)."""
        self._connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        configure(self._connection, writer=True)

    async def close(self) -> None:
        await self._run(self.close_now)
        self._executor.shutdown(wait=True)

    def close_now(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def checkpoint_now(self) -> None:
        """Fold the WAL into the database file, so that the file alone holds everything."""
        self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def write(self, batch: Batch) -> None:
        await self._run(self.write_now, batch)

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def write_now(self, batch: Batch) -> None:
        """Commit `batch` in one transaction (called on the writer thread)."""
        db = self._connection
        assert db is not None, "StoreWriter.open() first"
        db.execute("BEGIN IMMEDIATE")
        try:
            self._write(db, batch)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _write(self, db: sqlite3.Connection, batch: Batch) -> None:
        many = db.executemany
        if batch.events:
            many(_SQL["event"], batch.events)
        if batch.calls:
            many(_SQL["call"], batch.calls)
        if batch.attempts:
            many(_SQL["attempt"], batch.attempts)
        if batch.rejects:
            many(_SQL["reject"], batch.rejects)
        if batch.rollups:
            for period, rows in rollups.expand(batch.rollups).items():
                many(_SQL[f"rollup_{period}"], rollups.upsert_rows(rows))
        if batch.ended:
            many(
                _SQL["rollup_ended"],
                (
                    (kind, account, "", minute, *values)
                    for (kind, account, minute), values in batch.ended.items()
                ),
            )
        if batch.codes:
            many(_SQL["code"], (key + (count,) for key, count in batch.codes.items()))
        if batch.closed_calls:
            many(_SQL["close_call"], ((seq,) for seq in batch.closed_calls))
        if batch.open_calls:
            many(_SQL["open_call"], batch.open_calls.values())
        if batch.accounts:
            many(_SQL["account"], batch.accounts.values())
        if batch.carrier_state:
            many(_SQL["carrier_state"], batch.carrier_state.values())
        if batch.live_accounts is not None:
            db.execute(_SQL["live_clear"])
            many(_SQL["live"], batch.live_accounts)
        if batch.quarantine:
            many(_SQL["quarantine"], batch.quarantine)
        if batch.gaps:
            many(_SQL["gap"], batch.gaps)
        if batch.feed:
            assignments = ", ".join(f"{name} = ?" for name in batch.feed)
            db.execute(
                f"UPDATE feed_state SET {assignments} WHERE id = 1", tuple(batch.feed.values())
            )
        newest = batch.feed.get("newest_ms")
        if isinstance(newest, int) and newest - self._last_prune_ms > 600_000:
            self._prune(db, newest)

    def _prune(self, db: sqlite3.Connection, now_ms: int) -> None:
        self._last_prune_ms = now_ms
        minute_cutoff = now_ms - self.retention.minute_rollup_days * DAY_MS
        db.execute("DELETE FROM rollup_minute WHERE bucket < ?", (minute_cutoff,))
        db.execute("DELETE FROM rollup_ended_minute WHERE bucket < ?", (minute_cutoff,))
        log_cutoff = now_ms - self.retention.event_log_days * DAY_MS
        db.execute("DELETE FROM event_log WHERE ts_ms < ?", (log_cutoff,))

    async def read(self, function, *args):
        """Run a read on the writer's connection and thread (used at start-up to restore state)."""
        return await self._run(function, self._connection, *args)
