"""The feed end to end, in one process: the real Simulator and the real IngestService (FeedClient,
Ingestor, StoreWriter) over loopback into a real SQLite file and a real PostgreSQL database,
checked against the brute-force reference run on what the simulator says it sent. No mocks of the
socket or the database.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import tracemalloc

import pytest

from console.feed import protocol as p
from console.feed.service import QUIET_NOTE_MS, IngestService, IngestSettings
from console.feed.simulator import CATCHING_UP_S
from store.actions import request_control
from store.database import prepare
from store.views import ConsoleData
from store.writer import StoreWriter
from tests.conftest import STORES, database_of
from tests.feedkit import (
    T0,
    RecordTail,
    assert_matches_reference,
    bare_feed,
    calls_by_outcome,
    feed_state,
    paced_by_store,
    quarantine_rows,
    query,
    read_record,
    read_report,
    run_service,
    running_simulator,
    stored_calls,
    stored_seq,
    wait_until,
)


@pytest.fixture(params=STORES)
def db(request, tmp_path):
    """Each test runs against a SQLite file and a PostgreSQL database."""
    return database_of(request, tmp_path)


async def test_a_full_scenario_is_stored_as_the_reference_computes_it(db):
    async with running_simulator(speed=0, limit=20_000, scenario="default") as (sim, url):
        async with run_service(db, url) as ingesting:
            await ingesting.until_committed(20_000)
        report = read_report(db)
        assert_matches_reference(report, sim.history)
        assert (report["last_seq"], report["gaps"], report["quarantined"]) == (20_000, [], 0)
        closed, still_open = calls_by_outcome(sim.history)
        calls, open_calls = stored_calls(db)
        assert calls == sorted(closed) and open_calls == still_open
        state = feed_state(db)
        assert (state["events"], state["duplicates"], state["status"]) == (20_000, 0, "stopped")


class GatedWriter(StoreWriter):
    """A real store whose commits wait at a gate the test opens (a store that has stalled)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()  # a commit is waiting at the closed gate

    def write_now(self, batch) -> None:
        if not self.gate.is_set():
            self.held.set()
            assert self.gate.wait(20), "the test never opened the gate"
        super().write_now(batch)


async def test_a_dropped_connection_resumes_and_resent_events_are_counted_not_applied(db):
    async with running_simulator(speed=20, cps=60, limit=12_000) as (sim, url):
        async with run_service(db, url, writer=GatedWriter) as ingesting:
            service, writer = ingesting.service, ingesting.service.writer
            await ingesting.until_committed(2_000)
            # Hold commits so that, at the resume, events are applied but not yet stored: the
            # server resends them from the stored seq, and they must be seen as duplicates.
            writer.gate.clear()
            await wait_until(
                lambda: writer.held.is_set() and service.ingestor.last_seq > service.committed_seq,
                what="a commit held with events applied past the stored seq")
            sim.drop_connections()
            await wait_until(lambda: service.client.connections == 2, what="a reconnection")
            assert service.committed_seq < service.ingestor.last_seq
            writer.gate.set()
            await ingesting.until_committed(12_000)
        report = read_report(db)
        assert_matches_reference(report, sim.history)
        assert (report["last_seq"], report["gaps"], report["quarantined"]) == (12_000, [], 0)
        state = feed_state(db)
        assert state["duplicates"] > 0
        assert state["events"] == 12_000  # every seq applied once
        event_log = query(db, "SELECT sum(events), min(first_seq), max(last_seq) FROM event_log")
        assert event_log == [(12_000, 1, 12_000)]  # every seq logged once
        closed, still_open = calls_by_outcome(sim.history)
        calls, open_calls = stored_calls(db)
        assert calls == sorted(closed) and open_calls == still_open


async def test_events_forgotten_while_the_client_is_away_are_stored_as_a_gap(db):
    async with running_simulator(speed=20, cps=60) as (sim, url), paced_by_store(sim, db):
        async with run_service(db, url) as ingesting:
            await ingesting.until_committed(1_000)
            sim.pause()
            await ingesting.until_committed(sim.head)
        last_stored = sim.head
        # While nobody listens: more traffic, of which the server then forgets all but the end.
        sim.resume()
        await wait_until(lambda: sim.head >= last_stored + 1_500, what="traffic while away")
        sim.pause()
        forgotten_upto = sim.head - 200
        sim.forget(forgotten_upto)
        sim.resume()
        async with run_service(db, url) as ingesting:
            await ingesting.until_committed(forgotten_upto + 2_000)  # the stream goes on
            sim.pause()
            await ingesting.until_committed(sim.head)
        report = read_report(db)
        assert report["gaps"] == [[last_stored + 1, forgotten_upto]]
        assert report["last_seq"] == sim.head
        assert query(db, "SELECT announced FROM gap") == [(1,)]
        received = [e for e in sim.history if not last_stored < e["seq"] <= forgotten_upto]
        assert_matches_reference(report, received)
        # Calls begun in the gap are unknown to the console: their later events are quarantined.
        started_in_gap = {e["call_id"] for e in sim.history
                          if last_stored < e["seq"] <= forgotten_upto and e["type"] == "call.start"}
        for seq, reason, raw in quarantine_rows(db):
            assert seq > forgotten_upto
            assert reason == "unknown call_id" or reason.startswith("attempt"), reason
            assert reason != "unknown call_id" or json.loads(raw)["call_id"] in started_in_gap


def without_seq(event: dict) -> dict:
    return {key: value for key, value in event.items() if key != "seq"}


async def test_every_class_of_bad_input_is_quarantined_and_the_stream_goes_on(db):
    async with running_simulator(speed=20, cps=60) as (sim, url):
        async with run_service(db, url) as ingesting:
            def an_ended_call_is_stored():
                return next((e for e in sim.history if e["type"] == "call.end"
                             and e["seq"] <= ingesting.service.committed_seq), None)

            ended = await wait_until(an_ended_call_is_stored, what="a call.end to be stored")
            now = round(sim.sim_now(), 3)
            oversized = json.dumps({"type": "heartbeat", "ts": now, "last_seq": 0,
                                    "padding": "x" * p.MAX_FRAME_BYTES})
            sim.inject_raw("{not json")
            sim.inject_raw(json.dumps(ended))  # a seq already stored, sent again mid-stream
            sim.inject_raw(oversized)
            injected = sim.inject_events([
                {"type": "call.teleport", "ts": now, "call_id": "x1"},
                {"type": "call.start", "ts": now, "call_id": "m1", "customer": "acme-telecom",
                 "cli": "441234567890"},  # no dst
                {"type": "call.answer", "ts": now, "call_id": "t1", "attempt": "1"},
                # An unknown call, with a clock two hours ahead: quarantined, it must not move
                # the feed's time either (that would close every open call as lost).
                {"type": "call.dtmf", "ts": now + 7200, "call_id": "ghost", "digit": "5"},
                {**without_seq(ended), "ts": now},  # a second call.end for one call
            ])
            teleport, missing, mistyped, ghost, second_end = injected
            await wait_until(lambda: sim.head > second_end["seq"] + 1_000, what="more traffic")
            sim.pause()
            await ingesting.until_committed(sim.head)

        rows = quarantine_rows(db)
        assert len(rows) == 8, [(seq, reason) for seq, reason, _ in rows]

        def row(prefix: str) -> tuple[int | None, str]:
            """(seq, raw) of the one row whose reason starts with `prefix`."""
            [found] = [(seq, raw) for seq, reason, raw in rows if reason.startswith(prefix)]
            return found

        assert row("not JSON") == (None, "{not json")
        assert row(f"seq {ended['seq']} going backwards: this connection's stream is already at "
                   "seq ") == (ended["seq"], json.dumps(ended))
        # An oversized frame: its size and first bytes, not all of it.
        size = len(oversized.encode())
        assert row(f"frame of {size:,} bytes refused: over the 1 MiB limit (its first 512 bytes "
                   "kept)") == (None, oversized[:512] + "…")
        reasons = {
            "unknown event type 'call.teleport'": teleport,
            "bad call.start: Object missing required field `dst`": missing,
            "bad call.answer: Expected `int`, got `str`": mistyped,
            "unknown call_id": ghost,
            "second call.end for the call": second_end,
        }
        for reason, event in reasons.items():
            seq, raw = row(reason)
            assert seq == event["seq"] and json.loads(raw) == event

        report = read_report(db)
        assert (report["quarantined"], report["last_seq"], report["gaps"]) == (8, sim.head, [])
        assert feed_state(db)["quarantined"] == 8
        assert_matches_reference(report, sim.history)


def account_enabled(db, kind: str, account: str) -> bool | None:
    rows = query(db, "SELECT enabled FROM account WHERE kind = ? AND id = ?", (kind, account))
    return bool(rows[0][0]) if rows else None


def control_outcome(db, request_id: str) -> tuple[str, str] | None:
    """(status, error) of a control request once it is no longer pending or sent."""
    rows = query(db, "SELECT status, error FROM control_request WHERE id = ?", (request_id,))
    return rows[0] if rows and rows[0][0] not in ("pending", "sent") else None


async def test_a_control_request_is_sent_acked_and_its_account_state_stored(db):
    customer = "acme-telecom"
    # No deadline of the test's own for an ack (the writer's 10 s is for a switch that never
    # answers): on a busy machine the ack may come late; pytest-timeout bounds the waits.
    settings = IngestSettings(control_ack_timeout=300)
    async with running_simulator(speed=20, cps=60) as (sim, url), paced_by_store(sim, db):
        async with run_service(db, url, settings=settings) as ingesting:
            await ingesting.until_committed(500)
            assert account_enabled(db, "customer", customer) is True
            # What a viewer (or the alert engine) does: a pending row for the writer to carry out.
            disable = request_control(db, action="disable", kind="customer", account=customer,
                                      reason="ASR alert", requested_by="test",
                                      now_ms=int(time.time() * 1000))
            assert await wait_until(lambda: control_outcome(db, disable)) == ("acked", "")
            [sent] = sim.controls
            assert (sent.id, sent.action, sent.kind, sent.account, sent.reason) == (
                disable, "disable", "customer", customer, "ASR alert")
            await wait_until(lambda: account_enabled(db, "customer", customer) is False,
                             what="the account event with enabled=false to be stored")
            [disabled_at] = [e["seq"] for e in sim.history if e["type"] == "account"
                             and e["id"] == customer and e.get("enabled") is False]

            def rejected_as_disabled() -> int:
                return query(db, "SELECT count(*) FROM reject WHERE customer = ? AND seq > ? "
                                 "AND reason = 'disabled'", (customer, disabled_at))[0][0]

            await wait_until(lambda: rejected_as_disabled() >= 3, what="disabled rejects")
            for table in ("call", "open_call"):
                assert query(db, f"SELECT count(*) FROM {table} WHERE customer = ? AND seq > ?",
                             (customer, disabled_at)) == [(0,)]

            # The client's own call, and a request the server refuses.
            ack = await ingesting.service.client.control(p.Control(
                id="enable-1", action="enable", kind="customer", account=customer),
                timeout=settings.control_ack_timeout)
            assert (ack.id, ack.ok) == ("enable-1", True)
            await wait_until(lambda: account_enabled(db, "customer", customer) is True,
                             what="the account event with enabled=true to be stored")
            refused = request_control(db, action="disable", kind="carrier", account="nobody",
                                      now_ms=int(time.time() * 1000))
            status, error = await wait_until(lambda: control_outcome(db, refused))
            assert status == "failed" and "nobody" in error
            sim.pause()
            await ingesting.until_committed(sim.head)
        report = read_report(db)
        assert report["customers"][customer]["breaches"]["other"] >= 3
        assert_matches_reference(report, sim.history)


async def test_a_silent_feed_is_presumed_dead_and_the_client_reconnects(db):
    subscriptions: list[dict] = []

    async def accept_then_stay_silent(ws) -> None:
        subscriptions.append(json.loads(await ws.recv()))
        await ws.wait_closed()

    settings = IngestSettings(heartbeat_timeout=0.5)
    async with (bare_feed(accept_then_stay_silent) as url,
                run_service(db, url, settings=settings) as ingesting):
        state = await wait_until(
            lambda: (state := feed_state(db)).get("status") == "reconnecting" and state,
            what="the status to show reconnecting")
        assert state["detail"] == "no frame for 0.5 s: connection presumed dead"
        assert state["reconnect_at_ms"] is not None
        await wait_until(lambda: len(subscriptions) >= 2 and feed_state(db).get("status")
                         == "connected", what="a new connection")
        assert ingesting.service.client.connections >= 2
    assert all(subscription == {"type": "subscribe", "since": 0}
               for subscription in subscriptions)


async def test_a_feed_that_closes_at_once_is_retried_until_it_serves(db):
    connections: list = []

    async def close_the_second_at_once(ws) -> None:
        connections.append(ws)
        if len(connections) == 2:  # restarting, or refusing more clients for now
            await ws.close(1013, "try again later")
            return
        await ws.recv()
        await ws.wait_closed()

    async with (bare_feed(close_the_second_at_once) as url,
                run_service(db, url) as ingesting):
        client = ingesting.service.client
        await wait_until(lambda: client.connections == 1, what="a first connection")
        connections[0].transport.abort()
        await wait_until(lambda: len(connections) == 3 and client.connections == 2,
                         what="a retry past the connection closed at once")
        ingesting.check_running()
        await wait_until(lambda: feed_state(db).get("status") == "connected", what="connected")


async def test_heartbeats_keep_a_quiet_feed_alive(db):
    settings = IngestSettings(heartbeat_timeout=0.6)
    async with (running_simulator(speed=20, heartbeat=0.1) as (sim, url),
                run_service(db, url, settings=settings) as ingesting):
        await ingesting.until_committed(100)
        sim.pause()
        await ingesting.until_committed(sim.head)
        await asyncio.sleep(1.5)  # over twice the timeout, with nothing but heartbeats
        assert ingesting.service.client.connections == 1
        assert feed_state(db)["status"] == "connected"


class SlowWriter(StoreWriter):
    """A real store that takes `delay` seconds longer over each commit (a slow disk)."""

    delay = 0.0

    def write_now(self, batch) -> None:
        time.sleep(self.delay)
        super().write_now(batch)


async def test_a_store_slower_than_the_feed_keeps_memory_bounded_and_loses_nothing(
        db, tmp_path, processes):
    # The simulator runs in its own process, so that this one's memory is the client's alone.
    record, total, far_behind = tmp_path / "sent.jsonl", 70_000, 60_000
    _, url = await processes.simulate("--speed", "400", "--start", str(T0),
                                      "--limit", str(total), "--record", str(record))
    sent = RecordTail(record)
    # Small bounds, so that what the client may hold is far less than what it falls behind by.
    settings = IngestSettings(max_batch_events=500, queue_frames=2)
    async with run_service(db, url, settings=settings, writer=SlowWriter) as ingesting:
        service = ingesting.service
        await ingesting.until_committed(1_000)
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            service.writer.delay = 1.0
            most_queued = 0

            def lagging() -> bool:
                nonlocal most_queued
                most_queued = max(most_queued, service.client.frames.qsize())
                return sent.head() - service.committed_seq >= far_behind

            await wait_until(lagging, interval=0.01, what="the feed to run far ahead")
            growth = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        service.writer.delay = 0.0
        await ingesting.until_committed(total)
    # The server held the backlog: 60,000 events are 8 MB as JSON, several times that decoded.
    # What the client holds (two frames queued, a batch in the writer, the socket's buffer,
    # open calls) peaked at 4.2-4.8 MiB on a busy machine: 8 MiB is still far below a backlog.
    assert growth < 8 << 20, f"the client grew by {growth / 2**20:.1f} MiB"
    assert most_queued <= settings.queue_frames
    report = read_report(db)
    assert (report["last_seq"], report["gaps"], report["quarantined"]) == (total, [], 0)
    assert_matches_reference(report, read_record(record))


async def test_stopping_stores_every_frame_already_received(db):
    settings = IngestSettings(max_batch_events=500, queue_frames=8)
    async with running_simulator(speed=0, limit=30_000) as (sim, url):
        async with run_service(db, url, settings=settings, writer=SlowWriter) as ingesting:
            service = ingesting.service
            await ingesting.until_committed(500)
            service.writer.delay = 0.1
            await wait_until(service.client.frames.full, what="the store to fall behind")
        # Stopped (as on SIGTERM) with a full queue: all of it was applied and stored.
        assert service.client.frames.empty()
        assert service.committed_seq == service.ingestor.last_seq == stored_seq(db)
        assert_matches_reference(read_report(db), sim.history[:service.committed_seq])


async def test_a_backfill_far_longer_than_the_resume_buffer_arrives_without_a_gap(tmp_path):
    """`noc demo --backfill N`: the simulator makes N seconds of history at once, far faster
    than a store takes it and before the console has even subscribed. Held to what a resume
    buffer of 2,000 events can serve, it comes through whole, and the channels in use stay
    within the customers' limits (calls whose end fell into a gap stayed open for ever)."""
    db = tmp_path / "noc.db"
    simulating = running_simulator(start=None, speed=1.0, cps=5, backfill=1_800, buffer=2_000)
    async with simulating as (sim, url), run_service(db, url) as ingesting:
        def caught_up() -> int:  # the head once the backfill is all generated
            return sim.head if sim.sim_now() - sim.traffic.now <= CATCHING_UP_S else 0

        backfilled = await wait_until(caught_up, what="the backfill to be generated")
        await ingesting.until_committed(backfilled)
        now_ms = round(sim.sim_now() * 1000)
    assert backfilled > 10 * 2_000
    report = read_report(db)
    assert (report["gaps"], report["quarantined"]) == ([], 0)
    assert report["last_seq"] >= backfilled
    dashboard = ConsoleData(db).dashboard(now_ms)
    assert dashboard.feed.gaps == 0
    assert dashboard.channels <= dashboard.channel_limit


class CatchingUpWriter(SlowWriter):
    delay = 0.02


async def test_a_writer_catching_up_a_backlog_says_how_far_it_is_until_current(tmp_path):
    """The demo's history, far more than a commit: while the writer stores it, every console
    reads how far it is (seq stored of the feed's head), and nothing of it once current."""
    db = tmp_path / "noc.db"
    said: list[tuple[int, int | None]] = []
    simulating = running_simulator(start=None, speed=1.0, cps=5, backfill=1_800, buffer=2_000)
    # A slow store: on a busy machine a fast one stored the whole backlog before a heartbeat
    # named the feed's head, and never read as behind.
    settings = IngestSettings(slice_events=500)
    async with simulating as (_sim, url), run_service(db, url, settings=settings,
                                                       writer=CatchingUpWriter) as ingesting:
        health = ingesting.service.health
        behind = health.behind
        health.behind = lambda stored, head: (said.append((stored, head)), behind(stored, head))
        await wait_until(lambda: [head for _, head in said if head is not None],
                         what="the writer behind")
        assert ConsoleData(db).feed().caught_up_pct < 100
        await wait_until(lambda: ConsoleData(db).feed().catching_up is None and said[-1][1] is None,
                         what="the writer current")
    stored, head = next((stored, head) for stored, head in said if head is not None)
    assert stored < head


def test_heartbeats_on_a_quiet_feed_are_stored_now_and_then_not_each(tmp_path):
    """A heartbeat that brings nothing is noted at most every QUIET_NOTE_MS: a commit for each
    woke every viewer to read the store again with nothing new to show."""
    prepare(tmp_path / "noc.db")
    service = IngestService(tmp_path / "noc.db", "ws://127.0.0.1:1/feed", token=None)
    beat = json.dumps({"type": "heartbeat", "ts": 1_763_700_000.0, "last_seq": 0}).encode()
    service._apply(beat)
    assert service.ingestor.has_changes()  # the first is noted
    service.ingestor.take_batch()
    service._apply(beat)
    assert not service.ingestor.has_changes()
    service._frame_noted_ms -= QUIET_NOTE_MS
    service._apply(beat)
    assert service.ingestor.has_changes()
