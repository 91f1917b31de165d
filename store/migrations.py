"""Versioned schema migrations, so that a later noc opens a database an older one wrote.

Each step takes the database from version N-1 to N inside one transaction; later steps are plain
SQL (ALTER TABLE ...), appended below. A new database is made from the SQLModel metadata as it is
now, which is the latest version: the steps are for databases an older noc wrote.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

from store import models
from store.transactions import transaction


def _create(connection: sqlite3.Connection) -> None:
    # The alerting tables join v1; imported here, as store.alerting itself imports the database
    # module that imports this one.
    from store import alerting  # noqa: F401

    dialect = sqlite_dialect.dialect()
    for table in SQLModel.metadata.sorted_tables:
        connection.execute(str(CreateTable(table).compile(dialect=dialect)))
        for index in table.indexes:
            connection.execute(str(CreateIndex(index).compile(dialect=dialect)))
    connection.execute("INSERT INTO noc_meta (key, value) VALUES ('app', 'noc')")
    feed_state = models.FeedState().model_dump()
    columns, marks = ", ".join(feed_state), ", ".join("?" * len(feed_state))
    connection.execute(
        f"INSERT INTO feed_state ({columns}) VALUES ({marks})", tuple(feed_state.values())
    )


def _v2_carrier_money(connection: sqlite3.Connection) -> None:
    """A carrier's revenue and billed time are those of the calls it answered. Older versions
    counted neither (0 in every carrier rollup); the stored calls still hold both, so attempts
    and carrier rollups are filled from them, exactly as the ingest now counts them. Minutes
    already pruned from the minute rollups have no row to fill, and need none."""
    connection.execute("ALTER TABLE attempt ADD COLUMN billed_ms INTEGER NOT NULL DEFAULT 0")
    connection.execute("ALTER TABLE attempt ADD COLUMN charge_micro INTEGER NOT NULL DEFAULT 0")
    connection.execute(
        "UPDATE attempt SET billed_ms = call.billed_ms, charge_micro = call.charge_micro "
        "FROM call WHERE call.seq = attempt.call_seq AND attempt.code BETWEEN 200 AND 299")
    answered = ("FROM attempt a JOIN call c ON c.seq = a.call_seq "
                "WHERE a.code BETWEEN 200 AND 299 AND (a.billed_ms OR a.charge_micro)")
    # A summary's bucket is the attempt's start; an alert window's, the minute its call ended.
    by_start = [(table, f"a.start_ms - a.start_ms % {size}", route)
                for table, size in (("rollup_minute", 60_000), ("rollup_hour", 3_600_000),
                                    ("rollup_day", 86_400_000))
                for route in ("a.route", "''")]
    for table, bucket, route in [*by_start, ("rollup_ended_minute", "c.end_ms - c.end_ms % 60000",
                                             "''")]:
        connection.execute(
            f"UPDATE {table} SET billed_ms = d.billed, revenue_micro = d.revenue FROM ("
            f"SELECT a.carrier AS carrier, {route} AS route, {bucket} AS bucket, "
            f"sum(a.billed_ms) AS billed, sum(a.charge_micro) AS revenue {answered} "
            "GROUP BY 1, 2, 3) AS d "
            f"WHERE {table}.kind = 'carrier' AND {table}.account = d.carrier "
            f"AND {table}.route = d.route AND {table}.bucket = d.bucket")


# Step N takes a database from version N-1 to N; step 1 (creating one) is never run as a step.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create, _v2_carrier_money]
LATEST_VERSION = len(MIGRATIONS)


def migrate(connection: sqlite3.Connection, from_version: int) -> None:
    """Bring a database from `from_version` (0: a new file) to LATEST_VERSION."""
    if from_version == 0:
        _in_transaction(connection, _create, LATEST_VERSION)
        return
    for version in range(from_version + 1, LATEST_VERSION + 1):
        _in_transaction(connection, MIGRATIONS[version - 1], version)


def _in_transaction(connection: sqlite3.Connection,
                    step: Callable[[sqlite3.Connection], None], version: int) -> None:
    with transaction(connection):
        step(connection)
        connection.execute(
            "INSERT INTO noc_meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (str(version),),
        )
