"""The outbox worker: sends the messages that are due, marks each sent, or retries it later.

A message is written to the outbox in the transaction that decided it, so nothing decided is
lost; it leaves the outbox only once a send has succeeded. If the mail server is down, the
message waits, retried after 10 s, then 20 s, 40 s ... up to 10 min between tries (settings),
and goes out when the server is back; after `give_up_after` (a day) it is marked failed.

Exactly once, as near as can be: the row is marked sent in its own short transaction right after
the server accepted the message. If the store cannot take that (a full disk, a lock held), the
outcome is kept and stored first thing once it can, and nothing else is sent meanwhile: a message
whose sending could not be recorded is never sent again for it. The one window for a duplicate is
a crash between the acceptance and that commit; the message would then be sent again after the
restart, with the same Message-ID, which mail clients use to show it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from console.alerting.connection import EngineConnection
from console.alerting.senders import DeliveryFailed, Senders
from console.alerting.settings import AlertSettings
from store.alerting import OUTBOX_COLUMNS, OutboxRow, record_history, transaction
from store.database import STORE_ERRORS
from store.health import StoreHealth, fault_of

log = logging.getLogger(__name__)

BATCH = 50  # messages sent at once (in parallel) at most
POLL_S = 1.0  # how often the outbox is looked at when nothing wakes the worker


class Delivery:
    def __init__(self, database: EngineConnection, senders: Senders, settings: AlertSettings,
                 clock: Callable[[], int]) -> None:
        self.database = database
        self.senders = senders
        self.settings = settings
        self.clock = clock
        self.wake = asyncio.Event()
        # False when `wake` is set at every change of the store (by the engine's writer): the
        # outbox is then looked at on a change or when its next message is due, not every POLL_S.
        self.poll = True
        self._next_due_ms: int | None = None  # of the pending messages, as last read
        self.health = StoreHealth()  # the writer's, once it runs the engine
        # Outcomes of sends not stored yet (the store failed), in the order decided.
        self._unstored: list[tuple[OutboxRow, DeliveryFailed | None]] = []

    async def run(self) -> None:
        """Deliver until cancelled; `wake` (set when a round queues messages) cuts the wait."""
        while True:
            self.wake.clear()
            try:
                sent = await self.deliver_due()
            except STORE_ERRORS as error:
                self.health.failed("alert delivery", fault_of(error), POLL_S)
                sent = 0
            except Exception:  # a store or sender bug must not end deliveries for good
                log.exception("alert delivery failed; trying again")
                sent = 0
            else:
                self.health.recovered("alert delivery")
            if sent < BATCH and (self.poll or not sent):  # else: read when the tried are due
                # asyncio.timeout, not wait_for, which on 3.11 can swallow the cancel of a stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._wait_s()):
                        await self.wake.wait()

    def _wait_s(self) -> float | None:
        """How long to wait for a wake: POLL_S, or until the next pending message is due."""
        if self.poll or self._unstored:
            return POLL_S
        if self._next_due_ms is None:
            return None
        return max(0.0, (self._next_due_ms - self.clock()) / 1000)

    async def deliver_due(self) -> int:
        """Send every message due now (up to BATCH); return how many were tried.

        The sends run in parallel, but their outcomes are stored in the order the messages
        were decided, so the history reads the same whichever server answers first."""
        await self._store_outcomes()  # raises while the store still fails: nothing new is sent
        due = await self.database.call(self._due, self.clock())
        sends = [asyncio.ensure_future(self._send(message)) for message in due]
        try:
            for message, send in zip(due, sends, strict=True):
                self._unstored.append((message, await send))
        finally:
            for send in sends:
                send.cancel()
        await self._store_outcomes()
        return len(due)

    async def _store_outcomes(self) -> None:
        while self._unstored:
            message, failure = self._unstored[0]
            if failure is None:
                await self.database.call(self._sent, message, self.clock())
            else:
                await self.database.call(self._failed, message, failure, self.clock())
            del self._unstored[0]

    async def _send(self, message: OutboxRow) -> DeliveryFailed | None:
        """Send one message; the failure, if it failed."""
        try:
            await self.senders.send(message)
        except DeliveryFailed as failure:
            return failure
        except Exception as error:  # a library's surprise is a failed try, not a lost message
            log.exception("sending message %s failed", message.message_id)
            return DeliveryFailed(repr(error))
        return None

    def _due(self, now_ms: int) -> list[OutboxRow]:
        db = self.database.connection
        rows = db.execute(
            f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM alert_outbox "
            "WHERE status = 'pending' AND next_attempt_ms <= ? ORDER BY next_attempt_ms, id "
            "LIMIT ?", (now_ms, BATCH)).fetchall()
        if not self.poll:
            self._next_due_ms = db.execute(
                "SELECT min(next_attempt_ms) FROM alert_outbox WHERE status = 'pending' "
                "AND next_attempt_ms > ?", (now_ms,)).fetchone()[0]
        return [OutboxRow(*row) for row in rows]

    def _sent(self, message: OutboxRow, now_ms: int) -> None:
        with transaction(self.database.connection) as db:
            db.execute("UPDATE alert_outbox SET status = 'sent', sent_ms = ?, "
                       "attempts = attempts + 1, last_error = '' WHERE id = ?",
                       (now_ms, message.id))
            record_history(db, [_history(message, "sent", now_ms, message.subject)])

    def _failed(self, message: OutboxRow, failure: DeliveryFailed, now_ms: int) -> None:
        attempts = message.attempts + 1
        expired = now_ms - message.created_ms >= self.settings.give_up_after * 1000
        error = str(failure)[:1000]
        with transaction(self.database.connection) as db:
            if failure.permanent or expired:
                db.execute("UPDATE alert_outbox SET status = 'failed', attempts = ?, "
                           "last_error = ? WHERE id = ?", (attempts, error, message.id))
                why = error if failure.permanent else f"gave up after {attempts} tries: {error}"
                record_history(db, [_history(message, "failed", now_ms, why)])
            else:
                db.execute("UPDATE alert_outbox SET attempts = ?, next_attempt_ms = ?, "
                           "last_error = ? WHERE id = ?",
                           (attempts, now_ms + self.backoff_ms(attempts), error, message.id))

    def backoff_ms(self, attempts: int) -> int:
        """The wait after the `attempts`-th failed try: doubling from retry_initial, capped."""
        seconds = self.settings.retry_initial * 2 ** min(attempts - 1, 30)
        return round(min(seconds, self.settings.retry_max) * 1000)


def _history(message: OutboxRow, event: str, now_ms: int, detail: str) -> dict:
    return dict(ts_ms=now_ms, event=event, rule_id=message.rule_id,
                rule_title=message.rule_title, kind=message.kind, account=message.account,
                level=message.level, detail=detail, recipient=message.recipient,
                message_id=message.message_id)

