"""The metric definitions of feed protocol v1, as pure functions.

Everything additive is kept as integers (milliseconds, micro-units of currency) so that a sum is
the same whatever order it is taken in: a rollup of rollups equals a scan of the calls, figure for
figure. Ratios are computed only at the end, from those sums, by the functions below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from operator import attrgetter

import msgspec

MICRO = 1_000_000
NER_CODES = frozenset({486, 600, 603, 480, 487})
DEFAULT_FAILURE_CODES = frozenset({408, *range(500, 600)})
LOST_CODE = 0


def to_ms(seconds: float) -> int:
    """Seconds (a feed number with up to millisecond precision) to whole milliseconds."""
    return round(seconds * 1000)


def to_micro(amount: float) -> int:
    """An amount of money to whole micro-units."""
    return round(amount * MICRO)


def is_answered(code: int) -> bool:
    return 200 <= code < 300


def is_network_effective(code: int) -> bool:
    return is_answered(code) or code in NER_CODES


# Records are msgspec Structs, not dataclasses: the writer builds one per call and attempt, and a
# frozen Struct is several times cheaper to make than a frozen dataclass.


class AttemptRecord(msgspec.Struct, frozen=True, gc=False):
    """A carrier attempt, as ended. An answered attempt carries its call's money and times:
    `duration_ms`, `cost_micro`, and `billed_ms` and `charge_micro` (what the customer paid for
    the call this carrier answered: the carrier's billed time and revenue)."""

    carrier: str
    route: str
    attempt: int
    start_ms: int
    end_ms: int
    code: int
    progress_ms: int | None = None
    duration_ms: int = 0
    cost_micro: int = 0
    reason: str | None = None
    billed_ms: int = 0
    charge_micro: int = 0


class CallRecord(msgspec.Struct, frozen=True, gc=False):
    """One call as ended (its CDR)."""

    call_id: str
    customer: str
    start_ms: int
    end_ms: int
    code: int
    cli: str = ""
    dst: str = ""
    route: str = ""
    duration_ms: int = 0
    billed_ms: int = 0
    charge_micro: int = 0
    cost_micro: int = 0
    progress_ms: int | None = None
    dtmf_count: int = 0
    hangup: str = ""
    attempts: tuple[AttemptRecord, ...] = ()


PEAK_FIELDS = ("peak_cps", "peak_channels")


@dataclass(slots=True)
class Totals:
    """Additive counters for one account (and route) over one bucket; peaks merge by max."""

    attempts: int = 0
    answered: int = 0
    ner_answered: int = 0
    duration_ms: int = 0
    billed_ms: int = 0
    pdd_sum_ms: int = 0
    pdd_count: int = 0
    dtmf_calls: int = 0
    revenue_micro: int = 0
    cost_micro: int = 0
    code_200: int = 0
    code_404: int = 0
    failover: int = 0
    failover_answered: int = 0
    lost: int = 0
    breach_channel: int = 0
    breach_cps: int = 0
    breach_other: int = 0
    peak_cps: int = 0
    peak_channels: int = 0

    def add(self, other: Totals) -> Totals:
        for name in COUNTER_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in PEAK_FIELDS:
            setattr(self, name, max(getattr(self, name), getattr(other, name)))
        return self

    def as_tuple(self) -> tuple[int, ...]:
        return _read_totals(self)  # once per ended call or attempt: worth the fast path


TOTALS_FIELDS = tuple(f.name for f in fields(Totals))
_read_totals = attrgetter(*TOTALS_FIELDS)
COUNTER_FIELDS = tuple(name for name in TOTALS_FIELDS if name not in PEAK_FIELDS)


def sum_totals(parts: Iterable[Totals]) -> Totals:
    total = Totals()
    for part in parts:
        total.add(part)
    return total


def call_totals(call: CallRecord) -> Totals:
    """A call's contribution to its customer's totals."""
    return Totals(*call_totals_row(call))


def call_totals_row(call: CallRecord) -> tuple[int, ...]:
    """call_totals as a tuple in TOTALS_FIELDS order: the ingest's form, once per call, with no
    Totals made and read back."""
    return ended_row(call.code, call.start_ms, call.progress_ms, call.duration_ms,
                      call.billed_ms, call.dtmf_count, call.charge_micro, call.cost_micro, True)


def attempt_totals(attempt: AttemptRecord) -> Totals:
    """An ended attempt's contribution to its carrier's totals (failover counted apart)."""
    return Totals(*attempt_totals_row(attempt))


def attempt_totals_row(attempt: AttemptRecord) -> tuple[int, ...]:
    """attempt_totals as a tuple in TOTALS_FIELDS order (see call_totals_row). DTMF is a
    customer's figure; billed time, revenue and cost are those of the call a carrier answered."""
    return ended_row(attempt.code, attempt.start_ms, attempt.progress_ms, attempt.duration_ms,
                      attempt.billed_ms, 0, attempt.charge_micro, attempt.cost_micro, False)


def ended_row(code: int, start_ms: int, progress_ms: int | None, duration_ms: int,
               billed_ms: int, dtmf_count: int, revenue_micro: int, cost_micro: int,
               money_if_failed: bool) -> tuple[int, ...]:
    """The totals of one ended call or attempt, in TOTALS_FIELDS order (positional: the ingest
    calls it for every call and attempt, from live state, with no record made). A customer's
    money counts whatever the call's end (`money_if_failed`); a carrier's only for the calls it
    answered."""
    answered = 200 <= code < 300  # is_answered
    return (
        1,  # attempts
        1 if answered else 0,
        1 if answered or code in NER_CODES else 0,  # ner_answered
        # Only an answered call has talk time; a stray duration on a failed one is not counted.
        duration_ms if answered else 0,
        billed_ms if answered else 0,
        progress_ms - start_ms if progress_ms is not None else 0,  # pdd_sum_ms
        0 if progress_ms is None else 1,  # pdd_count
        1 if answered and dtmf_count > 0 else 0,  # dtmf_calls
        revenue_micro if answered or money_if_failed else 0,
        cost_micro if answered or money_if_failed else 0,
        1 if code == 200 else 0,
        1 if code == 404 else 0,
        0, 0,  # failover, failover_answered: failover_totals
        1 if code == LOST_CODE else 0,  # lost
        0, 0, 0, 0, 0,  # breaches and peaks: not a call's or an attempt's
    )


def ended_totals_sql(*, money_if_failed: bool, dtmf_count: str = "0",
                     next_code: str | None = None) -> str:
    """The totals of many ended calls (`money_if_failed`, their `dtmf_count`) or attempts
    (`next_code`: the code of the attempt after each on its call, NULL if none: failovers) as
    SQL aggregates over their records' columns, in TOTALS_FIELDS order: ended_row and
    failover_totals summed by SQLite, for a span of records (property-tested against them)."""
    answered = "(code BETWEEN 200 AND 299)"

    def if_answered(column: str) -> str:
        return f"sum(CASE WHEN {answered} THEN {column} ELSE 0 END)"

    def money(column: str) -> str:
        return f"sum({column})" if money_if_failed else if_answered(column)

    failover = f"(NOT {answered} AND {next_code} IS NOT NULL)" if next_code else "0"
    return ", ".join((
        "count(*)",  # attempts
        f"sum({answered})",
        f"sum({answered} OR code IN ({', '.join(map(str, sorted(NER_CODES)))}))",
        if_answered("duration_ms"),
        if_answered("billed_ms"),
        "coalesce(sum(progress_ms - start_ms), 0)",  # pdd_sum_ms
        "count(progress_ms)",  # pdd_count
        f"sum({answered} AND {dtmf_count} > 0)",  # dtmf_calls
        money("charge_micro"),  # revenue_micro
        money("cost_micro"),
        "sum(code = 200)",
        "sum(code = 404)",
        f"sum({failover})",
        f"sum({failover} AND {next_code} BETWEEN 200 AND 299)" if next_code else "0",
        f"sum(code = {LOST_CODE})",
        "0, 0, 0, 0, 0",  # breaches and peaks: not a call's or an attempt's
    ))


def failover_totals(failed: AttemptRecord, next_answered: bool) -> Totals:
    """A failed attempt that was followed by another on the same call, for the failed carrier."""
    return Totals(failover=1, failover_answered=int(next_answered))


# failover_totals as rows in TOTALS_FIELDS order, made once (for the ingest).
FAILOVER_ROWS = {answered: Totals(failover=1, failover_answered=int(answered)).as_tuple()
                 for answered in (False, True)}


def breach_totals(reason: str) -> Totals:
    """A `call.reject` by reason: channel limit, CPS limit, or any other."""
    if reason == "channel_limit":
        return Totals(breach_channel=1)
    if reason == "cps_limit":
        return Totals(breach_cps=1)
    return Totals(breach_other=1)


def call_failovers(call: CallRecord) -> list[tuple[AttemptRecord, bool]]:
    """Each failed attempt of a call followed by another, with whether the next one answered."""
    if len(call.attempts) < 2:
        return []  # most calls: nothing to sort
    ordered = sorted(call.attempts, key=lambda a: a.attempt)
    return [
        (current, is_answered(following.code))
        for current, following in zip(ordered, ordered[1:], strict=False)
        if not is_answered(current.code)
    ]


# Ratios, from totals. Each is None where its denominator is zero.


def asr(t: Totals) -> float | None:
    return 100 * t.answered / t.attempts if t.attempts else None


def ner(t: Totals) -> float | None:
    return 100 * t.ner_answered / t.attempts if t.attempts else None


def acd(t: Totals) -> float | None:
    """Average answered duration in seconds."""
    return t.duration_ms / 1000 / t.answered if t.answered else None


def minutes(t: Totals) -> float:
    return t.duration_ms / 60000


def billed_minutes(t: Totals) -> float:
    return t.billed_ms / 60000


def pdd_ms(t: Totals) -> float | None:
    return t.pdd_sum_ms / t.pdd_count if t.pdd_count else None


def pdd_s(t: Totals) -> float | None:
    """PDD as every screen, rule and message reads it: in seconds."""
    return t.pdd_sum_ms / t.pdd_count / 1000 if t.pdd_count else None


def dtmf_pct(t: Totals) -> float | None:
    return 100 * t.dtmf_calls / t.answered if t.answered else None


def revenue(t: Totals) -> float:
    return t.revenue_micro / MICRO


def cost(t: Totals) -> float:
    return t.cost_micro / MICRO


def profit(t: Totals) -> float:
    return (t.revenue_micro - t.cost_micro) / MICRO


def profit_pct(t: Totals) -> float | None:
    """Profit as a share of revenue (margin)."""
    return 100 * (t.revenue_micro - t.cost_micro) / t.revenue_micro if t.revenue_micro else None


def share_404(t: Totals) -> float | None:
    """Code consistency: the share of 404 among attempts that ended 200 or 404."""
    both = t.code_200 + t.code_404
    return 100 * t.code_404 / both if both else None


def never_404(t: Totals, busy_attempts: int = 1000) -> bool:
    """A carrier with many attempts ending 200 or 404 and not one 404 may be answering calls to
    dead numbers. Counted among those codes, as code consistency is: a carrier failing every
    attempt (an outage: 503s) answers nothing and is not suspect of this."""
    return t.code_200 + t.code_404 >= busy_attempts and t.code_404 == 0


# Carrier health counters over an ordered stream.


def is_carrier_failure(code: int, failure_codes: frozenset[int] = DEFAULT_FAILURE_CODES) -> bool:
    return code in failure_codes


@dataclass(slots=True)
class ConsecutiveFailures:
    """Per carrier: `call.answer` resets to 0; an attempt ending in a failure code adds one."""

    failure_codes: frozenset[int] = DEFAULT_FAILURE_CODES
    counters: dict[str, int] = field(default_factory=dict)

    def answered(self, carrier: str) -> None:
        self.counters[carrier] = 0

    def attempt_ended(self, carrier: str, code: int) -> None:
        if code in self.failure_codes:
            self.counters[carrier] = self.counters.get(carrier, 0) + 1
        else:
            self.counters.setdefault(carrier, 0)


def customer_report(t: Totals) -> dict:
    """One customer's figures in the shape of `noc report --json`."""
    return {
        "attempts": t.attempts,
        "answered": t.answered,
        "asr": asr(t),
        "ner": ner(t),
        "acd": acd(t),
        "minutes": minutes(t),
        "pdd_ms": pdd_ms(t),
        "dtmf_pct": dtmf_pct(t),
        "revenue": revenue(t),
        "cost": cost(t),
        "profit": profit(t),
        "breaches": {
            "channel_limit": t.breach_channel,
            "cps_limit": t.breach_cps,
            "other": t.breach_other,
        },
    }


def carrier_report(t: Totals, consecutive_failures: int) -> dict:
    """One carrier's figures in the shape of `noc report --json`."""
    return {
        "attempts": t.attempts,
        "answered": t.answered,
        "asr": asr(t),
        "ner": ner(t),
        "acd": acd(t),
        "minutes": minutes(t),
        "pdd_ms": pdd_ms(t),
        "revenue": revenue(t),
        "cost": cost(t),
        "profit": profit(t),
        "consecutive_failures": consecutive_failures,
        "code_200": t.code_200,
        "code_404": t.code_404,
    }
