"""The bridge's durable buffer: every event it has published, by seq, in a SQLite file, so that a
subscriber (noc restarted, or a second console) resumes from any seq it still holds, across
restarts of either side.

With the events, in the same transaction, goes what the bridge must not forget: the last
Kamailio event it used (and which Kamailio start that numbering belongs to), the calls in
progress, the penalties in force and the account state last published. A run of seqs lost for
good (events Kamailio sent while the bridge was away) is one row that says where the run ends.
An event is published only once committed (synchronous=FULL), so no seq is ever sent twice with
different events, even after a power cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS event (
    seq INTEGER PRIMARY KEY,
    stored REAL NOT NULL,     -- when the bridge stored it, Unix seconds: kept keep_days from then
    lost_to INTEGER,          -- a run of lost seqs, seq..lost_to (data is NULL)
    data BLOB
);
CREATE TABLE IF NOT EXISTS position (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    boot INTEGER,             -- when the Kamailio whose events these are started
    k INTEGER NOT NULL        -- the last of its events used
);
CREATE TABLE IF NOT EXISTS open_call (call_id TEXT PRIMARY KEY, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS penalty (
    kind TEXT NOT NULL, account TEXT NOT NULL, until REAL, reason TEXT NOT NULL,
    PRIMARY KEY (kind, account)
);
CREATE TABLE IF NOT EXISTS account_sent (
    kind TEXT NOT NULL, account TEXT NOT NULL, state BLOB NOT NULL, PRIMARY KEY (kind, account)
);
INSERT OR IGNORE INTO position (id, boot, k) VALUES (1, NULL, 0);
"""


class BufferError(Exception):
    """The buffer cannot be opened or written; str() says why."""


@dataclass
class Saved:
    """What a starting bridge reads back."""

    boot: int | None
    k: int
    calls: dict[str, bytes]
    penalties: dict[tuple[str, str], tuple[float | None, str]]
    accounts: dict[tuple[str, str], bytes]


@dataclass
class Batch:
    """One transaction's worth: events (seq, stored, lost_to, data) and state changes."""

    events: list[tuple[int, float, int | None, bytes | None]] = field(default_factory=list)
    position: tuple[int | None, int] | None = None
    calls: dict[str, bytes | None] = field(default_factory=dict)
    penalties: dict[tuple[str, str], tuple[float | None, str] | None] = field(
        default_factory=dict)
    accounts: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.events or self.position or self.calls or self.penalties
                    or self.accounts)


class EventBuffer:
    """The file, as a console.feed.server.EventLog (reads on the caller's thread, cheap: a range
    of the primary key) and a writer (`commit` runs on a thread of its own)."""

    def __init__(self, path: str | Path, keep_days: float = 7.0) -> None:
        self.path = Path(path)
        self.keep_s = keep_days * 86400
        self._head = 0
        self._oldest = 1
        self._lock_file: int | None = None
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        # Held by a commit or a prune on its thread, which goes on if its caller is cancelled:
        # closing the connection under it crashed the process (a segmentation fault in SQLite).
        self._writing = threading.Lock()

    def open(self) -> Saved:
        """Take the file (one bridge per buffer), create or read it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_file = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise BufferError(f"{self.path} is in use by another bridge: stop it, or give this "
                              "one another [buffer] path") from None
        except OSError as error:
            self.close()
            raise BufferError(f"cannot use {self.path}: {error.strerror or error}") from None
        try:
            self._writer = self._connect()
            self._writer.executescript(SCHEMA)
            self._reader = self._connect()
            return self._read_back()
        except sqlite3.Error as error:
            self.close()
            raise BufferError(f"cannot use {self.path}: {error}") from None

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA busy_timeout = 5000")
        return connection

    def _read_back(self) -> Saved:
        db = self._writer
        first, last = db.execute("SELECT min(seq), max(max(seq, coalesce(lost_to, 0))) "
                                 "FROM event").fetchone()
        self._oldest, self._head = (first, last) if first is not None else (1, 0)
        boot, k = db.execute("SELECT boot, k FROM position").fetchone()
        return Saved(
            boot, k,
            dict(db.execute("SELECT call_id, state FROM open_call")),
            {(kind, account): (until, reason) for kind, account, until, reason
             in db.execute("SELECT kind, account, until, reason FROM penalty")},
            {(kind, account): state for kind, account, state
             in db.execute("SELECT kind, account, state FROM account_sent")},
        )

    def close(self) -> None:
        with self._writing:
            for connection in (self._reader, self._writer):
                if connection is not None:
                    connection.close()
            self._reader = self._writer = None
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    # The EventLog a FeedServer serves -----------------------------------------------------------

    @property
    def head(self) -> int:
        return self._head

    @property
    def oldest(self) -> int:
        return self._oldest if self._head else 1

    def after(self, seq: int, count: int) -> list[bytes]:
        rows = self._reader.execute(
            "SELECT data FROM event WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (seq, self._head, count)).fetchall()
        events = []
        for (data,) in rows:
            if data is None:  # a run of lost seqs: the server says `gap` for it next
                break
            events.append(data)
        return events

    def lost_after(self, seq: int) -> int:
        row = self._reader.execute(
            "SELECT lost_to FROM event WHERE seq <= ? AND lost_to >= ? ORDER BY seq DESC "
            "LIMIT 1", (seq + 1, seq + 1)).fetchone()
        return row[0] if row and seq + 1 <= self._head else 0

    # Writing --------------------------------------------------------------------------------------

    async def commit(self, batch: Batch) -> None:
        """Store the batch in one transaction (raises BufferError); then its events are held."""
        await asyncio.to_thread(self._commit_now, batch)
        for seq, _, lost_to, _ in batch.events:
            self._head = max(self._head, lost_to or seq)

    def _commit_now(self, batch: Batch) -> None:
        with self._writing:
            db = self._writer_or_fail("write")
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(
                    "INSERT INTO event (seq, stored, lost_to, data) VALUES (?, ?, ?, ?)",
                    batch.events)
                if batch.position is not None:
                    db.execute("UPDATE position SET boot = ?, k = ?", batch.position)
                for call_id, state in batch.calls.items():
                    if state is None:
                        db.execute("DELETE FROM open_call WHERE call_id = ?", (call_id,))
                    else:
                        db.execute("INSERT OR REPLACE INTO open_call VALUES (?, ?)",
                                   (call_id, state))
                for (kind, account), penalty in batch.penalties.items():
                    if penalty is None:
                        db.execute("DELETE FROM penalty WHERE kind = ? AND account = ?",
                                   (kind, account))
                    else:
                        db.execute("INSERT OR REPLACE INTO penalty VALUES (?, ?, ?, ?)",
                                   (kind, account, *penalty))
                db.executemany("INSERT OR REPLACE INTO account_sent VALUES (?, ?, ?)",
                               [(kind, account, state) for (kind, account), state
                                in batch.accounts.items()])
                db.execute("COMMIT")
            except sqlite3.Error as error:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise BufferError(f"cannot write {self.path}: {error}") from None

    async def prune(self, now: float | None = None) -> int:
        """Forget events stored longer ago than the buffer keeps (the newest one always stays)."""
        cutoff = (time.time() if now is None else now) - self.keep_s
        removed = await asyncio.to_thread(self._prune_now, cutoff)
        if removed:
            first = self._reader.execute("SELECT min(seq) FROM event").fetchone()[0]
            self._oldest = first if first is not None else self._head + 1
        return removed

    def _prune_now(self, cutoff: float) -> int:
        with self._writing:
            db = self._writer_or_fail("prune")
            try:
                return db.execute(
                    "DELETE FROM event WHERE stored < ? AND seq < (SELECT max(seq) FROM event)",
                    (cutoff,)).rowcount
            except sqlite3.Error as error:
                raise BufferError(f"cannot prune {self.path}: {error}") from None

    def _writer_or_fail(self, doing: str) -> sqlite3.Connection:
        if self._writer is None:  # closed while this waited for its thread
            raise BufferError(f"cannot {doing} {self.path}: the buffer is closed")
        return self._writer
