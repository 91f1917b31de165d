"""The one writer: a batch of changes committed in one transaction, feed position included.

Writes go through plain sqlite3 on a dedicated thread, many rows per statement (store/statements.py;
30x the ORM's rate, measured); SQLModel stays the source of the schema. Because the feed position
is committed with the data it covers, a crash at any point loses nothing and applies nothing
twice: on restart the feed is resumed from the last committed seq.
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from store import models, rollups, routes
from store.database import connect, day_partitions, locate
from store.statements import RowsInsert, columns_of, delete_seqs, rows_insert
from store.transactions import transaction

DAY_MS = 86_400_000
STATEMENT_CACHE = 512  # every size of every many-row statement (store/statements.py)
# SQLite folds the WAL into the database at the first commit past 1,000 pages: at ingest rates,
# every commit. Less often, pages that each commit rewrites (indexes, rollups, open calls) are
# copied once per checkpoint instead of once per commit; the WAL stays bounded (32 MiB + a batch).
WAL_CHECKPOINT_PAGES = 8192

CALL_COLUMNS = columns_of(models.Call)
ATTEMPT_COLUMNS = columns_of(models.Attempt)
REJECT_COLUMNS = columns_of(models.Reject)
OPEN_CALL_COLUMNS = columns_of(models.OpenCall)
ACCOUNT_COLUMNS = columns_of(models.Account)

_INSERT = {
    "event": rows_insert(models.EventLog),
    "call": rows_insert(models.Call),
    "attempt": rows_insert(models.Attempt),
    "reject": rows_insert(models.Reject),
    "open_call": rows_insert(models.OpenCall, upsert_keys=("seq",)),
    "account": rows_insert(models.Account, upsert_keys=("kind", "id")),
    "carrier_state": rows_insert(models.CarrierState, upsert_keys=("carrier",)),
    "live": rows_insert(models.LiveAccount),
    "quarantine": rows_insert(models.Quarantine, skip=("id",)),
    "gap": rows_insert(models.Gap, skip=("id",)),
    "code": RowsInsert(
        "INSERT INTO code_hour (kind, account, bucket, code, count)",
        5,
        " ON CONFLICT(kind, account, bucket, code) DO UPDATE SET "
        "count = code_hour.count + excluded.count",
    ),
}


@dataclass
class Batch:
    """Everything one flush commits. Rows are tuples in the column order of their model."""

    events: list[tuple] = field(default_factory=list)  # event_log rows: a frame's events each
    stored_events: int = 0  # in those rows
    calls: list[tuple] = field(default_factory=list)
    attempts: list[tuple] = field(default_factory=list)
    rejects: list[tuple] = field(default_factory=list)
    new_routes: list[tuple[str, str]] = field(default_factory=list)  # (customer, route) now known
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
        return self.stored_events + len(self.quarantine) + len(self.gaps)


# Where each bulky table's rows hold their day (see models.DAY_COLUMNS).
_DAY_INDEX = {table: columns_of(model).index(models.DAY_COLUMNS[table])
              for table, model in (("event_log", models.EventLog), ("call", models.Call),
                                   ("attempt", models.Attempt), ("reject", models.Reject))}


@dataclass(frozen=True)
class Retention:
    """How long the bulky tables keep rows; hours and days are kept for good, and so are CDRs
    unless `call_days` says otherwise (0)."""

    minute_rollup_days: int = 8
    event_log_days: int = 30
    call_days: int = 0


class StoreWriter:
    """Owns the writer connection; `write` commits a batch off the event loop."""

    def __init__(self, path: str | Path, retention: Retention = Retention()) -> None:
        self.path = locate(path)
        self.retention = retention
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="noc-writer")
        self._connection: sqlite3.Connection | None = None
        self._last_prune_ms = 0
        self._partitions = day_partitions(self.path)

    async def open(self) -> None:
        await self._run(self.open_now)

    def open_now(self) -> None:
        """Open the connection on the calling thread (tools and tests that write synchronously)."""
        self._connection = connect(self.path, mode="rw", writer=True,
                                   cached_statements=STATEMENT_CACHE)
        self._connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        rollups.create_batch_table(self._connection)

    async def close(self) -> None:
        await self._run(self.close_now)
        self._executor.shutdown(wait=True)

    def close_now(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def lost(self) -> bool:
        """Whether the server has ended the writer's connection (a PostgreSQL restart): then
        `reopen` before the next write. A SQLite file's connection is never lost."""
        return self._connection is None or getattr(self._connection, "lost", False)

    async def reopen(self) -> None:
        await self._run(self.reopen_now)

    def reopen_now(self) -> None:
        self.close_now()
        self.open_now()

    def checkpoint_now(self) -> None:
        """Fold the WAL into the database file, so that the file alone holds everything."""
        self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def write(self, batch: Batch) -> None:
        await self._run(self.write_now, batch)

    async def _run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def write_now(self, batch: Batch) -> None:
        """Commit `batch` in one transaction (called on the writer thread), or raise the
        sqlite3.Error that stopped it with nothing of it stored: the same batch may be written
        again (the batch is not changed by writing it)."""
        db = self._connection
        assert db is not None, "StoreWriter.open() first"
        try:
            with transaction(db):
                pruned = self._write(db, batch)
        except BaseException:
            if self._partitions is not None:
                self._partitions.forget()  # those it made went with the transaction
            raise
        if pruned is not None:
            self._last_prune_ms = pruned

    def _write(self, db: sqlite3.Connection, batch: Batch) -> int | None:
        """Write `batch`; return the time it pruned old rows at, if it did."""
        if self._partitions is not None:
            for table, rows in (("event_log", batch.events), ("call", batch.calls),
                                ("attempt", batch.attempts), ("reject", batch.rejects)):
                at = _DAY_INDEX[table]
                self._partitions.ensure(db, table, (row[at] for row in rows))
        if batch.events:
            _INSERT["event"].run(db, batch.events)
        if batch.calls:
            _INSERT["call"].run(db, batch.calls)
        if batch.attempts:
            _INSERT["attempt"].run(db, batch.attempts)
        if batch.rejects:
            _INSERT["reject"].run(db, batch.rejects)
        if batch.rollups:
            rollups.write_batch(db, batch.rollups)
        if batch.ended:
            rollups.write_ended(db, batch.ended)
        for customer, route in batch.new_routes:  # once the batch's rejects and rollups are in
            routes.take_new_route(db, customer, route)
        if batch.codes:
            _INSERT["code"].run(db, [key + (count,) for key, count in batch.codes.items()])
        if batch.closed_calls:
            delete_seqs(db, "open_call", list(batch.closed_calls))
        if batch.open_calls:
            _INSERT["open_call"].run(db, list(batch.open_calls.values()))
        if batch.accounts:
            _INSERT["account"].run(db, list(batch.accounts.values()))
        if batch.carrier_state:
            _INSERT["carrier_state"].run(db, list(batch.carrier_state.values()))
        if batch.live_accounts is not None:
            db.execute("DELETE FROM live_account")
            _INSERT["live"].run(db, batch.live_accounts)
        if batch.quarantine:
            _INSERT["quarantine"].run(db, batch.quarantine)
        if batch.gaps:
            _INSERT["gap"].run(db, batch.gaps)
        if batch.feed:
            assignments = ", ".join(f"{name} = ?" for name in batch.feed)
            db.execute(
                f"UPDATE feed_state SET {assignments} WHERE id = 1", tuple(batch.feed.values())
            )
        newest = batch.feed.get("newest_ms")
        if isinstance(newest, int) and newest - self._last_prune_ms > 600_000:
            self._prune(db, newest)
            return newest
        return None

    def _prune(self, db: sqlite3.Connection, now_ms: int) -> None:
        minute_cutoff = now_ms - self.retention.minute_rollup_days * DAY_MS
        db.execute("DELETE FROM rollup_minute WHERE bucket < ?", (minute_cutoff,))
        db.execute("DELETE FROM rollup_ended_minute WHERE bucket < ?", (minute_cutoff,))
        cutoffs = {"event_log": now_ms - self.retention.event_log_days * DAY_MS}
        if self.retention.call_days:
            call_cutoff = now_ms - self.retention.call_days * DAY_MS
            cutoffs |= dict.fromkeys(("call", "attempt", "reject"), call_cutoff)
            db.execute(  # a report's edges before it cannot be summed from records any more
                f"INSERT INTO noc_meta (key, value) VALUES ('{models.CALLS_KEPT_FROM}', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(call_cutoff),))
        for table, cutoff in cutoffs.items():
            if self._partitions is not None:  # whole days at once; then the rest of one day
                self._partitions.drop_before(db, table, cutoff)
            db.execute(f"DELETE FROM {table} WHERE {models.DAY_COLUMNS[table]} < ?", (cutoff,))

    async def read(self, function, *args):
        """Run a read on the writer's connection and thread (used at start-up to restore state)."""
        return await self._run(function, self._connection, *args)
