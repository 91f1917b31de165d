"""Reads behind `noc report`: totals over a time range from the rollups, never a scan of CDRs.

A range is cut into whole days, hours and minutes read from the rollup tables, summed by SQLite
in one statement that probes each account's rows along the rollups' primary key; only the ragged
edges (seconds, or minutes older than the minute rollups keep) are summed from the call, attempt
and reject records, read along their time indexes (an edge over half an hour as its hour less the
records of the rest of the hour). A report is one read transaction: one
consistent snapshot even while the writer commits.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from store import metrics, models, rollups
from store.database import StoreError, connect, locate
from store.live import unpack
from store.metrics import Totals

Key = tuple[str, str]  # kind, account
MINUTE, HOUR, DAY = (models.BUCKET_MS[p] for p in ("minute", "hour", "day"))


def segments(start: int, end: int, minute_floor: int) -> list[tuple[str, int, int]]:
    """Cut [start, end) ms into (source, from, to) pieces: 'day', 'hour', 'minute' or 'raw',
    each the widest whole buckets that fit, runs of one source joined into one piece.

    Minutes before `minute_floor` (pruned from the minute rollups) come from the records.
    """
    pieces: list[tuple[str, int, int]] = []
    position = start
    while position < end:
        if position % DAY == 0 and end - position >= DAY:
            source, stop = "day", end - (end - position) % DAY
        elif position % HOUR == 0 and end - position >= HOUR:
            source = "hour"
            stop = min(end - (end - position) % HOUR, position + DAY - position % DAY)
        elif position % MINUTE == 0 and end - position >= MINUTE and position >= minute_floor:
            source = "minute"
            stop = min(end - (end - position) % MINUTE, position + HOUR - position % HOUR)
        else:
            source, stop = "raw", min(end, position + MINUTE - position % MINUTE)
        if pieces and pieces[-1][0] == source:
            position = pieces.pop()[1]
        pieces.append((source, position, stop))
        position = stop
    return pieces


class RangeBeyondRecords(StoreError):
    """A report's edge that only the CDRs could answer, where they are pruned (`store.call_days`):
    the rollups keep whole hours (and minutes for `store.minute_rollup_days`), not seconds."""

    def __init__(self, edge_ms: int, records_from_ms: int, minute_floor_ms: int) -> None:
        super().__init__(
            f"the range has an edge at {_utc(edge_ms)}, and the CDRs before "
            f"{_utc(records_from_ms)} are pruned (store.call_days): there, start and end it on "
            f"a whole hour{_minutes_since(minute_floor_ms, records_from_ms)}")


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _minutes_since(minute_floor_ms: int, records_from_ms: int) -> str:
    if minute_floor_ms >= records_from_ms:
        return ""
    return f" (on a whole minute from {_utc(minute_floor_ms)})"


class Reader:
    """Read-only questions to a noc database (any number of viewers may hold one)."""

    def __init__(self, path: str | Path) -> None:
        self.path = locate(path)

    def connection(self) -> sqlite3.Connection:
        return connect(self.path)

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        with closing(self.connection()) as db:
            db.execute("BEGIN")  # one snapshot for every read of the answer
            yield db

    def feed_state(self) -> models.FeedState:
        with self._snapshot() as db:
            return _feed_state(db)

    def totals(self, start_ms: int, end_ms: int, *, minute_keep_days: int = 8,
               route: str = rollups.ALL_ROUTES) -> dict[Key, Totals]:
        """Totals per account over [start_ms, end_ms), from rollups plus the ragged edges."""
        with self._snapshot() as db:
            return _totals(db, start_ms, end_ms, _feed_state(db).newest_ms, minute_keep_days,
                           route)

    def report(self, time_from_ms: int | None = None, time_to_ms: int | None = None) -> dict:
        """The `noc report --json` object over [from, to) (default: everything stored)."""
        with self._snapshot() as db:
            feed = _feed_state(db)
            start = time_from_ms if time_from_ms is not None else 0
            end = (time_to_ms if time_to_ms is not None
                   else feed.newest_ms - feed.newest_ms % 1000 + 1000)
            records_from = _calls_kept_from(db)
            totals = _totals(db, start, end, feed.newest_ms,
                             records_from=records_from) if end > start else {}
            failures = dict(db.execute("SELECT carrier, consecutive_failures FROM carrier_state"))
            accounts = db.execute("SELECT kind, id FROM account ORDER BY kind, id").fetchall()
            gaps = db.execute("SELECT from_seq, to_seq FROM gap ORDER BY from_seq").fetchall()
        customers, carriers = {}, {}
        for kind, account in accounts:
            t = totals.get((kind, account), Totals())
            if kind == "customer":
                customers[account] = metrics.customer_report(t)
            else:
                carriers[account] = metrics.carrier_report(t, failures.get(account, 0))
        return {
            "from": start / 1000,
            "to": end / 1000,
            "last_seq": feed.last_seq,
            "gaps": [list(gap) for gap in gaps],
            "quarantined": feed.quarantined,
            "customers": customers,
            "carriers": carriers,
        }


def _feed_state(db: sqlite3.Connection) -> models.FeedState:
    cursor = db.execute("SELECT * FROM feed_state WHERE id = 1")
    return models.FeedState(**dict(zip((c[0] for c in cursor.description), cursor.fetchone(),
                                       strict=True)))


def minute_floor(db: sqlite3.Connection, newest_ms: int, keep_days: int) -> int:
    """The oldest minute the minute rollups can still answer for (their bucket index knows the
    oldest kept)."""
    oldest = db.execute("SELECT min(bucket) FROM rollup_minute").fetchone()[0]
    floor = newest_ms - keep_days * DAY
    return max(floor - floor % HOUR + HOUR, oldest or 0)


def _calls_kept_from(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM noc_meta WHERE key = ?",
                     (models.CALLS_KEPT_FROM,)).fetchone()
    return int(row[0]) if row else 0


def _totals(db: sqlite3.Connection, start_ms: int, end_ms: int, newest_ms: int,
            minute_keep_days: int = 8, route: str = rollups.ALL_ROUTES,
            records_from: int = 0) -> dict[Key, Totals]:
    floor = minute_floor(db, newest_ms, minute_keep_days)
    found: dict[Key, list[int]] = defaultdict(rollups.zero)
    for source, lo, hi in segments(start_ms, end_ms, floor):
        if source != "raw":
            _add_rollups(db, source, lo, hi, route, found)
            continue
        for part_lo, part_hi in _within_hours(lo, hi):
            if part_lo < records_from:
                raise RangeBeyondRecords(part_lo, records_from, floor)
            if (route == rollups.ALL_ROUTES and part_hi - part_lo > HOUR // 2
                    and part_lo - part_lo % HOUR >= records_from):
                _add_hour_but_the_rest(db, part_lo, part_hi, found)
            else:
                _add_records(db, part_lo, part_hi, found)
    return {key: rollups.to_totals(values) for key, values in found.items()}


def _add_rollups(db: sqlite3.Connection, source: str, lo: int, hi: int, route: str,
                 found: dict[Key, list[int]]) -> None:
    """Add the rollups of `source` (whole buckets in [lo, hi)), summed by SQLite, each
    account's rows found along the primary key, in its order."""
    for kind, account, *values in db.execute(
            f"SELECT kind, account, {rollups.ROLLUP_SUMS} "
            f"FROM {models.ROLLUP_TABLES[source].__tablename__} "
            "WHERE kind IN ('carrier', 'customer') AND account IN (SELECT id FROM account) "
            "AND route = ? AND bucket >= ? AND bucket < ? GROUP BY kind, account",
            (route, lo, hi)):
        rollups.add_into(found[(kind, account)], values)


def _within_hours(lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) cut at the hours it crosses."""
    while lo < hi:
        stop = min(hi, lo - lo % HOUR + HOUR)
        yield lo, stop
        lo = stop


def _add_hour_but_the_rest(db: sqlite3.Connection, lo: int, hi: int,
                           found: dict[Key, list[int]]) -> None:
    """Add [lo, hi), more than half of one hour, as its hour's rollup less the records of the
    rest of that hour: fewer records to sum (at most half an hour's, never most of one). The
    same totals as the records of [lo, hi) (property-tested); as for those, no peaks."""
    hour = lo - lo % HOUR
    whole: dict[Key, list[int]] = defaultdict(rollups.zero)
    _add_rollups(db, "hour", hour, hour + HOUR, rollups.ALL_ROUTES, whole)
    rest: dict[Key, list[int]] = defaultdict(rollups.zero)
    _add_records(db, hour, lo, rest)
    _add_records(db, hi, hour + HOUR, rest)
    for key, values in whole.items():
        less = rest.get(key) or rollups.zero()
        part = [0 if i in rollups.PEAK_INDEXES else value - less[i]
                for i, value in enumerate(values)]
        if any(part):  # as from the records: an account with nothing in the span has no row
            rollups.add_into(found[key], part)


CALL_SUMS = metrics.ended_totals_sql(money_if_failed=True, dtmf_count="dtmf_count")
ATTEMPT_SUMS = metrics.ended_totals_sql(money_if_failed=False, next_code="next_code")


def _add_records(db: sqlite3.Connection, lo: int, hi: int, found: dict[Key, list[int]]) -> None:
    """Add the totals of a span [lo, hi) summed from the records by SQLite, by the rules of the
    rollups (store.metrics.ended_totals_sql), along the records' time indexes."""
    for customer, *values in db.execute(
            f"SELECT customer, {CALL_SUMS} FROM call WHERE start_ms >= ? AND start_ms < ? "
            "GROUP BY customer", (lo, hi)):
        rollups.add_into(found[("customer", customer)], values)
    for customer, reason, count in db.execute(
            "SELECT customer, reason, count(*) FROM reject WHERE ts_ms >= ? AND ts_ms < ? "
            "GROUP BY customer, reason", (lo, hi)):
        breach = metrics.breach_totals(reason).as_tuple()
        rollups.add_into(found[("customer", customer)], [value * count for value in breach])
    for carrier, *values in db.execute(
            f"SELECT carrier, {ATTEMPT_SUMS} FROM (SELECT *, CASE WHEN code BETWEEN 200 AND 299 "
            "THEN NULL ELSE (SELECT code FROM attempt AS later WHERE later.call_seq = "
            "attempt.call_seq AND later.attempt > attempt.attempt ORDER BY later.attempt "
            "LIMIT 1) END AS next_code FROM attempt WHERE start_ms >= ? AND start_ms < ?) AS a "
            "GROUP BY carrier", (lo, hi)):
        rollups.add_into(found[("carrier", carrier)], values)
    # Calls in progress: their failed attempts count at once. Only a call active since `lo`
    # can have one started in the span (its last event is no older than any of its attempts).
    for (state,) in db.execute("SELECT state FROM open_call WHERE last_ms >= ?", (lo,)):
        for attempt in unpack(state).attempts:
            if (attempt.ended and not metrics.is_answered(attempt.code)
                    and lo <= attempt.start_ms < hi):
                rollups.add_into(found[("carrier", attempt.carrier)],
                                 metrics.attempt_totals_row(attempt.record()))
