"""A brute-force reference for the `customers` and `carriers` parts of `noc report --json`.

It is written from the protocol spec alone, without store.metrics' Totals, so that the store's
report can be checked against it: it replays raw event dicts one by one, keeps every call whole,
and works out each figure at the end straight from the list of calls (attempts) that count.

Where the spec is silent it follows the project's decisions:
- an event is used only if it decodes as a console.feed.protocol Event (heartbeats, gaps and bad
  events are skipped, and a skipped event neither consumes its seq nor moves the feed time);
- an event whose seq is not above the highest seen is a duplicate, and is ignored;
- an event for an unknown call, or a call that has ended, is ignored, as is a call.start for a
  call_id already known; an event naming an attempt the call never started, or one that has
  already ended, is ignored too, as is a second call.attempt with the same number;
- feed time is the newest ts of the events used; a call's last event ts is the newest ts among
  its own used events; after each event, an open call whose last event is more than
  `lost_after_s` older than the feed time is lost: closed with code 0, duration 0, no money;
- when a call closes (call.end or lost), its attempts still open close with code 0;
- a call counts once closed, in the range of its call.start ts; an attempt counts once it has an
  end code, in the range of its call.attempt ts, except that an answered (2xx) attempt waits for
  its call to close, since its duration and cost are the call's;
- ranges are half-open: time_from <= ts < time_to, None meaning unbounded;
- consecutive failures and the set of accounts listed come from all events, whatever the range.
"""

from __future__ import annotations

import heapq
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from console.feed.protocol import Event
from store.metrics import DEFAULT_FAILURE_CODES, NER_CODES

LOST = 0
# The console's own typing of an event (via JSON, as it would arrive), as the judge of validity.
_event_decoder = msgspec.json.Decoder(Event)


def _ms(ts: float) -> int:
    return round(ts * 1000)


def _micro(amount: float) -> int:
    return round(amount * 1_000_000)


def _is_2xx(code: int) -> bool:
    return 200 <= code < 300


@dataclass
class _Attempt:
    carrier: str
    attempt_ts: float
    progress_ts: float | None = None
    code: int | None = None  # None while the attempt is open


@dataclass
class _Call:
    customer: str
    start_ts: float
    last_ts: float
    attempts: dict[int, _Attempt] = field(default_factory=dict)
    progress_ts: float | None = None  # the first call.progress of any of its attempts
    dtmf_digits: int = 0
    closed: bool = False
    code: int = LOST
    duration_ms: int = 0
    charge_micro: int = 0
    cost_micro: int = 0


class _Replay:
    """The state of the feed after each event, kept whole."""

    def __init__(self, failure_codes: frozenset[int], lost_after_s: float) -> None:
        self.failure_codes = failure_codes
        self.lost_after_s = lost_after_s
        self.highest_seq = 0
        self.feed_ts = float("-inf")
        self.calls: dict[str, _Call] = {}
        self.rejects: list[tuple[str, float, str]] = []  # (customer, ts, reason)
        self.customers: set[str] = set()
        self.carriers: set[str] = set()
        self.consecutive_failures: dict[str, int] = {}
        # (last event ts, call_id) of open calls; an entry is stale once its call moved on or closed
        self.by_last_ts: list[tuple[float, str]] = []
        self.handlers = {
            "account": self.on_account,
            "call.reject": self.on_reject,
            "call.start": self.on_start,
            "call.attempt": self.on_attempt,
            "call.progress": self.on_progress,
            "call.answer": self.on_answer,
            "call.dtmf": self.on_dtmf,
            "call.attempt_end": self.on_attempt_end,
            "call.end": self.on_end,
        }

    def apply(self, event: dict) -> None:
        if not _is_valid_event(event) or event["seq"] <= self.highest_seq:
            return
        self.highest_seq = event["seq"]
        if self.handlers[event["type"]](event):
            self.feed_ts = max(self.feed_ts, event["ts"])
            self.close_lost_calls()

    def on_account(self, event: dict) -> bool:
        if event["kind"] == "customer":
            self.customers.add(event["id"])
        else:
            self.add_carrier(event["id"])
        return True

    def on_reject(self, event: dict) -> bool:
        self.customers.add(event["customer"])
        self.rejects.append((event["customer"], event["ts"], event["reason"]))
        return True

    def on_start(self, event: dict) -> bool:
        if event["call_id"] in self.calls:
            return False
        ts = event["ts"]
        self.calls[event["call_id"]] = _Call(event["customer"], start_ts=ts, last_ts=ts)
        heapq.heappush(self.by_last_ts, (ts, event["call_id"]))
        self.customers.add(event["customer"])
        return True

    def on_attempt(self, event: dict) -> bool:
        call = self.open_call(event)
        if call is None or event["attempt"] in call.attempts:
            return False
        call.attempts[event["attempt"]] = _Attempt(event["carrier"], attempt_ts=event["ts"])
        self.add_carrier(event["carrier"])
        self.touch(event)
        return True

    def on_progress(self, event: dict) -> bool:
        attempt = self.open_attempt(event)
        if attempt is None:
            return False
        call = self.calls[event["call_id"]]
        if attempt.progress_ts is None:
            attempt.progress_ts = event["ts"]
        if call.progress_ts is None:
            call.progress_ts = event["ts"]
        self.touch(event)
        return True

    def on_answer(self, event: dict) -> bool:
        attempt = self.open_attempt(event)
        if attempt is None:
            return False
        self.consecutive_failures[attempt.carrier] = 0
        self.touch(event)
        return True

    def on_dtmf(self, event: dict) -> bool:
        call = self.open_call(event)
        if call is None:
            return False
        call.dtmf_digits += 1
        self.touch(event)
        return True

    def on_attempt_end(self, event: dict) -> bool:
        attempt = self.open_attempt(event)
        if attempt is None:
            return False
        attempt.code = event["code"]
        if event["code"] in self.failure_codes:
            self.consecutive_failures[attempt.carrier] += 1
        self.touch(event)
        return True

    def on_end(self, event: dict) -> bool:
        call = self.open_call(event)
        if call is None:
            return False
        self.touch(event)
        self.close(
            call,
            code=event["code"],
            duration_ms=_ms(event["duration"]),
            charge_micro=_micro(event.get("charge", 0)),
            cost_micro=_micro(event.get("cost", 0)),
        )
        return True

    def add_carrier(self, carrier: str) -> None:
        self.carriers.add(carrier)
        self.consecutive_failures.setdefault(carrier, 0)

    def open_call(self, event: dict) -> _Call | None:
        call = self.calls.get(event["call_id"])
        return None if call is None or call.closed else call

    def open_attempt(self, event: dict) -> _Attempt | None:
        call = self.open_call(event)
        attempt = None if call is None else call.attempts.get(event["attempt"])
        return None if attempt is None or attempt.code is not None else attempt

    def touch(self, event: dict) -> None:
        call = self.calls[event["call_id"]]
        if event["ts"] > call.last_ts:
            call.last_ts = event["ts"]
            heapq.heappush(self.by_last_ts, (call.last_ts, event["call_id"]))

    def close(
        self, call: _Call, *, code: int, duration_ms: int, charge_micro: int, cost_micro: int
    ) -> None:
        call.closed = True
        call.code = code
        call.duration_ms = duration_ms
        call.charge_micro = charge_micro
        call.cost_micro = cost_micro
        for attempt in call.attempts.values():
            if attempt.code is None:
                attempt.code = LOST

    def close_lost_calls(self) -> None:
        while self.by_last_ts and self.feed_ts - self.by_last_ts[0][0] > self.lost_after_s:
            last_ts, call_id = heapq.heappop(self.by_last_ts)
            call = self.calls[call_id]
            if not call.closed and call.last_ts == last_ts:
                self.close(call, code=LOST, duration_ms=0, charge_micro=0, cost_micro=0)


def _is_valid_event(event: dict) -> bool:
    try:
        _event_decoder.decode(json.dumps(event))
    except (TypeError, ValueError, msgspec.DecodeError):  # not JSON, or not a valid event
        return False
    return True


def reference_report(
    events: Iterable[dict],
    *,
    time_from: float | None = None,
    time_to: float | None = None,
    failure_codes: frozenset[int] = DEFAULT_FAILURE_CODES,
    lost_after_s: float = 3600.0,
) -> dict:
    """The `customers` and `carriers` of `noc report --json`, from raw events in seq order."""
    replay = _Replay(frozenset(failure_codes), lost_after_s)
    for event in events:
        replay.apply(event)

    def in_range(ts: float) -> bool:
        return (time_from is None or ts >= time_from) and (time_to is None or ts < time_to)

    calls_by_customer: dict[str, list[_Call]] = defaultdict(list)
    attempts_by_carrier: dict[str, list[tuple[_Call, _Attempt]]] = defaultdict(list)
    for call in replay.calls.values():
        if call.closed and in_range(call.start_ts):
            calls_by_customer[call.customer].append(call)
        for attempt in call.attempts.values():
            counts = attempt.code is not None and (call.closed or not _is_2xx(attempt.code))
            if counts and in_range(attempt.attempt_ts):
                attempts_by_carrier[attempt.carrier].append((call, attempt))
    reject_reasons: dict[str, list[str]] = defaultdict(list)
    for customer, ts, reason in replay.rejects:
        if in_range(ts):
            reject_reasons[customer].append(reason)

    return {
        "customers": {
            customer: _customer_figures(calls_by_customer[customer], reject_reasons[customer])
            for customer in sorted(replay.customers)
        },
        "carriers": {
            carrier: _carrier_figures(
                attempts_by_carrier[carrier], replay.consecutive_failures[carrier]
            )
            for carrier in sorted(replay.carriers)
        },
    }


def _customer_figures(calls: list[_Call], reject_reasons: list[str]) -> dict:
    attempts = len(calls)
    answered_calls = [call for call in calls if _is_2xx(call.code)]
    answered = len(answered_calls)
    ner_answered = sum(1 for call in calls if _is_2xx(call.code) or call.code in NER_CODES)
    duration_ms = sum(call.duration_ms for call in answered_calls)  # talk time is answered
    pdds_ms = [
        _ms(call.progress_ts) - _ms(call.start_ts) for call in calls if call.progress_ts is not None
    ]
    dtmf_calls = sum(1 for call in answered_calls if call.dtmf_digits > 0)
    revenue_micro = sum(call.charge_micro for call in calls)
    cost_micro = sum(call.cost_micro for call in calls)
    channel_limit = reject_reasons.count("channel_limit")
    cps_limit = reject_reasons.count("cps_limit")
    return {
        "attempts": attempts,
        "answered": answered,
        "asr": 100 * answered / attempts if attempts else None,
        "ner": 100 * ner_answered / attempts if attempts else None,
        "acd": duration_ms / 1000 / answered if answered else None,
        "minutes": duration_ms / 60000,
        "pdd_ms": sum(pdds_ms) / len(pdds_ms) if pdds_ms else None,
        "dtmf_pct": 100 * dtmf_calls / answered if answered else None,
        "revenue": revenue_micro / 1_000_000,
        "cost": cost_micro / 1_000_000,
        "profit": (revenue_micro - cost_micro) / 1_000_000,
        "breaches": {
            "channel_limit": channel_limit,
            "cps_limit": cps_limit,
            "other": len(reject_reasons) - channel_limit - cps_limit,
        },
    }


def _carrier_figures(ended: list[tuple[_Call, _Attempt]], consecutive_failures: int) -> dict:
    attempts = len(ended)
    answered_calls = [call for call, attempt in ended if _is_2xx(attempt.code)]
    answered = len(answered_calls)
    ner_answered = sum(
        1 for _, attempt in ended if _is_2xx(attempt.code) or attempt.code in NER_CODES
    )
    duration_ms = sum(call.duration_ms for call in answered_calls)
    pdds_ms = [
        _ms(attempt.progress_ts) - _ms(attempt.attempt_ts)
        for _, attempt in ended
        if attempt.progress_ts is not None
    ]
    revenue_micro = sum(call.charge_micro for call in answered_calls)
    cost_micro = sum(call.cost_micro for call in answered_calls)
    return {
        "attempts": attempts,
        "answered": answered,
        "asr": 100 * answered / attempts if attempts else None,
        "ner": 100 * ner_answered / attempts if attempts else None,
        "acd": duration_ms / 1000 / answered if answered else None,
        "minutes": duration_ms / 60000,
        "pdd_ms": sum(pdds_ms) / len(pdds_ms) if pdds_ms else None,
        "revenue": revenue_micro / 1_000_000,
        "cost": cost_micro / 1_000_000,
        "profit": (revenue_micro - cost_micro) / 1_000_000,
        "consecutive_failures": consecutive_failures,
        "code_200": sum(1 for _, attempt in ended if attempt.code == 200),
        "code_404": sum(1 for _, attempt in ended if attempt.code == 404),
    }
