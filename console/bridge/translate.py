"""Kamailio's events (what kamailio.cfg sends over evapi) as feed protocol v1 events.

Each Kamailio event becomes at most one protocol event, except where the bridge missed a call's
start: an answered call's end carries the whole call (customer, number, carrier, the start,
attempt and answer times), so the call is still accounted for, from a start made out of it.
Any other event of a call the bridge never saw start is dropped (the `gap` announced for what was
missed covers it) and counted.

Durations come from timestamps (Kamailio's own are whole seconds); the charge and the cost from
the per-prefix rates of the bridge's settings, on the talk time rounded up to the customer's
billing increment.
"""

from __future__ import annotations

import hashlib
import logging
import math

import msgspec

from console.bridge.settings import BridgeSettings
from console.feed.printable import UNPRINTABLE
from console.feed.traffic import UNANSWERED_HANGUP

log = logging.getLogger(__name__)

MAX_DIGIT = 16


class KamailioEvent(msgspec.Struct, kw_only=True):
    """One event as kamailio.cfg builds it: `ev` says which; `k` numbers it since `boot`."""

    ev: str
    k: int
    boot: int
    ts: str = ""
    call_id: str = ""
    customer: str = ""
    cli: str = ""
    dst: str = ""
    route: str = ""
    attempt: int = 0
    carrier: str = ""
    code: int = 0
    reason: str = ""
    digit: str = ""
    hangup: str = ""
    start: str = ""  # the call's start, attempt and answer times, on an answered call's end
    attempt_ts: str = ""
    answer: str = ""
    from_tag: str = ""  # the caller's, on a start; the sender's, on a BYE


_decoder = msgspec.json.Decoder(KamailioEvent)


def decode(data: bytes) -> KamailioEvent:
    """Raises msgspec.DecodeError / ValidationError on anything else."""
    return _decoder.decode(data)


class OpenCall(msgspec.Struct):
    """What the bridge keeps of a call in progress (durably, with what it has sent)."""

    feed_id: str  # the call_id noc knows it by
    customer: str
    route: str
    carriers: list[str]  # by attempt, from 1
    last_ts: float
    answered: int = 0  # the answered attempt
    answer_ts: float = 0.0
    ended: list[int] = msgspec.field(default_factory=list)  # attempts that have ended
    from_tag: str = ""  # the caller's: tells who sent a BYE Kamailio cannot place


def feed_call_id(call_id: str) -> str:
    """The protocol's call_id for a SIP Call-ID: itself if it is 1 to 64 printable characters,
    else a stable digest of it (SIP allows longer ones)."""
    if 1 <= len(call_id) <= 64 and not UNPRINTABLE.search(call_id):
        return call_id
    return "sha1-" + hashlib.sha1(call_id.encode("utf-8", "surrogateescape")).hexdigest()


def _seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return round(value, 3) if math.isfinite(value) and value > 0 else None


class Translator:
    """Turns Kamailio events into protocol events (seq left out), keeping the open calls.

    `changed` collects the calls touched since the last `take_changes()` (None: ended), for the
    buffer to store with the events; `dropped` counts events of calls it does not know.
    """

    def __init__(self, settings: BridgeSettings, calls: dict[str, OpenCall] | None = None) -> None:
        self.settings = settings
        self.calls: dict[str, OpenCall] = calls or {}
        self.changed: dict[str, OpenCall | None] = {}
        self.dropped = 0

    def take_changes(self) -> dict[str, OpenCall | None]:
        changes, self.changed = self.changed, {}
        return changes

    def call_by_feed_id(self, feed_id: str) -> str | None:
        """The SIP Call-ID of an open call noc knows as `feed_id`."""
        for call_id, call in self.calls.items():
            if call.feed_id == feed_id:
                return call_id
        return None

    def translate(self, e: KamailioEvent) -> list[dict]:
        ts = _seconds(e.ts)
        if ts is None:
            return self._drop(e, f"no usable ts {e.ts!r}")
        if e.ev == "reject":
            return [{"type": "call.reject", "ts": ts, "customer": e.customer, "cli": e.cli,
                     "dst": e.dst, "code": e.code, "reason": e.reason}]
        if e.ev == "start":
            return self._start(e, ts)
        call = self.calls.get(e.call_id)
        if call is None and e.ev in ("answered_attempt_end", "hangup"):
            revived = self._revive(e)
            return revived + self.translate(e) if revived else []
        if call is None:
            return self._drop(e, "a call the bridge does not know: it began while the bridge "
                              "was away, or has ended")
        call.last_ts = max(call.last_ts, ts)
        self.changed[e.call_id] = call
        handler = {
            "attempt": self._attempt,
            "progress": self._progress,
            "answer": self._answer,
            "attempt_end": self._attempt_end,
            "answered_attempt_end": self._answered_attempt_end,
            "dtmf": self._dtmf,
            "failed": self._failed,
            "hangup": self._hangup,
            "bye": self._bye,
        }.get(e.ev)
        if handler is None:
            return self._drop(e, f"unknown event {e.ev!r}")
        return handler(e, call, ts)

    def _drop(self, e: KamailioEvent, why: str) -> list[dict]:
        self.dropped += 1
        log.info("evapi: dropped event %d (%s of %s): %s", e.k, e.ev, e.call_id or "-", why)
        return []

    def _start(self, e: KamailioEvent, ts: float) -> list[dict]:
        if e.call_id in self.calls:
            return self._drop(e, "a second start for a call in progress")
        call = OpenCall(feed_call_id(e.call_id), e.customer, "", [], ts, from_tag=e.from_tag)
        self.calls[e.call_id] = call
        self.changed[e.call_id] = call
        return [{"type": "call.start", "ts": ts, "call_id": call.feed_id,
                 "customer": e.customer, "cli": e.cli, "dst": e.dst}]

    def _attempt(self, e: KamailioEvent, call: OpenCall, ts: float) -> list[dict]:
        if e.attempt != len(call.carriers) + 1:
            return self._drop(e, f"attempt {e.attempt} after {len(call.carriers)}")
        call.carriers.append(e.carrier)
        call.route = e.route
        return [{"type": "call.attempt", "ts": ts, "call_id": call.feed_id,
                 "attempt": e.attempt, "carrier": e.carrier, "route": e.route}]

    def _known_attempt(self, e: KamailioEvent, call: OpenCall) -> bool:
        return 1 <= e.attempt <= len(call.carriers) and e.attempt not in call.ended

    def _progress(self, e: KamailioEvent, call: OpenCall, ts: float) -> list[dict]:
        if not self._known_attempt(e, call) or e.code not in (180, 183):
            return self._drop(e, f"progress {e.code} on attempt {e.attempt}")
        return [{"type": "call.progress", "ts": ts, "call_id": call.feed_id,
                 "attempt": e.attempt, "code": e.code}]

    def _answer(self, e: KamailioEvent, call: OpenCall, ts: float) -> list[dict]:
        if not self._known_attempt(e, call) or call.answered:
            return self._drop(e, f"answer on attempt {e.attempt}")
        call.answered, call.answer_ts = e.attempt, ts
        return [{"type": "call.answer", "ts": ts, "call_id": call.feed_id,
                 "attempt": e.attempt}]

    def _attempt_end(self, e: KamailioEvent, call: OpenCall, ts: float) -> list[dict]:
        if not self._known_attempt(e, call):
            return self._drop(e, f"end of attempt {e.attempt}")
        call.ended.append(e.attempt)
        event = {"type": "call.attempt_end", "ts": ts, "call_id": call.feed_id,
                 "attempt": e.attempt, "code": e.code}
        if e.reason:
            event["reason"] = e.reason
        return [event]

    def _answered_attempt_end(self, e: KamailioEvent, call: OpenCall, ts: float) -> list[dict]:
        events = []
        if not call.answered and self._known_attempt(e, call):  # its answer event was missed
            events = self._answer(e, call, _seconds(e.answer) or ts)
        attempt = call.answered
        if not attempt or attempt in call.ended:
            return events + self._drop(e, f"end of answered attempt {attempt}")
        call.ended.append(attempt)
        return events + [{"type": "call.attempt_end", "ts": ts, "call_id": call.feed_id,
                          "attempt": attempt, "code": 200, "reason": "OK"}]

    def _dtmf(self, e: KamailioEvent, call: OpenCall, ts: float) -> list[dict]:
        if not e.digit:
            return self._drop(e, "no digit")
        return [{"type": "call.dtmf", "ts": ts, "call_id": call.feed_id,
                 "digit": e.digit[:MAX_DIGIT]}]

    def _failed(self, e: KamailioEvent, call: OpenCall, ts: float) -> list[dict]:
        """An unanswered call's end; its last attempt ends too, if its own event was lost."""
        events = self._attempt_end(e, call, ts) if self._known_attempt(e, call) else []
        self._close(e.call_id)
        return events + [{"type": "call.end", "ts": ts, "call_id": call.feed_id, "code": e.code,
                          "duration": 0, "billed": 0, "charge": 0, "cost": 0,
                          "hangup": e.hangup or UNANSWERED_HANGUP.get(e.code, "switch")}]

    def _hangup(self, e: KamailioEvent, call: OpenCall, ts: float) -> list[dict]:
        """An answered call's end: its answer and answered attempt's end too, if their own
        events were lost."""
        events = []
        if call.answered not in call.ended:
            events += self._answered_attempt_end(e, call, ts)
        answer_ts = _seconds(e.answer) or call.answer_ts or ts
        duration = max(0.0, round(ts - answer_ts, 3))
        increment = self.settings.increment_of(call.customer)
        billed = math.ceil(duration / increment) * increment if duration > 0 else 0
        carrier = call.carriers[call.answered - 1] if call.answered else e.carrier
        rates = self.settings.route_by_prefix(call.route or e.route)
        charge = round(rates.price * billed / 60, 6) if rates else 0
        cost = round(rates.cost.get(carrier, 0.0) * billed / 60, 6) if rates else 0
        self._close(e.call_id)
        return events + [{"type": "call.end", "ts": ts, "call_id": call.feed_id, "code": 200,
                          "duration": duration, "billed": billed, "charge": charge,
                          "cost": cost, "hangup": e.hangup or "switch"}]

    def _bye(self, e: KamailioEvent, call: OpenCall, ts: float) -> list[dict]:
        """A BYE for a dialog Kamailio does not know (it restarted during the call): the
        call ends with it, hung up by whoever sent it."""
        if not call.answered:
            return self._drop(e, "a BYE for a call never answered")
        if call.from_tag:
            e.hangup = "caller" if e.from_tag == call.from_tag else "callee"
        return self._hangup(e, call, ts)

    def _revive(self, e: KamailioEvent) -> list[dict]:
        """The start, attempt and answer of an answered call the bridge missed, made from its
        end. Earlier failed attempts are unknown: it is sent as answered on its first attempt,
        by the carrier that answered."""
        start, attempt_ts, answer = (_seconds(e.start), _seconds(e.attempt_ts),
                                     _seconds(e.answer))
        if None in (start, attempt_ts, answer) or not e.carrier or not e.customer:
            return self._drop(e, "an answered call whose start was missed, without its times")
        log.info("evapi: call %s began while the bridge was away: its start is made from its "
                 "end", e.call_id)
        call = OpenCall(feed_call_id(e.call_id), e.customer, e.route, [e.carrier], answer,
                        answered=1, answer_ts=answer)
        self.calls[e.call_id] = call
        self.changed[e.call_id] = call
        return [
            {"type": "call.start", "ts": start, "call_id": call.feed_id, "customer": e.customer,
             "cli": e.cli, "dst": e.dst},
            {"type": "call.attempt", "ts": attempt_ts, "call_id": call.feed_id, "attempt": 1,
             "carrier": e.carrier, "route": e.route},
            {"type": "call.answer", "ts": answer, "call_id": call.feed_id, "attempt": 1},
        ]

    def _close(self, call_id: str) -> None:
        self.calls.pop(call_id, None)
        self.changed[call_id] = None
