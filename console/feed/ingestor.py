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
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from operator import add

import msgspec

from console.feed import protocol as p
from store import metrics, rollups
from store.live import LiveAttempt, LiveCall, pack, unpack
from store.metrics import DEFAULT_FAILURE_CODES, CallRecord, ConsecutiveFailures, to_micro, to_ms
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


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _raw_items(frame: bytes) -> list[msgspec.Raw] | list[bytes]:
    """A decodable frame's items as the server sent them: the event log and the quarantine keep
    these, not a re-encoding of what was decoded (which would drop unknown fields and normalise
    numbers)."""
    if frame.lstrip().startswith(b"["):
        return _raw_list_decoder.decode(frame)
    return [frame]


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
        is stored (the usual case), else the text of those events, sliced from the frame."""
        if isinstance(data, str):
            data = data.encode()
        others: list[p.ServerFrame] = []
        items = p.decode_frame(data)
        raw_items = None  # the items' texts, split from the frame only when needed
        stored: list[int] = []  # indexes of the items stored
        first_seq = last_seq = newest_ms = 0
        for index, item in enumerate(items):
            handler = self._handlers.get(type(item))
            if handler is not None:
                outcome = self._event(item, handler)
                if outcome.__class__ is int:  # stored, at that time
                    if not stored:
                        first_seq = item.seq
                    stored.append(index)
                    last_seq = item.seq
                    if outcome > newest_ms:
                        newest_ms = outcome
                elif outcome is not None:
                    if raw_items is None:
                        raw_items = _raw_items(data)
                    self._quarantine(bytes(raw_items[index]).decode("utf-8", "replace"),
                                     outcome, item.seq)
            elif isinstance(item, p.Rejected):
                self._rejected(item)
            elif isinstance(item, p.Gap):
                self._advance_stream(item.to)
                self._gap(item.from_, item.to, announced=True)
            else:
                others.append(item)
        if stored:
            if len(stored) < len(items):
                raw_items = raw_items or _raw_items(data)
                parts = [bytes(raw_items[index]) for index in stored]
                data = parts[0] if len(parts) == 1 else b"[" + b",".join(parts) + b"]"
            self.batch.events.append((first_seq, last_seq, len(stored), newest_ms, data))
            self.batch.stored_events += len(stored)
        return others

    def _event(self, event, handler) -> int | str | None:
        """Apply one event: its time (ms) if stored, None if dropped as a duplicate, or why it
        is to be quarantined instead."""
        seq = event.seq
        stream_seq = self._stream_seq
        if stream_seq is not None:
            if seq <= stream_seq:
                how = "repeated" if seq == stream_seq else "going backwards"
                return f"seq {seq} {how}: this connection's stream is already at seq {stream_seq}"
            self._stream_seq = seq
        if seq <= self.last_seq:
            self.counters.duplicates += 1
            return None
        if seq > self.last_seq + 1:
            self._gap(self.last_seq + 1, seq - 1, announced=False)
        self.last_seq = seq
        ts_ms = round(event.ts * 1000)  # metrics.to_ms, inlined: once per event
        reason = handler(event, ts_ms)
        if reason is not None:
            # Not applied, so its ts does not move the feed's clock either: a bad event with a
            # wild clock would otherwise close every open call as lost.
            return reason
        self.counters.events += 1
        if ts_ms > self.newest_ms:
            self.newest_ms = ts_ms
            calls = self.calls  # least recently active first: one look tells if any is silent
            if calls and next(iter(calls.values())).last_ms < ts_ms - self.lost_after_ms:
                self._close_silent_calls()
        return ts_ms

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

    def _start(self, e: p.CallStart, ts_ms: int) -> str | None:
        if e.call_id in self.calls:
            return "call_id already in progress"
        refused = self._known(CUSTOMER, e.customer, ts_ms)
        if refused is not None:
            return refused
        call = LiveCall(e.seq, e.call_id, e.customer, e.cli, e.dst, ts_ms, ts_ms)
        calls = self.calls
        calls[e.call_id] = call
        self._recently_ended.pop(e.call_id, None)
        self._channel_opened(CUSTOMER, e.customer, ts_ms)
        self._touch(call, ts_ms)
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
        refused = self._known(CARRIER, e.carrier, ts_ms)
        if refused is not None:
            return refused
        call.attempts.append(LiveAttempt(e.attempt, e.carrier, e.route, ts_ms))
        self._channel_opened(CARRIER, e.carrier, ts_ms)
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
        if attempt.ended:
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
        if attempt.ended:
            return f"attempt {e.attempt} already ended"
        self._finish_attempt(attempt, ts_ms, e.code, e.reason)
        self._touch(call, ts_ms)
        return None

    def _finish_attempt(
        self, attempt: LiveAttempt, ts_ms: int, code: int, reason: str | None
    ) -> None:
        attempt.end_ms, attempt.code, attempt.reason = ts_ms, code, reason
        self.channels[(CARRIER, attempt.carrier)] -= 1
        self.failures.attempt_ended(attempt.carrier, code)
        self._dirty_carriers.add(attempt.carrier)
        if not metrics.is_answered(code):
            # A failed attempt counts now; an answered one waits for its call's duration.
            self._add(
                CARRIER,
                attempt.carrier,
                attempt.route,
                attempt.start_ms,
                metrics.attempt_totals_row(attempt.record()),
                ended_ms=ts_ms,
            )
            self._count_code(CARRIER, attempt.carrier, attempt.start_ms, code)

    def _end(self, e: p.CallEnd, ts_ms: int) -> str | None:
        call = self.calls.get(e.call_id)
        if call is None:
            reason = self._not_open(e.call_id)
            return "second call.end for the call" if reason == "call already ended" else reason
        duration_ms = to_ms(e.duration)
        self._finish_open_attempts(call, ts_ms)  # before the record, which holds their ends
        record = call.record(
            ts_ms,
            e.code,
            duration_ms=duration_ms,
            billed_ms=to_ms(e.billed) if e.billed is not p.UNSET else duration_ms,
            charge_micro=to_micro(e.charge) if e.charge is not p.UNSET else 0,
            cost_micro=to_micro(e.cost) if e.cost is not p.UNSET else 0,
            hangup=e.hangup if e.hangup is not p.UNSET else "",
        )
        self._close(call, ts_ms, record)
        return None

    def _reject(self, e: p.CallReject, ts_ms: int) -> str | None:
        refused = self._known(CUSTOMER, e.customer, ts_ms)
        if refused is not None:
            return refused
        route = self.routes.match(e.customer, e.dst)
        self.batch.rejects.append(
            (e.seq, ts_ms, e.customer, e.cli, e.dst, e.code, e.reason, route))
        breach = metrics.breach_totals(e.reason).as_tuple()
        self._add(CUSTOMER, e.customer, route, ts_ms, breach, ended_ms=ts_ms)
        return None

    # Ending calls ------------------------------------------------------------------------

    def _close(self, call: LiveCall, ts_ms: int, record: CallRecord | None = None) -> None:
        """End a call: unended attempts close as code 0, then the call's record is final."""
        self._finish_open_attempts(call, ts_ms)
        if record is None:
            record = call.record(ts_ms, metrics.LOST_CODE, hangup="lost")
        del self.calls[call.call_id]
        self._recently_ended[call.call_id] = None
        if len(self._recently_ended) > RECENTLY_ENDED:
            self._recently_ended.popitem(last=False)
        self._dirty_calls.discard(call.call_id)
        if call.seq in self._stored_calls:
            self._stored_calls.remove(call.seq)
            self.batch.closed_calls.add(call.seq)
        self.channels[(CUSTOMER, call.customer)] -= 1
        if self.routes.add(call.customer, record.route):
            self.batch.new_routes.append((call.customer, record.route))

        self._add(
            CUSTOMER,
            call.customer,
            record.route,
            call.start_ms,
            metrics.call_totals_row(record),
            ended_ms=ts_ms,
        )
        self._count_code(CUSTOMER, call.customer, call.start_ms, record.code)
        for attempt in record.attempts:
            if 200 <= attempt.code < 300:  # is_answered: failed ones counted as they ended
                self._add(
                    CARRIER,
                    attempt.carrier,
                    attempt.route,
                    attempt.start_ms,
                    metrics.attempt_totals_row(attempt),
                    ended_ms=ts_ms,
                )
                self._count_code(CARRIER, attempt.carrier, attempt.start_ms, attempt.code)
        for failed, next_answered in metrics.call_failovers(record):
            self._add(
                CARRIER,
                failed.carrier,
                failed.route,
                failed.start_ms,
                metrics.failover_totals(failed, next_answered).as_tuple(),
                ended_ms=ts_ms,
            )
        self.batch.calls.append(
            (
                call.seq,
                record.call_id,
                record.customer,
                record.cli,
                record.dst,
                record.route,
                call.carrier,
                len(record.attempts),
                record.start_ms,
                record.end_ms,
                record.code,
                record.duration_ms,
                record.billed_ms,
                record.charge_micro,
                record.cost_micro,
                record.progress_ms,
                record.dtmf_count,
                record.hangup,
            )
        )
        self.batch.attempts.extend(
            (
                call.seq,
                a.attempt,
                a.carrier,
                a.route,
                a.start_ms,
                a.end_ms,
                a.code,
                a.progress_ms,
                a.duration_ms,
                a.cost_micro,
                a.reason,
                a.billed_ms,
                a.charge_micro,
            )
            for a in record.attempts
        )

    def _finish_open_attempts(self, call: LiveCall, ts_ms: int) -> None:
        for attempt in call.attempts:
            if attempt.code is None:
                self._finish_attempt(attempt, ts_ms, metrics.LOST_CODE, "closed with its call")

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
        *,
        ended_ms: int,
    ) -> None:
        """Count `values` (totals, in TOTALS_FIELDS order) in the bucket of `ts_ms` (the start:
        summaries) and in the minute it ended (`ended_ms`: the sample windows of alerts, which
        cover what ended in them).

        Folded into the batch's rows as they arrive, field by field in C (`map`): no pass over
        the batch later. Sums suffice: totals of calls, attempts and rejects carry no peaks
        (0: only `_channel_opened` sets those, by max), so adding them keeps a row's peaks."""
        rows = self.batch.rollups
        key = (kind, account, route, ts_ms - ts_ms % 60_000)
        row = rows.get(key)
        rows[key] = list(values) if row is None else list(map(add, row, values))
        ended = self.batch.ended
        key = (kind, account, ended_ms - ended_ms % 60_000)
        row = ended.get(key)
        ended[key] = list(values) if row is None else list(map(add, row, values))

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
        return bool(len(b) or b.feed or b.closed_calls or b.accounts or self._dirty_calls)

    def take_batch(self) -> Batch:
        """Hand over everything since the last call, live state included; start a new batch."""
        batch, self.batch = self.batch, Batch()
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
