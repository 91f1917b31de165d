"""Read models behind every console screen: plain frozen dataclasses read from a noc database.

Summaries come from the rollups, never from a scan of the call table; lists are read along an
index, newest first, and LIMITed. Each public method of ConsoleData opens its own read-only
connection and reads in one transaction, so a view is one consistent snapshot even while the
writer commits. Times are integer ms UTC (series times excepted: Unix seconds, for plotting);
money is in currency units; every ratio comes from store.metrics and is None where it has no
denominator (an empty bucket has no ASR, which is not an ASR of 0).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from heapq import merge
from itertools import islice
from operator import attrgetter
from pathlib import Path

from store import conditions, metrics, models
from store.database import WriterLock, connect, locate
from store.live import LiveAttempt, LiveCall, unpack
from store.metrics import TOTALS_FIELDS, Totals
from store.rollups import ALL_ROUTES, bucket_of

MINUTE_MS, HOUR_MS, DAY_MS = (models.BUCKET_MS[p] for p in ("minute", "hour", "day"))
CUSTOMER, CARRIER = "customer", "carrier"
KINDS = (CUSTOMER, CARRIER)

SEVERITIES = ("info", "warning", "error", "critical")  # least to most severe
FAILURE_SEVERITY = ((1000, "critical"), (200, "error"), (50, "warning"))
NEVER_404_ATTEMPTS = 200
LOW_BALANCE = 50.0
WRITER_STALE_MS = 60_000  # the writer flushes at least every heartbeat (5 s) while connected
SEARCH_WINDOW_MS = 7 * DAY_MS
DECODED_SCOPES = 3  # every customer's, and those of the customers looked at last
PREVIEW_CHARS = 500  # a quarantined frame may be megabytes long
FEED_STATUS_SEVERITY = {"connecting": "warning", "reconnecting": "warning"}  # others: error
IN_FORCE = "('pending', 'sent', 'acked')"  # control request statuses that still stand

# segment -> (rollup period, number of buckets)
SEGMENTS = {"hour": ("minute", 60), "day": ("hour", 24), "week": ("hour", 168),
            "month": ("day", 30)}
SUMMARY_MODES = ("live", "daily", "monthly")

# Graphs plot what ended in each bucket (as alert windows count): a bucket by start would hold
# its failures and short calls but not the calls still talking, and its ASR and ACD would dip at
# the right edge of every graph. Peaks are of what started, when it started.
SERIES: dict[str, Callable[[Totals], float | int | None]] = {
    "attempts": attrgetter("attempts"),
    "answered": attrgetter("answered"),
    "channels": attrgetter("peak_channels"),
    "cps": attrgetter("peak_cps"),
    "asr": metrics.asr,
    "acd": metrics.acd,
    "pdd": metrics.pdd_s,
    "dtmf_pct": metrics.dtmf_pct,
    "ner": metrics.ner,
    "minutes": metrics.minutes,
    "channel_breaches": attrgetter("breach_channel"),
    "cps_breaches": attrgetter("breach_cps"),
}
BY_START = frozenset({"channels", "cps"})

SUMMARY_COLUMNS = ("Date", "Attempts", "In progress", "Connected", "ASR", "ACD", "Duration",
                   "Billed", "Revenue", "Cost", "Profit", "Profit %", "PDD", "NER")

TOTALS_SUMS = ", ".join(f"coalesce(sum({name}), 0)" for name in TOTALS_FIELDS)
BREACH_FIELDS = ("breach_channel", "breach_cps", "breach_other")
# A carrier's attempts (a) that failed, answered by the next attempt (b), of call c, since then.
FAILED_OVER = ("FROM attempt a JOIN attempt b ON b.call_seq = a.call_seq "
               "AND b.attempt = a.attempt + 1 JOIN call c ON c.seq = a.call_seq "
               "WHERE a.carrier = ? AND a.start_ms >= ? AND a.code NOT BETWEEN 200 AND 299 "
               "AND b.code BETWEEN 200 AND 299")

# A customer's routes, found by hopping along the rollups' primary key (kind, account, route,
# bucket) from one route to the next: one index probe per route, whatever the history's length.
KNOWN_ROUTES = """
WITH RECURSIVE known(route) AS (
    SELECT min(route) FROM rollup_hour WHERE kind = 'customer' AND account = :customer
        AND route > ''
    UNION ALL
    SELECT (SELECT min(route) FROM rollup_hour WHERE kind = 'customer' AND account = :customer
        AND route > known.route)
    FROM known WHERE known.route IS NOT NULL
)
"""


# Views ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedView:
    status: str  # never connected, connecting, connected, reconnecting, refused, stopped
    detail: str
    reconnect_at_ms: int | None
    connected_since_ms: int | None
    last_frame_ms: int | None
    last_seq: int
    events: int
    duplicates: int
    quarantined: int
    gaps: int
    lost_calls: int
    capped_calls: int
    updated_ms: int
    newest_ms: int
    writer_pid: int | None
    feed_url: str
    writer_running: bool  # some process holds the writer lock of the database
    # What the writer says of its store (in its lock file: it may be unable to write here).
    store_troubles: tuple[StoreTrouble, ...] = ()  # writes failing now, the ingest's first
    store_findings: tuple[str, ...] = ()  # what the start-up check found wrong
    writer_stopped: str = ""  # why the last writer stopped, if its store made it
    catching_up: tuple[int, int] | None = None  # (seq stored, the feed's head) while behind

    @property
    def store_trouble(self) -> StoreTrouble | None:
        return self.store_troubles[0] if self.store_troubles else None

    @property
    def caught_up_pct(self) -> int | None:
        """The share of the feed stored while the writer catches up a backlog (a demo's day of
        history, a switch's after an outage), in whole %; None when it is current."""
        if self.catching_up is None or self.status != "connected":
            return None
        stored, head = self.catching_up
        return min(99, 100 * stored // head) if head else 0


@dataclass(frozen=True)
class StoreTrouble:
    part: str  # what cannot write: "ingest", "alert engine", "control requests", ...
    cause: str  # "disk full"
    detail: str  # SQLite's words
    since_ms: int
    tries: int
    retry_at_ms: int | None

    def retry_in_s(self, now_ms: int) -> float | None:
        return None if self.retry_at_ms is None else max(0.0, (self.retry_at_ms - now_ms) / 1000)


WRITER_FIELDS = ("writer_running", "store_troubles", "store_findings", "writer_stopped",
                 "catching_up")
FEED_COLUMNS = tuple(f.name for f in fields(FeedView) if f.name not in WRITER_FIELDS)


@dataclass(frozen=True)
class Balance:
    id: str
    name: str
    balance: float | None
    currency: str | None
    low: bool


@dataclass(frozen=True)
class CarrierHealth:
    id: str
    name: str
    consecutive_failures: int
    channels: int


@dataclass(frozen=True)
class Check:
    """An open problem, for the dashboard's checklist."""

    severity: str  # one of SEVERITIES
    subject: tuple[str, str]  # ("customer"|"carrier", id), ("feed", ""|"gaps"|"quarantine")
    text: str
    rule: str = ""  # the alert rule firing, for the engine's alerts; "" for the console's own
    area: str = ""  # what an alert rule would watch to say the same (a rule's area)
    muted: bool = False  # acknowledged or silenced: still open, listed after the others


@dataclass(frozen=True)
class DashboardView:
    feed: FeedView
    channels: int  # live channels of all customers
    channel_limit: int | None  # sum of the customers' channel limits; None when none is set
    cps: int  # calls per second of all customers, now
    balances: tuple[Balance, ...]  # customers, low ones first
    carriers: tuple[CarrierHealth, ...]  # most consecutive failures first
    checks: tuple[Check, ...]  # most severe first


@dataclass(frozen=True)
class SeriesView:
    segment: str
    times: tuple[int, ...]  # bucket starts, Unix seconds, oldest first, every bucket present
    series: Mapping[str, tuple[float | int | None, ...]]  # metric (SERIES) -> values, in total
    per_account: Mapping[str, Mapping[str, tuple[float | int | None, ...]]]  # metric -> id -> ...


@dataclass(frozen=True)
class CodeCount:
    code: int
    count: int
    share_pct: float


@dataclass(frozen=True)
class AccountRow:
    kind: str
    id: str
    name: str
    balance: float | None
    currency: str | None
    low_balance: bool
    enabled: bool
    status: str  # penalty, disabled, inactive (no call in 24 h) or active, in that precedence
    penalty_until_ms: int | None
    channels: int
    channel_limit: int | None
    cps: int
    cps_limit: float | None
    attempts: int  # over the last hour, as are asr, acd and pdd_ms
    asr: float | None
    acd: float | None
    pdd_ms: float | None
    last_call_ms: int | None
    consecutive_failures: int | None  # carriers only


# An account list's sorts: ORDER BY over the account (a), its live figures (l), its carrier
# state (c) and its last hour (h); ties go by id. Trouble first where the figure has a side.
FAILING = min(threshold for threshold, _ in FAILURE_SEVERITY)  # consecutive failures: a warning
# Failing, at a limit or low on credit, the worst first (penalised and disabled accounts are put
# before them all, in Python: whether a penalty stands is not a column).
TROUBLE = (f"CASE WHEN coalesce(c.consecutive_failures, 0) >= {FAILING} THEN 1 ELSE 0 END "
           "+ CASE WHEN a.channels > 0 AND coalesce(l.channels, 0) >= a.channels THEN 1 ELSE 0 END "
           "+ CASE WHEN a.cps > 0 AND coalesce(l.cps, 0) >= a.cps THEN 1 ELSE 0 END "
           "+ CASE WHEN a.kind = 'customer' AND a.balance < :low THEN 1 ELSE 0 END")
ACCOUNT_SORTS = {
    "trouble": f"{TROUBLE} DESC, coalesce(c.consecutive_failures, 0) DESC, casefold(a.name)",
    "name": "casefold(a.name)",
    "channels": "coalesce(l.channels, 0) DESC, casefold(a.name)",
    "asr": "coalesce(h.attempts, 0) = 0, 1.0 * h.answered / h.attempts, h.attempts DESC",
    "attempts": "coalesce(h.attempts, 0) DESC, casefold(a.name)",
    "failures": "coalesce(c.consecutive_failures, 0) DESC, casefold(a.name)",
    "balance": "a.balance IS NULL, a.balance, casefold(a.name)",
}


@dataclass(frozen=True)
class AccountPage:
    """Some rows of an account list, as it is searched and sorted."""

    total: int  # accounts of the kind
    matched: int  # of them, those the search found
    offset: int  # the first row's place among those found, in the sort's order
    rows: tuple[AccountRow, ...]
    kept: int | None = None  # where the account asked to be kept stands; None if not found


@dataclass(frozen=True)
class SummaryRow:
    bucket_ms: int
    label: str  # UTC: "2025-11-21 04:00", "2025-11-21" or "2025-11"
    totals: Totals  # of the calls (attempts) that have ended
    in_progress: int = 0  # calls (attempts) of the bucket not ended yet: the bucket is open

    @property
    def open(self) -> bool:
        return self.in_progress > 0


@dataclass(frozen=True)
class RouteStat:
    route: str  # '' gathers the rejects whose number matches no known route
    channels: int  # now
    attempts: int  # the rest over the window
    answered: int
    asr: float | None
    acd: float | None
    channel_breaches: int
    cps_breaches: int
    other_breaches: int


@dataclass(frozen=True)
class CallRow:
    """An ended call, or a reject (no carrier, no attempt, `reason` says why it was refused)."""

    seq: int
    call_id: str
    start_ms: int
    customer: str
    cli: str
    dst: str
    route: str
    carrier: str  # the carrier that answered, else the last one tried
    code: int
    duration_s: float
    attempts: int
    charge: float
    pdd_ms: int | None
    hangup: str
    rejected: bool = False
    reason: str = ""


@dataclass(frozen=True)
class CarrierCallRow:
    """One attempt on a carrier, with its call."""

    call_seq: int
    call_id: str
    attempt: int
    start_ms: int
    customer: str
    cli: str
    dst: str
    route: str
    code: int
    reason: str
    duration_s: float
    pdd_ms: int | None
    cost: float
    call_code: int  # what the customer got in the end


@dataclass(frozen=True)
class AttemptRow:
    attempt: int
    carrier: str
    route: str
    start_ms: int
    end_ms: int | None  # None while the attempt goes on
    code: int | None
    reason: str
    pdd_ms: int | None
    duration_s: float
    ended: bool


@dataclass(frozen=True)
class DialogRow:
    seq: int
    call_id: str
    customer: str
    cli: str
    dst: str
    route: str
    carrier: str
    attempt: int  # the number of the latest attempt, 0 before the first
    state: str  # trying, ringing, answered
    start_ms: int
    age_s: float
    answered_s: float | None


@dataclass(frozen=True)
class CodeConsistency:
    code_200: int
    code_404: int
    share_404: float | None


@dataclass(frozen=True)
class CarrierMainView:
    carrier: str
    name: str
    channels: int
    consecutive_failures: int
    failures_updated_ms: int | None
    codes_24h: CodeConsistency
    codes_all_time: CodeConsistency
    never_404: bool  # busy over 24 h and not one 404: may answer calls to dead numbers
    failover: int  # over 24 h: failed attempts followed by another attempt on the call
    failover_answered: int  # ... of which the next attempt answered
    last_24h: Totals


@dataclass(frozen=True)
class FailoverRow:
    call_seq: int
    call_id: str
    start_ms: int
    customer: str
    cli: str
    dst: str
    route: str
    failed_code: int
    failed_reason: str
    answered_by: str
    duration_s: float


@dataclass(frozen=True)
class QuarantineRow:
    id: int
    received_ms: int
    seq: int | None
    reason: str
    preview: str  # the start of the raw input (all of it from feed_trouble); see quarantine_raw


@dataclass(frozen=True)
class GapRow:
    id: int
    from_seq: int
    to_seq: int
    events: int
    detected_ms: int
    announced: bool


@dataclass(frozen=True)
class ControlRow:
    id: str
    created_ms: int
    action: str
    kind: str
    account: str
    call_id: str
    until_ms: int | None
    reason: str
    requested_by: str
    status: str  # pending, sent, acked, failed
    error: str
    done_ms: int | None
    name: str  # the account's display name ("" for a call, its id where it has none)
    penalty: bool  # a disable still standing, with its end in the future


CONTROL_COLUMNS = tuple(f"c.{f.name}" for f in fields(ControlRow)
                        if f.name not in ("name", "penalty"))


# Helpers for the screens ----------------------------------------------------------------------

OPEN = "open"


def summary_cells(row: SummaryRow) -> tuple:
    """A summary row as the values of SUMMARY_COLUMNS (durations in minutes, PDD in seconds,
    money in units).
    Of an open row, the sums so far, its calls in progress, and OPEN for its ratios: its
    answered calls are the ones still talking, so they would read low (feed protocol)."""
    t = row.totals

    def ratio(value: float | None) -> float | str | None:
        return OPEN if row.open else value

    return (row.label, t.attempts, row.in_progress or None, t.answered, ratio(metrics.asr(t)),
            ratio(metrics.acd(t)), metrics.minutes(t), metrics.billed_minutes(t),
            metrics.revenue(t), metrics.cost(t), metrics.profit(t), ratio(metrics.profit_pct(t)),
            ratio(metrics.pdd_s(t)), ratio(metrics.ner(t)))


def summary_total(rows: Iterable[SummaryRow]) -> SummaryRow:
    """The figures of several rows together (true ratios, not an average of averages)."""
    rows = list(rows)
    start = min((row.bucket_ms for row in rows), default=0)
    return SummaryRow(start, "Total", metrics.sum_totals(row.totals for row in rows),
                      sum(row.in_progress for row in rows))


def failures_severity(consecutive_failures: int) -> str | None:
    for threshold, severity in FAILURE_SEVERITY:
        if consecutive_failures >= threshold:
            return severity
    return None


# Reading --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """Whole buckets of one rollup period, [start_ms, end_ms), the last one holding `now`;
    `ended`: of the rollups by the time calls and attempts ended, not started."""

    period: str
    start_ms: int
    end_ms: int
    ended: bool = False

    @classmethod
    def ending_at(cls, now_ms: int, period: str, count: int) -> Window:
        end = bucket_of(now_ms, period) + models.BUCKET_MS[period]
        return cls(period, end - count * models.BUCKET_MS[period], end)

    @property
    def table(self) -> str:
        tables = models.ENDED_TABLES if self.ended else models.ROLLUP_TABLES
        return tables[self.period].__tablename__

    def by_end(self) -> Window:
        return replace(self, ended=True)

    def buckets(self) -> range:
        return range(self.start_ms, self.end_ms, models.BUCKET_MS[self.period])


def _scope(kind: str, account: str | Sequence[str] | None) -> tuple[str, dict]:
    """One account, some (a sequence of ids), or every account of a kind listed through the
    account table, so that the rollups' primary key is probed account by account instead of
    scanned."""
    if account is None:
        return "kind = :kind AND account IN (SELECT id FROM account WHERE kind = :kind)", {
            "kind": kind}
    if not isinstance(account, str):
        return "kind = :kind AND account IN (SELECT value FROM json_each(:accounts))", {
            "kind": kind, "accounts": json.dumps(list(account))}
    return "kind = :kind AND account = :account", {"kind": kind, "account": account}


def _bucket_totals(db: sqlite3.Connection, window: Window, kind: str, account: str | None,
                   keys: tuple[str, ...] = ()) -> Iterator[tuple[tuple, int, Totals]]:
    """Account totals (route '') per `keys` and bucket over a window. Accounts in one bucket add
    up, peaks too (the sum of the accounts' peaks, an upper bound of their joint peak)."""
    where, params = _scope(kind, account)
    group = ", ".join((*keys, "bucket"))
    rows = db.execute(
        f"SELECT {group}, {TOTALS_SUMS} FROM {window.table} WHERE {where} AND route = :route "
        f"AND bucket >= :start AND bucket < :end GROUP BY {group}",
        {**params, "route": ALL_ROUTES, "start": window.start_ms, "end": window.end_ms},
    )
    width = len(keys)
    for row in rows:
        yield row[:width], row[width], Totals(*row[width + 1:])


def _totals_by_bucket(db: sqlite3.Connection, window: Window, kind: str,
                      account: str | None) -> dict[int, Totals]:
    return {bucket: totals for _, bucket, totals in _bucket_totals(db, window, kind, account)}


def _totals_by_account(db: sqlite3.Connection, window: Window, kind: str,
                       account: str | Sequence[str] | None = None) -> dict[str, Totals]:
    """Per account over the whole window (buckets merged: counters add, peaks by max)."""
    found: dict[str, Totals] = defaultdict(Totals)
    for (each,), _, totals in _bucket_totals(db, window, kind, account, ("account",)):
        found[each].add(totals)
    return found


@dataclass(frozen=True)
class _Account:
    kind: str
    id: str
    name: str
    channels: int | None
    cps: float | None
    balance: float | None
    currency: str | None
    enabled: bool


def _accounts(db: sqlite3.Connection, kind: str | None = None,
              ids: Sequence[str] | None = None) -> list[_Account]:
    """Every account (of a kind), or those of a kind with these ids, in id order."""
    columns = ", ".join(f.name for f in fields(_Account))
    if kind is None:
        rows = db.execute(f"SELECT {columns} FROM account ORDER BY kind, id")
    elif ids is None:
        rows = db.execute(f"SELECT {columns} FROM account WHERE kind = ? ORDER BY id", (kind,))
    else:
        rows = db.execute(f"SELECT {columns} FROM account WHERE kind = ? AND id IN "
                          "(SELECT value FROM json_each(?)) ORDER BY id", (kind, json.dumps(ids)))
    return [_Account(*row[:7], bool(row[7])) for row in rows]


def _live(db: sqlite3.Connection, kind: str | None = None,
          ids: Sequence[str] | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """(kind, id) -> (channels, calls per second), as of the writer's last flush; of every
    account, or of those of a kind with these ids."""
    if ids is None:
        rows = db.execute("SELECT kind, id, channels, cps FROM live_account")
    else:
        rows = db.execute("SELECT kind, id, channels, cps FROM live_account WHERE kind = ? AND "
                          "id IN (SELECT value FROM json_each(?))", (kind, json.dumps(ids)))
    return {(kind, account): (channels, cps) for kind, account, channels, cps in rows}


def _failures(db: sqlite3.Connection,
              ids: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
    """carrier -> (consecutive failures, updated_ms), of every carrier or of these."""
    if ids is None:
        rows = db.execute("SELECT carrier, consecutive_failures, updated_ms FROM carrier_state")
    else:
        rows = db.execute("SELECT carrier, consecutive_failures, updated_ms FROM carrier_state "
                          "WHERE carrier IN (SELECT value FROM json_each(?))", (json.dumps(ids),))
    return {carrier: (count, updated) for carrier, count, updated in rows}


def _gaps(db: sqlite3.Connection) -> list[GapRow]:
    rows = db.execute("SELECT id, from_seq, to_seq, detected_ms, announced FROM gap "
                      "ORDER BY id DESC").fetchall()
    return [GapRow(gap_id, first, last, last - first + 1, detected, bool(announced))
            for gap_id, first, last, detected, announced in rows]


def _penalties(db: sqlite3.Connection, now_ms: int) -> dict[tuple[str, str], tuple[int, str]]:
    """(kind, account) -> (until_ms, request id) of the latest standing disable that ends in the
    future, unless a later enable stands."""
    return {key: (until_ms, request_id)
            for key, (until_ms, request_id, _) in _standing_penalties(db, now_ms).items()}


def _standing_penalties(db: sqlite3.Connection,
                        now_ms: int) -> dict[tuple[str, str], tuple[int, str, str]]:
    """_penalties, with each one's reason."""
    found: dict[tuple[str, str], tuple[int, str, str]] = {}
    for request_id, action, kind, account, until_ms, reason in db.execute(
        "SELECT id, action, kind, account, until_ms, reason FROM control_request "
        f"WHERE action IN ('disable', 'enable') AND status IN {IN_FORCE} ORDER BY created_ms"
    ):
        if action == "disable" and until_ms is not None and until_ms > now_ms:
            found[(kind, account)] = (until_ms, request_id, reason)
        else:
            found.pop((kind, account), None)
    return found


def _month_start(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _pdd(progress_ms: int | None, start_ms: int) -> int | None:
    return progress_ms - start_ms if progress_ms is not None else None


@dataclass(frozen=True)
class _Search:
    """The filters of the call lists: a number (substring of cli or dst), a code, a carrier."""

    number: str = ""
    code: int | None = None
    carrier: str = ""

    def sql(self, *, cli: str = "cli", dst: str = "dst", code: str = "code",
            carrier: str = "carrier") -> tuple[str, dict]:
        """' AND ...' conditions on the given columns, and their parameters."""
        clauses, params = [], {}
        if self.number:
            clauses.append(f"(instr({cli}, :number) > 0 OR instr({dst}, :number) > 0)")
            params["number"] = self.number
        if self.code is not None:
            clauses.append(f"{code} = :code")
            params["code"] = self.code
        if self.carrier:
            clauses.append(f"{carrier} = :carrier")
            params["carrier"] = self.carrier
        return "".join(f" AND {clause}" for clause in clauses), params

    def matches_reject(self, cli: str, dst: str, code: int) -> bool:
        return (not self.carrier
                and (not self.number or self.number in cli or self.number in dst)
                and (self.code is None or self.code == code))


# The console's data ---------------------------------------------------------------------------

class ConsoleData:
    """The read models of every screen, from a noc database (any number of viewers at once)."""

    def __init__(self, path: str | Path, *, low_balance: float = LOW_BALANCE) -> None:
        self.path = locate(path)
        self.low_balance = low_balance
        # Calls in progress as last read, by their state, for each of the last scopes read.
        self._decoded: dict[str | None, dict[bytes, LiveCall]] = {}
        self._decoded_lock = threading.Lock()

    def _open_calls(self, db: sqlite3.Connection, customer: str | None = None) -> list[LiveCall]:
        """The calls in progress, of every customer or of one. A call whose state is as at the
        last read is not decoded again: most calls in progress have no new event from one
        refresh to the next, and decoding them all took most of a read."""
        if customer is None:
            rows = db.execute("SELECT state FROM open_call")
        else:
            rows = db.execute("SELECT state FROM open_call WHERE customer = ?", (customer,))
        with self._decoded_lock:  # reads may run on several workers at once
            known, decoded = self._decoded.pop(customer, {}), {}
        for state, in rows:
            call = known.get(state)
            decoded[state] = call if call is not None else unpack(state)
        with self._decoded_lock:
            self._decoded[customer] = decoded  # the scopes read last, the oldest forgotten
            while len(self._decoded) > DECODED_SCOPES:
                del self._decoded[next(iter(self._decoded))]
        return list(decoded.values())

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(connect(self.path)) as db:
            db.execute("BEGIN")  # one snapshot for every read of the view
            yield db

    # Feed ---------------------------------------------------------------------------------

    def feed(self) -> FeedView:
        with self._read() as db:
            return self._feed(db)

    def _feed(self, db: sqlite3.Connection) -> FeedView:
        columns = ", ".join(FEED_COLUMNS)
        row = db.execute(f"SELECT {columns} FROM feed_state WHERE id = 1").fetchone()
        running, status = WriterLock.for_database(self.path).inspect()
        troubles = sorted(_store_troubles(status), key=lambda t: t.part != "ingest")
        return FeedView(*row, writer_running=running, store_troubles=tuple(troubles),
                        store_findings=tuple(str(f) for f in status.get("findings", ())),
                        writer_stopped=str(status.get("stopped", "")),
                        catching_up=_catching_up(status.get("catching_up")))

    def account_names(self) -> list[tuple[str, str, str]]:
        """(kind, id, name) of every account, for finding one by name."""
        with self._read() as db:
            return db.execute("SELECT kind, id, name FROM account ORDER BY kind, name").fetchall()

    def currency(self, kind: str | None = None, account: str | None = None) -> str | None:
        """The currency the network's money is in: the accounts' one, None while they have
        none or several (charges and costs then add up across currencies). Of one account's
        money (a customer's charges) when `kind` and `account` are given."""
        with self._read() as db:
            if kind is not None:
                row = db.execute("SELECT currency FROM account WHERE kind = ? AND id = ?",
                                 (kind, account)).fetchone()
                return row[0] if row else None
            currencies = db.execute("SELECT DISTINCT currency FROM account "
                                    "WHERE currency IS NOT NULL LIMIT 2").fetchall()
        return currencies[0][0] if len(currencies) == 1 else None

    # Dashboard ----------------------------------------------------------------------------

    def dashboard(self, now_ms: int) -> DashboardView:
        with self._read() as db:
            feed = self._feed(db)
            accounts = _accounts(db)
            live = _live(db)
            spend = _totals_by_account(db, Window.ending_at(now_ms, "minute", 60), CUSTOMER)
            carrier_day = _totals_by_account(db, Window.ending_at(now_ms, "hour", 24), CARRIER)
            failures = _failures(db)
            lost_in_gaps = db.execute(
                "SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM gap").fetchone()[0]
            alerts = db.execute(ALERT_CHECKS_SQL).fetchall()
            penalties = _standing_penalties(db, now_ms)
        customers = [a for a in accounts if a.kind == CUSTOMER]
        carriers = [a for a in accounts if a.kind == CARRIER]
        balances = sorted(
            (Balance(a.id, a.name, a.balance, a.currency, self._low(a, spend.get(a.id)))
             for a in customers),
            key=lambda b: (not b.low, b.id),
        )
        health = sorted(
            (CarrierHealth(a.id, a.name, failures.get(a.id, (0, 0))[0],
                           live.get((CARRIER, a.id), (0, 0))[0]) for a in carriers),
            key=lambda c: (-c.consecutive_failures, c.id),
        )
        limits = [a.channels for a in customers if a.channels is not None]
        names = {(a.kind, a.id): a.name for a in accounts}
        # The console's own checks give way to the alert rules that watch the same thing.
        watched = {(kind, account, area) for _, area, *_, kind, account, _, _, _, _ in alerts}
        own = [
            *_feed_checks(feed, lost_in_gaps, now_ms),
            *_carrier_checks(health, carrier_day),
            *_balance_checks(balances),
            *_disabled_checks(accounts, penalties, now_ms),
        ]
        currencies = {(a.kind, a.id): a.currency for a in accounts}
        checks = [*_alert_checks(alerts, names, currencies),
                  *(c for c in own if not _watched_by_rules(c, watched))]
        return DashboardView(
            feed=feed,
            channels=sum(live.get((CUSTOMER, a.id), (0, 0))[0] for a in customers),
            channel_limit=sum(limits) if limits else None,
            cps=sum(live.get((CUSTOMER, a.id), (0, 0))[1] for a in customers),
            balances=tuple(balances),
            carriers=tuple(health),
            checks=tuple(sorted(checks, key=_check_order)),
        )

    def _low(self, account: _Account, last_hour: Totals | None) -> bool:
        """Out of credit, below the absolute threshold, or below an hour of its current spend."""
        if account.balance is None:
            return False
        hour_spend = metrics.revenue(last_hour) if last_hour is not None else 0.0
        return (account.balance <= 0 or account.balance < self.low_balance
                or account.balance < hour_spend)

    # Graphs -------------------------------------------------------------------------------

    def series(self, kind: str | None, account: str | None, segment: str, now_ms: int,
               per: str = "total") -> SeriesView:
        """Metrics per bucket over a segment (hour, day, week, month).

        kind None means customers. With per="carrier" (or "customer") `per_account` also holds
        one series per account of that kind with traffic in the segment, busiest first (only
        that account if one is given); a customer's traffic is not split by carrier in the store.
        """
        kind = kind or (per if per != "total" else CUSTOMER)
        _check_kind(kind)
        if per != "total" and kind != per:
            raise ValueError(f"per={per!r} series exist for {per}s, not for {kind}s")
        window = _segment_window(segment, now_ms)
        buckets = window.buckets()
        windows = {False: window, True: window.by_end()}  # by end time?
        total: dict[bool, dict[int, Totals]] = {}
        by_account: dict[bool, dict[str, dict[int, Totals]]] = {}
        with self._read() as db:
            for ended, each_window in windows.items():
                total[ended] = _totals_by_bucket(db, each_window, kind, account)
                by_account[ended] = defaultdict(dict)
                if per != "total":
                    for (each,), bucket, totals in _bucket_totals(db, each_window, kind,
                                                                  account, ("account",)):
                        by_account[ended][each][bucket] = totals
        ended_by_account = by_account[True]
        busiest = sorted({*by_account[False], *ended_by_account},
                         key=lambda a: -sum(t.attempts for t in ended_by_account[a].values()))
        return SeriesView(
            segment=segment,
            times=tuple(bucket // 1000 for bucket in buckets),
            series={name: _values(total[name not in BY_START], buckets, f)
                    for name, f in SERIES.items()},
            per_account={name: {a: _values(by_account[name not in BY_START][a], buckets, f)
                                for a in busiest}
                         for name, f in SERIES.items()} if per != "total" else {},
        )

    def codes(self, kind: str | None, account: str | None, segment: str,
              now_ms: int) -> list[CodeCount]:
        """Final SIP codes (of calls for customers, of attempts for carriers) over the hours
        that overlap the segment, most frequent first."""
        series_window = _segment_window(segment, now_ms)
        start = bucket_of(series_window.start_ms, "hour")
        kind = kind or CUSTOMER
        _check_kind(kind)
        where, params = _scope(kind, account)
        with self._read() as db:
            rows = db.execute(
                f"SELECT code, sum(count) FROM code_hour WHERE {where} AND bucket >= :start "
                "AND bucket < :end GROUP BY code",
                {**params, "start": start, "end": series_window.end_ms},
            ).fetchall()
        total = sum(count for _, count in rows)
        return [CodeCount(code, count, 100 * count / total)
                for code, count in sorted(rows, key=lambda row: (-row[1], row[0]))]

    # Accounts -----------------------------------------------------------------------------

    def accounts(self, kind: str, now_ms: int) -> list[AccountRow]:
        """Every account of a kind with its state now and its figures over the last hour."""
        _check_kind(kind)
        with self._read() as db:
            return self._account_rows(db, kind, now_ms)

    def account(self, kind: str, account: str, now_ms: int) -> AccountRow | None:
        """One account as `accounts` shows it; None if the store has no such account."""
        _check_kind(kind)
        with self._read() as db:
            return next(iter(self._account_rows(db, kind, now_ms, [account])), None)

    def account_page(self, kind: str, now_ms: int, *, sort: str = "name", search: str = "",
                     offset: int = 0, limit: int = 100, keep: str | None = None,
                     follow: bool = False) -> AccountPage:
        """The accounts of a kind whose name or id holds `search` (ignoring case), in the order
        of `sort` (ACCOUNT_SORTS), as `accounts` shows them: the `limit` from place `offset`,
        and where `keep` now stands. `follow`: if `keep` stands outside those rows, the rows
        around it instead (a third of them above it), or from the top if it is not found, in
        the same read. Sorted and searched in SQL, which hands over only ids: the rows are read
        for the window alone whatever the number of accounts."""
        _check_kind(kind)
        if sort not in ACCOUNT_SORTS:
            raise ValueError(f"unknown sort {sort!r}: one of {', '.join(ACCOUNT_SORTS)}")
        order = ACCOUNT_SORTS[sort]
        needle = search.strip().casefold()
        hour = Window.ending_at(now_ms, "minute", 60)
        where, params = _scope(kind, None)
        by_hour = "h." in order  # the last hour is summed only for the sorts that need it
        with self._read() as db:
            db.create_function("casefold", 1, str.casefold, deterministic=True)
            ids = [account for account, in db.execute(
                (f"WITH hour AS (SELECT account, sum(attempts) AS attempts, sum(answered) AS "
                 f"answered FROM {hour.table} WHERE {where} AND route = '' AND bucket >= :start "
                 "AND bucket < :end GROUP BY account) " if by_hour else "")
                + "SELECT a.id FROM account a "
                "LEFT JOIN live_account l ON l.kind = a.kind AND l.id = a.id "
                "LEFT JOIN carrier_state c ON a.kind = 'carrier' AND c.carrier = a.id "
                + ("LEFT JOIN hour h ON h.account = a.id " if by_hour else "")
                + "WHERE a.kind = :kind AND (:search = '' OR instr(casefold(a.id), :search) > 0 "
                f"OR instr(casefold(a.name), :search) > 0) ORDER BY {order}, a.id",
                {**params, "start": hour.start_ms, "end": hour.end_ms, "search": needle,
                 "low": self.low_balance})]
            if sort == "trouble":
                stopped = {*(id_ for (of, id_) in _penalties(db, now_ms) if of == kind),
                           *(id_ for id_, in db.execute(
                               "SELECT id FROM account WHERE kind = ? AND NOT enabled", (kind,)))}
                ids.sort(key=lambda id_: id_ not in stopped)
            total = len(ids) if not needle else db.execute(
                "SELECT count(*) FROM account WHERE kind = ?", (kind,)).fetchone()[0]
            kept = ids.index(keep) if keep in ids else None
            if follow and not offset <= (kept or 0) < offset + limit:
                offset = max(0, (kept or 0) - limit // 3)
            window = ids[offset:offset + limit]
            found = {row.id: row for row in self._account_rows(db, kind, now_ms, window)}
        return AccountPage(total, len(ids), offset, tuple(found[a] for a in window), kept)

    def _account_rows(self, db: sqlite3.Connection, kind: str, now_ms: int,
                      ids: Sequence[str] | None = None) -> list[AccountRow]:
        """Every account of a kind, or those with these ids, in id order."""
        accounts = _accounts(db, kind, ids)
        if not accounts:
            return []
        scope = None if ids is None else [a.id for a in accounts]
        last_hour = _totals_by_account(db, Window.ending_at(now_ms, "minute", 60), kind, scope)
        live = _live(db, kind, scope)
        penalties = _penalties(db, now_ms)
        failures = _failures(db, scope) if kind == CARRIER else {}
        # A customer's calls in progress are its rows; a carrier's attempts may be in any call.
        open_starts = (_open_customer_starts(db, scope) if kind == CUSTOMER
                       else _open_call_starts(self._open_calls(db)))
        return [
            self._account_row(account, last_hour.get(account.id, Totals()),
                              live.get((kind, account.id), (0, 0)),
                              penalties.get((kind, account.id), (None, ""))[0],
                              failures.get(account.id, (0, 0))[0] if kind == CARRIER else None,
                              _last_call_ms(db, account, open_starts), now_ms)
            for account in accounts
        ]

    def _account_row(self, account: _Account, hour: Totals, live: tuple[int, int],
                     penalty_until_ms: int | None, failures: int | None,
                     last_call_ms: int | None, now_ms: int) -> AccountRow:
        if penalty_until_ms is not None:
            status = "penalty"
        elif not account.enabled:
            status = "disabled"
        elif last_call_ms is None or last_call_ms < now_ms - DAY_MS:
            status = "inactive"
        else:
            status = "active"
        return AccountRow(
            kind=account.kind, id=account.id, name=account.name, balance=account.balance,
            currency=account.currency,
            low_balance=account.kind == CUSTOMER and self._low(account, hour),
            enabled=account.enabled, status=status, penalty_until_ms=penalty_until_ms,
            channels=live[0], channel_limit=account.channels, cps=live[1], cps_limit=account.cps,
            attempts=hour.attempts, asr=metrics.asr(hour), acd=metrics.acd(hour),
            pdd_ms=metrics.pdd_ms(hour), last_call_ms=last_call_ms,
            consecutive_failures=failures,
        )

    # Summaries ----------------------------------------------------------------------------

    def summary(self, kind: str, account: str | None, mode: str, now_ms: int) -> list[SummaryRow]:
        """The billing table, newest first, empty buckets included: live (24 hours by hour),
        daily (31 days) or monthly (12 UTC calendar months). account None: the whole kind."""
        _check_kind(kind)
        with self._read() as db:
            going = self._in_progress(db, kind, account)
            if mode == "live":
                return _bucket_rows(db, Window.ending_at(now_ms, "hour", 24), kind, account,
                                    "%Y-%m-%d %H:%M", going)
            if mode == "daily":
                return _bucket_rows(db, Window.ending_at(now_ms, "day", 31), kind, account,
                                    "%Y-%m-%d", going)
            if mode == "monthly":
                return _monthly_rows(db, now_ms, kind, account, going)
        raise ValueError(f"unknown summary mode {mode!r}: one of {', '.join(SUMMARY_MODES)}")

    def _in_progress(self, db: sqlite3.Connection, kind: str, account: str | None) -> list[int]:
        """Starts of what a summary will count once it ends: calls in progress (customers), or
        attempts not counted yet (carriers: those going on, and answered ones, which count
        when their call ends)."""
        calls = self._open_calls(db, account if kind == CUSTOMER else None)
        if kind == CUSTOMER:
            return [call.start_ms for call in calls]
        return [a.start_ms for call in calls for a in call.attempts
                if (account is None or a.carrier == account)
                and (a.code is None or metrics.is_answered(a.code))]

    # Routes -------------------------------------------------------------------------------

    def route_stats(self, customer: str, now_ms: int, window_ms: int = DAY_MS) -> list[RouteStat]:
        """Per route of a customer: channels now, traffic and breaches over the window's hours.

        Rejects carry no route: each counts for the longest known route that prefixes its number
        (store/routes.py keeps them so in the rollups); route '' gathers the others.
        """
        window = Window.ending_at(now_ms, "hour", max(1, -(-window_ms // HOUR_MS)))
        with self._read() as db:
            traffic = {route: Totals(*values) for route, *values in db.execute(
                f"{KNOWN_ROUTES} SELECT route, {TOTALS_SUMS} FROM rollup_hour "
                "WHERE kind = 'customer' AND account = :customer AND route IN "
                "(SELECT route FROM known WHERE route IS NOT NULL UNION ALL SELECT '') "
                "AND bucket >= :start AND bucket < :end GROUP BY route",
                {"customer": customer, "start": window.start_ms, "end": window.end_ms},
            )}
            channels: dict[str, int] = defaultdict(int)
            for call in self._open_calls(db, customer):
                channels[call.route] += 1
        total = traffic.pop(ALL_ROUTES, Totals())
        traffic[ALL_ROUTES] = Totals(**{  # the customer's breaches that no route's rows hold
            name: getattr(total, name) - sum(getattr(t, name) for t in traffic.values())
            for name in BREACH_FIELDS})
        stats = [_route_stat(route, channels.get(route, 0), traffic.get(route, Totals()))
                 for route in {*traffic, *channels}]
        return sorted((s for s in stats if s.channels or s.attempts or _breaches(s)),
                      key=lambda s: (-s.attempts, -s.channels, s.route))

    # Calls --------------------------------------------------------------------------------

    def latest_calls(self, customer: str | None, now_ms: int, *, number: str = "",
                     code: int | None = None, carrier: str = "", limit: int = 200,
                     window_ms: int = SEARCH_WINDOW_MS) -> list[CallRow]:
        """Ended calls and rejects started in the window, newest first, filtered by a number
        (substring of cli or dst), a final code, a carrier (which leaves rejects out)."""
        search = _Search(number, code, carrier)
        since = now_ms - window_ms
        with self._read() as db:
            calls = _latest_ended_calls(db, customer, since, search, limit)
            rejects = _latest_rejects(db, customer, since, search, limit)
        newest = merge(calls, rejects, key=lambda row: (row.start_ms, row.seq), reverse=True)
        return list(islice(newest, limit))

    def carrier_calls(self, carrier: str, now_ms: int, *, number: str = "",
                      code: int | None = None, limit: int = 200,
                      window_ms: int = SEARCH_WINDOW_MS) -> list[CarrierCallRow]:
        """A carrier's ended attempts started in the window, newest first."""
        filters, params = _Search(number, code).sql(cli="c.cli", dst="c.dst", code="a.code")
        with self._read() as db:
            rows = db.execute(
                "SELECT a.call_seq, c.call_id, a.attempt, a.start_ms, c.customer, c.cli, c.dst, "
                "a.route, a.code, a.reason, a.duration_ms, a.progress_ms, a.cost_micro, c.code "
                "FROM attempt a JOIN call c ON c.seq = a.call_seq "
                f"WHERE a.carrier = :carrier AND a.start_ms >= :since{filters} "
                "ORDER BY a.start_ms DESC LIMIT :limit",
                {**params, "carrier": carrier, "since": now_ms - window_ms, "limit": limit},
            ).fetchall()
        return [
            CarrierCallRow(seq, call_id, attempt, start, customer, cli, dst, route, code,
                           reason or "", duration / 1000, _pdd(progress, start),
                           cost / metrics.MICRO, call_code)
            for (seq, call_id, attempt, start, customer, cli, dst, route, code, reason, duration,
                 progress, cost, call_code) in rows
        ]

    def call_attempts(self, call_seq: int) -> list[AttemptRow]:
        """A call's carrier attempts in order, ended call or call in progress."""
        with self._read() as db:
            rows = db.execute(
                "SELECT attempt, carrier, route, start_ms, end_ms, code, reason, progress_ms, "
                "duration_ms FROM attempt WHERE call_seq = ? ORDER BY attempt", (call_seq,),
            ).fetchall()
            if not rows:
                state = db.execute("SELECT state FROM open_call WHERE seq = ?",
                                   (call_seq,)).fetchone()
                return [_live_attempt_row(a) for a in unpack(state[0]).attempts] if state else []
        return [
            AttemptRow(attempt, carrier, route, start, end, code, reason or "",
                       _pdd(progress, start), duration / 1000, ended=True)
            for attempt, carrier, route, start, end, code, reason, progress, duration in rows
        ]

    def dialogs(self, customer: str | None, now_ms: int, limit: int = 1000) -> list[DialogRow]:
        """Calls in progress, newest first."""
        with self._read() as db:
            calls = self._open_calls(db, customer)
        newest = sorted(calls, key=lambda c: (c.start_ms, c.seq), reverse=True)[:limit]
        return [_dialog_row(call, now_ms) for call in newest]

    # Carriers -----------------------------------------------------------------------------

    def carrier_main(self, carrier: str, now_ms: int) -> CarrierMainView:
        """Consecutive failures, code consistency (24 h and all time), failovers, 24 h totals."""
        with self._read() as db:
            day = _totals_by_account(db, Window.ending_at(now_ms, "hour", 24), CARRIER,
                                     carrier).get(carrier, Totals())
            all_time = Totals(*db.execute(
                f"SELECT {TOTALS_SUMS} FROM rollup_day WHERE kind = 'carrier' AND account = ? "
                "AND route = ''", (carrier,)).fetchone())
            name = db.execute("SELECT name FROM account WHERE kind = 'carrier' AND id = ?",
                              (carrier,)).fetchone()
            failures, updated = _failures(db).get(carrier, (0, None))
            channels = _live(db).get((CARRIER, carrier), (0, 0))[0]
        return CarrierMainView(
            carrier=carrier, name=name[0] if name else carrier, channels=channels,
            consecutive_failures=failures, failures_updated_ms=updated,
            codes_24h=_code_consistency(day), codes_all_time=_code_consistency(all_time),
            never_404=metrics.never_404(day, busy_attempts=NEVER_404_ATTEMPTS),
            failover=day.failover, failover_answered=day.failover_answered, last_24h=day,
        )

    def failovers(self, carrier: str, now_ms: int, limit: int = 200,
                  window_ms: int = SEARCH_WINDOW_MS) -> list[FailoverRow]:
        """Calls that failed on this carrier and were answered by the next attempt, newest
        first (the tab used to spot false answer supervision)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT a.call_seq, c.call_id, a.start_ms, c.customer, c.cli, c.dst, a.route, "
                f"a.code, a.reason, b.carrier, b.duration_ms {FAILED_OVER} "
                "ORDER BY a.start_ms DESC LIMIT ?",
                (carrier, now_ms - window_ms, limit),
            ).fetchall()
        return [
            FailoverRow(seq, call_id, start, customer, cli, dst, route, code, reason or "",
                        answered_by, duration / 1000)
            for (seq, call_id, start, customer, cli, dst, route, code, reason, answered_by,
                 duration) in rows
        ]

    def failover_summary(self, carrier: str, now_ms: int,
                         window_ms: int = SEARCH_WINDOW_MS) -> list[tuple[int, str, int]]:
        """The calls of `failovers` over the whole window, counted by (the code this carrier
        failed with, the carrier that answered), the most first."""
        with self._read() as db:
            return [(code, answered_by, count) for code, answered_by, count in db.execute(
                f"SELECT a.code, b.carrier, count(*) {FAILED_OVER} GROUP BY a.code, b.carrier "
                "ORDER BY count(*) DESC, a.code, b.carrier", (carrier, now_ms - window_ms))]

    # Feed trouble and requests ------------------------------------------------------------

    def quarantine(self, limit: int = 500, offset: int = 0) -> list[QuarantineRow]:
        """Quarantined input, newest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, received_ms, seq, reason, substr(raw, 1, ?) FROM quarantine "
                "ORDER BY id DESC LIMIT ? OFFSET ?", (PREVIEW_CHARS, limit, offset)).fetchall()
        return [QuarantineRow(*row) for row in rows]

    def quarantine_raw(self, quarantine_id: int) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT raw FROM quarantine WHERE id = ?", (quarantine_id,)).fetchone()
        return row[0] if row else None

    def quarantine_count(self) -> int:
        with self._read() as db:
            return db.execute("SELECT count(*) FROM quarantine").fetchone()[0]

    def gaps(self) -> list[GapRow]:
        with self._read() as db:
            return _gaps(db)

    def feed_trouble(self) -> tuple[list[QuarantineRow], list[GapRow]]:
        """Every quarantined input with its whole raw text (in `preview`), newest first, and
        every gap: for an export, read at once in one snapshot (one query each, however many)."""
        with self._read() as db:
            rows = db.execute("SELECT id, received_ms, seq, reason, raw FROM quarantine "
                              "ORDER BY id DESC").fetchall()
            return [QuarantineRow(*row) for row in rows], _gaps(db)

    def control_requests(self, now_ms: int, limit: int = 200) -> list[ControlRow]:
        """Requests of the last 24 h, plus older ones still waiting or still in force."""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {', '.join(CONTROL_COLUMNS)}, coalesce(nullif(a.name, ''), c.account) "
                "FROM control_request AS c LEFT JOIN account AS a "
                "ON a.kind = c.kind AND a.id = c.account "
                "WHERE c.created_ms >= :since OR c.status IN ('pending', 'sent') "
                "OR c.until_ms > :now ORDER BY c.created_ms DESC LIMIT :limit",
                {"since": now_ms - DAY_MS, "now": now_ms, "limit": limit},
            ).fetchall()
            standing = {request_id for _, request_id in _penalties(db, now_ms).values()}
        return [ControlRow(*row, penalty=row[0] in standing) for row in rows]


# Building the views ---------------------------------------------------------------------------

def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown account kind {kind!r}: customer or carrier")


def _segment_window(segment: str, now_ms: int) -> Window:
    if segment not in SEGMENTS:
        raise ValueError(f"unknown segment {segment!r}: one of {', '.join(SEGMENTS)}")
    period, count = SEGMENTS[segment]
    return Window.ending_at(now_ms, period, count)


def _values(by_bucket: Mapping[int, Totals], buckets: Sequence[int],
            metric: Callable[[Totals], float | int | None]) -> tuple[float | int | None, ...]:
    empty = Totals()
    return tuple(metric(by_bucket.get(bucket, empty)) for bucket in buckets)


def _bucket_rows(db: sqlite3.Connection, window: Window, kind: str, account: str | None,
                 label: str, in_progress: Iterable[int]) -> list[SummaryRow]:
    """`in_progress`: the starts of what the rows will count once it ends."""
    found = _totals_by_bucket(db, window, kind, account)
    going = Counter(bucket_of(start, window.period) for start in in_progress)
    return [SummaryRow(bucket, _utc(bucket).strftime(label), found.get(bucket, Totals()),
                       going[bucket])
            for bucket in reversed(window.buckets())]


def _monthly_rows(db: sqlite3.Connection, now_ms: int, kind: str, account: str | None,
                  in_progress: Iterable[int]) -> list[SummaryRow]:
    now = _utc(now_ms)
    months = [divmod(now.year * 12 + now.month - 1 - back, 12) for back in range(12)]
    starts = [_month_start(year, month + 1) for year, month in months]  # newest first

    def month_of(ms: int) -> int | None:
        return next((start for start in starts if start <= ms), None)

    window = Window("day", starts[-1], bucket_of(now_ms, "day") + DAY_MS)
    by_month: dict[int, Totals] = defaultdict(Totals)
    for day, totals in _totals_by_bucket(db, window, kind, account).items():
        by_month[month_of(day)].add(totals)
    going = Counter(month_of(start) for start in in_progress)
    return [SummaryRow(start, _utc(start).strftime("%Y-%m"), by_month.get(start, Totals()),
                       going[start])
            for start in starts]


def _open_customer_starts(db: sqlite3.Connection,
                          ids: Sequence[str] | None) -> dict[tuple[str, str], int]:
    """(customer, id) -> the newest start of its calls in progress, of every customer or of
    these: from the table's own column, no call decoded."""
    newest = "SELECT customer, max(start_ms) FROM open_call"
    if ids is None:
        rows = db.execute(f"{newest} GROUP BY customer")
    else:
        rows = db.execute(f"{newest} WHERE customer IN (SELECT value FROM json_each(?)) "
                          "GROUP BY customer", (json.dumps(ids),))
    return {(CUSTOMER, customer): start for customer, start in rows}


def _open_call_starts(calls: Iterable[LiveCall]) -> dict[tuple[str, str], int]:
    """(kind, id) -> the newest start of a call (customers) or attempt (carriers) in progress."""
    found: dict[tuple[str, str], int] = {}
    for call in calls:
        starts = [((CUSTOMER, call.customer), call.start_ms)]
        starts += [((CARRIER, a.carrier), a.start_ms) for a in call.attempts]
        for key, start in starts:
            found[key] = max(found.get(key, start), start)
    return found


def _last_call_ms(db: sqlite3.Connection, account: _Account,
                  open_starts: Mapping[tuple[str, str], int]) -> int | None:
    """The newest call (attempt) start: one probe of the (customer|carrier, start_ms) index."""
    table, column = ("call", "customer") if account.kind == CUSTOMER else ("attempt", "carrier")
    ended = db.execute(f"SELECT max(start_ms) FROM {table} WHERE {column} = ?",
                       (account.id,)).fetchone()[0]
    starts = [s for s in (ended, open_starts.get((account.kind, account.id))) if s is not None]
    return max(starts, default=None)


def _route_stat(route: str, channels: int, t: Totals) -> RouteStat:
    return RouteStat(route, channels, t.attempts, t.answered, metrics.asr(t), metrics.acd(t),
                     t.breach_channel, t.breach_cps, t.breach_other)


def _breaches(stat: RouteStat) -> int:
    return stat.channel_breaches + stat.cps_breaches + stat.other_breaches


def _latest_ended_calls(db: sqlite3.Connection, customer: str | None, since: int,
                        search: _Search, limit: int) -> list[CallRow]:
    filters, params = search.sql()
    scope = "customer = :customer AND " if customer is not None else ""
    rows = db.execute(
        "SELECT seq, call_id, start_ms, customer, cli, dst, route, carrier, code, duration_ms, "
        "attempts, charge_micro, progress_ms, hangup FROM call "
        f"WHERE {scope}start_ms >= :since{filters} ORDER BY start_ms DESC, seq DESC LIMIT :limit",
        {**params, "customer": customer, "since": since, "limit": limit},
    )
    return [
        CallRow(seq, call_id, start, cust, cli, dst, route, carrier, code, duration / 1000,
                attempts, charge / metrics.MICRO, _pdd(progress, start), hangup)
        for (seq, call_id, start, cust, cli, dst, route, carrier, code, duration, attempts,
             charge, progress, hangup) in rows
    ]


def _latest_rejects(db: sqlite3.Connection, customer: str | None, since: int, search: _Search,
                    limit: int) -> list[CallRow]:
    """Rejects newest first, read lazily along a time index (a customer's, or everyone's) and
    filtered here, so the scan stops at the limit or at the window's start."""
    if search.carrier:
        return []
    scope = "customer = :customer AND " if customer is not None else ""
    rows = db.execute("SELECT seq, ts_ms, customer, cli, dst, code, reason FROM reject "
                      f"WHERE {scope}ts_ms >= :since ORDER BY ts_ms DESC, seq DESC",
                      {"customer": customer, "since": since})
    found = []
    for seq, ts, cust, cli, dst, code, reason in rows:
        if len(found) == limit:
            break
        if search.matches_reject(cli, dst, code):
            found.append(CallRow(seq, "", ts, cust, cli, dst, "", "", code, 0.0, 0, 0.0, None,
                                 "", rejected=True, reason=reason))
    return found


def _live_attempt_row(attempt: LiveAttempt) -> AttemptRow:
    return AttemptRow(attempt.attempt, attempt.carrier, attempt.route, attempt.start_ms,
                      attempt.end_ms, attempt.code, attempt.reason or "",
                      _pdd(attempt.progress_ms, attempt.start_ms), 0.0, ended=attempt.ended)


def _dialog_row(call: LiveCall, now_ms: int) -> DialogRow:
    latest = call.attempts[-1] if call.attempts else None
    if call.answer_ms is not None:
        state = "answered"
    elif latest is not None and not latest.ended and latest.progress_ms is not None:
        state = "ringing"
    else:
        state = "trying"
    return DialogRow(
        seq=call.seq, call_id=call.call_id, customer=call.customer, cli=call.cli, dst=call.dst,
        route=call.route, carrier=call.carrier, attempt=latest.attempt if latest else 0,
        state=state, start_ms=call.start_ms, age_s=(now_ms - call.start_ms) / 1000,
        answered_s=(now_ms - call.answer_ms) / 1000 if call.answer_ms is not None else None,
    )


def _code_consistency(t: Totals) -> CodeConsistency:
    return CodeConsistency(t.code_200, t.code_404, metrics.share_404(t))


# Checks ---------------------------------------------------------------------------------------

FEED = ("feed", "")
STORE = ("feed", "store")
ALERT_CHECKS_SQL = (
    "SELECT r.title, r.area, r.level, r.operator, r.threshold, r.reset_threshold, s.kind, "
    "s.account, s.state, s.value, s.silenced, s.acked_by "
    "FROM alert_state s JOIN alert_rule r ON r.id = s.rule_id "
    "WHERE r.enabled = 1 ORDER BY r.title, s.kind, s.account")


def _alert_checks(alerts: Iterable[Sequence], names: Mapping[tuple[str, str], str],
                  currencies: Mapping[tuple[str, str], str | None]) -> Iterator[Check]:
    """The alert engine's firing alerts: `carrier Atlas Voice: Carrier down, Consecutive
    failures 1,459 ≥ 100, clears at ≤ 0` (store.conditions says how)."""
    for (title, area, level, operator, threshold, reset, kind, account, state, value, silenced,
         acked_by) in alerts:
        if state != "firing":
            continue
        who = "feed" if kind == "feed" else f"{kind} {names.get((kind, account), account)}"
        unit = currencies.get((kind, account)) if area == "balance" else None
        condition = conditions.describe(area, value, operator, threshold, reset, firing=True,
                                        unit=unit)
        text = f"{who}: {title}, {condition}"
        if silenced:
            text += " · silenced"
        elif acked_by:
            text += f" · acknowledged by {acked_by}"
        yield Check(level, (kind, account), text, rule=title, area=area,
                    muted=bool(silenced or acked_by))


def _check_order(check: Check) -> tuple:
    """Unmuted first; then what questions every other figure (no writer, a store that cannot
    write, a feed that is down or silent), since each line below it may be stale; then by
    severity, worst first."""
    return (check.muted, check.subject not in (FEED, STORE), -SEVERITIES.index(check.severity))


def _watched_by_rules(check: Check, watched: set[tuple[str, str, str]]) -> bool:
    kind, account = check.subject
    subject = ("feed", "") if kind == "feed" else (kind, account)
    return bool(check.area) and (*subject, check.area) in watched


def _store_troubles(status: Mapping) -> Iterator[StoreTrouble]:
    """The troubles a writer's status names (a file another program could have written)."""
    names = {f.name for f in fields(StoreTrouble)}
    for trouble in status.get("troubles", ()):
        if isinstance(trouble, dict) and set(trouble) == names:
            yield StoreTrouble(**trouble)


def store_trouble_text(trouble: StoreTrouble, now_ms: int) -> str:
    """`store: disk full, retrying in 4 s`"""
    retry = trouble.retry_in_s(now_ms)
    return f"store: {trouble.cause}" + ("" if retry is None else f", retrying in {retry:.0f} s")


def _feed_checks(feed: FeedView, lost_in_gaps: int, now_ms: int) -> Iterator[Check]:
    for finding in feed.store_findings:
        yield Check("critical", STORE, f"store: {finding}")
    if not feed.writer_running:
        stopped = f"; it stopped: {feed.writer_stopped}" if feed.writer_stopped else ""
        yield Check("error", FEED, f"no writer is storing the feed (last status: {feed.status}"
                                   f"{stopped}): start `noc ingest`, or a console as the writer")
    elif feed.store_troubles:
        for trouble in feed.store_troubles:
            waiting = (" (the feed waits: nothing is lost)" if trouble.part == "ingest"
                       else "")
            yield Check("error", STORE, f"{store_trouble_text(trouble, now_ms)}: {trouble.part} "
                        f"cannot write for {(now_ms - trouble.since_ms) // 1000} s, "
                        f"{trouble.tries} tries{waiting}: {trouble.detail}")
    elif feed.status != "connected":
        text = f"feed {feed.status}"
        if feed.reconnect_at_ms is not None:
            text += f", next try in {max(0, feed.reconnect_at_ms - now_ms) // 1000} s"
        yield Check(FEED_STATUS_SEVERITY.get(feed.status, "error"), FEED,
                    f"{text}: {feed.detail}" if feed.detail else text)
    elif now_ms - feed.updated_ms > WRITER_STALE_MS:
        yield Check("warning", FEED, f"the writer has stored nothing for "
                                     f"{(now_ms - feed.updated_ms) // 1000} s")
    if feed.capped_calls:
        yield Check("warning", FEED, f"{feed.capped_calls:,} calls closed as lost: more were "
                                     "open at once than the writer keeps (store.max_open_calls)")
    if feed.gaps:
        yield Check("warning", ("feed", "gaps"),
                    f"{feed.gaps:,} gap(s) in the feed: {lost_in_gaps:,} events lost for good")
    if feed.quarantined:
        yield Check("warning", ("feed", "quarantine"),
                    f"{feed.quarantined:,} feed events quarantined", area="quarantined")


def _carrier_checks(health: Sequence[CarrierHealth],
                    last_24h: Mapping[str, Totals]) -> Iterator[Check]:
    names = {carrier.id: carrier.name for carrier in health}
    for carrier in health:
        severity = failures_severity(carrier.consecutive_failures)
        if severity is not None:
            yield Check(severity, (CARRIER, carrier.id), f"carrier {carrier.name}: "
                        f"{carrier.consecutive_failures:,} consecutive failures",
                        area="consecutive_failures")
    for carrier, totals in sorted(last_24h.items()):
        if metrics.never_404(totals, busy_attempts=NEVER_404_ATTEMPTS):
            yield Check("warning", (CARRIER, carrier),
                        f"carrier {names.get(carrier, carrier)}: {totals.attempts} attempts in "
                        "24 h and not one 404: it may answer calls to numbers that do not exist")


def _balance_checks(balances: Iterable[Balance]) -> Iterator[Check]:
    for b in balances:
        if b.low:
            severity = "error" if b.balance <= 0 else "warning"
            amount = f"{b.balance:,.2f} {b.currency or ''}".rstrip()
            yield Check(severity, (CUSTOMER, b.id), f"customer {b.name}: low balance, {amount}",
                        area="balance")


def _disabled_checks(accounts: Iterable[_Account],
                     penalties: Mapping[tuple[str, str], tuple[int, str, str]],
                     now_ms: int) -> Iterator[Check]:
    """Accounts disabled, or in penalty (disabled until a time: the switch may not have done
    it yet, and an account in penalty needs attention whether an alert still fires or not)."""
    for a in accounts:
        penalty = penalties.get((a.kind, a.id))
        if penalty is not None:
            until_ms, _, reason = penalty
            left = time_left(until_ms - now_ms)
            text = f"{a.kind} {a.name}: in penalty, {left} left"
            yield Check("warning", (a.kind, a.id), f"{text}: {reason}" if reason else text)
        elif not a.enabled:
            yield Check("warning", (a.kind, a.id), f"{a.kind} {a.name} is disabled")


def time_left(ms: int) -> str:
    """What is left of a penalty, wherever it shows: '15 min' (rounded up), '40 s' under a
    minute."""
    seconds = max(0, ms) // 1000
    return f"{-(-seconds // 60)} min" if seconds >= 60 else f"{seconds} s"


def _catching_up(found: object) -> tuple[int, int] | None:
    """(seq stored, the feed's head) as the writer published it (a file: checked)."""
    if (isinstance(found, list) and len(found) == 2
            and all(isinstance(n, int) and n >= 0 for n in found)):
        return found[0], found[1]
    return None
