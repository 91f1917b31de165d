"""A report's range: cut into rollup buckets (the widest pieces, as cutting bucket by bucket), and
its ragged edges summed from the records by SQLite (as the metric definitions count them)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from contextlib import closing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store import rollups
from store.database import connect, prepare
from store.metrics import (
    CallRecord,
    Totals,
    attempt_totals,
    call_failovers,
    call_totals,
    failover_totals,
)
from store.models import Attempt, Call
from store.queries import DAY, HOUR, MINUTE, Reader, _add_records, segments
from store.statements import columns_of
from tests.test_ingest import Harness
from tests.test_metrics import PROPERTIES, call_records, timestamps_ms
from tests.test_migrations import traffic_events

T0 = 1_763_683_200_000  # a UTC midnight, in ms


def bucket_by_bucket(start: int, end: int, minute_floor: int) -> list[tuple[str, int, int]]:
    """One bucket at a time: a day where a whole day fits, else an hour, else a minute kept by
    the minute rollups, else the records up to the next minute; then runs of a source joined."""
    pieces: list[tuple[str, int, int]] = []
    position = start
    while position < end:
        for source, size in (("day", DAY), ("hour", HOUR), ("minute", MINUTE)):
            if position % size == 0 and position + size <= end and (
                    source != "minute" or position >= minute_floor):
                stop = position + size
                break
        else:
            source, stop = "raw", min(end, position - position % MINUTE + MINUTE)
        if pieces and pieces[-1][0] == source:
            pieces[-1] = (source, pieces[-1][1], stop)
        else:
            pieces.append((source, position, stop))
        position = stop
    return pieces


moments = st.integers(0, 3 * DAY).map(lambda offset: T0 + offset) | st.sampled_from(
    [T0, T0 + HOUR, T0 + DAY, T0 + DAY + 7 * MINUTE, T0 + 2 * DAY + HOUR + 1])


@given(start=moments, length=st.integers(0, 3 * DAY) | st.sampled_from([MINUTE, HOUR, DAY]),
       floor=moments)
def test_segments_equal_cutting_bucket_by_bucket(start, length, floor):
    assert segments(start, start + length, floor) == bucket_by_bucket(start, start + length, floor)


def test_everything_since_1970_is_a_few_pieces():
    end = T0 + 5 * HOUR + 3 * MINUTE + 1234
    assert segments(0, end, T0 + HOUR) == [
        ("day", 0, T0), ("hour", T0, T0 + 5 * HOUR), ("minute", T0 + 5 * HOUR, end - 1234),
        ("raw", end - 1234, end)]


@pytest.fixture(scope="module")
def records_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("records") / "noc.db"
    prepare(path)
    with closing(connect(path, mode="rw")) as db:
        yield db


def store_calls(db, calls: list[CallRecord]) -> None:
    db.execute("DELETE FROM call")
    db.execute("DELETE FROM attempt")
    for seq, c in enumerate(calls, 1):
        db.execute(
            f"INSERT INTO call ({', '.join(columns_of(Call))}) VALUES ({', '.join('?' * 18)})",
            (seq, c.call_id, c.customer, c.cli, c.dst, c.route, "", len(c.attempts), c.start_ms,
             c.end_ms, c.code, c.duration_ms, c.billed_ms, c.charge_micro, c.cost_micro,
             c.progress_ms, c.dtmf_count, c.hangup))
        for a in c.attempts:
            db.execute(
                f"INSERT INTO attempt ({', '.join(columns_of(Attempt))}) "
                f"VALUES ({', '.join('?' * 13)})",
                (seq, a.attempt, a.carrier, a.route, a.start_ms, a.end_ms, a.code,
                 a.progress_ms, a.duration_ms, a.cost_micro, a.reason, a.billed_ms,
                 a.charge_micro))


def brute_force_totals(calls: list[CallRecord], lo: int, hi: int) -> dict:
    found: dict = defaultdict(Totals)
    for call in calls:
        if lo <= call.start_ms < hi:
            found[("customer", call.customer)].add(call_totals(call))
        for attempt in call.attempts:
            if lo <= attempt.start_ms < hi:
                found[("carrier", attempt.carrier)].add(attempt_totals(attempt))
        for failed, next_answered in call_failovers(call):
            if lo <= failed.start_ms < hi:
                found[("carrier", failed.carrier)].add(failover_totals(failed, next_answered))
    return dict(found)


@PROPERTIES
@given(calls=st.lists(call_records(), max_size=25), data=st.data())
def test_records_summed_by_sqlite_equal_the_metric_definitions(records_db, calls, data):
    """A ragged edge's totals, summed from the records by SQLite, as the rollups count them."""
    starts = [c.start_ms for c in calls] + [a.start_ms for c in calls for a in c.attempts]
    moment = st.sampled_from(starts) | timestamps_ms if starts else timestamps_ms
    lo, hi = sorted((data.draw(moment), data.draw(moment)))
    store_calls(records_db, calls)
    found: dict = defaultdict(rollups.zero)
    _add_records(records_db, lo, hi, found)
    assert {key: Totals(*values) for key, values in found.items()} == brute_force_totals(
        calls, lo, hi)


@pytest.fixture(scope="module")
def traffic_db(tmp_path_factory):
    """Two hours and a half of traffic with failovers, rejects and calls still open, as
    ingested: whole hours, and parts of hours on either side of a half."""
    path = tmp_path_factory.mktemp("traffic") / "noc.db"
    harness = Harness(path)
    events = traffic_events(hours=2.5)
    harness.feed(*(events[at:at + 1000] for at in range(0, len(events), 1000)))
    harness.flush()
    harness.writer.close_now()
    return path


def without_peaks(totals: dict) -> dict:
    return {key: dataclasses.replace(value, peak_cps=0, peak_channels=0)
            for key, value in totals.items()}


@settings(max_examples=50, deadline=None)  # each reads a real store: ranges, not records, vary
@given(data=st.data())
def test_a_range_older_than_the_minutes_totals_what_its_records_hold(traffic_db, data):
    """Where the minute rollups are gone, a part of a range over half of an hour is read as the
    hour's rollup less the records of the rest of it: the same totals as the records of the
    range, whole hours read from the rollups included."""
    start, end = traffic_start_end(traffic_db)
    moment = st.integers(start - 1000, end + 1000) | st.sampled_from(
        [start - start % HOUR + HOUR + offset for offset in (-1, 0, 1, HOUR // 2, HOUR // 2 + 1)])
    lo, hi = sorted((data.draw(moment), data.draw(moment)))
    found = Reader(traffic_db).totals(lo, hi, minute_keep_days=0)
    with closing(connect(traffic_db)) as db:
        records: dict = defaultdict(rollups.zero)
        _add_records(db, lo, hi, records)
    assert without_peaks(found) == {key: Totals(*values) for key, values in records.items()}


def traffic_start_end(path) -> tuple[int, int]:
    with closing(connect(path)) as db:
        return db.execute("SELECT min(start_ms), max(start_ms) FROM call").fetchone()
