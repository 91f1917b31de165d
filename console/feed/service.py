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
from console.feed.client import FeedClient, FeedStatus, token_in_clear
from console.feed.ingestor import COUNTERS, MAX_ACCOUNTS, MAX_OPEN_CALLS, Ingestor, now_ms
from store.database import (
    STORE_ERRORS,
    BackendError,
    ServerUnreachable,
    StoreError,
    WriterLock,
    WriterTaken,
    connect,
    file_marker,
    locate,
    prepare,
)
from store.health import StoreFault, StoreHealth, fault_of
from store.health import backoff as store_backoff
from store.integrity import seq_holes
from store.metrics import DEFAULT_FAILURE_CODES
from store.routes import known_routes
from store.transactions import transaction
from store.writer import ACCOUNT_COLUMNS, Batch, Retention, StoreWriter

if TYPE_CHECKING:
    from console.alerting.engine import AlertEngine

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0
SWITCH_INTERVAL_S = 0.0005
QUIET_NOTE_MS = 20_000  # a viewer calls the writer stale after 30 s with no commit
FEED_COUNTERS = ("last_seq", "newest_ms", *COUNTERS)
WATCH_READ_S = 10.0  # control requests are read at least this often, changed files or not


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
    max_open_calls: int = MAX_OPEN_CALLS  # memory bounds (see console.feed.ingestor)
    max_accounts: int = MAX_ACCOUNTS
    control_ack_timeout: float = 10.0  # a control the switch does not ack by then is failed


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


def stored_last_seq(db: sqlite3.Connection) -> int:
    return db.execute("SELECT last_seq FROM feed_state WHERE id = 1").fetchone()[0]


def load_state(
    connection: sqlite3.Connection,
) -> tuple[dict, list[bytes], list[tuple], list[tuple], list[tuple[str, str]]]:
    """What a restarting writer needs: feed position, open calls, carrier counters, accounts,
    customers' known routes."""
    feed = dict(zip(FEED_COUNTERS, connection.execute(
        f"SELECT {', '.join(FEED_COUNTERS)} FROM feed_state").fetchone(), strict=True))
    open_calls = [row[0] for row in connection.execute("SELECT state FROM open_call")]
    carriers = connection.execute(
        "SELECT carrier, consecutive_failures FROM carrier_state"
    ).fetchall()
    accounts = connection.execute(f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM account").fetchall()
    return feed, open_calls, carriers, accounts, known_routes(connection)


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
        self.db_path = locate(db_path)
        self.engine = engine  # the alert engine runs in the writer, as long as it does
        self.url = url
        self.settings = settings or IngestSettings()
        self.ingestor = Ingestor(failure_codes=self.settings.failure_codes,
                                 max_open_calls=self.settings.max_open_calls,
                                 max_accounts=self.settings.max_accounts)
        self.writer = StoreWriter(self.db_path, self.settings.retention)
        self.lock = WriterLock.for_database(self.db_path)
        self.health = StoreHealth(self.lock)
        self.client = FeedClient(
            url,
            token=token,
            position=lambda: self.committed_seq,
            on_status=self._on_status,
            heartbeat_timeout=self.settings.heartbeat_timeout,
            queue_frames=self.settings.queue_frames,
            ca_file=self.settings.ca_file,
        )
        self.warnings = [w for w in (token_in_clear(url, token),) if w]  # shown, then logged
        self.committed_seq = 0
        self.capped_calls = 0  # as last committed (and logged)
        self.flushes = 0
        self._connected = False
        self._feed_head: int | None = None  # the feed's last seq, as this connection last said
        self._frame_noted_ms = 0  # when a frame's arrival was last handed to the store
        self._current = False  # see caught_up
        self._write_task: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()  # something to store that came by no frame
        self._controls_in_flight: set[str] = set()
        self._taking_back = asyncio.Lock()  # one at a time takes back a lost connection
        self._background: set[asyncio.Task] = set()

    async def open(self) -> None:
        """Take the database as its writer and restore live state (raises StoreError)."""
        prepare(self.db_path)
        self.lock.acquire()
        try:
            await self.writer.open()
            state = await self.writer.read(load_state)
        except StoreError:
            await self.close()
            raise
        except STORE_ERRORS as error:
            await self.close()
            raise StoreError(f"cannot open {self.db_path}: {fault_of(error)}") from None
        self.ingestor.restore(*state)
        self.committed_seq = self.ingestor.last_seq
        self.capped_calls = self.ingestor.counters.capped_calls
        self.ingestor.set_feed_status(feed_url=self.url, writer_pid=os.getpid())
        for warning in self.warnings:
            log.warning("feed: %s", warning)

    async def run(self) -> None:
        """Ingest until `stop()`; then store everything received and return.

        A feed that cannot be reached, now or later, is retried for good (see FeedClient.run);
        a commit that fails is retried with the same batch while the feed waits. Raises
        FeedError for a mistake in the feed's settings, and StoreFailed when the store cannot
        take what was received (then nothing past the last commit is taken for stored: the
        next start resumes from there).
        """
        reader = asyncio.create_task(self.client.run(), name="feed-reader")
        self._spawn(self._watch_control_requests())
        self._spawn(self._check_seq_holes())
        if self.engine is not None:
            self.engine.ready = self.caught_up
            self.engine.health = self.health
            self.engine.told_of_changes = True  # by _watch_control_requests
            self._spawn(self.engine.run())  # cancelled, and so closed, by close()
        try:
            with tuned_for_ingest():
                await self._process_until_stopped(reader)
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                while not self.client.frames.empty():  # all received, however many batches
                    self._drain()
                    await self.flush()
                self.ingestor.set_feed_status(
                    status="stopped", detail="writer stopped", reconnect_at_ms=None
                )
                await self.flush()
                await self._finish_write()
        except StoreFailed as failure:
            self.health.stopping(str(failure))
            raise
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if self._write_task is not None:
                self._write_task.cancel()
                await asyncio.gather(self._write_task, return_exceptions=True)
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

    async def _process_until_stopped(self, reader: asyncio.Task) -> None:
        interval = self.settings.flush_interval
        next_flush = time.monotonic() + interval
        frames = self.client.frames
        stopping = asyncio.create_task(self._stopping.wait())
        changed = asyncio.create_task(self._changed.wait())
        try:
            while not self._stopping.is_set():
                if reader.done():  # only a mistake in the feed's settings ends it
                    reader.result()
                # Nothing buffered, nothing to flush: wait for a frame however long it takes
                # (a tick every flush interval would wake an idle writer for nothing).
                timeout = (max(0.0, next_flush - time.monotonic())
                           if self.ingestor.has_changes() else None)
                getter = asyncio.ensure_future(frames.get())
                done, _ = await asyncio.wait(
                    {getter, stopping, reader, changed}, timeout=timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if changed in done:  # the feed's state changed: flushed as a frame would be
                    self._changed.clear()
                    changed = asyncio.create_task(self._changed.wait())
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
            changed.cancel()

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
        feed's latest heartbeat named (unknown until the first heartbeat of a connection).

        Once it has, it stays so while every seq the heartbeats name has been received: what is
        received is committed within a flush. (Compared with each heartbeat alone, a live feed
        read as behind between a heartbeat and the next commit: alert rounds stopped and
        resumed every second.) A backlog, a drop or a new connection asks for all again."""
        if not self._connected or self._feed_head is None:
            self._current = False
        elif self.committed_seq >= self._feed_head:
            self._current = True
        elif self.ingestor.last_seq < self._feed_head:
            self._current = False
        return self._current

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
        # A frame that changed nothing (a heartbeat on a quiet feed) is noted at the next
        # commit, or at most every QUIET_NOTE_MS: committing each one woke every viewer to
        # read the store again every heartbeat, with nothing new to show.
        received = now_ms()
        if self.ingestor.has_changes() or received - self._frame_noted_ms >= QUIET_NOTE_MS:
            self.ingestor.set_feed_status(last_frame_ms=received)
            self._frame_noted_ms = received

    def _on_status(self, status: FeedStatus) -> None:
        self._log_status(status)
        self._changed.set()
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

    def _log_status(self, status: FeedStatus) -> None:
        """One line for each change of the feed's state."""
        retry = ("" if status.reconnect_at_ms is None
                 else _seconds(max(0, status.reconnect_at_ms - now_ms()) / 1000))
        if status.status == "connected":
            log.info("feed: connected to %s, from seq %d", self.url, self.committed_seq)
        elif status.status == "refused":
            log.error("feed: %s; retrying in %s", status.detail, retry)
        elif status.status == "reconnecting":
            what = "dropped" if self._connected else "cannot connect"
            log.warning("feed: %s: %s; reconnecting in %s", what, status.detail, retry)

    async def flush(self) -> None:
        """Hand the current batch to the writer thread; wait only for the previous one."""
        batch = self.ingestor.take_batch()
        await self._finish_write()
        self._write_task = asyncio.create_task(self._write(batch))
        self.flushes += 1

    async def _write(self, batch: Batch) -> None:
        """Commit `batch`, trying again while the store fails for a passing cause (a lock held
        by another program, a full disk): meanwhile the next flush waits for this one, the queue
        fills and the client stops reading, so the server holds the feed. Nothing is dropped
        (the same batch is tried again) and nothing is applied twice (a failed try stored none
        of it). A lasting cause, or a stop asked for, ends it with StoreFailed."""
        delays = store_backoff()
        while True:
            try:
                await self._on_writer_connection(self.writer.write, batch)
                break
            except WriterTaken:
                fault = StoreFault("another writer took the database while the server had ended "
                                   "this one's connection", "", passing=False)
                self.health.failed("ingest", fault, None)
                raise StoreFailed(self._unstored(fault)) from None
            except STORE_ERRORS as error:
                fault = fault_of(error)
                if not fault.passing or self._stopping.is_set():
                    self.health.failed("ingest", fault, None)
                    raise StoreFailed(self._unstored(fault)) from None
                delay = next(delays)
                self.health.failed("ingest", fault, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):  # a stop asked for cuts the wait
                        await self._stopping.wait()
        self.health.recovered("ingest")
        self.committed_seq = batch.feed.get("last_seq", self.committed_seq)
        self.health.behind(self.committed_seq, None if self.caught_up() or not self._connected
                           else self._feed_head)
        _log_trouble(batch)
        self._log_capped(batch.feed.get("capped_calls", self.capped_calls))

    async def _on_writer_connection(self, use, *args):
        """`use(*args)` of the writer (a write, or a read on its connection), the connection
        taken back first if the server has ended it."""
        async with self._taking_back:
            if self.writer.lost():
                await self._take_back_the_store()
        return await use(*args)

    async def _take_back_the_store(self) -> None:
        """After the server ended the writer's sessions (a restart): its writer lock again, then
        a new connection. Raises WriterTaken if another writer holds the lock, or has stored past
        this one's last commit meanwhile (its batches, not this one's, follow what is stored);
        a server still unreachable raises as a passing fault, to be tried again."""
        self.lock.release()
        try:
            self.lock.acquire()
            await self.writer.reopen()
        except ServerUnreachable as error:
            raise BackendError(str(error), error.code) from None
        stored = await self.writer.read(stored_last_seq)
        if stored != self.committed_seq:
            raise WriterTaken(f"seq {stored:,} stored by another writer")

    def _log_capped(self, capped: int) -> None:
        if capped > self.capped_calls:
            log.warning("feed: %d calls closed as lost: more than %d were open at once "
                        "(store.max_open_calls); %d so far", capped - self.capped_calls,
                        self.settings.max_open_calls, capped)
            self.capped_calls = capped

    def _unstored(self, fault: StoreFault) -> str:
        received = self.ingestor.last_seq - self.committed_seq
        return (f"store: {fault}: {self.db_path} holds the feed up to seq {self.committed_seq:,}"
                f"{f' ({received:,} seqs received were not stored)' if received > 0 else ''}; "
                "the next start resumes from there, nothing is lost")

    async def _finish_write(self) -> None:
        if self._write_task is not None:
            task, self._write_task = self._write_task, None
            await task

    async def _check_seq_holes(self) -> None:
        """Say loudly if the store has passed seqs it holds nothing for (see store.integrity):
        on a read connection of its own, so that neither ingest nor a stop waits for it."""
        upto = self.committed_seq
        connection = connect(self.db_path)

        def holes() -> list[tuple[int, int]]:
            with contextlib.closing(connection):
                return seq_holes(connection, upto)

        try:
            found = await asyncio.to_thread(holes)
        except asyncio.CancelledError:
            connection.interrupt()
            raise
        except STORE_ERRORS as error:
            log.warning("store: the start-up check of stored seqs could not run: %s", error)
            return
        for first, last in found:
            self.health.found(
                f"seq {first:,}..{last:,} passed with no event, quarantine or gap stored for it "
                "(lost without a trace: a bug in noc, please report it)")

    def _spawn(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch_control_requests(self, every: float = 0.5,
                                      at_least: float = WATCH_READ_S) -> None:
        """Carry out the requests consoles store, read when the store may have changed (a look
        at its files every `every` s, a read at least every `at_least` s): an idle writer reads
        nothing. The alert engine is told of every change too."""
        marker: object = None
        read_at = -at_least
        while True:
            seen = file_marker(self.db_path)
            if seen is None or seen != marker or time.monotonic() - read_at >= at_least:
                marker, read_at = seen, time.monotonic()
                if self.engine is not None:
                    self.engine.store_changed()
                try:
                    pending = await self._on_writer_connection(self.writer.read, pending_controls)
                except WriterTaken:
                    self.stop()  # the ingest's next commit says so, and ends the writer
                    return
                except STORE_ERRORS as error:
                    self.health.failed("reading control requests", fault_of(error), every)
                    pending, marker = [], None
                else:
                    self.health.recovered("reading control requests")
                for message in pending:
                    if message.id not in self._controls_in_flight:
                        self._spawn(self._carry_out_control(message))
            await asyncio.sleep(every)

    async def _carry_out_control(self, message: p.Control) -> None:
        """A viewer's (or the alert engine's) request, sent on the feed and its outcome stored.

        It is marked sent before it goes out, so a request whose outcome cannot be stored is
        never sent again unseen; an outcome is stored however long the store takes to mend."""
        self._controls_in_flight.add(message.id)
        try:
            await self._set_control(message.id, "sent", "")
            what = f"{message.action} {message.kind or 'call'} {message.account or message.call_id}"
            log.info("control: sent %s (%s)", what, message.id)
            try:
                ack = await self.client.control(message,
                                                timeout=self.settings.control_ack_timeout)
                status, error = ("acked", "") if ack.ok else ("failed", ack.error or "refused")
            except Exception as failure:  # any failure is the request's outcome, shown to the user
                status, error = "failed", str(failure)
            log.log(logging.INFO if status == "acked" else logging.WARNING,
                    "control: %s %s%s", what, "acknowledged" if status == "acked" else "failed",
                    f": {error}" if error else "")
            await self._set_control(message.id, status, error)
        finally:
            self._controls_in_flight.discard(message.id)

    async def _set_control(self, request_id: str, status: str, error: str) -> None:
        def update(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.execute(
                    "UPDATE control_request SET status = ?, error = ?, done_ms = ? WHERE id = ?",
                    (status, error, now_ms(), request_id),
                )

        delays = store_backoff()
        while True:
            try:
                await self._on_writer_connection(self.writer.read, update)
            except WriterTaken:
                self.stop()
                return
            except STORE_ERRORS as failure:
                delay = next(delays)
                self.health.failed("control requests", fault_of(failure), delay)
                await asyncio.sleep(delay)
                continue
            self.health.recovered("control requests")
            return


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


QUARANTINE_LOG_LINES = 10  # per commit: a feed sending nothing but bad input must not flood


def _log_trouble(batch: Batch) -> None:
    """The gaps and quarantined input a commit has just stored, one line each."""
    for first, last, _, announced in batch.gaps:
        log.warning("feed: gap %d..%d: %d events lost for good (%s)", first, last,
                    last - first + 1, "announced by the server" if announced else "a hole in seq")
    for _, seq, reason, _ in batch.quarantine[:QUARANTINE_LOG_LINES]:
        log.warning("feed: quarantined %s: %s", f"seq {seq}" if seq else "a frame", reason)
    if len(batch.quarantine) > QUARANTINE_LOG_LINES:
        log.warning("feed: and %d more quarantined", len(batch.quarantine) - QUARANTINE_LOG_LINES)


class StoreFailed(StoreError):
    """The store could not take what the feed sent, and the writer stopped: str() says why, and
    that nothing past the last commit was taken for stored."""
