"""store.metrics against brute force, and the brute-force report reference on small examples.

The property tests build random call and attempt records, split them into random buckets, roll
the buckets up with Totals, and check every ratio equals the same figure worked out directly over
the flat list: a rollup of rollups must equal a scan of the calls, exactly (== on floats).
"""

from __future__ import annotations

import copy
import itertools
import json
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from store.metrics import (
    DEFAULT_FAILURE_CODES,
    PEAK_FIELDS,
    TOTALS_FIELDS,
    AttemptRecord,
    CallRecord,
    ConsecutiveFailures,
    Totals,
    acd,
    asr,
    attempt_totals,
    billed_minutes,
    breach_totals,
    call_failovers,
    call_totals,
    carrier_report,
    cost,
    customer_report,
    dtmf_pct,
    failover_totals,
    minutes,
    ner,
    never_404,
    pdd_ms,
    profit,
    profit_pct,
    revenue,
    share_404,
    sum_totals,
)
from tests.reference import reference_report

PROPERTIES = settings(max_examples=200, deadline=None)

CUSTOMERS = ("acme", "globex", "initech")
CARRIERS = ("c1", "c2", "c3")
# Codes at every boundary the metrics care about, plus anything a switch may send.
INTERESTING_CODES = (0, 199, 200, 202, 299, 300, 404, 408, 480, 484, 486, 487, 499, 500, 503,
                     599, 600, 603, 699)
codes = st.one_of(st.sampled_from(INTERESTING_CODES), st.integers(100, 699))
timestamps_ms = st.integers(0, 4_000_000_000_000)
money_micro = st.integers(0, 10**9)
durations_ms = st.integers(0, 10**7)


def is_2xx(code: int) -> bool:
    return 200 <= code < 300


def is_ner(code: int) -> bool:
    return is_2xx(code) or code in (480, 486, 487, 600, 603)


@st.composite
def attempt_records(draw, attempt_no: int | None = None) -> AttemptRecord:
    start_ms = draw(timestamps_ms)
    return AttemptRecord(
        carrier=draw(st.sampled_from(CARRIERS)),
        route=draw(st.sampled_from(("44", "4420", "1"))),
        attempt=attempt_no if attempt_no is not None else draw(st.integers(1, 5)),
        start_ms=start_ms,
        end_ms=start_ms + draw(durations_ms),
        code=draw(codes),
        progress_ms=draw(st.none() | st.integers(start_ms - 1000, start_ms + 60_000)),
        duration_ms=draw(durations_ms),
        cost_micro=draw(money_micro),
        billed_ms=draw(durations_ms),
        charge_micro=draw(money_micro),
    )


@st.composite
def call_records(draw) -> CallRecord:
    start_ms = draw(timestamps_ms)
    # Attempt numbers are unique per call, in no particular order in the tuple.
    numbers = draw(st.lists(st.integers(1, 8), unique=True, max_size=4))
    return CallRecord(
        call_id=draw(st.uuids()).hex,
        customer=draw(st.sampled_from(CUSTOMERS)),
        start_ms=start_ms,
        end_ms=start_ms + draw(durations_ms),
        code=draw(codes),
        duration_ms=draw(durations_ms),
        billed_ms=draw(durations_ms),
        charge_micro=draw(money_micro),
        cost_micro=draw(money_micro),
        progress_ms=draw(st.none() | st.integers(start_ms - 1000, start_ms + 60_000)),
        dtmf_count=draw(st.integers(0, 3)),
        attempts=tuple(draw(attempt_records(number)) for number in numbers),
    )


def split_into_buckets(data, items: list) -> list[list]:
    bucket_of = data.draw(st.lists(st.integers(0, 4), min_size=len(items), max_size=len(items)))
    buckets: list[list] = [[] for _ in range(5)]
    for item, bucket in zip(items, bucket_of, strict=True):
        buckets[bucket].append(item)
    return buckets


def rolled_up(buckets: list[list], totals_of) -> Totals:
    return sum_totals(sum_totals(totals_of(item) for item in bucket) for bucket in buckets)


def ratios(t: Totals) -> dict:
    return {
        "asr": asr(t),
        "ner": ner(t),
        "acd": acd(t),
        "minutes": minutes(t),
        "billed_minutes": billed_minutes(t),
        "pdd_ms": pdd_ms(t),
        "dtmf_pct": dtmf_pct(t),
        "revenue": revenue(t),
        "cost": cost(t),
        "profit": profit(t),
        "profit_pct": profit_pct(t),
        "share_404": share_404(t),
    }


def ratio_or_none(numerator: float, denominator: int, scale: float = 100) -> float | None:
    return scale * numerator / denominator if denominator else None


def brute_force_call_ratios(calls: list[CallRecord]) -> dict:
    answered = [c for c in calls if is_2xx(c.code)]
    duration_ms = sum(c.duration_ms for c in answered)  # only answered calls have talk time
    pdds = [c.progress_ms - c.start_ms for c in calls if c.progress_ms is not None]
    revenue_micro = sum(c.charge_micro for c in calls)
    cost_micro = sum(c.cost_micro for c in calls)
    code_200 = sum(c.code == 200 for c in calls)
    code_404 = sum(c.code == 404 for c in calls)
    return {
        "asr": ratio_or_none(len(answered), len(calls)),
        "ner": ratio_or_none(sum(is_ner(c.code) for c in calls), len(calls)),
        "acd": duration_ms / 1000 / len(answered) if answered else None,
        "minutes": duration_ms / 60000,
        "billed_minutes": sum(c.billed_ms for c in answered) / 60000,
        "pdd_ms": sum(pdds) / len(pdds) if pdds else None,
        "dtmf_pct": ratio_or_none(sum(c.dtmf_count > 0 for c in answered), len(answered)),
        "revenue": revenue_micro / 1_000_000,
        "cost": cost_micro / 1_000_000,
        "profit": (revenue_micro - cost_micro) / 1_000_000,
        "profit_pct": ratio_or_none(revenue_micro - cost_micro, revenue_micro),
        "share_404": ratio_or_none(code_404, code_200 + code_404),
    }


def brute_force_attempt_ratios(attempts: list[AttemptRecord]) -> dict:
    answered = [a for a in attempts if is_2xx(a.code)]
    duration_ms = sum(a.duration_ms for a in answered)
    pdds = [a.progress_ms - a.start_ms for a in attempts if a.progress_ms is not None]
    # A carrier's money is that of the calls it answered: what the customer paid, what it cost.
    revenue_micro = sum(a.charge_micro for a in answered)
    cost_micro = sum(a.cost_micro for a in answered)
    code_200 = sum(a.code == 200 for a in attempts)
    code_404 = sum(a.code == 404 for a in attempts)
    return {
        "asr": ratio_or_none(len(answered), len(attempts)),
        "ner": ratio_or_none(sum(is_ner(a.code) for a in attempts), len(attempts)),
        "acd": duration_ms / 1000 / len(answered) if answered else None,
        "minutes": duration_ms / 60000,
        "billed_minutes": sum(a.billed_ms for a in answered) / 60000,
        "pdd_ms": sum(pdds) / len(pdds) if pdds else None,
        "dtmf_pct": 0.0 if answered else None,  # attempts never carry DTMF
        "revenue": revenue_micro / 1_000_000,
        "cost": cost_micro / 1_000_000,
        "profit": (revenue_micro - cost_micro) / 1_000_000,
        "profit_pct": ratio_or_none(revenue_micro - cost_micro, revenue_micro),
        "share_404": ratio_or_none(code_404, code_200 + code_404),
    }


def brute_force_failovers(call: CallRecord) -> list[tuple[AttemptRecord, bool]]:
    """Each failed attempt, with whether the attempt numbered next after it answered."""
    failovers = []
    for attempt in sorted(call.attempts, key=lambda a: a.attempt):
        later = [a for a in call.attempts if a.attempt > attempt.attempt]
        if later and not is_2xx(attempt.code):
            following = min(later, key=lambda a: a.attempt)
            failovers.append((attempt, is_2xx(following.code)))
    return failovers


# Rollups of random buckets against a scan of the flat list.

@PROPERTIES
@given(calls=st.lists(call_records(), max_size=30), data=st.data())
def test_call_rollup_equals_brute_force(calls, data):
    for customer in CUSTOMERS:
        own = [c for c in calls if c.customer == customer]
        totals = rolled_up(split_into_buckets(data, own), call_totals)
        assert totals.attempts == len(own)
        assert totals.lost == sum(c.code == 0 for c in own)
        assert ratios(totals) == brute_force_call_ratios(own)


@PROPERTIES
@given(attempts=st.lists(attempt_records(), max_size=30), data=st.data())
def test_attempt_rollup_equals_brute_force(attempts, data):
    for carrier in CARRIERS:
        own = [a for a in attempts if a.carrier == carrier]
        totals = rolled_up(split_into_buckets(data, own), attempt_totals)
        assert totals.attempts == len(own)
        assert totals.code_200 == sum(a.code == 200 for a in own)
        assert totals.code_404 == sum(a.code == 404 for a in own)
        assert ratios(totals) == brute_force_attempt_ratios(own)


@PROPERTIES
@given(calls=st.lists(call_records(), max_size=20), data=st.data())
def test_failovers_equal_brute_force(calls, data):
    for call in calls:
        assert call_failovers(call) == brute_force_failovers(call)
    failovers = [pair for call in calls for pair in call_failovers(call)]
    for carrier in CARRIERS:
        own = [(failed, next_answered) for failed, next_answered in failovers
               if failed.carrier == carrier]
        totals = rolled_up(split_into_buckets(data, own), lambda pair: failover_totals(*pair))
        assert totals.failover == len(own)
        assert totals.failover_answered == sum(next_answered for _, next_answered in own)


@PROPERTIES
@given(reasons=st.lists(st.sampled_from(
    ("channel_limit", "cps_limit", "balance", "disabled", "no_route"))))
def test_breaches_by_reason(reasons):
    totals = sum_totals(breach_totals(reason) for reason in reasons)
    assert totals.breach_channel == reasons.count("channel_limit")
    assert totals.breach_cps == reasons.count("cps_limit")
    assert totals.breach_other == len(reasons) - totals.breach_channel - totals.breach_cps
    assert customer_report(totals)["breaches"] == {
        "channel_limit": totals.breach_channel,
        "cps_limit": totals.breach_cps,
        "other": totals.breach_other,
    }


# Merging.

totals_values = st.builds(Totals, **{name: st.integers(0, 10**12) for name in TOTALS_FIELDS})


def merged(*parts: Totals) -> Totals:
    """A fresh merge: Totals.add works in place, so the parts are copied first."""
    result = copy.copy(parts[0])
    for part in parts[1:]:
        result.add(part)
    return result


@PROPERTIES
@given(a=totals_values, b=totals_values, c=totals_values)
def test_merge_is_associative_and_commutative(a, b, c):
    assert merged(a, b).as_tuple() == merged(b, a).as_tuple()
    assert merged(merged(a, b), c).as_tuple() == merged(a, merged(b, c)).as_tuple()
    assert merged(a, Totals()).as_tuple() == a.as_tuple()
    for order in itertools.permutations((a, b, c)):
        assert sum_totals(order).as_tuple() == merged(a, b, c).as_tuple()


@PROPERTIES
@given(parts=st.lists(totals_values, max_size=6))
def test_merge_sums_counters_and_takes_peak_maxima(parts):
    total = sum_totals(parts)
    for name in TOTALS_FIELDS:
        values = [getattr(part, name) for part in parts]
        expected = max(values, default=0) if name in PEAK_FIELDS else sum(values)
        assert getattr(total, name) == expected


# Carrier health.

steps = st.lists(st.tuples(
    st.sampled_from(CARRIERS),
    st.one_of(st.just("answer"), codes),  # a call.answer, or a call.attempt_end with that code
))


def brute_force_consecutive_failures(run: list, failure_codes: frozenset[int]) -> dict[str, int]:
    counters = {}
    for carrier in {carrier for carrier, _ in run}:
        own = [step for c, step in run if c == carrier]
        answers = [i for i, step in enumerate(own) if step == "answer"]
        since_answer = own[answers[-1] + 1:] if answers else own
        counters[carrier] = sum(1 for step in since_answer if step in failure_codes)
    return counters


def replayed(run: list, counter: ConsecutiveFailures) -> dict[str, int]:
    for carrier, step in run:
        if step == "answer":
            counter.answered(carrier)
        else:
            counter.attempt_ended(carrier, step)
    return counter.counters


@PROPERTIES
@given(run=steps)
def test_consecutive_failures_with_default_codes(run):
    assert replayed(run, ConsecutiveFailures()) == brute_force_consecutive_failures(
        run, DEFAULT_FAILURE_CODES
    )


@PROPERTIES
@given(run=steps, failure_codes=st.frozensets(codes, max_size=8))
def test_consecutive_failures_with_configured_codes(run, failure_codes):
    counter = ConsecutiveFailures(failure_codes=failure_codes)
    assert replayed(run, counter) == brute_force_consecutive_failures(run, failure_codes)


def test_called_party_outcomes_are_not_carrier_failures():
    assert {408, *range(500, 600)} == DEFAULT_FAILURE_CODES
    counter = ConsecutiveFailures()
    for code in (404, 480, 484, 486, 487, 600, 603, 0, 200):
        counter.attempt_ended("c1", code)
    assert counter.counters == {"c1": 0}


# Report shapes.

CUSTOMER_KEYS = ["attempts", "answered", "asr", "ner", "acd", "minutes", "pdd_ms", "dtmf_pct",
                 "revenue", "cost", "profit", "breaches"]
CARRIER_KEYS = ["attempts", "answered", "asr", "ner", "acd", "minutes", "pdd_ms", "revenue",
                "cost", "profit", "consecutive_failures", "code_200", "code_404"]


@PROPERTIES
@given(totals=totals_values, failures=st.integers(0, 1000))
def test_report_shapes(totals, failures):
    customer = customer_report(totals)
    assert list(customer) == CUSTOMER_KEYS
    assert list(customer["breaches"]) == ["channel_limit", "cps_limit", "other"]
    carrier = carrier_report(totals, failures)
    assert list(carrier) == CARRIER_KEYS
    assert carrier["consecutive_failures"] == failures
    figures = ratios(totals)
    for report in (customer, carrier):
        assert report["attempts"] == totals.attempts
        assert report["answered"] == totals.answered
        for name, value in report.items():
            if name in figures:
                assert value == figures[name]
        json.dumps(report)  # the report must serialise as it is


def test_empty_reports_match_the_spec_example():
    assert customer_report(Totals()) == {
        "attempts": 0, "answered": 0, "asr": None, "ner": None, "acd": None, "minutes": 0,
        "pdd_ms": None, "dtmf_pct": None, "revenue": 0, "cost": 0, "profit": 0,
        "breaches": {"channel_limit": 0, "cps_limit": 0, "other": 0},
    }
    assert carrier_report(Totals(), 0) == {
        "attempts": 0, "answered": 0, "asr": None, "ner": None, "acd": None, "minutes": 0,
        "pdd_ms": None, "revenue": 0, "cost": 0, "profit": 0, "consecutive_failures": 0,
        "code_200": 0, "code_404": 0,
    }


# The reference, on hand-written feeds.

def numbered(*events: dict) -> list[dict]:
    """Events given seq 1, 2, ... in the order written."""
    return [{"seq": seq, **event} for seq, event in enumerate(events, start=1)]


def account(kind: str, account_id: str, ts: float = 0.0) -> dict:
    return {"type": "account", "ts": ts, "kind": kind, "id": account_id, "name": account_id}


def start(call_id: str, ts: float, customer: str = "acme") -> dict:
    return {"type": "call.start", "ts": ts, "call_id": call_id, "customer": customer,
            "cli": "15550001", "dst": "44201234"}


def attempt(call_id: str, ts: float, number: int, carrier: str) -> dict:
    return {"type": "call.attempt", "ts": ts, "call_id": call_id, "attempt": number,
            "carrier": carrier, "route": "44"}


def progress(call_id: str, ts: float, number: int) -> dict:
    return {"type": "call.progress", "ts": ts, "call_id": call_id, "attempt": number, "code": 180}


def answer(call_id: str, ts: float, number: int) -> dict:
    return {"type": "call.answer", "ts": ts, "call_id": call_id, "attempt": number}


def dtmf(call_id: str, ts: float) -> dict:
    return {"type": "call.dtmf", "ts": ts, "call_id": call_id, "digit": "5"}


def attempt_end(call_id: str, ts: float, number: int, code: int) -> dict:
    return {"type": "call.attempt_end", "ts": ts, "call_id": call_id, "attempt": number,
            "code": code}


def end(call_id: str, ts: float, code: int, duration: float = 0.0, **money: float) -> dict:
    return {"type": "call.end", "ts": ts, "call_id": call_id, "code": code,
            "duration": duration, "hangup": "caller", **money}


def reject(ts: float, reason: str, customer: str = "acme") -> dict:
    return {"type": "call.reject", "ts": ts, "customer": customer, "cli": "15550001",
            "dst": "44201234", "code": 503, "reason": reason}


NO_BREACHES = {"channel_limit": 0, "cps_limit": 0, "other": 0}
IDLE_CUSTOMER = customer_report(Totals())


def idle_carrier(consecutive_failures: int = 0) -> dict:
    return carrier_report(Totals(), consecutive_failures)


def answered_call_with_failover(call_id: str = "k1", t: float = 1000.0) -> list[dict]:
    """c1 rings after 0.5 s and fails 503; c2 rings after 1.25 s and is answered for 90 s."""
    return [
        start(call_id, t),
        attempt(call_id, t + 0.010, 1, "c1"),
        progress(call_id, t + 0.510, 1),
        attempt_end(call_id, t + 1.000, 1, 503),
        attempt(call_id, t + 1.010, 2, "c2"),
        progress(call_id, t + 2.260, 2),
        progress(call_id, t + 3.000, 2),  # only the first progress of an attempt counts
        answer(call_id, t + 5.000, 2),
        dtmf(call_id, t + 10.000),
        attempt_end(call_id, t + 95.000, 2, 200),
        end(call_id, t + 95.000, 200, 90.0, charge=0.03, cost=0.02),
    ]


def test_reference_answered_call_with_failover():
    report = reference_report(numbered(
        account("customer", "acme"), account("carrier", "c1"), account("carrier", "c2"),
        account("carrier", "c3"), *answered_call_with_failover(),
    ))
    assert report["customers"] == {"acme": {
        "attempts": 1, "answered": 1, "asr": 100.0, "ner": 100.0, "acd": 90.0, "minutes": 1.5,
        "pdd_ms": 510.0, "dtmf_pct": 100.0, "revenue": 0.03, "cost": 0.02, "profit": 0.01,
        "breaches": NO_BREACHES,
    }}
    assert report["carriers"] == {
        "c1": {"attempts": 1, "answered": 0, "asr": 0.0, "ner": 0.0, "acd": None,
               "minutes": 0.0, "pdd_ms": 500.0, "revenue": 0.0, "cost": 0.0, "profit": 0.0,
               "consecutive_failures": 1, "code_200": 0, "code_404": 0},
        "c2": {"attempts": 1, "answered": 1, "asr": 100.0, "ner": 100.0, "acd": 90.0,
               "minutes": 1.5, "pdd_ms": 1250.0, "revenue": 0.03, "cost": 0.02, "profit": 0.01,
               "consecutive_failures": 0, "code_200": 1, "code_404": 0},
        "c3": idle_carrier(),
    }


def test_reference_closes_a_silent_call_as_lost_after_an_hour():
    report = reference_report(numbered(
        start("k1", 0.0),
        attempt("k1", 0.2, 1, "c1"),
        progress("k1", 1.5, 1),
        account("carrier", "c2", ts=3601.5),  # exactly an hour after k1's last event: still open
        start("k2", 3601.5),
        attempt("k2", 3601.55, 1, "c2"),
        attempt_end("k2", 3601.6, 1, 200),  # answered, but k2 never ends; k1 is now lost
        end("k1", 3602.0, 200, 60.0, charge=1.0),  # too late: ignored
        account("carrier", "c2", ts=7202.0),  # k2 is lost too: its answered attempt now counts
    ))
    assert report["customers"]["acme"] == {
        "attempts": 2, "answered": 0, "asr": 0.0, "ner": 0.0, "acd": None, "minutes": 0.0,
        "pdd_ms": 1500.0, "dtmf_pct": None, "revenue": 0.0, "cost": 0.0, "profit": 0.0,
        "breaches": NO_BREACHES,
    }
    assert report["carriers"]["c1"] == {
        "attempts": 1, "answered": 0, "asr": 0.0, "ner": 0.0, "acd": None, "minutes": 0.0,
        "pdd_ms": 1300.0, "revenue": 0.0, "cost": 0.0, "profit": 0.0, "consecutive_failures": 0,
        "code_200": 0, "code_404": 0,
    }
    assert report["carriers"]["c2"] == {
        "attempts": 1, "answered": 1, "asr": 100.0, "ner": 100.0, "acd": 0.0, "minutes": 0.0,
        "pdd_ms": None, "revenue": 0.0, "cost": 0.0, "profit": 0.0, "consecutive_failures": 0,
        "code_200": 1, "code_404": 0,
    }


def test_reference_loses_a_call_only_strictly_after_the_hour():
    feed = numbered(
        start("k1", 0.0), attempt("k1", 0.5, 1, "c1"),
        account("carrier", "c2", ts=3600.5),  # exactly an hour: k1 is still open
        attempt_end("k1", 3600.5, 1, 200), end("k1", 3600.5, 200, 3000.0),
    )
    assert reference_report(feed)["customers"]["acme"]["answered"] == 1
    assert reference_report(feed, lost_after_s=3599.0)["customers"]["acme"]["answered"] == 0


def test_reference_counts_an_answered_attempt_only_once_its_call_ends():
    feed = numbered(
        start("k1", 10.0), attempt("k1", 10.1, 1, "c1"), answer("k1", 12.0, 1),
        attempt_end("k1", 70.0, 1, 200),
    )
    assert reference_report(feed)["carriers"]["c1"] == idle_carrier()
    assert reference_report(feed)["customers"]["acme"] == IDLE_CUSTOMER


def test_reference_ignores_duplicates_and_events_of_ended_or_unknown_calls():
    feed = numbered(reject(999.0, "balance"), *answered_call_with_failover())
    replayed_feed = [
        *feed[:6],
        *feed[:6],  # a resume resends seq 1 to 6, the reject included
        *feed[6:],
        {**start("k9", 1100.0), "seq": 3},  # an old seq, even with a new body
        {"seq": 20, **dtmf("k1", 1100.0)},  # after the call ended
        {"seq": 21, **end("k1", 1100.0, 200, 500.0, charge=9.0)},  # a second call.end
        {"seq": 22, **attempt("ghost", 1100.0, 1, "c3")},  # an unknown call
        {"seq": 23, **attempt_end("ghost", 1100.0, 1, 503)},
        {"type": "heartbeat", "ts": 1100.0, "last_seq": 23},  # not an event
        {"seq": 24, "type": "call.nonsense", "ts": 1100.0},  # not a valid event
    ]
    report = reference_report(replayed_feed)
    assert report == reference_report(feed)
    assert report["customers"]["acme"]["attempts"] == 1
    assert report["customers"]["acme"]["breaches"] == {
        "channel_limit": 0, "cps_limit": 0, "other": 1,
    }
    assert list(report["carriers"]) == ["c1", "c2"]  # the ghost's c3 never appears


def test_reference_range_is_half_open_on_start_and_attempt_times():
    feed = numbered(
        reject(99.9, "cps_limit"),
        reject(100.0, "channel_limit"),
        reject(150.0, "no_route"),
        reject(200.0, "channel_limit"),
        start("early", 99.0), attempt("early", 100.0, 1, "c1"),  # attempt in range, call not
        attempt_end("early", 101.0, 1, 404), end("early", 101.0, 404),
        start("inside", 100.0), attempt("inside", 100.5, 1, "c1"),
        attempt_end("inside", 102.0, 1, 486), end("inside", 102.0, 486),
        start("late", 199.5), attempt("late", 200.0, 1, "c2"),  # call in range, attempt not
        attempt_end("late", 230.0, 1, 200), end("late", 230.0, 200, 30.0, charge=0.5, cost=0.25),
        start("after", 200.0, customer="globex"), end("after", 201.0, 503),
    )
    report = reference_report(feed, time_from=100.0, time_to=200.0)
    assert report["customers"] == {
        "acme": {
            "attempts": 2, "answered": 1, "asr": 50.0, "ner": 100.0, "acd": 30.0, "minutes": 0.5,
            "pdd_ms": None, "dtmf_pct": 0.0, "revenue": 0.5, "cost": 0.25, "profit": 0.25,
            "breaches": {"channel_limit": 1, "cps_limit": 0, "other": 1},
        },
        "globex": IDLE_CUSTOMER,  # seen, but nothing of it in range
    }
    assert report["carriers"] == {
        "c1": {"attempts": 2, "answered": 0, "asr": 0.0, "ner": 50.0, "acd": None,
               "minutes": 0.0, "pdd_ms": None, "revenue": 0.0, "cost": 0.0, "profit": 0.0,
               "consecutive_failures": 0, "code_200": 0, "code_404": 1},
        "c2": idle_carrier(),  # its one attempt is at 200.0, just outside
    }


def test_reference_consecutive_failures_ignore_the_range():
    feed = numbered(
        start("k1", 10.0), attempt("k1", 10.0, 1, "c1"), answer("k1", 11.0, 1),
        attempt_end("k1", 20.0, 1, 200), end("k1", 20.0, 200, 9.0),
        *(event for n in range(3) for event in (
            start(f"f{n}", 30.0 + n), attempt(f"f{n}", 30.0 + n, 1, "c1"),
            attempt_end(f"f{n}", 30.5 + n, 1, 503 if n != 1 else 486),  # 486 is not a failure
            end(f"f{n}", 30.5 + n, 503),
        )),
    )
    assert reference_report(feed, time_to=15.0)["carriers"]["c1"]["consecutive_failures"] == 2
    configured = reference_report(feed, failure_codes=frozenset({486, 503}))
    assert configured["carriers"]["c1"]["consecutive_failures"] == 3


# The reference against store.metrics, on random well-formed feeds.

@st.composite
def scripted_calls(draw, call_id: str) -> dict:
    """One complete call: failed attempts, maybe an answered last one, and its end."""
    start_ms = draw(st.integers(0, 1_000_000))
    plan = draw(st.lists(st.tuples(
        st.sampled_from(CARRIERS), codes.filter(lambda code: code and not is_2xx(code)),
        st.none() | st.integers(0, 5000),
    ), max_size=3))
    answered = draw(st.booleans())
    if answered:
        plan.append((draw(st.sampled_from(CARRIERS)), 200, draw(st.integers(0, 5000))))
    return {
        "call_id": call_id,
        "customer": draw(st.sampled_from(CUSTOMERS)),
        "start_ms": start_ms,
        "plan": plan,
        "answered": answered,
        "duration_ms": draw(st.integers(0, 600_000)) if answered else 0,
        "dtmf": draw(st.integers(0, 2)) if answered else 0,
        "charge_micro": draw(money_micro) if answered else 0,
        "cost_micro": draw(money_micro) if answered else 0,
        "end_code": 200 if answered else draw(codes.filter(lambda code: code >= 300)),
    }


def script_events(script: dict) -> tuple[list[tuple[int, dict]], CallRecord]:
    """The timed events of a scripted call, and the record the store would keep of it."""
    call_id, now = script["call_id"], script["start_ms"]
    events = [(now, start(call_id, now / 1000, script["customer"]))]
    attempts = []
    for number, (carrier, code, progress_after) in enumerate(script["plan"], start=1):
        attempt_ms = now = now + 10
        events.append((now, attempt(call_id, now / 1000, number, carrier)))
        progress_ms = None
        if progress_after is not None:
            progress_ms = now = now + progress_after
            events.append((now, progress(call_id, now / 1000, number)))
        if is_2xx(code):
            events.append((now, answer(call_id, now / 1000, number)))
            events.extend((now, dtmf(call_id, now / 1000)) for _ in range(script["dtmf"]))
            now += script["duration_ms"]
        now += 5
        events.append((now, attempt_end(call_id, now / 1000, number, code)))
        attempts.append(AttemptRecord(
            carrier=carrier, route="44", attempt=number, start_ms=attempt_ms, end_ms=now,
            code=code, progress_ms=progress_ms,
            duration_ms=script["duration_ms"] if is_2xx(code) else 0,
            cost_micro=script["cost_micro"] if is_2xx(code) else 0,
            charge_micro=script["charge_micro"] if is_2xx(code) else 0,
        ))
    money = {}
    if script["answered"]:
        money = {"charge": script["charge_micro"] / 1_000_000,
                 "cost": script["cost_micro"] / 1_000_000}
    events.append((now, end(call_id, now / 1000, script["end_code"],
                            script["duration_ms"] / 1000, **money)))
    first_progress = [a.progress_ms for a in attempts if a.progress_ms is not None]
    record = CallRecord(
        call_id=call_id, customer=script["customer"], start_ms=script["start_ms"], end_ms=now,
        code=script["end_code"], duration_ms=script["duration_ms"],
        charge_micro=script["charge_micro"], cost_micro=script["cost_micro"],
        progress_ms=first_progress[0] if first_progress else None,
        dtmf_count=script["dtmf"], attempts=tuple(attempts),
    )
    return events, record


@settings(max_examples=100, deadline=None)
@given(
    scripts=st.integers(0, 12).flatmap(
        lambda count: st.tuples(*(scripted_calls(f"k{n}") for n in range(count)))
    ),
    bounds=st.tuples(st.none() | st.integers(0, 1_000_000), st.none() | st.integers(0, 1_000_000)),
)
def test_reference_agrees_with_store_metrics(scripts, bounds):
    timed, records = [], []
    for script in scripts:
        events, record = script_events(script)
        timed.extend(events)
        records.append(record)
    timed.sort(key=lambda pair: pair[0])  # stable: a call's own events keep their order
    feed = numbered(*(event for _, event in timed))
    time_from, time_to = (None if bound is None else bound / 1000 for bound in bounds)

    def in_range(ms: int) -> bool:
        ts = ms / 1000
        return (time_from is None or ts >= time_from) and (time_to is None or ts < time_to)

    customer_totals: dict[str, Totals] = defaultdict(Totals)
    carrier_totals: dict[str, Totals] = defaultdict(Totals)
    for record in records:
        if in_range(record.start_ms):
            customer_totals[record.customer].add(call_totals(record))
        for attempt_record in record.attempts:
            if in_range(attempt_record.start_ms):
                carrier_totals[attempt_record.carrier].add(attempt_totals(attempt_record))
    health = ConsecutiveFailures()
    for event in feed:
        if event["type"] == "call.answer":
            health.answered(next(a.carrier for r in records if r.call_id == event["call_id"]
                                 for a in r.attempts if a.attempt == event["attempt"]))
        elif event["type"] == "call.attempt":
            health.counters.setdefault(event["carrier"], 0)
        elif event["type"] == "call.attempt_end":
            carrier = next(a.carrier for r in records if r.call_id == event["call_id"]
                           for a in r.attempts if a.attempt == event["attempt"])
            health.attempt_ended(carrier, event["code"])

    report = reference_report(feed, time_from=time_from, time_to=time_to)
    assert report["customers"] == {
        customer: customer_report(customer_totals[customer])
        for customer in sorted({record.customer for record in records})
    }
    assert report["carriers"] == {
        carrier: carrier_report(carrier_totals[carrier], failures)
        for carrier, failures in sorted(health.counters.items())
    }


def test_never_404_flags_a_carrier_that_answers_but_never_says_404():
    answering = Totals(attempts=300, answered=300, code_200=300)
    assert never_404(answering, busy_attempts=200)
    assert not never_404(Totals(attempts=300, answered=299, code_200=299, code_404=1),
                         busy_attempts=200)
    down = Totals(attempts=3_000)  # every attempt a 503: an outage, not false answers
    assert not never_404(down, busy_attempts=200)
