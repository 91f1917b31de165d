"""A database an older noc wrote opens in this one with every figure as if ingested today."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing

import pytest

from console.feed.traffic import Traffic
from store.database import prepare
from store.migrations import LATEST_VERSION
from store.queries import Reader
from tests.test_ingest import Harness

START_TS = 1_763_700_000.0
ROLLUPS = ("rollup_minute", "rollup_hour", "rollup_day", "rollup_ended_minute")


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


def as_version_1(path) -> None:
    """What noc wrote at schema 1: attempts without their call's billed time and charge, and
    carriers with no billed time and no revenue in any rollup."""
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


def test_a_new_database_is_made_at_the_latest_version(tmp_path):
    assert prepare(tmp_path / "new.db") == LATEST_VERSION
    with closing(sqlite3.connect(tmp_path / "new.db")) as db:
        version = db.execute("SELECT value FROM noc_meta WHERE key = 'schema_version'").fetchone()
    assert version == (str(LATEST_VERSION),)


def test_carrier_money_is_filled_in_from_the_stored_calls(current, tmp_path):
    old = tmp_path / "old.db"
    shutil.copy(current, old)
    as_version_1(old)
    assert table_rows(old, "rollup_hour") != table_rows(current, "rollup_hour")

    assert prepare(old) == LATEST_VERSION

    for table in ("attempt", *ROLLUPS):
        assert table_rows(old, table) == table_rows(current, table), table
    report = Reader(old).report()
    assert report == Reader(current).report()
    assert sum(carrier["revenue"] for carrier in report["carriers"].values()) == pytest.approx(
        sum(customer["revenue"] for customer in report["customers"].values()))
