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
from collections.abc import Iterable, Iterator
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
    route: str = ""
    progress_ts: float | None = None
    code: int | None = None  # None while the attempt is open
    end_ts: float | None = None


@dataclass
class _Call:
    customer: str
    start_ts: float
    last_ts: float
    seq: int = 0  # of its call.start
    call_id: str = ""
    end_ts: float | None = None
    attempts: dict[int, _Attempt] = field(default_factory=dict)
    progress_ts: float | None = None  # the first call.progress of any of its attempts
    dtmf_digits: int = 0
    closed: bool = False
    code: int = LOST
    duration_ms: int = 0
    billed_ms: int = 0
    charge_micro: int = 0
    cost_micro: int = 0

    @property
    def route(self) -> str:
        first = self.attempts.get(min(self.attempts, default=0))
        return first.route if first else ""


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
        self.accounts: dict[tuple[str, str], dict] = {}  # as the account events left them
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
        fields = {k: v for k, v in event.items() if k not in ("seq", "type", "ts")}
        self.accounts.setdefault((event["kind"], event["id"]), {}).update(fields)
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
        self.calls[event["call_id"]] = _Call(event["customer"], start_ts=ts, last_ts=ts,
                                             seq=event["seq"], call_id=event["call_id"])
        heapq.heappush(self.by_last_ts, (ts, event["call_id"]))
        self.customers.add(event["customer"])
        return True

    def on_attempt(self, event: dict) -> bool:
        call = self.open_call(event)
        if call is None or event["attempt"] in call.attempts:
            return False
        call.attempts[event["attempt"]] = _Attempt(event["carrier"], attempt_ts=event["ts"],
                                                   route=event["route"])
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
        attempt.code, attempt.end_ts = event["code"], event["ts"]
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
            end_ts=event["ts"],
            code=event["code"],
            duration_ms=_ms(event["duration"]),
            billed_ms=_ms(event["billed"]) if "billed" in event else _ms(event["duration"]),
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

    def close(self, call: _Call, *, end_ts: float, code: int, duration_ms: int,
              charge_micro: int, cost_micro: int, billed_ms: int = 0) -> None:
        call.closed = True
        call.end_ts = end_ts
        call.code = code
        call.duration_ms = duration_ms
        call.billed_ms = billed_ms
        call.charge_micro = charge_micro
        call.cost_micro = cost_micro
        for attempt in call.attempts.values():
            if attempt.code is None:
                attempt.code, attempt.end_ts = LOST, call.end_ts

    def close_lost_calls(self) -> None:
        while self.by_last_ts and self.feed_ts - self.by_last_ts[0][0] > self.lost_after_s:
            last_ts, call_id = heapq.heappop(self.by_last_ts)
            call = self.calls[call_id]
            if not call.closed and call.last_ts == last_ts:
                self.close(call, end_ts=self.feed_ts, code=LOST, duration_ms=0, charge_micro=0,
                           cost_micro=0)


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
    return Reference(events, failure_codes=failure_codes, lost_after_s=lost_after_s).report(
        time_from, time_to)


class Reference:
    """The events replayed once, then asked for the figures of any range: those of `noc report`,
    and those the screens show beside them (billed time, failovers, live channels, balances)."""

    def __init__(self, events: Iterable[dict], *,
                 failure_codes: frozenset[int] = DEFAULT_FAILURE_CODES,
                 lost_after_s: float = 3600.0) -> None:
        self.replay = _Replay(frozenset(failure_codes), lost_after_s)
        for event in events:
            self.replay.apply(event)

    def report(self, time_from: float | None = None, time_to: float | None = None, *,
               by_end: bool = False, route: str | None = None) -> dict:
        """As `noc report --json` over [from, to); `by_end`: what ended in the range (as live
        graphs plot), not what started in it; `route`: customers' calls of that route only."""
        replay = self.replay
        calls_by_customer: dict[str, list[_Call]] = defaultdict(list)
        attempts_by_carrier: dict[str, list[tuple[_Call, _Attempt]]] = defaultdict(list)
        for call in replay.calls.values():
            when = call.end_ts if by_end else call.start_ts
            if (call.closed and _in_range(when, time_from, time_to)
                    and (route is None or call.route == route)):
                calls_by_customer[call.customer].append(call)
            for attempt in self.counted_attempts(call):
                ts = attempt.attempt_ts
                if by_end:
                    ts = call.end_ts if _is_2xx(attempt.code) else attempt.end_ts
                if _in_range(ts, time_from, time_to):
                    attempts_by_carrier[attempt.carrier].append((call, attempt))
        reject_reasons: dict[str, list[str]] = defaultdict(list)
        for customer, ts, reason in replay.rejects:
            if route is None and _in_range(ts, time_from, time_to):
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

    @staticmethod
    def counted_attempts(call: _Call) -> Iterator[_Attempt]:
        """A call's attempts that count: ended, and (if answered) with their call ended."""
        for attempt in call.attempts.values():
            if attempt.code is not None and (call.closed or not _is_2xx(attempt.code)):
                yield attempt

    def billed_minutes(self, kind: str, account: str, time_from: float | None,
                       time_to: float | None) -> float:
        """Billed time of the answered calls started in the range (a carrier's: those it
        answered, by its attempt's start)."""
        billed_ms = 0
        for call in self.replay.calls.values():
            if not call.closed or not _is_2xx(call.code):
                continue
            if kind == "customer":
                if call.customer == account and _in_range(call.start_ts, time_from, time_to):
                    billed_ms += call.billed_ms
                continue
            for attempt in call.attempts.values():
                if (attempt.carrier == account and _is_2xx(attempt.code)
                        and _in_range(attempt.attempt_ts, time_from, time_to)):
                    billed_ms += call.billed_ms
        return billed_ms / 60000

    def failovers(self, carrier: str, time_from: float | None,
                  time_to: float | None) -> tuple[int, int]:
        """(attempts of `carrier` started in the range that failed and were followed by another
        attempt of their call, of which the next one answered), of calls that have ended."""
        failover = answered = 0
        for call in self.replay.calls.values():
            if not call.closed:
                continue
            for number, attempt in call.attempts.items():
                after = call.attempts.get(number + 1)
                if (attempt.carrier == carrier and after is not None
                        and not _is_2xx(attempt.code)
                        and _in_range(attempt.attempt_ts, time_from, time_to)):
                    failover += 1
                    answered += _is_2xx(after.code)
        return failover, answered

    def open_calls(self) -> list[_Call]:
        return [call for call in self.replay.calls.values() if not call.closed]

    def closed_calls(self) -> dict[int, _Call]:
        """Ended calls by the seq of their call.start."""
        return {call.seq: call for call in self.replay.calls.values() if call.closed}

    def channels(self, kind: str, account: str) -> int:
        """Channels in use at the end: a customer's calls in progress, a carrier's attempts."""
        if kind == "customer":
            return sum(call.customer == account for call in self.open_calls())
        return sum(attempt.carrier == account and attempt.code is None
                   for call in self.open_calls() for attempt in call.attempts.values())

    def in_progress(self, kind: str, account: str, time_from: float | None,
                    time_to: float | None) -> int:
        """What a summary row will count once it ends: calls in progress started in the range
        (customers), or attempts started in it that are going on or answered in a call going on
        (carriers)."""
        if kind == "customer":
            return sum(call.customer == account and _in_range(call.start_ts, time_from, time_to)
                       for call in self.open_calls())
        return sum(attempt.carrier == account and (attempt.code is None or _is_2xx(attempt.code))
                   and _in_range(attempt.attempt_ts, time_from, time_to)
                   for call in self.open_calls() for attempt in call.attempts.values())

    def account(self, kind: str, account: str) -> dict:
        """The account's fields as its account events left them."""
        return self.replay.accounts.get((kind, account), {})

    @property
    def feed_ts(self) -> float:
        return self.replay.feed_ts


def _in_range(ts: float, time_from: float | None, time_to: float | None) -> bool:
    return (time_from is None or ts >= time_from) and (time_to is None or ts < time_to)


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
