"""A PostgreSQL database as the store, where it differs from a SQLite file: what a user can get
wrong (each a one-line message, nothing written), one writer per database, viewers that only
read, and viewers told of each commit. What both stores share is tested over both elsewhere
(the feed end to end, the report reference, kill -9, the alert engine)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from store.database import STORE_ERRORS, StoreError, WriterLock, change_probe, connect, prepare
from store.health import StoreFault, StoreHealth
from store.models import DAY_COLUMNS
from store.postgres import (
    DAY_MS,
    IDLE_PER_DATABASE,
    WRITER_LOCK_KEY,
    masked,
    partition_name,
    raw_connection,
)
from store.queries import Reader
from store.views import ConsoleData
from store.writer import Retention
from tests.feedkit import (
    REPO,
    assert_matches_reference,
    free_port,
    query,
    read_report,
    running_simulator,
    stored_seq,
    wait_until,
)
from tests.pgkit import OWNER, Cluster, stop_orphans
from tests.test_cli import assert_one_line_error
from tests.test_ingest import T0, Harness, answered_call

DAY_S = 86_400


def tables(url: str) -> set[str]:
    with raw_connection(url) as db:
        return {row[0] for row in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}


def test_a_password_never_shows_in_a_message():
    assert masked("postgresql://noc:s3cret@db.example:5432/noc") == \
        "postgresql://noc:***@db.example:5432/noc"
    assert masked("postgresql://db.example/noc") == "postgresql://db.example/noc"


async def test_user_errors_end_in_one_line_and_nothing_is_written(postgres_db, postgres_cluster,
                                                                  processes):
    foreign, newer = postgres_db, postgres_cluster.database()
    with raw_connection(foreign) as db:
        db.execute("CREATE TABLE invoices (id integer PRIMARY KEY)")
    prepare(newer)
    with raw_connection(newer) as db:
        db.execute("UPDATE noc_meta SET value = '99' WHERE key = 'schema_version'")
    before = tables(newer)
    down = f"postgresql://noc:s3cret@127.0.0.1:{free_port()}/noc"
    feed = f"ws://127.0.0.1:{free_port()}/feed"
    cases = {  # what the user got wrong: (database, what the one line must say)
        "a wrong URL": ("postgresql://127.0.0.1:port/noc", ["cannot open", "postgresql://"]),
        "a server that is down": (down, ["cannot open", "noc:***@", "refused"]),
        "another application's database": (foreign, ["not noc's", "--db"]),
        "a schema from a newer noc": (newer, ["newer noc", "schema 99", "upgrade noc"]),
        "a database that does not exist": (
            postgres_cluster.url("nowhere"), ["cannot open", '"nowhere" does not exist']),
    }
    started = {case: processes.noc("ingest", "--feed", feed, "--db", url)
               for case, (url, _) in cases.items()}
    for case, process in started.items():
        exit_code = await process.wait()
        try:
            assert_one_line_error(process, exit_code, *cases[case][1])
            assert "s3cret" not in process.stderr
        except AssertionError as failure:
            raise AssertionError(f"{case}: {failure}") from None
    assert tables(foreign) == {"invoices"}
    assert tables(newer) == before
    with raw_connection(newer) as db:
        state = db.execute("SELECT last_seq, status FROM feed_state").fetchone()
    assert state == (0, "never connected")


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(postgres_db):
    prepare(postgres_db)
    first = WriterLock.for_database(postgres_db)
    first.acquire()
    try:
        assert WriterLock.for_database(postgres_db).held_by_other()
        with pytest.raises(StoreError, match=r"already has a writer \(pid \d+ on "):
            WriterLock.for_database(postgres_db).acquire()
    finally:
        first.release()
    assert not WriterLock.for_database(postgres_db).held_by_other()
    second = WriterLock.for_database(postgres_db)
    second.acquire()  # a writer that stopped (or died: its connection ends) lets another in
    second.release()


def test_a_viewer_connection_cannot_write(postgres_db):
    prepare(postgres_db)
    with contextlib.closing(connect(postgres_db)) as viewer, pytest.raises(
            STORE_ERRORS, match="read-only"):
        viewer.execute("UPDATE feed_state SET last_seq = 5")


async def test_a_viewer_sees_each_commit(postgres_db, processes):
    prepare(postgres_db)
    probe = change_probe(postgres_db)
    try:
        # (The server's own records move the WAL now and then too, some 15 s apart when idle:
        # a viewer reads again at most that often, as it does every 10 s anyway.)
        quiet = probe.marker()
        async with running_simulator(speed=20, cps=60) as (_sim, url):
            ingest = processes.noc("ingest", "--feed", url, "--db", postgres_db)
            await wait_until(lambda: stored_seq(postgres_db) > 100, what="ingest to store")
            assert probe.marker() != quiet
            ingest.kill()
    finally:
        probe.close()


def partitions(url: str, table: str) -> list[str]:
    with raw_connection(url) as db:
        return sorted(row[0] for row in db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s", (table,)))


def test_an_old_day_of_events_and_calls_is_dropped_whole_and_its_rollups_kept(any_db):
    harness = Harness(any_db)
    harness.writer.retention = Retention(minute_rollup_days=8, event_log_days=2, call_days=2)
    days = (0, 1, 3)  # T0's day, the next, and two days later
    try:
        for number, day in enumerate(days):
            harness.feed(answered_call(1 + 10 * number, f"call-{day}", day * DAY_S))
            harness.flush()
    finally:
        harness.writer.close_now()
    cutoff = query(any_db, "SELECT newest_ms FROM feed_state")[0][0] - 2 * DAY_MS
    for table, column in DAY_COLUMNS.items():
        assert query(any_db, f"SELECT count(*) FROM {table} WHERE {column} < ?",
                     (cutoff,)) == [(0,)], table
    assert query(any_db, "SELECT call_id FROM call") == [("call-3",)]
    hours = {row[0] for row in query(any_db, "SELECT bucket FROM rollup_hour")}
    assert hours == {int(T0 + day * DAY_S) * 1000 // 3_600_000 * 3_600_000 for day in days}
    if isinstance(any_db, str):  # PostgreSQL: by day, the first day's partitions are gone
        first_day = int(T0 * 1000) // DAY_MS * DAY_MS
        for table in ("event_log", "call", "attempt"):  # no rejects here
            names = partitions(any_db, table)
            assert partition_name(table, first_day) not in names
            assert partition_name(table, first_day + 3 * DAY_MS) in names


def test_a_report_edge_where_the_cdrs_are_pruned_is_refused_and_whole_hours_still_count(any_db):
    harness = Harness(any_db)
    harness.writer.retention = Retention(call_days=2)
    try:
        for number, day in enumerate((0, 3)):
            harness.feed(answered_call(1 + 10 * number, f"call-{day}", day * DAY_S + 60))
            harness.flush()
    finally:
        harness.writer.close_now()
    hour_ms = int(T0) * 1000 // 3_600_000 * 3_600_000  # the first call's hour
    reader = Reader(any_db)
    whole_hours = reader.report(hour_ms, hour_ms + 4 * DAY_MS)
    assert whole_hours["customers"]["acme"]["answered"] == 2  # the pruned day's from its rollups
    late_edge = reader.report(hour_ms + 3 * DAY_MS + 30_000, hour_ms + 4 * DAY_MS)
    assert late_edge["customers"]["acme"]["answered"] == 1  # an edge where the CDRs are kept
    with pytest.raises(StoreError, match=r"edge at .* CDRs before .* are pruned "
                                         r"\(store.call_days\): .* whole hour"):
        reader.report(hour_ms + 30_000, hour_ms + 4 * DAY_MS)


def test_an_event_log_made_before_partitions_is_pruned_by_rows(postgres_db):
    prepare(postgres_db)
    with raw_connection(postgres_db) as db:  # as the first PostgreSQL stores made it
        db.execute("ALTER TABLE event_log RENAME TO event_log_by_day")
        db.execute("CREATE TABLE event_log (LIKE event_log_by_day INCLUDING ALL)")
        db.execute("DROP TABLE event_log_by_day CASCADE")  # and its sequence, unused
    harness = Harness(postgres_db)
    harness.writer.retention = Retention(minute_rollup_days=8, event_log_days=2)
    try:
        for number, day in enumerate((0, 3)):
            harness.feed(answered_call(1 + 10 * number, f"call-{day}", day * DAY_S))
            harness.flush()
    finally:
        harness.writer.close_now()
    assert partitions(postgres_db, "event_log") == []
    assert query(postgres_db, "SELECT min(first_seq) FROM event_log") == [(11,)]
    assert query(postgres_db, "SELECT count(*) FROM call") == [(2,)]  # CDRs kept for good


def test_a_viewer_reuses_its_connections_and_reads_on_when_the_server_ended_them(postgres_db):
    prepare(postgres_db)
    data = ConsoleData(postgres_db)
    first = data.feed()
    for _ in range(20):
        assert data.feed() == first
    with raw_connection(postgres_db) as db:
        (others,) = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()").fetchone()
        assert 0 < others <= IDLE_PER_DATABASE  # kept, not one per read
        db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert data.feed() == first  # (a restart of the server, say): no failed read


def test_a_writer_that_cannot_commit_says_so_to_every_viewer(postgres_db):
    prepare(postgres_db)
    lock = WriterLock.for_database(postgres_db)
    lock.acquire()
    probe = change_probe(postgres_db)
    try:
        quiet = probe.marker()
        health = StoreHealth(lock, clock=lambda: 1_000)
        health.failed("ingest", StoreFault("disk full", "no space */ /* left", passing=True), 5)
        assert probe.marker() != quiet  # the consoles read again
        feed = ConsoleData(postgres_db).feed()
        assert feed.writer_running
        assert [(t.part, t.cause, t.detail) for t in feed.store_troubles] == [
            ("ingest", "disk full", "no space */ /* left")]
        health.recovered("ingest")
        assert ConsoleData(postgres_db).feed().store_troubles == ()
    finally:
        probe.close()
        lock.release()


END_OTHER_SESSIONS = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def end_writer_sessions(url: str) -> None:
    """What a server restart does to the writer: every session but this one ended."""
    with raw_connection(url) as db:
        db.execute(END_OTHER_SESSIONS)


async def test_a_writer_whose_server_connections_end_takes_the_database_back_and_goes_on(
        postgres_db, processes):
    async with running_simulator(speed=20, cps=60, limit=20_000) as (sim, url):
        ingest = processes.noc("ingest", "--feed", url, "--db", postgres_db)
        await wait_until(lambda: stored_seq(postgres_db) > 1_000, what="ingest to store")
        end_writer_sessions(postgres_db)
        # The lock is taken back at the next commit, or (all stored by then) the next read of
        # control requests: at least every 10 s.
        await wait_until(lambda: not ingest.running() or (
            stored_seq(postgres_db) == 20_000
            and WriterLock.for_database(postgres_db).held_by_other()),
            what="ingest to go on and hold the writer lock again")
        assert ingest.running(), ingest.stderr
        os.kill(ingest.pid, signal.SIGTERM)
        assert await ingest.wait() == 0
    assert "database server restarting" in ingest.stderr
    assert "Traceback" not in ingest.stderr
    report = read_report(postgres_db)
    assert (report["last_seq"], report["gaps"], report["quarantined"]) == (20_000, [], 0)
    assert_matches_reference(report, sim.history)


async def test_a_writer_that_finds_another_took_over_stops_and_the_restart_resumes(
        postgres_db, processes):
    async with running_simulator(speed=20, cps=60, limit=20_000) as (sim, url):
        ingest = processes.noc("ingest", "--feed", url, "--db", postgres_db)
        await wait_until(lambda: stored_seq(postgres_db) > 1_000, what="ingest to store")
        with raw_connection(postgres_db) as other:  # another writer, in the gap the end left
            other.execute(  # one round trip: queued for the lock before the writer can return
                f"{END_OTHER_SESSIONS}; SELECT pg_advisory_lock({WRITER_LOCK_KEY})".encode())
            assert await ingest.wait() == 3
        last = ingest.stderr.strip().splitlines()[-1]
        held = stored_seq(postgres_db)
        assert last.startswith("noc: store: "), last
        assert "another writer took the database" in last
        assert f"holds the feed up to seq {held:,}" in last
        assert last.endswith("the next start resumes from there, nothing is lost")
        assert "Traceback" not in ingest.stderr
        restarted = processes.noc("ingest", "--feed", url, "--db", postgres_db)
        await wait_until(lambda: stored_seq(postgres_db) == 20_000, what="the restart to catch up")
        restarted.kill()
    report = read_report(postgres_db)
    assert (report["last_seq"], report["gaps"], report["quarantined"]) == (20_000, [], 0)
    assert_matches_reference(report, sim.history)


async def test_the_demo_refuses_a_server_database_in_one_line(tmp_path, processes):
    demo = processes.noc("demo", "--db", "postgresql://noc@127.0.0.1:1/noc")
    assert_one_line_error(demo, await demo.wait(), "noc demo keeps its own SQLite file")
    assert not (tmp_path / "postgresql:").exists() and not list(REPO.glob("postgresql:*"))


def test_a_cluster_left_by_a_killed_test_session_is_stopped_by_the_next(postgres_cluster):
    if not isinstance(postgres_cluster, Cluster):
        pytest.skip(postgres_cluster)
    folder = Path(tempfile.mkdtemp(prefix="noc-pg-test-"))
    folder.chmod(0o755)  # (the cluster's own user reaches its folder through this one)
    orphan = Cluster(postgres_cluster.bin_dir, folder)
    try:
        orphan.start()
        gone = subprocess.Popen(["true"])
        gone.wait()
        (orphan.root / OWNER).write_text(str(gone.pid))  # its session was killed
        alive = Cluster(postgres_cluster.bin_dir, folder)  # this session's: left alone
        (alive.root / OWNER).write_text(str(os.getpid()))
        assert stop_orphans(postgres_cluster.bin_dir, folder) == [orphan.root]
        assert not orphan.root.exists() and alive.root.exists()
        with pytest.raises(StoreError, match="refused"):
            connect(orphan.url())
    finally:
        orphan.stop()
        shutil.rmtree(folder, ignore_errors=True)
