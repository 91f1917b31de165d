"""A database an older noc wrote opens in this one with every figure as if ingested today."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing

import msgspec
import pytest

from console.feed.traffic import Traffic
from store.database import prepare
from store.migrations import LATEST_VERSION
from store.queries import Reader
from store.views import ConsoleData
from tests.test_ingest import Harness

START_TS = 1_763_700_000.0
RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
ROLLUPS = ("rollup_minute", "rollup_hour", "rollup_day", "rollup_ended_minute")
ENDED = ("rollup_ended_hour", "rollup_ended_day")


def traffic_events(hours: float = 1.5) -> list[dict]:
    """Realistic traffic with failovers and answered calls, across hour boundaries."""
    traffic = Traffic(3, cps=1.0, scenario="outage", start_ts=START_TS)
    events = list(traffic.advance_to(START_TS + hours * 3600))
    return [{**event, "seq": seq} for seq, event in enumerate(events, 1)]


@pytest.fixture(scope="module")
def current(tmp_path_factory):
    path = tmp_path_factory.mktemp("migrations") / "current.db"
    harness = Harness(path)
    events = traffic_events()
    harness.feed(*(events[at:at + 1000] for at in range(0, len(events), 1000)))
    harness.flush()
    harness.writer.close_now()
    return path


def as_version_6(path) -> None:
    """What noc wrote at schema 6: PDD rules, their alerts and history in milliseconds."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("UPDATE alert_rule SET threshold = threshold * 1000, "
                   "reset_threshold = reset_threshold * 1000 WHERE area = 'pdd'")
        db.execute("UPDATE alert_state SET value = value * 1000 "
                   "WHERE rule_id IN (SELECT id FROM alert_rule WHERE area = 'pdd')")
        db.execute("UPDATE alert_history SET value = value * 1000, threshold = threshold * 1000 "
                   "WHERE area = 'pdd'")
        db.execute("UPDATE noc_meta SET value = '6' WHERE key = 'schema_version'")


def as_version_5(path) -> None:
    """What noc wrote at schema 5: no rollups by the hour and day things ended."""
    as_version_6(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for table in ENDED:
            db.execute(f"DROP TABLE {table}")
        db.execute("UPDATE noc_meta SET value = '5' WHERE key = 'schema_version'")


def logged_events(path) -> list[tuple[int, int, str, bytes]]:
    """(seq, ts_ms, type, text) of every event in the event log, split from its rows."""
    found = []
    with closing(sqlite3.connect(path)) as db:
        for (raw,) in db.execute("SELECT raw FROM event_log ORDER BY first_seq"):
            texts = [bytes(text) for text in RAW_LIST.decode(raw)] if raw.startswith(b"[") else [
                raw]
            for text in texts:
                event = json.loads(text)
                found.append((event["seq"], round(event["ts"] * 1000), event["type"], text))
    return found


def as_version_4(path) -> None:
    """What noc wrote at schema 4: the event log a row per event."""
    as_version_5(path)
    events = logged_events(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN")  # one transaction: a commit per row took half a minute
        db.execute("DROP TABLE event_log")
        db.execute("CREATE TABLE event_log (seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL, "
                   "type VARCHAR NOT NULL, raw BLOB NOT NULL, PRIMARY KEY (seq))")
        db.execute("CREATE INDEX ix_event_log_ts_ms ON event_log (ts_ms)")
        db.executemany("INSERT INTO event_log VALUES (?, ?, ?, ?)", events)
        db.execute("UPDATE noc_meta SET value = '4' WHERE key = 'schema_version'")
        db.execute("COMMIT")


def as_version_3(path) -> None:
    """What noc wrote at schema 3: no count of the calls closed by the cap on open calls."""
    as_version_4(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("ALTER TABLE feed_state DROP COLUMN capped_calls")
        db.execute("UPDATE noc_meta SET value = '3' WHERE key = 'schema_version'")


def as_version_2(path) -> None:
    """What noc wrote at schema 2: rejects with no route, their breaches only in their
    customer's total (route ''), no index by time on rejects or by bucket on minutes, and the
    rollups and codes stored in rowid order."""
    as_version_3(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        for index in ("ix_reject_ts_ms", "ix_rollup_minute_bucket",
                      "ix_rollup_ended_minute_bucket"):
            db.execute(f"DROP INDEX {index}")
        for table in (*ROLLUPS, "code_hour"):
            sql = db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
            db.execute(f"ALTER TABLE {table} RENAME TO old")
            db.execute(sql[0].replace("WITHOUT ROWID", ""))
            db.execute(f"INSERT INTO {table} SELECT * FROM old")
            db.execute("DROP TABLE old")
        db.execute("ALTER TABLE reject DROP COLUMN route")
        for table in ROLLUPS:
            db.execute(f"UPDATE {table} SET breach_channel = 0, breach_cps = 0, "
                       "breach_other = 0 WHERE kind = 'customer' AND route != ''")
            db.execute(f"DELETE FROM {table} WHERE kind = 'customer' AND route != '' "
                       "AND attempts = 0")
        db.execute("UPDATE noc_meta SET value = '2' WHERE key = 'schema_version'")


def as_version_1(path) -> None:
    """What noc wrote at schema 1: attempts without their call's billed time and charge, and
    carriers with no billed time and no revenue in any rollup."""
    as_version_2(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("ALTER TABLE attempt DROP COLUMN billed_ms")
        db.execute("ALTER TABLE attempt DROP COLUMN charge_micro")
        for table in ROLLUPS:
            db.execute(f"UPDATE {table} SET billed_ms = 0, revenue_micro = 0 "
                       "WHERE kind = 'carrier'")
        db.execute("UPDATE noc_meta SET value = '1' WHERE key = 'schema_version'")


def table_rows(path, table: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4").fetchall()


def schema(path) -> list[tuple]:
    """Tables and indexes, and which tables are stored in the order of their keys."""
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT type, name, tbl_name, sql LIKE '%WITHOUT ROWID' "
                          "FROM sqlite_master ORDER BY name").fetchall()


def busiest_rejecting(path) -> tuple[str, int]:
    """The customer with the most rejects, and the newest moment of the feed."""
    with closing(sqlite3.connect(path)) as db:
        customer = db.execute("SELECT customer FROM reject GROUP BY customer "
                              "ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        return customer, db.execute("SELECT newest_ms FROM feed_state").fetchone()[0]


def test_a_new_database_is_made_at_the_latest_version(tmp_path):
    assert prepare(tmp_path / "new.db") == LATEST_VERSION
    with closing(sqlite3.connect(tmp_path / "new.db")) as db:
        version = db.execute("SELECT value FROM noc_meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(LATEST_VERSION),)


def test_the_ended_hours_and_days_hold_what_the_minutes_hold(current):
    """Calls still open at the end included: their failed attempts count as they end."""
    with closing(sqlite3.connect(current)) as db:
        assert db.execute("SELECT count(*) FROM open_call").fetchone()[0] > 0
        sums = ", ".join(f"sum({name})" for name in ("attempts", "answered", "duration_ms",
                                                     "revenue_micro", "failover", "breach_cps"))
        by_table = {table: db.execute(f"SELECT kind, account, {sums} FROM {table} "
                                      "GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
                    for table in ("rollup_ended_minute", *ENDED)}
    assert by_table["rollup_ended_minute"]
    assert by_table["rollup_ended_hour"] == by_table["rollup_ended_minute"]
    assert by_table["rollup_ended_day"] == by_table["rollup_ended_minute"]


def test_an_old_database_is_brought_up_to_date_from_its_stored_calls(current, tmp_path):
    old = tmp_path / "old.db"
    shutil.copy(current, old)
    as_version_1(old)
    assert table_rows(old, "rollup_hour") != table_rows(current, "rollup_hour")

    assert prepare(old) == LATEST_VERSION

    for table in ("attempt", "reject", *ROLLUPS, *ENDED):
        assert table_rows(old, table) == table_rows(current, table), table
    report = Reader(old).report()
    assert report == Reader(current).report()
    assert sum(carrier["revenue"] for carrier in report["carriers"].values()) == pytest.approx(
        sum(customer["revenue"] for customer in report["customers"].values()))


def test_rejects_are_given_their_routes_and_reads_by_time_their_indexes(current, tmp_path):
    old = tmp_path / "old.db"
    shutil.copy(current, old)
    as_version_2(old)
    customer, now_ms = busiest_rejecting(old)
    before = ConsoleData(old).route_stats(customer, now_ms)

    assert prepare(old) == LATEST_VERSION

    for table in ("reject", "code_hour", *ROLLUPS):
        assert table_rows(old, table) == table_rows(current, table), table
    assert schema(old) == schema(current)
    after = ConsoleData(old).route_stats(customer, now_ms)
    assert after == ConsoleData(current).route_stats(customer, now_ms)
    assert sum(stat.cps_breaches for stat in after) == sum(stat.cps_breaches for stat in before)
    routed = [stat for stat in after if stat.route and stat.cps_breaches + stat.other_breaches]
    assert routed, "the traffic has rejects that a route matches"


def test_a_version_3_database_counts_no_capped_calls_yet(current, tmp_path):
    old = tmp_path / "old.db"
    shutil.copy(current, old)
    as_version_3(old)
    assert prepare(old) == LATEST_VERSION
    with closing(sqlite3.connect(old)) as db:
        assert db.execute("SELECT capped_calls FROM feed_state").fetchall() == [(0,)]
    assert Reader(old).report() == Reader(current).report()


def test_each_event_logged_alone_becomes_a_row_of_one(current, tmp_path):
    old = tmp_path / "old.db"
    shutil.copy(current, old)
    as_version_4(old)

    assert prepare(old) == LATEST_VERSION

    events = logged_events(current)
    assert len(events) > 1000 and table_rows(old, "event_log") == [
        (seq, seq, 1, ts_ms, text) for seq, ts_ms, _, text in events]
    assert schema(old) == schema(current)


def test_pdd_rules_alerts_and_history_of_a_version_6_database_read_in_seconds(tmp_path):
    """Schema 6 kept PDD thresholds in milliseconds: a rule at 6000 (ms) reads 6 s after."""
    path = tmp_path / "old.db"
    prepare(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("INSERT INTO alert_rule (id, title, kind, scope, company, recipients, area, "
                    "operator, threshold, reset_threshold, minimum_sample, pending_s, penalty_s, "
                    "template, script, repeat_s, level, enabled, created_ms, updated_ms) "
                    "VALUES (1, 'PDD high', 'carrier', 'all', '', '[]', 'pdd', '>', 6, 4.5, 0, 0, "
                    "0, '', '', 0, 'warning', 1, 0, 0), (2, 'Low ASR', 'carrier', 'all', '', "
                    "'[]', 'asr', '<', 30, 35, 0, 0, 0, '', '', 0, 'warning', 1, 0, 0)")
        db.execute("INSERT INTO alert_state (rule_id, kind, account, state, value, detail, "
                    "since_ms, notified, silenced, acked_by, ack_comment, updated_ms) VALUES "
                    "(1, 'carrier', 'atlas', 'firing', 6.5, '', 0, 1, 0, '', '', 0), "
                    "(2, 'carrier', 'atlas', 'ok', 41.5, '', 0, 0, 0, '', '', 0)")
        db.execute("INSERT INTO alert_history (ts_ms, event, rule_id, area, value, threshold, "
                    "rule_title, kind, account, level, detail, recipient, message_id, actor) "
                    "VALUES (0, 'fired', 1, 'pdd', 6.5, 6, '', '', '', '', '', '', '', '')")
    as_version_6(path)

    assert prepare(path) == LATEST_VERSION

    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT title, threshold, reset_threshold FROM alert_rule "
                          "ORDER BY id").fetchall() == [("PDD high", 6, 4.5), ("Low ASR", 30, 35)]
        assert db.execute("SELECT rule_id, value FROM alert_state ORDER BY 1").fetchall() == [
            (1, 6.5), (2, 41.5)]
        assert db.execute("SELECT value, threshold FROM alert_history").fetchall() == [(6.5, 6)]
