"""Frames no feed should send: nested beyond reason, over the size limit (whole or in fragments),
a seq repeated or going backwards, and a feed that opens calls and never ends them. Each is
quarantined (or bounded) and the stream goes on over the same connection; the writer's memory
stays bounded. The real simulator or a bare websockets server, a real client, a real SQLite file.
"""

from __future__ import annotations

import json
import re
import signal
import tracemalloc
from pathlib import Path

from console.feed import ingestor as ingestor_module
from console.feed.ingestor import Ingestor
from console.feed.service import IngestSettings
from store.database import prepare
from store.views import ConsoleData
from store.writer import StoreWriter
from tests.feedkit import (
    T0,
    assert_matches_reference,
    bare_feed,
    paced_by_store,
    quarantine_rows,
    read_report,
    run_service,
    running_simulator,
    stored_seq,
    wait_until,
)

MIB = 1 << 20


async def test_a_frame_nested_100000_deep_is_quarantined_and_the_stream_goes_on(db):
    deep = "[" * 100_000 + "]" * 100_000
    in_an_event = json.dumps({"seq": 1, "type": "call.dtmf", "ts": T0, "call_id": "x",
                              "digit": "1", "extra": "@"}).replace('"@"', deep)
    async with (running_simulator(speed=20, cps=60) as (sim, url),
                run_service(db, url) as ingesting):
        await ingesting.until_committed(500)
        sim.inject_raw(deep)
        sim.inject_raw(in_an_event)
        await wait_until(lambda: sim.head > ingesting.service.committed_seq + 500,
                         what="more traffic")
        sim.pause()
        await ingesting.until_committed(sim.head)
        assert ingesting.service.client.connections == 1
    rows = quarantine_rows(db)
    assert [(seq, reason, len(raw)) for seq, reason, raw in rows] == [
        (None, "not JSON: nested too deeply", len(deep)),
        (None, "not JSON: nested too deeply", len(in_an_event))]
    report = read_report(db)
    assert (report["last_seq"], report["gaps"], report["quarantined"]) == (sim.head, [], 2)
    assert_matches_reference(report, sim.history)


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024


async def test_50_mib_frames_are_quarantined_by_size_and_first_bytes_on_the_same_connection(
        db, processes):
    huge = json.dumps({"type": "heartbeat", "ts": T0, "last_seq": 0,
                       "padding": "x" * (50 * MIB)})
    async with running_simulator(speed=20, cps=60) as (sim, url), paced_by_store(sim, db):
        ingest = processes.noc("ingest", "--feed", url, "--db", str(db))
        await wait_until(lambda: stored_seq(db) > 1_000, what="ingest to store")
        # Traffic stands still while the frames come, so that the writer's growth is theirs.
        sim.pause()
        await wait_until(lambda: stored_seq(db) == sim.head, what="ingest to catch up")
        before = peak_rss_mib(ingest.pid)
        for _ in range(3):
            sim.inject_raw(huge)
        await wait_until(lambda: len(quarantine_rows(db)) == 3, what="three frames quarantined")
        grew = peak_rss_mib(ingest.pid) - before
        sent = sim.head
        sim.resume()
        await wait_until(lambda: stored_seq(db) > sent, what="the stream to go on")
        sim.pause()
        await wait_until(lambda: stored_seq(db) == sim.head, what="ingest to catch up")
        ingest.process.send_signal(signal.SIGTERM)
        assert await ingest.wait() == 0, ingest.stderr
    # Never held whole: 150 MiB came through a process that grew by a fraction of one frame.
    assert grew < 16, f"the writer's peak memory grew by {grew:.0f} MiB"
    assert ingest.stderr.count("INFO feed: connected") == 1  # one connection throughout
    size = len(huge)
    for seq, reason, raw in quarantine_rows(db):
        assert seq is None
        assert reason == (f"frame of {size:,} bytes refused: over the 1 MiB limit (its first "
                          "512 bytes kept)")
        assert raw == huge[:512] + "…"
    report = read_report(db)
    assert (report["last_seq"], report["gaps"], report["quarantined"]) == (sim.head, [], 3)
    assert_matches_reference(report, sim.history)


def event(seq: int, call_id: str, type_: str = "call.start", **fields) -> str:
    base = {"seq": seq, "type": type_, "ts": T0 + seq, "call_id": call_id}
    if type_ == "call.start":
        base |= {"customer": "acme", "cli": "1", "dst": "2"}
    return json.dumps(base | fields)


async def test_a_message_fragmented_past_the_limit_is_quarantined_and_the_stream_goes_on(db):
    async def fragmented_feed(ws) -> None:
        await ws.recv()  # the subscription
        await ws.send(event(1, "a"))
        fragment = "y" * (64 << 10)
        await ws.send([fragment] * 48)  # a 3 MiB message in 48 fragments
        await ws.send(event(2, "b"))
        await ws.wait_closed()

    async with (bare_feed(fragmented_feed) as url,
                run_service(db, url) as ingesting):
        await ingesting.until_committed(2)
        assert ingesting.service.client.connections == 1
    [(seq, reason, raw)] = quarantine_rows(db)
    assert (seq, reason) == (None, "frame of 3,145,728 bytes refused: over the 1 MiB limit "
                                   "(its first 512 bytes kept)")
    assert raw == "y" * 512 + "…"
    assert read_report(db)["customers"]["acme"]["attempts"] == 0  # both calls still open
    assert stored_seq(db) == 2


def test_a_seq_repeated_or_going_backwards_in_a_connection_says_which(tmp_path):
    prepare(tmp_path / "noc.db")
    writer = StoreWriter(tmp_path / "noc.db")
    writer.open_now()
    ingestor = Ingestor(clock=lambda: 0)
    ingestor.subscribed(0)
    for frame in (event(1, "a"), event(2, "b"), event(3, "c"), event(3, "c"), event(1, "a")):
        ingestor.apply_frame(frame)
    writer.write_now(ingestor.take_batch())
    writer.close_now()
    assert [(seq, reason) for seq, reason, _ in quarantine_rows(tmp_path / "noc.db")] == [
        (3, "seq 3 repeated: this connection's stream is already at seq 3"),
        (1, "seq 1 going backwards: this connection's stream is already at seq 3")]


def starts(first: int, count: int, customers: int = 10) -> list[bytes]:
    """`count` call.start events (never ended) from seq `first`, in frames of 500."""
    events = [{"seq": seq, "type": "call.start", "ts": T0 + seq / 1000, "call_id": f"c{seq}",
               "customer": f"customer-{seq % customers}", "cli": "1", "dst": "44"}
              for seq in range(first, first + count)]
    return [json.dumps(events[i:i + 500]).encode() for i in range(0, count, 500)]


def test_calls_that_never_end_are_capped_the_oldest_closed_as_lost_counted_and_shown(
        tmp_path, monkeypatch):
    path = tmp_path / "noc.db"
    prepare(path)
    writer = StoreWriter(path)
    writer.open_now()
    ingestor = Ingestor(clock=lambda: 0, max_open_calls=2_000)
    # What the writer remembers of ended calls is bounded too; small here, so that a test with
    # tracemalloc on reaches the steady state in seconds.
    monkeypatch.setattr(ingestor_module, "RECENTLY_ENDED", 2_000)

    def feed(frames: list[bytes]) -> None:
        for frame in frames:
            ingestor.apply_frame(frame)
            writer.write_now(ingestor.take_batch())

    # Up to the cap and far past it: the calls it closed fill what the writer remembers of ended
    # calls, and from then on nothing grows.
    tracemalloc.start()  # from the first call on, so that what is freed counts too
    try:
        feed(starts(1, 10_000))
        before = tracemalloc.get_traced_memory()[0]
        feed(starts(10_001, 10_000))
        grew = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    writer.close_now()
    assert len(ingestor.calls) == 2_000
    assert min(c.seq for c in ingestor.calls.values()) == 18_001  # the newest kept
    # 10,000 more open calls would take about 10 MiB
    assert grew < MIB / 2, f"{grew / MIB:.1f} MiB more for 10,000 more open calls"
    data = ConsoleData(path)
    feed_view = data.feed()
    assert (feed_view.capped_calls, feed_view.lost_calls) == (18_000, 0)
    checks = [check.text for check in data.dashboard(0).checks]
    assert ("18,000 calls closed as lost: more were open at once than the writer keeps "
            "(store.max_open_calls)") in checks
    report = read_report(path)
    assert sum(c["attempts"] for c in report["customers"].values()) == 18_000  # ended: code 0


async def test_accounts_past_the_limit_are_quarantined(db):
    settings = IngestSettings(max_accounts=1_000)
    async with (bare_feed(lambda ws: send_starts(ws, starts(1, 2_000, customers=2_000)))
                as url, run_service(db, url, settings=settings) as ingesting):
        await ingesting.until_committed(2_000)
    rows = quarantine_rows(db)
    assert len(rows) == 1_000
    assert {reason for _, reason, _ in rows} == {
        "a new account past the limit of 1,000 accounts (store.max_accounts)"}
    assert len(ConsoleData(db).account_names()) == 1_000


async def send_starts(ws, frames: list[bytes]) -> None:
    await ws.recv()
    for frame in frames:
        await ws.send(frame.decode())
    await ws.wait_closed()


async def test_calls_closed_by_the_cap_are_logged_in_one_line_a_commit(db, caplog):
    settings = IngestSettings(max_open_calls=1_000)
    async with (bare_feed(lambda ws: send_starts(ws, starts(1, 1_500))) as url,
                run_service(db, url, settings=settings) as ingesting):
        await ingesting.until_committed(1_500)
    logged = [record for record in caplog.records
              if "(store.max_open_calls)" in record.getMessage()]
    assert {record.levelname for record in logged} == {"WARNING"}
    assert logged[-1].getMessage().endswith(
        "were open at once (store.max_open_calls); 500 so far")
    assert sum(int(record.getMessage().split()[1]) for record in logged) == 500
    assert ConsoleData(db).feed().capped_calls == 500
