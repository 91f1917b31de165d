"""The ingest rules on hand-written streams, stored in a real SQLite file, read back by report."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from console.feed.ingestor import Ingestor
from store.database import prepare
from store.integrity import seq_holes
from store.live import LiveAttempt, LiveCall
from store.metrics import Totals, attempt_totals, call_failovers, call_totals, failover_totals
from store.queries import Reader
from store.writer import ATTEMPT_COLUMNS, CALL_COLUMNS, StoreWriter
from tests.reference import reference_report
from tests.test_metrics import (
    CARRIERS,
    CUSTOMERS,
    PROPERTIES,
    codes,
    durations_ms,
    is_2xx,
    money_micro,
    timestamps_ms,
)

T0 = 1_763_700_000.0  # a whole hour, UTC


def ev(seq, type_, ts, **fields):
    return {"seq": seq, "type": type_, "ts": T0 + ts, **fields}


def answered_call(
    seq,
    call_id,
    at,
    *,
    customer="acme",
    carrier="c1",
    duration=30.0,
    charge=0.05,
    cost=0.03,
    pdd=2.0,
    route="44",
):
    return [
        ev(seq, "call.start", at, call_id=call_id, customer=customer, cli="1", dst=route + "1"),
        ev(
            seq + 1,
            "call.attempt",
            at + 0.01,
            call_id=call_id,
            attempt=1,
            carrier=carrier,
            route=route,
        ),
        ev(seq + 2, "call.progress", at + pdd, call_id=call_id, attempt=1, code=180),
        ev(seq + 3, "call.answer", at + pdd + 1, call_id=call_id, attempt=1),
        ev(
            seq + 4,
            "call.attempt_end",
            at + pdd + 1 + duration,
            call_id=call_id,
            attempt=1,
            code=200,
        ),
        ev(
            seq + 5,
            "call.end",
            at + pdd + 1 + duration,
            call_id=call_id,
            code=200,
            duration=duration,
            billed=duration,
            charge=charge,
            cost=cost,
            hangup="caller",
        ),
    ]


def failover_call(seq, call_id, at, *, customer="acme"):
    """Fails 503 on c1, then is answered on c2."""
    return [
        ev(seq, "call.start", at, call_id=call_id, customer=customer, cli="1", dst="491"),
        ev(seq + 1, "call.attempt", at, call_id=call_id, attempt=1, carrier="c1", route="49"),
        ev(seq + 2, "call.attempt_end", at + 1, call_id=call_id, attempt=1, code=503),
        ev(seq + 3, "call.attempt", at + 1, call_id=call_id, attempt=2, carrier="c2", route="49"),
        ev(seq + 4, "call.progress", at + 3.5, call_id=call_id, attempt=2, code=183),
        ev(seq + 5, "call.answer", at + 4, call_id=call_id, attempt=2),
        ev(seq + 6, "call.attempt_end", at + 64, call_id=call_id, attempt=2, code=200),
        ev(
            seq + 7,
            "call.end",
            at + 64,
            call_id=call_id,
            code=200,
            duration=60.0,
            billed=60,
            charge=0.1,
            cost=0.07,
            hangup="callee",
        ),
    ]


class Harness:
    """An Ingestor and a writer on a real database file, flushed by hand."""

    def __init__(self, path) -> None:
        prepare(path)
        self.path = path
        self.ingestor = Ingestor(clock=lambda: 0)
        self.writer = StoreWriter(path)
        self.writer.open_now()

    def feed(self, *frames) -> None:
        for frame in frames:
            self.ingestor.apply_frame(frame if isinstance(frame, str) else json.dumps(frame))

    def flush(self) -> None:
        self.writer.write_now(self.ingestor.take_batch())

    def report(self, **range_ms) -> dict:
        self.flush()
        return Reader(self.path).report(**range_ms)


@pytest.fixture
def harness(tmp_path):
    h = Harness(tmp_path / "noc.db")
    yield h
    h.writer._connection.close()


def test_answered_call_and_failover_figures(harness):
    events = answered_call(1, "a", 0) + failover_call(7, "b", 10)
    harness.feed(events)
    report = harness.report()
    assert report["customers"] == reference_report(events)["customers"]
    assert report["carriers"] == reference_report(events)["carriers"]
    acme = report["customers"]["acme"]
    assert (acme["attempts"], acme["answered"], acme["asr"]) == (2, 2, 100.0)
    assert acme["revenue"] == 0.15 and acme["profit"] == pytest.approx(0.05)
    assert report["carriers"]["c1"]["attempts"] == 2
    assert report["carriers"]["c1"]["consecutive_failures"] == 1


def test_duplicates_are_dropped_and_counted_apart(harness):
    events = answered_call(1, "a", 0)
    harness.feed(events, events[2:])
    report = harness.report()
    assert report["customers"]["acme"]["attempts"] == 1
    state = Reader(harness.path).feed_state()
    assert (state.duplicates, state.quarantined, state.last_seq) == (4, 0, 6)


def test_a_hole_in_seq_is_stored_as_a_gap(harness):
    events = answered_call(1, "a", 0)
    harness.feed(events[:2], events[4:], {"type": "gap", "from": 7, "to": 9})
    report = harness.report()
    assert report["gaps"] == [[3, 4], [7, 9]]
    assert report["last_seq"] == 9


def test_bad_input_is_quarantined_and_the_stream_goes_on(harness):
    start, attempt, progress, answer, attempt_end, end = answered_call(1, "a", 0)

    def renumbered(event, seq):
        return {**event, "seq": seq}

    harness.feed(
        "not json at all",
        [start, {"seq": 2, "type": "call.teleport", "ts": T0}, renumbered(attempt, 3)],
        [ev(4, "call.end", 1, call_id="nobody", code=200, duration=1.0), renumbered(attempt, 5)],
        [renumbered(e, seq) for e, seq in ((progress, 6), (answer, 7), (attempt_end, 8), (end, 9))],
        [ev(10, "call.end", 50, call_id="a", code=200, duration=1.0)],
        [ev(11, "call.start", 60, call_id="x", customer="acme", cli=5, dst="1")],
    )
    harness.flush()
    with Reader(harness.path).connection() as db:
        rows = db.execute("SELECT seq, reason FROM quarantine ORDER BY id").fetchall()
    assert rows[0][0] is None and rows[0][1].startswith("not JSON")
    assert rows[1:5] == [
        (2, "unknown event type 'call.teleport'"),
        (4, "unknown call_id"),
        (5, "attempt 1 already started"),
        (10, "second call.end for the call"),
    ]
    assert rows[5][0] == 11 and rows[5][1].startswith("bad call.start: Expected `str`, got `int`")
    report = Reader(harness.path).report()
    assert report["customers"]["acme"]["attempts"] == 1
    assert (report["quarantined"], report["last_seq"], report["gaps"]) == (6, 11, [])


def test_an_identifier_with_a_control_character_is_quarantined(harness):
    """Identifiers are printable: an escaped control character or a raw DEL is refused, while a
    backslash that escapes nothing unprintable is a character like any other."""
    starts = [
        ev(seq, "call.start", 0, call_id=call_id, customer=customer, cli="1", dst="1")
        for seq, call_id, customer in ((1, "a\x07", "acme"), (2, "b", "ac\x7fme"), (3, "c", "a\\b"))
    ]
    frame = json.dumps(starts, ensure_ascii=False)  # escapes \x07 and the backslash, not DEL
    assert "\\u0007" in frame and "\x7f" in frame
    harness.feed(frame)
    harness.flush()
    with Reader(harness.path).connection() as db:
        rows = db.execute("SELECT seq, reason FROM quarantine ORDER BY id").fetchall()
        customers = db.execute("SELECT customer FROM open_call").fetchall()
    assert [seq for seq, _ in rows] == [1, 2]
    assert "printable" in rows[0][1] and "$.call_id" in rows[0][1]
    assert "printable" in rows[1][1] and "$.customer" in rows[1][1]
    assert customers == [("a\\b",)]


def test_an_attempt_still_open_at_call_end_ends_with_the_call(harness):
    harness.feed([
        ev(1, "call.start", 0, call_id="a", customer="acme", cli="1", dst="1"),
        ev(2, "call.attempt", 1, call_id="a", attempt=1, carrier="c1", route="1"),
        ev(3, "call.end", 9, call_id="a", code=487, duration=0.0),
    ])
    harness.flush()
    with Reader(harness.path).connection() as db:
        row = db.execute("SELECT code, end_ms, reason FROM attempt WHERE attempt = 1").fetchone()
    assert row == (0, round((T0 + 9) * 1000), "closed with its call")


def test_a_silent_call_is_closed_as_lost_after_an_hour_of_feed_time(harness):
    start = [
        ev(1, "call.start", 0, call_id="z", customer="acme", cli="1", dst="1"),
        ev(2, "call.attempt", 1, call_id="z", attempt=1, carrier="c1", route="1"),
    ]
    later = answered_call(3, "a", 3602)
    harness.feed(start, later)
    report = harness.report()
    assert report["customers"]["acme"]["attempts"] == 2
    assert report["carriers"]["c1"]["attempts"] == 2
    assert report["customers"] == reference_report(start + later)["customers"]
    with Reader(harness.path).connection() as db:
        assert db.execute("SELECT count(*) FROM open_call").fetchone()[0] == 0
        assert db.execute("SELECT code FROM call WHERE call_id = 'z'").fetchone()[0] == 0


def test_a_range_counts_calls_by_start_and_uses_the_records_at_ragged_edges(harness):
    events = []
    for n in range(10):
        events += answered_call(1 + 6 * n, f"c{n}", n * 900.5)
    harness.feed(events)
    harness.flush()
    for lo, hi in [(0, 3600), (899.9, 4000.3), (1800.2, 1800.9), (0, 86400)]:
        got = harness.report(
            time_from_ms=round((T0 + lo) * 1000), time_to_ms=round((T0 + hi) * 1000)
        )
        want = reference_report(events, time_from=T0 + lo, time_to=T0 + hi)
        assert got["customers"] == want["customers"], (lo, hi)
        assert got["carriers"] == want["carriers"], (lo, hi)


def test_live_state_survives_a_restart(harness, tmp_path):
    events = failover_call(1, "b", 0)
    harness.feed(events[:4])
    harness.flush()
    restarted = Harness(harness.path)
    from console.feed.service import load_state

    restarted.ingestor.restore(*load_state(restarted.writer._connection))
    assert restarted.ingestor.last_seq == 4
    assert restarted.ingestor.channels[("carrier", "c2")] == 1
    assert restarted.ingestor.failures.counters["c1"] == 1
    restarted.feed(events[4:])
    assert restarted.report()["customers"] == reference_report(events)["customers"]


def test_what_ended_is_counted_by_the_minute_it_ended_for_alert_windows(harness):
    events = answered_call(1, "a", 50, duration=100.0) + failover_call(7, "b", 0)
    harness.feed(events)
    harness.flush()
    with Reader(harness.path).connection() as db:
        rows = db.execute(
            "SELECT kind, account, bucket, attempts, answered, failover FROM rollup_ended_minute "
            "ORDER BY kind, account, bucket"
        ).fetchall()
    minute = round(T0 * 1000)
    assert rows == [
        ("carrier", "c1", minute, 1, 0, 0),  # the 503 ended at T0 + 1 s
        ("carrier", "c1", minute + 60_000, 0, 0, 1),  # call b's failover counts when b ended
        ("carrier", "c1", minute + 120_000, 1, 1, 0),  # answered call a ended at T0 + 153 s
        ("carrier", "c2", minute + 60_000, 1, 1, 0),
        ("customer", "acme", minute + 60_000, 1, 1, 0),
        ("customer", "acme", minute + 120_000, 1, 1, 0),
    ]


def test_the_event_log_keeps_each_event_as_received(harness):
    """Byte for byte: an unknown field (ignored, as the protocol asks) and the number's form."""
    first = f'{{"seq":1,"type":"call.start","ts":{T0},"call_id":"a","customer":"acme",'
    first += '"cli":"1","dst":"1","x_tag":"kept"}'
    second = f'{{"type":"call.end","seq":2,"ts":{T0 + 1:.3f},"call_id":"a","code":487,'
    second += '"duration":0.0}'
    third = f'{{"seq":3,"type":"call.start","ts":{T0 + 2},"call_id":"b","customer":"acme",'
    third += '"cli":"1","dst":"1"}'
    harness.feed(f"[{first}, {second}]", third)
    harness.flush()
    assert event_log(harness) == [(1, 2, 2, round((T0 + 1) * 1000), f"[{first}, {second}]"),
                                  (3, 3, 1, round((T0 + 2) * 1000), third)]


def test_the_event_log_keeps_only_the_events_stored_from_a_frame(harness):
    """A frame's duplicates and quarantined items are not logged; its stored events are, each
    as received, and each once (a frame resent after a resume logs only what is new)."""
    events = [json.dumps(event) for event in answered_call(1, "a", 0)]
    harness.feed(f"[{events[0]},{events[1]}]")
    harness.feed(f"[{events[0]}, {events[1]}, {events[2]}]")  # a resend: two duplicates
    harness.feed(f'[{events[3]}, {{"type": "call.answer"}}, {events[4]}]')
    harness.flush()
    assert [row[:3] + (row[4],) for row in event_log(harness)] == [
        (1, 2, 2, f"[{events[0]},{events[1]}]"),
        (3, 3, 1, events[2]),
        (4, 5, 2, f"[{events[3]},{events[4]}]"),  # the bad item between them quarantined
    ]


def test_seqs_a_logged_frame_skips_are_checked_at_start(harness):
    """The start-up check looks inside a frame's row too: the seqs it skips must be a gap or
    in the quarantine, and are found if neither holds them."""
    call = answered_call(1, "a", 0)  # seqs 1 to 6, sent here as 1, 2, 4, 6, 7, 8
    for event, seq in zip(call, (1, 2, 4, 6, 7, 8), strict=True):
        event["seq"] = seq
    bad = ev(5, "call.answer", 0.5)  # no call_id: quarantined
    harness.feed([*call[:3], bad, *call[3:]])
    harness.flush()
    assert [row[:3] for row in event_log(harness)] == [(1, 8, 6)]
    with Reader(harness.path).connection() as db:
        assert seq_holes(db, 8) == []  # seq 3 a gap, seq 5 quarantined
    with sqlite3.connect(harness.path) as db:
        db.execute("DELETE FROM gap")
        db.execute("DELETE FROM quarantine")
    with Reader(harness.path).connection() as db:
        assert seq_holes(db, 8) == [(3, 3), (5, 5)]


def event_log(harness) -> list[tuple]:
    with Reader(harness.path).connection() as db:
        return [(first, last, count, ts, raw.decode()) for first, last, count, ts, raw in
                db.execute("SELECT first_seq, last_seq, events, ts_ms, raw FROM event_log "
                           "ORDER BY first_seq")]


@st.composite
def live_calls(draw) -> LiveCall:
    """A call in progress, its attempts in any order of number, some ended (counted before),
    some still open (ended with it)."""
    start_ms = draw(timestamps_ms)
    numbers = draw(st.lists(st.integers(1, 8), unique=True, max_size=4))
    attempts = []
    for number in numbers:
        a_start = start_ms + draw(st.integers(0, 60_000))
        ended = draw(st.booleans())
        attempts.append(LiveAttempt(
            number, draw(st.sampled_from(CARRIERS)), draw(st.sampled_from(("44", "4420", "1"))),
            a_start, progress_ms=draw(st.none() | st.integers(a_start, a_start + 60_000)),
            end_ms=a_start + draw(durations_ms) if ended else None,
            code=draw(codes) if ended else None, reason=draw(st.none() | st.just("busy"))))
    return LiveCall(draw(st.integers(1, 10**9)), draw(st.uuids()).hex,
                    draw(st.sampled_from(CUSTOMERS)), "1", "441", start_ms, start_ms,
                    progress_ms=draw(st.none() | st.integers(start_ms, start_ms + 60_000)),
                    dtmf_count=draw(st.integers(0, 3)), attempts=attempts)


def expected_close(call: LiveCall, end_ms: int, code: int, money: dict) -> tuple:
    """What closing `call` must count, from the metric definitions over its records: the
    call's row, its attempts' rows, and its totals by (kind, account, route, start minute) and
    by (kind, account, end minute)."""
    call = msgspec.structs.replace(
        call, attempts=[msgspec.structs.replace(a) for a in call.attempts])
    open_ones = {a.attempt for a in call.attempts if a.code is None}
    for attempt in call.attempts:
        if attempt.code is None:
            attempt.end_ms, attempt.code, attempt.reason = end_ms, 0, "closed with its call"
    record = call.record(end_ms, code, **money)
    by_start: dict[tuple, Totals] = defaultdict(Totals)
    by_end: dict[tuple, Totals] = defaultdict(Totals)

    def count(kind, account, route, start_ms, totals):
        by_start[(kind, account, route, start_ms - start_ms % 60_000)].add(totals)
        by_end[(kind, account, end_ms - end_ms % 60_000)].add(totals)

    count("customer", call.customer, record.route, call.start_ms, call_totals(record))
    for attempt in record.attempts:
        if is_2xx(attempt.code) or attempt.attempt in open_ones:
            count("carrier", attempt.carrier, attempt.route, attempt.start_ms,
                  attempt_totals(attempt))
    for failed, next_answered in call_failovers(record):
        count("carrier", failed.carrier, failed.route, failed.start_ms,
              failover_totals(failed, next_answered))
    call_row = {column: getattr(record, column, None) for column in CALL_COLUMNS}
    call_row.update(seq=call.seq, carrier=call.carrier, attempts=len(record.attempts))
    attempt_rows = [
        {column: getattr(attempt, column, None) for column in ATTEMPT_COLUMNS} | {
            "call_seq": call.seq} for attempt in record.attempts]
    return call_row, attempt_rows, by_start, by_end


@PROPERTIES
@given(call=live_calls(), after_ms=durations_ms, code=codes, duration_ms=durations_ms,
       billed_ms=durations_ms, charge_micro=money_micro, cost_micro=money_micro)
def test_a_call_closed_counts_what_the_metric_definitions_say(
        call, after_ms, code, duration_ms, billed_ms, charge_micro, cost_micro):
    """The ingest makes a closed call's rows and totals from live state, with no records in
    between; they equal the records' and the metric functions' figures."""
    ingestor = Ingestor(clock=lambda: 0)
    end_ms = call.start_ms + after_ms
    money = {"duration_ms": duration_ms, "billed_ms": billed_ms, "charge_micro": charge_micro,
             "cost_micro": cost_micro, "hangup": "caller"}
    call_row, attempt_rows, by_start, by_end = expected_close(call, end_ms, code, money)
    ingestor.calls[call.call_id] = call
    ingestor._close(call, end_ms, code, **money)
    batch = ingestor.take_batch()
    assert [dict(zip(CALL_COLUMNS, row, strict=True)) for row in batch.calls] == [call_row]
    assert [dict(zip(ATTEMPT_COLUMNS, row, strict=True)) for row in batch.attempts] == attempt_rows
    assert {key: Totals(*row) for key, row in batch.rollups.items()} == by_start
    assert {key: Totals(*row) for key, row in batch.ended.items()} == by_end
