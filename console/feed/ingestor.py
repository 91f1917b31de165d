"""Applying feed frames to live state, and collecting what the next flush must commit.

The Ingestor is synchronous and does no I/O: it turns decoded frames into rows, rollup deltas
and live-state changes in a Batch, which the writer commits in one transaction. Every rule of the
protocol about order lives here: duplicates (resent after a resume) dropped and counted, a seq
repeated within one connection quarantined, holes in `seq` recorded as gaps, events that do not
fit the call they name quarantined with the reason, calls silent for an hour of feed time closed
as lost.
"""

from __future__ import annotations

import time
import typing
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from operator import add

import msgspec

from console.feed import protocol as p
from store import metrics, rollups
from store.live import LiveAttempt, LiveCall, pack, unpack
from store.metrics import (
    DEFAULT_FAILURE_CODES,
    FAILOVER_ROWS,
    LOST_CODE,
    ConsecutiveFailures,
    ended_row,
    to_micro,
)
from store.routes import KnownRoutes
from store.writer import Batch

LOST_AFTER_MS = 3_600_000
RECENTLY_ENDED = 50_000
# What the writer holds in memory is bounded (README, "Security and failure": about 0.9 KB an
# open call, 0.5 to 1.8 KB an account). Past MAX_OPEN_CALLS the least recently active call is
# closed as lost; an event naming an account past MAX_ACCOUNTS is quarantined.
MAX_OPEN_CALLS = 100_000
MAX_ACCOUNTS = 100_000
CUSTOMER, CARRIER = "customer", "carrier"

_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
PEAK_CPS, PEAK_CHANNELS = rollups.FIELD_INDEX["peak_cps"], rollups.FIELD_INDEX["peak_channels"]
BREACH_ROWS = {reason: metrics.breach_totals(reason).as_tuple()
               for reason in typing.get_args(p.RejectReason)}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _raw_items(frame: bytes) -> list[msgspec.Raw] | list[bytes]:
    """A decodable frame's items as the server sent them: the event log and the quarantine keep
    these, not a re-encoding of what was decoded (which would drop unknown fields and normalise
    numbers)."""
    if frame.lstrip().startswith(b"["):
        return _raw_list_decoder.decode(frame)
    return [frame]


def _attempt_number(attempt: LiveAttempt) -> int:
    return attempt.attempt


@dataclass
class FeedCounters:
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    gaps: int = 0
    lost_calls: int = 0
    capped_calls: int = 0  # closed as lost because more than max_open_calls were open


COUNTERS = tuple(field.name for field in fields(FeedCounters))  # as feed_state names them


class Ingestor:
    """The writer's state machine: feed frames in, a Batch of changes out."""

    def __init__(
        self,
        *,
        failure_codes: frozenset[int] = DEFAULT_FAILURE_CODES,
        lost_after_ms: int = LOST_AFTER_MS,
        max_open_calls: int = MAX_OPEN_CALLS,
        max_accounts: int = MAX_ACCOUNTS,
        clock=now_ms,
    ) -> None:
        self.clock = clock
        self.lost_after_ms = lost_after_ms
        self.max_open_calls = max_open_calls
        self.max_accounts = max_accounts
        self.last_seq = 0
        self.newest_ms = 0
        self.counters = FeedCounters()
        self.failures = ConsecutiveFailures(failure_codes=failure_codes)
        # Open calls, least recently active first, so silent ones are found at the front.
        self.calls: OrderedDict[str, LiveCall] = OrderedDict()
        self.accounts: dict[tuple[str, str], tuple] = {}
        self.channels: Counter[tuple[str, str]] = Counter()
        self.routes = KnownRoutes()  # each customer's, for the rejects (store/routes.py)
        self._cps: dict[tuple[str, str], list[int]] = {}
        self._recently_ended: OrderedDict[str, None] = OrderedDict()
        # The newest seq the current connection has sent (its subscribed position at first);
        # None when frames are not known to come from a subscription (fed by hand).
        self._stream_seq: int | None = None
        self._dirty_calls: set[str] = set()
        # Seqs of the open calls that have a row in open_call (or will, once the batch taken is
        # committed): most calls end within the batch that started them and never get one.
        self._stored_calls: set[int] = set()
        # Totals counted since the last batch was taken, by rollup key and by ended minute key
        # (see `_add`).
        self._pending: dict[rollups.RollupKey, list[tuple[int, ...]]] = {}
        self._pending_ended: dict[tuple[str, str, int], list[tuple[int, ...]]] = {}
        self._dirty_carriers: set[str] = set()
        self.batch = Batch()
        self._handlers = {
            p.Account: self._account,
            p.CallStart: self._start,
            p.CallAttempt: self._attempt,
            p.CallProgress: self._progress,
            p.CallAnswer: self._answer,
            p.CallDtmf: self._dtmf,
            p.CallAttemptEnd: self._attempt_end,
            p.CallEnd: self._end,
            p.CallReject: self._reject,
        }

    # Restoring after a restart ------------------------------------------------------------

    def restore(
        self,
        feed: dict,
        open_calls: Iterable[bytes],
        carriers: Iterable[tuple[str, int]],
        accounts: Iterable[tuple],
        routes: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Rebuild live state from what the last flush committed."""
        self.last_seq = feed["last_seq"]
        self.newest_ms = feed["newest_ms"]
        for name in COUNTERS:
            setattr(self.counters, name, feed[name])
        for carrier, count in carriers:
            self.failures.counters[carrier] = count
        for row in accounts:
            self.accounts[(row[0], row[1])] = tuple(row)
        for customer, route in routes:
            self.routes.add(customer, route)
        for call in sorted((unpack(state) for state in open_calls), key=lambda c: c.last_ms):
            self.calls[call.call_id] = call
            self._stored_calls.add(call.seq)
            self.channels[(CUSTOMER, call.customer)] += 1
            for attempt in call.attempts:
                if not attempt.ended:
                    self.channels[(CARRIER, attempt.carrier)] += 1

    # Frames in ----------------------------------------------------------------------------

    def subscribed(self, since: int) -> None:
        """A connection subscribed from `since`: its server must send seqs above it, strictly
        increasing. Those already applied are resent after a resume (duplicates, counted apart);
        a seq the connection has already passed breaks the numbering and is quarantined."""
        self._stream_seq = since

    def _advance_stream(self, seq: int) -> None:
        if self._stream_seq is not None and seq > self._stream_seq:
            self._stream_seq = seq

    def apply_frame(self, data: bytes | str | p.Oversized) -> list[p.ServerFrame]:
        """Apply one frame; return what is not an event (heartbeats, acks) for the feed client.

        The events it stores are logged as one row: the frame as received when every item of it
        is stored (the usual case), else the text of those events, sliced from the frame.

        Each event's order rules are checked here, in the frame's loop, not in a function per
        event: this runs for every event, and a Python call costs as much as the checks."""
        if isinstance(data, str):
            data = data.encode()
        others: list[p.ServerFrame] = []
        items = p.decode_frame(data)
        handlers = self._handlers
        counters = self.counters
        raw_items = None  # the items' texts, split from the frame only when needed
        stored: list[int] = []  # indexes of the items stored
        first_seq = last_seq = newest_ms = 0
        for index, item in enumerate(items):
            handler = handlers.get(item.__class__)
            if handler is None:
                if isinstance(item, p.Rejected):
                    self._rejected(item)
                elif isinstance(item, p.Gap):
                    self._advance_stream(item.to)
                    self._gap(item.from_, item.to, announced=True)
                else:
                    others.append(item)
                continue
            seq = item.seq
            stream_seq = self._stream_seq
            if stream_seq is not None:
                if seq <= stream_seq:
                    how = "repeated" if seq == stream_seq else "going backwards"
                    reason = (f"seq {seq} {how}: this connection's stream is already at "
                              f"seq {stream_seq}")
                else:
                    self._stream_seq = seq
                    reason = None
            else:
                reason = None
            if reason is None:
                if seq <= self.last_seq:
                    counters.duplicates += 1
                    continue
                if seq > self.last_seq + 1:
                    self._gap(self.last_seq + 1, seq - 1, announced=False)
                self.last_seq = seq
                ts_ms = round(item.ts * 1000)  # metrics.to_ms, inlined: once per event
                # Not applied if refused, so its ts does not move the feed's clock either: a bad
                # event with a wild clock would otherwise close every open call as lost.
                reason = handler(item, ts_ms)
            if reason is not None:
                if raw_items is None:
                    raw_items = _raw_items(data)
                self._quarantine(bytes(raw_items[index]).decode("utf-8", "replace"), reason, seq)
                continue
            counters.events += 1
            if not stored:
                first_seq = seq
            stored.append(index)
            last_seq = seq
            if ts_ms > newest_ms:
                newest_ms = ts_ms
                if ts_ms > self.newest_ms:
                    self.newest_ms = ts_ms
                    # Least recently active first: one look tells if any call is silent.
                    calls = self.calls
                    if calls and next(iter(calls.values())).last_ms < ts_ms - self.lost_after_ms:
                        self._close_silent_calls()
        if stored:
            if len(stored) < len(items):
                raw_items = raw_items or _raw_items(data)
                parts = [bytes(raw_items[index]) for index in stored]
                data = parts[0] if len(parts) == 1 else b"[" + b",".join(parts) + b"]"
            self.batch.events.append((first_seq, last_seq, len(stored), newest_ms, data))
            self.batch.stored_events += len(stored)
        return others

    def _rejected(self, item: p.Rejected) -> None:
        if item.seq is not None:
            self._advance_stream(item.seq)
            if item.seq > self.last_seq + 1:
                self._gap(self.last_seq + 1, item.seq - 1, announced=False)
            self.last_seq = max(self.last_seq, item.seq)
        self._quarantine(item.raw, item.reason, item.seq)

    def _quarantine(self, raw: str, reason: str, seq: int | None) -> None:
        self.counters.quarantined += 1
        self.batch.quarantine.append((self.clock(), seq, reason, raw))

    def _gap(self, first: int, last: int, *, announced: bool) -> None:
        if last < first or last <= self.last_seq:
            return
        first = max(first, self.last_seq + 1)
        self.counters.gaps += 1
        self.batch.gaps.append((first, last, self.clock(), announced))
        self.last_seq = last

    # Events ------------------------------------------------------------------------------

    def _account(self, e: p.Account, ts_ms: int) -> str | None:
        key = (e.kind, e.id)
        old = self.accounts.get(key)
        if old is None:
            if len(self.accounts) >= self.max_accounts:
                return self._too_many_accounts()
            old = (e.kind, e.id, e.id, None, None, None, None, True, 0)

        def keep(value, index):
            return old[index] if value is p.UNSET else value

        row = (
            e.kind,
            e.id,
            e.name,
            keep(e.channels, 3),
            keep(e.cps, 4),
            keep(e.balance, 5),
            keep(e.currency, 6),
            keep(e.enabled, 7),
            ts_ms,
        )
        self.accounts[key] = row
        self.batch.accounts[key] = row
        return None

    def _known(self, kind: str, account: str, ts_ms: int) -> str | None:
        """An account first seen in a call gets a row of its own, named by its id; or, past
        max_accounts, the reason its event is quarantined."""
        key = (kind, account)
        if key not in self.accounts:
            if len(self.accounts) >= self.max_accounts:
                return self._too_many_accounts()
            row = (kind, account, account, None, None, None, None, True, ts_ms)
            self.accounts[key] = row
            self.batch.accounts[key] = row
        return None

    def _too_many_accounts(self) -> str:
        return (f"a new account past the limit of {self.max_accounts:,} accounts "
                "(store.max_accounts)")

    # Each handler below runs once per event of its type: rows are built straight from live
    # state, with no record objects in between.

    def _start(self, e: p.CallStart, ts_ms: int) -> str | None:
        call_id = e.call_id
        calls = self.calls
        if call_id in calls:
            return "call_id already in progress"
        customer = e.customer
        if (CUSTOMER, customer) not in self.accounts:
            refused = self._known(CUSTOMER, customer, ts_ms)
            if refused is not None:
                return refused
        call = LiveCall(e.seq, call_id, customer, e.cli, e.dst, ts_ms, ts_ms)
        calls[call_id] = call  # the most recently active: at the end already
        self._recently_ended.pop(call_id, None)
        self._channel_opened(CUSTOMER, customer, ts_ms)
        self._dirty_calls.add(call_id)
        if len(calls) > self.max_open_calls:
            self._close_oldest_call()
        return None

    def _not_open(self, call_id: str) -> str:
        """Why an event names a call that is not in progress."""
        return "call already ended" if call_id in self._recently_ended else "unknown call_id"

    def _attempt(self, e: p.CallAttempt, ts_ms: int) -> str | None:
        call = self.calls.get(e.call_id)
        if call is None:
            return self._not_open(e.call_id)
        if call.attempt(e.attempt) is not None:
            return f"attempt {e.attempt} already started"
        carrier = e.carrier
        if (CARRIER, carrier) not in self.accounts:
            refused = self._known(CARRIER, carrier, ts_ms)
            if refused is not None:
                return refused
        call.attempts.append(LiveAttempt(e.attempt, carrier, e.route, ts_ms))
        self._channel_opened(CARRIER, carrier, ts_ms)
        self._touch(call, ts_ms)
        return None

    def _progress(self, e: p.CallProgress, ts_ms: int) -> str | None:
        call = self.calls.get(e.call_id)
        if call is None:
            return self._not_open(e.call_id)
        attempt = call.attempt(e.attempt)
        if attempt is None:
            return f"attempt {e.attempt} was never started"
        if attempt.progress_ms is None:
            attempt.progress_ms = ts_ms
        if call.progress_ms is None:
            call.progress_ms = ts_ms
        self._touch(call, ts_ms)
        return None

    def _answer(self, e: p.CallAnswer, ts_ms: int) -> str | None:
        call = self.calls.get(e.call_id)
        if call is None:
            return self._not_open(e.call_id)
        attempt = call.attempt(e.attempt)
        if attempt is None:
            return f"attempt {e.attempt} was never started"
        if attempt.code is not None:
            return f"attempt {e.attempt} already ended"
        attempt.answer_ms = ts_ms
        if call.answer_ms is None:
            call.answer_ms = ts_ms
        self.failures.answered(attempt.carrier)
        self._dirty_carriers.add(attempt.carrier)
        self._touch(call, ts_ms)
        return None

    def _dtmf(self, e: p.CallDtmf, ts_ms: int) -> str | None:
        call = self.calls.get(e.call_id)
        if call is None:
            return self._not_open(e.call_id)
        call.dtmf_count += 1
        self._touch(call, ts_ms)
        return None

    def _attempt_end(self, e: p.CallAttemptEnd, ts_ms: int) -> str | None:
        call = self.calls.get(e.call_id)
        if call is None:
            return self._not_open(e.call_id)
        attempt = call.attempt(e.attempt)
        if attempt is None:
            return f"attempt {e.attempt} was never started"
        if attempt.code is not None:
            return f"attempt {e.attempt} already ended"
        self._finish_attempt(attempt, ts_ms, e.code, e.reason)
        self._touch(call, ts_ms)
        return None

    def _finish_attempt(
        self, attempt: LiveAttempt, ts_ms: int, code: int, reason: str | None
    ) -> None:
        attempt.end_ms, attempt.code, attempt.reason = ts_ms, code, reason
        carrier = attempt.carrier
        self.channels[(CARRIER, carrier)] -= 1
        self.failures.attempt_ended(carrier, code)
        self._dirty_carriers.add(carrier)
        if not 200 <= code < 300:  # is_answered
            # A failed attempt counts now; an answered one waits for its call's duration.
            start_ms = attempt.start_ms
            self._add(CARRIER, carrier, attempt.route, start_ms,
                      ended_row(code, start_ms, attempt.progress_ms, 0, 0, 0, 0, 0, False), ts_ms)
            self._count_code(CARRIER, carrier, start_ms, code)

    def _end(self, e: p.CallEnd, ts_ms: int) -> str | None:
        call = self.calls.get(e.call_id)
        if call is None:
            reason = self._not_open(e.call_id)
            return "second call.end for the call" if reason == "call already ended" else reason
        duration_ms = round(e.duration * 1000)  # to_ms
        billed, charge, cost, hangup = e.billed, e.charge, e.cost, e.hangup
        self._close(
            call,
            ts_ms,
            e.code,
            duration_ms,
            round(billed * 1000) if billed is not p.UNSET else duration_ms,
            to_micro(charge) if charge is not p.UNSET else 0,
            to_micro(cost) if cost is not p.UNSET else 0,
            hangup if hangup is not p.UNSET else "",
        )
        return None

    def _reject(self, e: p.CallReject, ts_ms: int) -> str | None:
        refused = self._known(CUSTOMER, e.customer, ts_ms)
        if refused is not None:
            return refused
        route = self.routes.match(e.customer, e.dst)
        self.batch.rejects.append(
            (e.seq, ts_ms, e.customer, e.cli, e.dst, e.code, e.reason, route))
        self._add(CUSTOMER, e.customer, route, ts_ms, BREACH_ROWS[e.reason], ts_ms)
        return None

    # Ending calls ------------------------------------------------------------------------

    def _close(self, call: LiveCall, ts_ms: int, code: int = LOST_CODE, duration_ms: int = 0,
               billed_ms: int = 0, charge_micro: int = 0, cost_micro: int = 0,
               hangup: str = "lost") -> None:
        """End a call: unended attempts close as code 0, then its CDR, its attempts' rows and
        its totals are made from live state (the fields of metrics.CallRecord and its
        AttemptRecords, as LiveCall.record would make them: property-tested against it)."""
        attempts = call.attempts
        for attempt in attempts:
            if attempt.code is None:
                self._finish_attempt(attempt, ts_ms, LOST_CODE, "closed with its call")
        call_id, seq, customer, start_ms = call.call_id, call.seq, call.customer, call.start_ms
        route = attempts[0].route if attempts else ""
        del self.calls[call_id]
        recently_ended = self._recently_ended
        recently_ended[call_id] = None
        if len(recently_ended) > RECENTLY_ENDED:
            recently_ended.popitem(last=False)
        self._dirty_calls.discard(call_id)
        if seq in self._stored_calls:
            self._stored_calls.remove(seq)
            self.batch.closed_calls.add(seq)
        self.channels[(CUSTOMER, customer)] -= 1
        if route and self.routes.add(customer, route):
            self.batch.new_routes.append((customer, route))

        self._add(CUSTOMER, customer, route, start_ms,
                  ended_row(code, start_ms, call.progress_ms, duration_ms, billed_ms,
                            call.dtmf_count, charge_micro, cost_micro, True), ts_ms)
        self._count_code(CUSTOMER, customer, start_ms, code)
        batch = self.batch
        rows = batch.attempts
        for a in attempts:
            a_code = a.code
            if 200 <= a_code < 300:  # is_answered: failed ones counted as they ended
                a_start = a.start_ms
                self._add(CARRIER, a.carrier, a.route, a_start,
                          ended_row(a_code, a_start, a.progress_ms, duration_ms, billed_ms, 0,
                                    charge_micro, cost_micro, False), ts_ms)
                self._count_code(CARRIER, a.carrier, a_start, a_code)
                rows.append((seq, a.attempt, a.carrier, a.route, a_start, a.end_ms, a_code,
                             a.progress_ms, duration_ms, cost_micro, a.reason, billed_ms,
                             charge_micro))
            else:
                rows.append((seq, a.attempt, a.carrier, a.route, a.start_ms, a.end_ms, a_code,
                             a.progress_ms, 0, 0, a.reason, 0, 0))
        if len(attempts) > 1:  # metrics.call_failovers
            ordered = sorted(attempts, key=_attempt_number)
            for failed, following in zip(ordered, ordered[1:], strict=False):
                if not 200 <= failed.code < 300:
                    self._add(CARRIER, failed.carrier, failed.route, failed.start_ms,
                              FAILOVER_ROWS[200 <= following.code < 300], ts_ms)
        batch.calls.append((
            seq, call_id, customer, call.cli, call.dst, route,
            attempts[-1].carrier if attempts else "", len(attempts), start_ms, ts_ms, code,
            duration_ms, billed_ms, charge_micro, cost_micro, call.progress_ms,
            call.dtmf_count, hangup,
        ))

    def _close_oldest_call(self) -> None:
        """More calls open than max_open_calls: the least recently active is closed as lost
        (counted apart), so that a feed that never ends its calls cannot exhaust memory."""
        self.counters.capped_calls += 1
        self._close(next(iter(self.calls.values())), self.newest_ms)

    def _close_silent_calls(self) -> None:
        """Close calls with no event for an hour of feed time, so they stop holding a channel."""
        cutoff = self.newest_ms - self.lost_after_ms
        while self.calls:
            call = next(iter(self.calls.values()))
            if call.last_ms >= cutoff:
                return
            self.counters.lost_calls += 1
            self._close(call, self.newest_ms)

    # Live state --------------------------------------------------------------------------

    def _touch(self, call: LiveCall, ts_ms: int) -> None:
        """The call had an event now: the most recently active, and stored at the next flush."""
        if ts_ms > call.last_ms:
            call.last_ms = ts_ms
            self.calls.move_to_end(call.call_id)
        self._dirty_calls.add(call.call_id)

    def _channel_opened(self, kind: str, account: str, ts_ms: int) -> None:
        key = (kind, account)
        channels = self.channels[key] + 1
        self.channels[key] = channels
        second = ts_ms // 1000
        window = self._cps.get(key)
        if window is None or window[0] != second:
            window = self._cps[key] = [second, 0]
        window[1] += 1
        bucket = (kind, account, rollups.ALL_ROUTES, ts_ms - ts_ms % 60_000)
        peaks = self.batch.rollups.get(bucket)
        if peaks is None:
            peaks = self.batch.rollups[bucket] = rollups.zero()
        if window[1] > peaks[PEAK_CPS]:
            peaks[PEAK_CPS] = window[1]
        if channels > peaks[PEAK_CHANNELS]:
            peaks[PEAK_CHANNELS] = channels

    def _add(
        self,
        kind: str,
        account: str,
        route: str,
        ts_ms: int,
        values: tuple[int, ...],
        ended_ms: int,
    ) -> None:
        """Count `values` (totals, in TOTALS_FIELDS order) in the bucket of `ts_ms` (the start:
        summaries) and in the minute it ended (`ended_ms`: the sample windows of alerts, which
        cover what ended in them).

        Kept as they come, summed per bucket once per batch (`_fold`): a bucket gets about ten
        of them in a batch, and adding rows field by field at each was a tenth of the ingest."""
        key = (kind, account, route, ts_ms - ts_ms % 60_000)
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = [values]
        else:
            pending.append(values)
        key = (kind, account, ended_ms - ended_ms % 60_000)
        pending = self._pending_ended.get(key)
        if pending is None:
            self._pending_ended[key] = [values]
        else:
            pending.append(values)

    def _fold(self, batch: Batch) -> None:
        """Sum the totals `_add` kept into the batch's rows. Sums suffice: totals of calls,
        attempts and rejects carry no peaks (0: only `_channel_opened` sets those, by max), so
        adding them keeps a row's peaks."""
        for pending, rows in ((self._pending, batch.rollups), (self._pending_ended, batch.ended)):
            for key, values in pending.items():
                summed = values[0] if len(values) == 1 else map(sum, zip(*values, strict=True))
                row = rows.get(key)
                rows[key] = list(summed) if row is None else list(map(add, row, summed))
            pending.clear()

    def _count_code(self, kind: str, account: str, ts_ms: int, code: int) -> None:
        key = (kind, account, ts_ms - ts_ms % 3_600_000, code)
        self.batch.codes[key] = self.batch.codes.get(key, 0) + 1

    def cps_now(self, kind: str, account: str) -> int:
        window = self._cps.get((kind, account))
        return window[1] if window and window[0] == self.newest_ms // 1000 else 0

    # Flushing ----------------------------------------------------------------------------

    def set_feed_status(self, **fields: object) -> None:
        """Feed connection state (status, detail, reconnect_at_ms, ...) for the next flush."""
        self.batch.feed.update(fields)

    def has_changes(self) -> bool:
        b = self.batch
        return bool(len(b) or b.feed or b.closed_calls or b.accounts or self._dirty_calls
                    or self._pending)

    def take_batch(self) -> Batch:
        """Hand over everything since the last call, live state included; start a new batch."""
        batch, self.batch = self.batch, Batch()
        self._fold(batch)
        for call_id in self._dirty_calls:
            call = self.calls[call_id]
            self._stored_calls.add(call.seq)
            batch.open_calls[call.seq] = (
                call.seq,
                call.call_id,
                call.customer,
                call.carrier,
                call.dst,
                call.start_ms,
                call.answer_ms,
                call.last_ms,
                pack(call),
            )
        self._dirty_calls.clear()
        stamp = self.clock()
        for carrier in self._dirty_carriers:
            batch.carrier_state[carrier] = (carrier, self.failures.counters.get(carrier, 0), stamp)
        self._dirty_carriers.clear()
        batch.live_accounts = [
            (kind, account, channels, self.cps_now(kind, account), stamp)
            for (kind, account), channels in self.channels.items()
            if channels or self.cps_now(kind, account)
        ]
        batch.feed.update(
            last_seq=self.last_seq,
            newest_ms=self.newest_ms,
            **vars(self.counters),
            updated_ms=stamp,
        )
        return batch
