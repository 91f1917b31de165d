"""The writer process's loop: feed client -> Ingestor -> StoreWriter, flushed every 250 ms.

Exactly one writer per database (a lock file enforces it). The flush is double-buffered: while
one batch is committed on the writer thread, the next is being applied on the event loop, and
there is never more than one commit in flight, which is what bounds memory when the store is
slower than the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from console.feed import protocol as p
from console.feed.client import FeedClient, FeedStatus
from console.feed.ingestor import Ingestor, now_ms
from store.database import WriterLock, prepare
from store.metrics import DEFAULT_FAILURE_CODES
from store.writer import ACCOUNT_COLUMNS, Batch, Retention, StoreWriter

if TYPE_CHECKING:
    from console.alerting.engine import AlertEngine

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0
SWITCH_INTERVAL_S = 0.0005
FEED_COUNTERS = (
    "last_seq",
    "newest_ms",
    "events",
    "duplicates",
    "quarantined",
    "gaps",
    "lost_calls",
)


@dataclass
class IngestSettings:
    flush_interval: float = 0.25
    max_batch_events: int = 50_000
    heartbeat_timeout: float = 15.0
    failure_codes: frozenset[int] = DEFAULT_FAILURE_CODES
    retention: Retention = Retention()
    queue_frames: int = 64
    # Events applied before yielding to the event loop: small when a console shares the loop
    # (its screen must stay responsive), large for the headless daemon.
    slice_events: int = 50_000
    ca_file: str | None = None  # for wss:// with a private CA (None: the system's)


@contextlib.contextmanager
def tuned_for_ingest() -> Iterator[None]:
    """Interpreter settings for the ingest, put back after it.

    The switch interval is shorter (0.5 ms, not 5): the writer thread takes the GIL back after
    each statement only when the loop's thread lets it go, at the latest after the interval.
    What exists by now (libraries, a console) is frozen out of the cyclic collector, whose full
    passes would otherwise walk all of it every few batches; any garbage cycle among it waits
    for the ingest to stop.
    """
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        sys.setswitchinterval(switch_interval)


def load_state(
    connection: sqlite3.Connection,
) -> tuple[dict, list[bytes], list[tuple], list[tuple]]:
    """What a restarting writer needs: feed position, open calls, carrier counters, accounts."""
    connection.row_factory = sqlite3.Row
    feed = dict(connection.execute(f"SELECT {', '.join(FEED_COUNTERS)} FROM feed_state").fetchone())
    connection.row_factory = None
    open_calls = [row[0] for row in connection.execute("SELECT state FROM open_call")]
    carriers = connection.execute(
        "SELECT carrier, consecutive_failures FROM carrier_state"
    ).fetchall()
    accounts = connection.execute(f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM account").fetchall()
    return feed, open_calls, carriers, accounts


def pending_controls(connection: sqlite3.Connection) -> list[p.Control]:
    rows = connection.execute(
        "SELECT id, action, kind, account, call_id, until_ms, reason FROM control_request "
        "WHERE status = 'pending' ORDER BY created_ms"
    ).fetchall()
    return [
        p.Control(
            id=request_id,
            action=action,
            kind=kind or None,
            account=account or None,
            call_id=call_id or None,
            reason=reason,
            until=until_ms / 1000 if until_ms is not None else None,
        )
        for request_id, action, kind, account, call_id, until_ms, reason in rows
    ]


class IngestService:
    """Owns a database as its writer and keeps it fed."""

    def __init__(
        self,
        db_path: str | Path,
        url: str,
        *,
        token: str | None,
        settings: IngestSettings | None = None,
        engine: AlertEngine | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.engine = engine  # the alert engine runs in the writer, as long as it does
        self.url = url
        self.settings = settings or IngestSettings()
        self.ingestor = Ingestor(failure_codes=self.settings.failure_codes)
        self.writer = StoreWriter(self.db_path, self.settings.retention)
        self.lock = WriterLock.for_database(self.db_path)
        self.client = FeedClient(
            url,
            token=token,
            position=lambda: self.committed_seq,
            on_status=self._on_status,
            heartbeat_timeout=self.settings.heartbeat_timeout,
            queue_frames=self.settings.queue_frames,
            ca_file=self.settings.ca_file,
        )
        self.committed_seq = 0
        self.flushes = 0
        self._connected = False
        self._feed_head: int | None = None  # the feed's last seq, as this connection last said
        self._write_task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._controls_in_flight: set[str] = set()
        self._background: set[asyncio.Task] = set()

    async def open(self) -> None:
        """Take the database as its writer and restore live state (raises StoreError)."""
        prepare(self.db_path)
        self.lock.acquire()
        await self.writer.open()
        feed, open_calls, carriers, accounts = await self.writer.read(load_state)
        self.ingestor.restore(feed, open_calls, carriers, accounts)
        self.committed_seq = self.ingestor.last_seq
        self.ingestor.set_feed_status(feed_url=self.url, writer_pid=os.getpid())

    async def run(self, *, connect_first: bool = True) -> None:
        """Ingest until `stop()`; then store everything received and return.

        With `connect_first`, an unreachable feed or a refused token at start-up raises FeedError
        (the daemon's behaviour: say what is wrong and exit); later drops are retried forever.
        """
        try:
            first = await self.client.connect_once() if connect_first else None
        except BaseException:
            await self.close()
            raise
        reader = asyncio.create_task(self.client.run(first), name="feed-reader")
        self._spawn(self._watch_control_requests())
        if self.engine is not None:
            self.engine.ready = self.caught_up
            self._spawn(self.engine.run())  # cancelled, and so closed, by close()
        try:
            with tuned_for_ingest():
                await self._process_until_stopped()
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            while not self.client.frames.empty():  # all received, however many batches it takes
                self._drain()
                await self.flush()
            self.ingestor.set_feed_status(
                status="stopped", detail="writer stopped", reconnect_at_ms=None
            )
            await self.flush()
            await self._finish_write()
            await self.close()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            # Bounded: a stuck helper (the alert engine's round, a send) must not keep the
            # writer from committing and releasing the database.
            _, stuck = await asyncio.wait(self._background, timeout=CLOSE_TIMEOUT_S)
            for task in stuck:
                log.warning("stopping without waiting for %s", task.get_name())
        await self.writer.close()
        self.lock.release()

    def stop(self) -> None:
        self._stopping.set()

    async def _process_until_stopped(self) -> None:
        interval = self.settings.flush_interval
        next_flush = time.monotonic() + interval
        frames = self.client.frames
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                timeout = max(0.0, next_flush - time.monotonic())
                getter = asyncio.ensure_future(frames.get())
                done, _ = await asyncio.wait(
                    {getter, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    self._apply(getter.result())
                    self._drain(self.settings.slice_events)
                else:
                    getter.cancel()
                    await asyncio.gather(getter, return_exceptions=True)
                if len(self.ingestor.batch) >= self.settings.max_batch_events or (
                    time.monotonic() >= next_flush and self.ingestor.has_changes()
                ):
                    await self.flush()
                if time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + interval
        finally:
            stopping.cancel()

    def _drain(self, limit: int | None = None) -> None:
        """Apply the frames already received, up to `limit` events (None: all of them)."""
        frames = self.client.frames
        batch = self.ingestor.batch
        stop = len(batch) + limit if limit is not None else None
        while not frames.empty() and len(batch) < self.settings.max_batch_events:
            if stop is not None and len(batch) >= stop:
                return
            self._apply(frames.get_nowait())

    def caught_up(self) -> bool:
        """The store holds all the feed has: connected, and committed up to the last seq the
        feed's latest heartbeat named (unknown until the first heartbeat of a connection)."""
        return (self._connected and self._feed_head is not None
                and self.committed_seq >= self._feed_head)

    def _apply(self, frame: bytes | p.Subscribe) -> None:
        if isinstance(frame, p.Subscribe):
            self.ingestor.subscribed(frame.since)
            self._feed_head = None
            return
        for item in self.ingestor.apply_frame(frame):
            if isinstance(item, p.ControlAck):
                self.client.acknowledge(item)
            elif isinstance(item, p.Heartbeat):
                self._feed_head = item.last_seq
        self.ingestor.set_feed_status(last_frame_ms=now_ms())

    def _on_status(self, status: FeedStatus) -> None:
        self._connected = status.status == "connected"
        self.ingestor.set_feed_status(
            status=status.status,
            detail=status.detail,
            reconnect_at_ms=status.reconnect_at_ms,
            **(
                {"connected_since_ms": status.connected_since_ms}
                if status.connected_since_ms
                else {}
            ),
        )

    async def flush(self) -> None:
        """Hand the current batch to the writer thread; wait only for the previous one."""
        batch = self.ingestor.take_batch()
        await self._finish_write()
        self._write_task = asyncio.create_task(self._write(batch))
        self.flushes += 1

    async def _write(self, batch: Batch) -> None:
        await self.writer.write(batch)
        self.committed_seq = batch.feed.get("last_seq", self.committed_seq)

    async def _finish_write(self) -> None:
        if self._write_task is not None:
            task, self._write_task = self._write_task, None
            await task

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch_control_requests(self, every: float = 0.5) -> None:
        while True:
            for message in await self.writer.read(pending_controls):
                if message.id not in self._controls_in_flight:
                    self._spawn(self._carry_out_control(message))
            await asyncio.sleep(every)

    async def _carry_out_control(self, message: p.Control) -> None:
        """A viewer's (or the alert engine's) request, sent on the feed and its outcome stored."""
        self._controls_in_flight.add(message.id)
        try:
            await self._set_control(message.id, "sent", "")
            try:
                ack = await self.client.control(message)
                status, error = ("acked", "") if ack.ok else ("failed", ack.error or "refused")
            except Exception as failure:  # any failure is the request's outcome, shown to the user
                status, error = "failed", str(failure)
            await self._set_control(message.id, status, error)
        finally:
            self._controls_in_flight.discard(message.id)

    async def _set_control(self, request_id: str, status: str, error: str) -> None:
        def update(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE control_request SET status = ?, error = ?, done_ms = ? WHERE id = ?",
                (status, error, now_ms(), request_id),
            )

        await self.writer.read(update)
