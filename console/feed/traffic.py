"""A deterministic model of wholesale VoIP traffic, for the built-in simulator.

Given a seed, a call rate, a scenario and a start time, `Traffic` produces feed protocol v1 events
(plain dicts) as simulated time advances: customers' calls, least-cost routing with failover over
carriers, billing, customer limits, and incidents (a carrier outage, false answer supervision, a
PDD spike, a CPS flood, a customer running out of credit).

It is pure: no I/O and no clock. Time is integer milliseconds of simulated time, every random draw
comes from one `random.Random(seed)`, and pending work waits in a heap ordered by (time, insertion
order); so the same seed, start, cps and scenario give the same events, byte for byte.

Events get their `seq` only when they are handed out, so whatever is handed out (generated calls,
account changes from controls, injected test events) is numbered without holes.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from bisect import bisect
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from console.feed.protocol import Control
from console.feed.scenarios import SCENARIOS

INCIDENT_KINDS = SCENARIOS[2:]
CURRENCY = "USD"

REFERENCE_CPS = 20.0  # the call rate the opening balances are sized for
MAX_TALK_MS = 2_399_000  # under 40 minutes: the console closes a call as lost after an hour
BALANCE_REPORT_MS = 10_000
HISTORY_SHARE = 0.0025  # of the call rate, in the quiet history before the start (a demo's day)
LOW_BALANCE = 0.05  # what a customer has left when a balance-out incident starts
FLOOD_FACTOR = 4  # a flooding customer offers this many times its CPS limit

FAILOVER_CODES = frozenset({408, 500, 502, 503})  # carrier-side failures: try the next carrier
CARRIER_FAILURES = (503, 503, 500, 502, 408)  # drawn uniformly, so 503 is the commonest
DEAD_NUMBER_CODES = frozenset({404, 480, 484})  # what a false-answering carrier answers instead
QUICK_CODES = frozenset({404, 484})  # refused at once, no ringing
RING_MS = {200: (2_000, 15_000), 487: (3_000, 25_000), 480: (15_000, 45_000), 603: (2_000, 10_000)}
SIP_REASONS = {
    200: "OK", 404: "Not Found", 408: "Request Timeout", 480: "Temporarily Unavailable",
    484: "Address Incomplete", 486: "Busy Here", 487: "Request Terminated",
    500: "Server Internal Error", 502: "Bad Gateway", 503: "Service Unavailable", 603: "Decline",
}
UNANSWERED_HANGUP = {487: "caller", 486: "callee", 480: "callee", 603: "callee"}  # else "switch"
REJECT_CODES = {"channel_limit": 503, "cps_limit": 503, "balance": 402, "disabled": 403,
                "no_route": 404}
DTMF_DIGITS = "0123456789*#"
UNROUTED_DIGITS = 8

DEFAULT_FIRST_INCIDENT_MS = (60_000, 180_000)
INCIDENT_LENGTH_MS = (60_000, 300_000)
INCIDENT_GAP_MS = (120_000, 360_000)
NAMED_INCIDENT_DELAY_MS = (2_000, 10_000)
CARRIER_INCIDENT_FLAGS = {"outage": "outage", "false-answer": "false_answer",
                          "pdd-spike": "pdd_spike"}


@dataclass(frozen=True)
class CustomerProfile:
    """How one customer's traffic looks: its share of the calls, where it dials, how calls end."""

    id: str
    name: str
    share: float
    destinations: tuple[tuple[str, float], ...]  # dialled prefix, weight; unknown ones: no_route
    outcomes: tuple[tuple[int, float], ...]  # 200 (answered) or the called party's SIP code
    acd_s: float
    pdd_ms: float
    dtmf_share: float  # of answered calls
    cli_prefix: str
    balance: float  # opening credit at REFERENCE_CPS
    markup: float  # price over the route's base rate
    increment_s: int  # billing increment
    channel_headroom: float  # channel limit over the expected busy channels
    cps_headroom: float  # CPS limit over the mean call rate; 0 = unlimited


@dataclass(frozen=True)
class CarrierProfile:
    id: str
    name: str
    quality: float  # share of answerable calls it connects (the rest end 480)
    failure_rate: float  # attempts failing on its side (408, 5xx)
    pdd_factor: float
    rate_factor: float  # its price over the route's base rate


@dataclass(frozen=True)
class RouteProfile:
    prefix: str
    rate: float  # base price per minute
    digits: int  # subscriber digits after the prefix
    carriers: tuple[str, ...]  # least-cost order


CUSTOMERS = (
    CustomerProfile(
        "acme-telecom", "Acme Telecom", 0.26,
        (("44", 4), ("49", 3), ("33", 2), ("1", 3), ("882", 0.02)),
        ((200, 55), (486, 11), (487, 12), (480, 9), (404, 8), (484, 1), (603, 4)),
        acd_s=185, pdd_ms=1900, dtmf_share=0.03, cli_prefix="44", balance=60_000, markup=1.22,
        increment_s=60, channel_headroom=1.6, cps_headroom=3),
    CustomerProfile(
        "blue-voip", "Blue VoIP", 0.20,
        (("1", 6), ("44", 2), ("91", 2), ("882", 0.02)),
        ((200, 48), (486, 13), (487, 15), (480, 10), (404, 9), (484, 2), (603, 3)),
        acd_s=140, pdd_ms=2200, dtmf_share=0.04, cli_prefix="1", balance=40_000, markup=1.30,
        increment_s=6, channel_headroom=1.5, cps_headroom=3),
    CustomerProfile(  # an IVR / contact centre: most answered calls send DTMF
        "helpline-cc", "Helpline Contact Centre", 0.14,
        (("1", 5), ("44", 4), ("33", 1)),
        ((200, 72), (486, 8), (487, 10), (480, 5), (404, 3), (484, 0.5), (603, 1.5)),
        acd_s=260, pdd_ms=1700, dtmf_share=0.72, cli_prefix="44", balance=50_000, markup=1.18,
        increment_s=1, channel_headroom=1.6, cps_headroom=3),
    CustomerProfile(  # mobile destinations: long PDD, many dead and unreachable numbers
        "nova-mobile", "Nova Mobile", 0.15,
        (("234", 5), ("91", 4), ("44", 1), ("882", 0.02)),
        ((200, 40), (486, 10), (487, 12), (480, 18), (404, 14), (484, 3), (603, 3)),
        acd_s=95, pdd_ms=3600, dtmf_share=0.02, cli_prefix="234", balance=150_000, markup=1.15,
        increment_s=60, channel_headroom=1.5, cps_headroom=3),
    CustomerProfile(  # an auto-dialler: short calls, low ASR, many cancels, a tight CPS limit
        "swift-dialer", "Swift Dialer", 0.15,
        (("1", 6), ("44", 3)),
        ((200, 22), (486, 14), (487, 38), (480, 14), (404, 9), (484, 1), (603, 2)),
        acd_s=38, pdd_ms=2000, dtmf_share=0.01, cli_prefix="1", balance=20_000, markup=1.35,
        increment_s=6, channel_headroom=1.4, cps_headroom=2),
    CustomerProfile(  # no CPS limit, but a channel limit it brushes against
        "redline-wholesale", "Redline Wholesale", 0.10,
        (("49", 3), ("33", 3), ("91", 2), ("234", 1)),
        ((200, 52), (486, 12), (487, 12), (480, 10), (404, 8), (484, 2), (603, 4)),
        acd_s=160, pdd_ms=2400, dtmf_share=0.02, cli_prefix="49", balance=30_000, markup=1.20,
        increment_s=60, channel_headroom=1.12, cps_headroom=0),
)

CARRIERS = (
    CarrierProfile("atlas-voice", "Atlas Voice", 0.97, 0.03, 1.0, 1.00),
    CarrierProfile("borealis-tel", "Borealis Telecom", 0.95, 0.05, 1.15, 0.90),
    CarrierProfile("cobalt-net", "Cobalt Networks", 0.98, 0.02, 0.9, 1.10),
    CarrierProfile("delta-route", "Delta Route", 0.93, 0.06, 1.1, 0.93),
    CarrierProfile("ember-link", "Ember Link", 0.92, 0.05, 1.3, 0.88),
)

ROUTES = (
    RouteProfile("44", 0.0085, 10, ("borealis-tel", "atlas-voice", "cobalt-net")),
    RouteProfile("49", 0.0110, 11, ("atlas-voice", "delta-route")),
    RouteProfile("33", 0.0125, 9, ("cobalt-net", "atlas-voice", "ember-link")),
    RouteProfile("1", 0.0048, 10, ("delta-route", "borealis-tel", "cobalt-net")),
    RouteProfile("234", 0.1450, 10, ("ember-link", "cobalt-net")),
    RouteProfile("91", 0.0210, 10, ("ember-link", "delta-route", "atlas-voice")),
)


@dataclass
class Incident:
    """An incident as it happened: `end` is None while it lasts (named scenarios never end)."""

    kind: str
    target: str
    start: float
    end: float | None = None


def _cumulative(weights: Iterable[float]) -> list[float]:
    """Cumulative shares ending at exactly 1.0, to draw from with `bisect(cum, rng.random())`."""
    running = list(itertools.accumulate(weights))
    return [w / running[-1] for w in running]


def _holding_s(profile: CustomerProfile) -> float:
    """How long, on average, one of the customer's calls holds a channel (for its limit)."""
    pdd_s = profile.pdd_ms / 1000
    quick_s = 0.7
    total = sum(weight for _, weight in profile.outcomes)
    held = 0.0
    for code, weight in profile.outcomes:
        if code in QUICK_CODES:
            seconds = quick_s
        elif code in RING_MS:
            seconds = pdd_s + sum(RING_MS[code]) / 2000 + (profile.acd_s if code == 200 else 0)
        else:
            seconds = pdd_s
        held += weight / total * seconds
    return held


@dataclass(slots=True, eq=False)
class _Account:
    kind: str
    id: str
    name: str
    channels: int
    enabled: bool = True
    active: int = 0
    disable_token: int = 0  # bumped by every control, so a stale automatic re-enable is ignored

    def state_event(self, t: int) -> dict:
        return {"seq": 0, "type": "account", "ts": t / 1000, "kind": self.kind, "id": self.id,
                "name": self.name, "enabled": self.enabled}


@dataclass(slots=True, eq=False)
class _Customer(_Account):
    profile: CustomerProfile = None  # type: ignore[assignment]
    cps: int = 0
    balance: float = 0.0
    opening_balance: float = 0.0
    clis: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    prefix_cumulative: list[float] = field(default_factory=list)
    outcome_codes: list[int] = field(default_factory=list)
    outcome_cumulative: list[float] = field(default_factory=list)
    talk_mu: float = 0.0
    recent_starts: deque[int] = field(default_factory=deque)
    balance_changed: bool = False
    flooding: bool = False
    flood_clock: float = 0.0

    def opening_event(self, t: int) -> dict:
        return {**self.state_event(t), "channels": self.channels, "cps": self.cps,
                "balance": round(self.balance, 6), "currency": CURRENCY}

    def balance_event(self, t: int) -> dict:
        self.balance_changed = False
        return {"seq": 0, "type": "account", "ts": t / 1000, "kind": "customer", "id": self.id,
                "name": self.name, "balance": round(self.balance, 6)}


@dataclass(slots=True, eq=False)
class _Carrier(_Account):
    profile: CarrierProfile = None  # type: ignore[assignment]
    outage: bool = False
    false_answer: bool = False
    pdd_spike: bool = False

    def opening_event(self, t: int) -> dict:
        return {**self.state_event(t), "channels": self.channels}


@dataclass(slots=True, eq=False)
class _Route:
    prefix: str
    rate: float
    lowest: int  # smallest and largest subscriber number
    highest: int
    carriers: list[_Carrier]


@dataclass(slots=True, eq=False)
class _Call:
    id: str
    customer: _Customer
    route: _Route
    attempt: int = 0
    next_choice: int = 0  # index in the route's carriers where failover resumes
    carrier: _Carrier | None = None
    code: int = 0  # the current attempt's planned outcome, then its final code
    false_answer: bool = False
    duration_ms: int = 0
    answered_at: int | None = None
    attempt_open: bool = False  # an attempt is under way (not between failovers)
    ended: bool = False  # hung up by a control message: its scheduled events are void


Action = Callable[[Any, int], None]


class Traffic:
    """Simulated traffic: `advance_to(ts)` or `next_events(n)` hand out the events, numbered."""

    def __init__(self, seed: int = 1, cps: float = 20.0, scenario: str = "default",
                 start_ts: float = 1_700_000_000.0, history_s: float = 0.0) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; pick one of {', '.join(SCENARIOS)}")
        if cps <= 0:
            raise ValueError("cps must be positive")
        self.seed = seed
        self.cps = cps
        self.scenario = scenario
        self.head = 0  # the last seq handed out
        self.incidents: list[Incident] = []
        self._rng = random.Random(seed)
        self._heap: list[tuple[int, int, Action, Any]] = []
        self._order = itertools.count()
        self._ready: list[dict] = []
        self._live: dict[str, _Call] = {}  # calls in progress, for `hangup` controls
        # `history_s` before `start_ts` is quiet: calls at HISTORY_SHARE of `cps`, no incident.
        self._live_ms = round(start_ts * 1000)
        self._now = round((start_ts - history_s) * 1000)
        self._call_numbers = itertools.count(1)
        self._call_id_prefix = f"s{seed}-{int(start_ts)}-"
        self._carriers = [self._new_carrier(profile) for profile in CARRIERS]
        self._customers = [self._new_customer(profile) for profile in CUSTOMERS]
        self._customer_cumulative = _cumulative(c.profile.share for c in self._customers)
        by_id = {carrier.id: carrier for carrier in self._carriers}
        self._routes = {
            r.prefix: _Route(r.prefix, r.rate, 10 ** (r.digits - 1), 10 ** r.digits - 1,
                             [by_id[c] for c in r.carriers])
            for r in ROUTES
        }
        self._accounts: dict[tuple[str, str], _Customer | _Carrier] = {
            (a.kind, a.id): a for a in (*self._customers, *self._carriers)
        }
        self._start()

    @property
    def now(self) -> float:
        """Simulated time reached, Unix seconds."""
        return self._now / 1000

    def advance_to(self, sim_ts: float, max_events: int | None = None) -> list[dict]:
        """Run simulated time up to `sim_ts` (Unix seconds); return what happened, with seqs.

        With `max_events`, stop once that many events are ready; the rest come out next time.
        """
        self._run(round(sim_ts * 1000), max_events)
        return self._take(max_events)

    def next_events(self, count: int) -> list[dict]:
        """Run simulated time as far as it takes to produce `count` events (no clock at all)."""
        self._run(None, count)
        return self._take(count)

    def apply_control(self, control: Control) -> tuple[bool, str | None, list[dict]]:
        """Disable or enable an account; return (ok, error, the account's new state as events).

        `until` (Unix seconds of simulated time) re-enables a disabled account by itself; it
        means nothing on `enable`, which also cancels a pending automatic re-enable.
        """
        if control.action == "hangup":
            return self._hang_up_by_control(control.call_id or "")
        account = self._accounts.get((control.kind, control.account))
        if account is None:
            return False, f"unknown {control.kind} {control.account!r}", []
        account.disable_token += 1
        account.enabled = control.action == "enable"
        if not account.enabled and control.until is not None:
            when = max(self._now, round(control.until * 1000))
            self._push(when, self._auto_enable, (account, account.disable_token))
        return True, None, self._number([account.state_event(self._now)])

    def _hang_up_by_control(self, call_id: str) -> tuple[bool, str | None, list[dict]]:
        """End a call in progress now, as the switch would on an operator's request."""
        call = self._live.get(call_id)
        if call is None:
            return False, f"no call {call_id!r} in progress", []
        t = self._now
        if call.answered_at is not None:
            call.duration_ms = max(1, t - call.answered_at)
            self._hang_up(call, t, hangup="switch")
        else:
            if call.attempt_open:
                call.attempt_open = False
                call.carrier.active -= 1
                self._ready.append({"seq": 0, "type": "call.attempt_end", "ts": t / 1000,
                                    "call_id": call.id, "attempt": call.attempt, "code": 487,
                                    "reason": "Request Terminated"})
            self._end_unanswered(call, t, 487, hangup="switch")
        return True, None, self._take(None)

    def stamp(self, events: Iterable[dict]) -> list[dict]:
        """Copies of arbitrary event dicts with the next seqs (for injected test events)."""
        return self._number([{"seq": 0, **{k: v for k, v in e.items() if k != "seq"}}
                             for e in events])

    # The engine: a heap of (ms, insertion order, action, payload).

    def _push(self, t: int, action: Action, payload: Any) -> None:
        heapq.heappush(self._heap, (t, next(self._order), action, payload))

    def _run(self, until_ms: int | None, wanted: int | None) -> None:
        heap = self._heap  # never empty: the next arrival is always pending
        while wanted is None or len(self._ready) < wanted:
            if until_ms is not None and heap[0][0] > until_ms:
                self._now = max(self._now, until_ms)
                return
            t, _, action, payload = heapq.heappop(heap)
            self._now = t
            action(payload, t)

    def _take(self, count: int | None) -> list[dict]:
        ready = self._ready
        if count is None or count >= len(ready):
            self._ready = []
            return self._number(ready)
        taken = ready[:count]
        del ready[:count]
        return self._number(taken)

    def _number(self, events: list[dict]) -> list[dict]:
        head = self.head
        for event in events:
            head += 1
            event["seq"] = head
        self.head = head
        return events

    # Set-up.

    def _new_carrier(self, profile: CarrierProfile) -> _Carrier:
        channels = math.ceil(self.cps * 45 / 10) * 10  # ample: routing rarely skips a full one
        return _Carrier("carrier", profile.id, profile.name, channels, profile=profile)

    def _new_customer(self, profile: CustomerProfile) -> _Customer:
        rng = self._rng
        share = profile.share / sum(p.share for p in CUSTOMERS)
        rate = self.cps * share
        balance = profile.balance * max(1.0, self.cps / REFERENCE_CPS)
        return _Customer(
            "customer", profile.id, profile.name,
            channels=math.ceil(rate * _holding_s(profile) * profile.channel_headroom) + 5,
            profile=profile,
            cps=math.ceil(rate * profile.cps_headroom) + 2 if profile.cps_headroom else 0,
            balance=balance,
            opening_balance=balance,
            clis=[profile.cli_prefix + str(rng.randrange(10**9, 10**10)) for _ in range(40)],
            prefixes=[prefix for prefix, _ in profile.destinations],
            prefix_cumulative=_cumulative(w for _, w in profile.destinations),
            outcome_codes=[code for code, _ in profile.outcomes],
            outcome_cumulative=_cumulative(w for _, w in profile.outcomes),
            talk_mu=math.log(profile.acd_s * 1000) - 0.5,  # a lognormal (sigma 1) of mean ACD
        )

    def _start(self) -> None:
        start, live = self._now, self._live_ms
        self._ready.extend(a.opening_event(start) for a in (*self._customers, *self._carriers))
        self._next_arrival = start + self._rng.expovariate(self._call_rate(start))
        self._push(round(self._next_arrival), self._arrival, None)
        self._push(start + BALANCE_REPORT_MS, self._report_balances, None)
        if self.scenario == "default":
            delay = self._rng.randint(*DEFAULT_FIRST_INCIDENT_MS)
            self._push(live + delay, self._start_incident, None)
        elif self.scenario != "calm":
            # A false-answering carrier must never have shown a 404, so it starts at once.
            delay = (0 if self.scenario == "false-answer"
                     else self._rng.randint(*NAMED_INCIDENT_DELAY_MS))
            self._push(live + delay, self._start_incident, self.scenario)

    # Calls.

    def _arrival(self, _payload: None, t: int) -> None:
        rng = self._rng
        self._offer_call(self._customers[bisect(self._customer_cumulative, rng.random())], t)
        self._next_arrival += rng.expovariate(self._call_rate(t))
        self._push(round(self._next_arrival), self._arrival, None)

    def _call_rate(self, t: int) -> float:
        """Calls per simulated millisecond at `t`: a fraction of `cps` in the quiet history."""
        return self.cps / 1000 * (HISTORY_SHARE if t < self._live_ms else 1.0)

    def _offer_call(self, customer: _Customer, t: int) -> None:
        rng = self._rng
        prefix = customer.prefixes[bisect(customer.prefix_cumulative, rng.random())]
        route = self._routes.get(prefix)
        if route is None:
            dst = prefix + str(rng.randrange(10 ** (UNROUTED_DIGITS - 1), 10**UNROUTED_DIGITS))
        else:
            dst = prefix + str(rng.randint(route.lowest, route.highest))
        cli = customer.clis[rng.randrange(len(customer.clis))]
        reason = self._limit_breached(customer, t)
        if reason is None and (route is None or self._next_carrier(route, 0) is None):
            reason = "no_route"
        if reason is not None:
            self._ready.append({"seq": 0, "type": "call.reject", "ts": t / 1000,
                                "customer": customer.id, "cli": cli, "dst": dst,
                                "code": REJECT_CODES[reason], "reason": reason})
            return
        call = _Call(self._call_id_prefix + str(next(self._call_numbers)), customer, route)
        self._live[call.id] = call
        customer.active += 1
        if customer.cps:
            customer.recent_starts.append(t)
        self._ready.append({"seq": 0, "type": "call.start", "ts": t / 1000, "call_id": call.id,
                            "customer": customer.id, "cli": cli, "dst": dst})
        self._attempt(call, t)

    def _limit_breached(self, customer: _Customer, t: int) -> str | None:
        if not customer.enabled:
            return "disabled"
        if customer.balance <= 0:
            return "balance"
        if customer.cps:
            recent = customer.recent_starts
            while recent and recent[0] <= t - 1000:
                recent.popleft()
            if len(recent) >= customer.cps:
                return "cps_limit"
        if customer.active >= customer.channels:
            return "channel_limit"
        return None

    @staticmethod
    def _next_carrier(route: _Route, first: int) -> int | None:
        """Least-cost routing: the first carrier from `first` on that is enabled and not full."""
        carriers = route.carriers
        for index in range(first, len(carriers)):
            carrier = carriers[index]
            if carrier.enabled and carrier.active < carrier.channels:
                return index
        return None

    def _attempt(self, call: _Call, t: int) -> None:
        if call.ended:
            return
        index = self._next_carrier(call.route, call.next_choice)
        if index is None:  # failover found no carrier left: the last failure stands
            self._end_unanswered(call, t, call.code)
            return
        carrier = call.route.carriers[index]
        call.next_choice = index + 1
        call.attempt += 1
        call.carrier = carrier
        call.attempt_open = True
        carrier.active += 1
        self._ready.append({"seq": 0, "type": "call.attempt", "ts": t / 1000, "call_id": call.id,
                            "attempt": call.attempt, "carrier": carrier.id,
                            "route": call.route.prefix})
        self._plan_attempt(call, carrier, t)

    def _plan_attempt(self, call: _Call, carrier: _Carrier, t: int) -> None:
        """Decide how the attempt ends and schedule its progress and its outcome."""
        rng = self._rng
        if carrier.outage:
            call.code = 503
            self._push(t + rng.randint(20, 300), self._settle, call)
            return
        if rng.random() < carrier.profile.failure_rate:
            call.code = CARRIER_FAILURES[rng.randrange(len(CARRIER_FAILURES))]
            delay = rng.randint(6_000, 10_000) if call.code == 408 else rng.randint(30, 800)
            self._push(t + delay, self._settle, call)
            return
        customer = call.customer
        code = customer.outcome_codes[bisect(customer.outcome_cumulative, rng.random())]
        if code == 200 and rng.random() > carrier.profile.quality:
            code = 480
        if carrier.false_answer and code in DEAD_NUMBER_CODES:
            self._plan_false_answer(call, t)
            return
        call.code = code
        if code in QUICK_CODES:
            self._push(t + rng.randint(150, 1_200), self._settle, call)
            return
        pdd = self._pdd(customer, carrier)
        if code == 486:  # busy: refused after the post-dial delay, without ringing
            self._push(t + pdd, self._settle, call)
            return
        self._push(t + pdd, self._progress, call)
        self._push(t + pdd + rng.randint(*RING_MS[code]), self._settle, call)

    def _plan_false_answer(self, call: _Call, t: int) -> None:
        """A dead number 'answered' at once: early media, a connect, a caller hanging up soon."""
        call.code = 200
        call.false_answer = True
        progress = t + self._rng.randint(300, 1_000)
        self._push(progress, self._progress, call)
        self._push(progress + self._rng.randint(200, 800), self._settle, call)

    def _pdd(self, customer: _Customer, carrier: _Carrier) -> int:
        if carrier.pdd_spike:
            return self._rng.randint(8_000, 15_000)
        spread = self._rng.lognormvariate(0, 0.3)
        return max(100, round(customer.profile.pdd_ms * carrier.profile.pdd_factor * spread))

    def _progress(self, call: _Call, t: int) -> None:
        if call.ended:
            return
        code = 183 if call.false_answer or self._rng.random() < 0.3 else 180
        self._ready.append({"seq": 0, "type": "call.progress", "ts": t / 1000,
                            "call_id": call.id, "attempt": call.attempt, "code": code})

    def _settle(self, call: _Call, t: int) -> None:
        """The attempt's outcome is due: an answer, or a final code (503 if the carrier is down)."""
        if call.ended:
            return
        carrier = call.carrier
        code = 503 if carrier.outage else call.code
        if code == 200:
            self._answer(call, t)
            return
        call.code = code
        call.attempt_open = False
        carrier.active -= 1
        self._ready.append({"seq": 0, "type": "call.attempt_end", "ts": t / 1000,
                            "call_id": call.id, "attempt": call.attempt, "code": code,
                            "reason": SIP_REASONS[code]})
        if code in FAILOVER_CODES:
            self._push(t + self._rng.randint(5, 40), self._attempt, call)
        else:
            self._end_unanswered(call, t, code)

    def _end_unanswered(self, call: _Call, t: int, code: int, hangup: str | None = None) -> None:
        call.ended = True
        self._live.pop(call.id, None)
        call.customer.active -= 1
        self._ready.append({"seq": 0, "type": "call.end", "ts": t / 1000, "call_id": call.id,
                            "code": code, "duration": 0, "billed": 0, "charge": 0, "cost": 0,
                            "hangup": hangup or UNANSWERED_HANGUP.get(code, "switch")})

    def _answer(self, call: _Call, t: int) -> None:
        rng = self._rng
        call.answered_at = t
        self._ready.append({"seq": 0, "type": "call.answer", "ts": t / 1000, "call_id": call.id,
                            "attempt": call.attempt})
        if call.false_answer:
            call.duration_ms = rng.randint(1_000, 5_000)
        else:
            talk = round(rng.lognormvariate(call.customer.talk_mu, 1.0))
            call.duration_ms = min(MAX_TALK_MS, max(1_000, talk))
        end = t + call.duration_ms
        if not call.false_answer and rng.random() < call.customer.profile.dtmf_share:
            self._plan_dtmf(call, t, end)
        self._push(end, self._hang_up, call)

    def _plan_dtmf(self, call: _Call, answered: int, end: int) -> None:
        """A few digits in the first half minute of the call (menu choices, account numbers)."""
        rng = self._rng
        latest = min(end - 200, answered + 30_000)
        if latest <= answered + 500:
            return
        for _ in range(rng.randint(1, 6)):
            digit = DTMF_DIGITS[rng.randrange(len(DTMF_DIGITS))]
            self._push(rng.randint(answered + 500, latest), self._dtmf, (call, digit))

    def _dtmf(self, payload: tuple[_Call, str], t: int) -> None:
        call, digit = payload
        if call.ended:
            return
        self._ready.append({"seq": 0, "type": "call.dtmf", "ts": t / 1000, "call_id": call.id,
                            "digit": digit})

    def _hang_up(self, call: _Call, t: int, hangup: str | None = None) -> None:
        """An answered call ends: bill it, charge the customer, free the channels."""
        if call.ended:
            return
        call.ended = True
        self._live.pop(call.id, None)
        customer, carrier = call.customer, call.carrier
        increment = customer.profile.increment_s * 1000
        billed_ms = -(-call.duration_ms // increment) * increment
        billed_minutes = billed_ms / 60_000
        charge = round(call.route.rate * customer.profile.markup * billed_minutes, 6)
        cost = round(call.route.rate * carrier.profile.rate_factor * billed_minutes, 6)
        customer.balance -= charge
        customer.balance_changed = True
        customer.active -= 1
        carrier.active -= 1
        if hangup is None:
            hangup = "caller" if call.false_answer or self._rng.random() < 0.55 else "callee"
        ts = t / 1000
        self._ready.append({"seq": 0, "type": "call.attempt_end", "ts": ts, "call_id": call.id,
                            "attempt": call.attempt, "code": 200, "reason": "OK"})
        self._ready.append({"seq": 0, "type": "call.end", "ts": ts, "call_id": call.id,
                            "code": 200, "duration": call.duration_ms / 1000,
                            "billed": billed_ms / 1000, "charge": charge, "cost": cost,
                            "hangup": hangup})

    # Accounts.

    def _report_balances(self, _payload: None, t: int) -> None:
        """Balances change with every answered call; they are published every 10 s at most."""
        self._ready.extend(c.balance_event(t) for c in self._customers if c.balance_changed)
        self._push(t + BALANCE_REPORT_MS, self._report_balances, None)

    def _auto_enable(self, payload: tuple[_Account, int], t: int) -> None:
        account, token = payload
        if account.disable_token == token:
            account.enabled = True
            self._ready.append(account.state_event(t))

    # Incidents.

    def _start_incident(self, kind: str | None, t: int) -> None:
        """Start an incident: the scenario's own, or (default) a random one, which ends later."""
        rng = self._rng
        kind = kind or INCIDENT_KINDS[rng.randrange(len(INCIDENT_KINDS))]
        target = self._incident_target(kind)
        incident = Incident(kind, target.id, t / 1000)
        self.incidents.append(incident)
        self._set_incident(kind, target, t, active=True)
        if self.scenario == "default":
            end = t + rng.randint(*INCIDENT_LENGTH_MS)
            self._push(end, self._end_incident, (incident, target))

    def _end_incident(self, payload: tuple[Incident, _Customer | _Carrier], t: int) -> None:
        incident, target = payload
        incident.end = t / 1000
        self._set_incident(incident.kind, target, t, active=False)
        self._push(t + self._rng.randint(*INCIDENT_GAP_MS), self._start_incident, None)

    def _incident_target(self, kind: str) -> _Customer | _Carrier:
        if kind in CARRIER_INCIDENT_FLAGS:
            candidates: list = self._carriers
        elif kind == "cps-flood":
            candidates = [c for c in self._customers if c.cps]
        else:
            candidates = self._customers
        return candidates[self._rng.randrange(len(candidates))]

    def _set_incident(self, kind: str, target: Any, t: int, active: bool) -> None:
        if kind in CARRIER_INCIDENT_FLAGS:
            setattr(target, CARRIER_INCIDENT_FLAGS[kind], active)
        elif kind == "cps-flood":
            target.flooding = active
            if active:
                target.flood_clock = float(t)
                self._push(t, self._flood_arrival, target)
        else:  # balance-out: the credit is nearly gone; afterwards the customer tops up
            target.balance = LOW_BALANCE if active else target.balance + target.opening_balance
            self._ready.append(target.balance_event(t))

    def _flood_arrival(self, customer: _Customer, t: int) -> None:
        if not customer.flooding:
            return
        self._offer_call(customer, t)
        customer.flood_clock += self._rng.expovariate(customer.cps * FLOOD_FACTOR / 1000)
        self._push(round(customer.flood_clock), self._flood_arrival, customer)
