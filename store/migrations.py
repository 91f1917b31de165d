"""Versioned schema migrations, so that a later noc opens a database an older one wrote.

Each step takes the database from version N-1 to N inside one transaction; later steps are plain
SQL (ALTER TABLE ...), appended below. A new database is made from the SQLModel metadata as it is
now, which is the latest version: the steps are for databases an older noc wrote.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

from store import metrics, models, routes
from store.live import unpack
from store.metrics import AttemptRecord, CallRecord
from store.transactions import transaction

MIGRATION_CHUNK = 100_000  # rows of a big table handled at once, so that memory stays bounded


def _create(connection: sqlite3.Connection) -> None:
    dialect = sqlite_dialect.dialect()
    for table in SQLModel.metadata.sorted_tables:
        connection.execute(str(CreateTable(table).compile(dialect=dialect)))
    _create_indexes(connection)
    create_rows(connection)


def create_rows(connection: sqlite3.Connection) -> None:
    """The rows a new database starts with, in either engine: whose it is, the feed state."""
    connection.execute("INSERT INTO noc_meta (key, value) VALUES ('app', 'noc')")
    feed_state = models.FeedState().model_dump()
    columns, marks = ", ".join(feed_state), ", ".join("?" * len(feed_state))
    connection.execute(
        f"INSERT INTO feed_state ({columns}) VALUES ({marks})", tuple(feed_state.values())
    )


def _create_indexes(connection: sqlite3.Connection, names: set[str] | None = None) -> None:
    """The indexes of the schema as it is now (those named, or all)."""
    dialect = sqlite_dialect.dialect()
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            if names is None or index.name in names:
                connection.execute(str(CreateIndex(index).compile(dialect=dialect)))


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


def _v3_reads_by_time_and_rejects_by_route(connection: sqlite3.Connection) -> None:
    """Reads flat with history: the rollups and SIP codes stored in the order of their keys
    (WITHOUT ROWID), rejects and pruned minutes read by time along indexes, and route stats read
    each reject's route from the rollups: every stored reject is given the route that route
    stats matched it to at each read until now (store/routes.py), its breach counted there."""
    dialect = sqlite_dialect.dialect()
    for model in (models.RollupMinute, models.RollupEndedMinute, models.RollupHour,
                  models.RollupDay, models.CodeHour):
        table = model.__table__
        columns = ", ".join(column.name for column in table.columns)
        connection.execute(f"ALTER TABLE {table.name} RENAME TO {table.name}_v2")
        connection.execute(str(CreateTable(table).compile(dialect=dialect)))
        connection.execute(f"INSERT INTO {table.name} ({columns}) "
                           f"SELECT {columns} FROM {table.name}_v2")
        connection.execute(f"DROP TABLE {table.name}_v2")
    connection.execute("ALTER TABLE reject ADD COLUMN route VARCHAR NOT NULL DEFAULT ''")
    _create_indexes(connection, {"ix_reject_ts_ms", "ix_rollup_minute_bucket",
                                 "ix_rollup_ended_minute_bucket"})
    known = routes.KnownRoutes()
    for customer, route in routes.known_routes(connection):
        known.add(customer, route)
    after = -1
    while chunk := connection.execute(
            "SELECT seq, customer, ts_ms, reason, dst FROM reject WHERE seq > ? ORDER BY seq "
            "LIMIT ?", (after, MIGRATION_CHUNK)).fetchall():
        after = chunk[-1][0]
        moves = [((seq, customer, ts_ms, reason, routes.ALL_ROUTES), route)
                 for seq, customer, ts_ms, reason, dst in chunk
                 if (route := known.match(customer, dst))]
        routes.move_rejects(connection, moves)
        connection.executemany("UPDATE reject SET route = ? WHERE seq = ?",
                               [(route, reject[0]) for reject, route in moves])


def _v4_capped_calls(connection: sqlite3.Connection) -> None:
    """The calls the writer closed as lost because more were open than its cap allows."""
    connection.execute(
        "ALTER TABLE feed_state ADD COLUMN capped_calls INTEGER NOT NULL DEFAULT 0")


def _v5_event_log_by_frame(connection: sqlite3.Connection) -> None:
    """The event log holds a row per frame (its events as received): each event an older noc
    logged on its own becomes a row of one."""
    table = models.EventLog.__table__
    connection.execute("ALTER TABLE event_log RENAME TO event_log_v4")
    connection.execute(str(CreateTable(table).compile(dialect=sqlite_dialect.dialect())))
    connection.execute("INSERT INTO event_log (first_seq, last_seq, events, ts_ms, raw) "
                       "SELECT seq, seq, 1, ts_ms, raw FROM event_log_v4")
    connection.execute("DROP TABLE event_log_v4")
    _create_indexes(connection, {index.name for index in table.indexes})


BACKFILL_CALLS = 20_000  # calls read at a time


def _v6_ended_hours_and_days(connection: sqlite3.Connection) -> None:
    """Totals by the hour and day things ended, for live graphs of ratios. Filled from the
    stored calls and rejects (and the failed attempts of calls still open), exactly as the
    ingest now counts them, a batch of calls at a time."""
    from store import rollups

    dialect = sqlite_dialect.dialect()
    for model in (models.RollupEndedHour, models.RollupEndedDay):
        connection.execute(str(CreateTable(model.__table__).compile(dialect=dialect)))
    inserts = {period: rollups.upsert(models.ENDED_TABLES[period].__tablename__)
               for period in ("hour", "day")}

    def add(parts: Iterable[tuple[tuple[str, str, int], Sequence[int]]]) -> None:
        widened: dict[str, dict[rollups.RollupKey, list[int]]] = {period: {} for period in inserts}
        for (kind, account, minute), values in parts:
            for period, rows in widened.items():
                key = (kind, account, rollups.ALL_ROUTES, rollups.bucket_of(minute, period))
                rollups.add_into(rows.setdefault(key, rollups.zero()), values)
        for period, rows in widened.items():
            inserts[period].run(connection, rollups.upsert_rows(rows))

    def collect(calls: Iterable[CallRecord]) -> list[tuple[tuple[str, str, int], Sequence[int]]]:
        return [part for call in calls for part in rollups.ended_rows(call)]

    last = 0
    while True:
        upto, count = connection.execute(
            "SELECT max(seq), count(*) FROM (SELECT seq FROM call WHERE seq > ? ORDER BY seq "
            "LIMIT ?) AS chunk", (last, BACKFILL_CALLS)).fetchone()
        if not count:
            break
        add(collect(_read_calls(connection, "seq > ? AND seq <= ?", (last, upto))))
        last = upto
    add(collect(_read_open_calls(connection)))
    add((("customer", customer, minute),
         [value * count for value in metrics.breach_totals(reason).as_tuple()])
        for customer, minute, reason, count in connection.execute(
            "SELECT customer, ts_ms - ts_ms % 60000, reason, count(*) FROM reject "
            "GROUP BY 1, 2, 3"))


def _v7_pdd_in_seconds(connection: sqlite3.Connection) -> None:
    """PDD rules hold their thresholds in seconds, as they are typed and shown (they were
    milliseconds); their alerts' values and their history follow."""
    connection.execute(
        "UPDATE alert_rule SET threshold = threshold / 1000.0, "
        "reset_threshold = reset_threshold / 1000.0 WHERE area = 'pdd'")
    connection.execute(
        "UPDATE alert_state SET value = value / 1000.0 "
        "WHERE rule_id IN (SELECT id FROM alert_rule WHERE area = 'pdd')")
    connection.execute(
        "UPDATE alert_history SET value = value / 1000.0, threshold = threshold / 1000.0 "
        "WHERE area = 'pdd'")


def _read_calls(connection: sqlite3.Connection, where: str, params: tuple) -> list[CallRecord]:
    """Ended calls (with their attempts) whose row matches `where`."""
    calls = connection.execute(
        "SELECT seq, call_id, customer, start_ms, end_ms, code, cli, dst, route, duration_ms, "
        "billed_ms, charge_micro, cost_micro, progress_ms, dtmf_count, hangup FROM call "
        f"WHERE {where}",
        params,
    ).fetchall()
    if not calls:
        return []
    attempts: dict[int, list[AttemptRecord]] = defaultdict(list)
    seqs = [row[0] for row in calls]
    for chunk in range(0, len(seqs), 500):
        part = seqs[chunk : chunk + 500]
        for row in connection.execute(
            "SELECT call_seq, carrier, route, attempt, start_ms, end_ms, code, progress_ms, "
            "duration_ms, cost_micro, reason, billed_ms, charge_micro FROM attempt "
            f"WHERE call_seq IN ({','.join('?' * len(part))})",
            part,
        ):
            attempts[row[0]].append(AttemptRecord(*row[1:]))
    return [CallRecord(*row[1:], attempts=tuple(attempts[row[0]])) for row in calls]


def _read_open_calls(connection: sqlite3.Connection) -> list[CallRecord]:
    """Calls in progress, with the attempts that have ended (failed ones count at once)."""
    found = []
    for (state,) in connection.execute("SELECT state FROM open_call"):
        call = unpack(state)
        failed = tuple(
            a.record() for a in call.attempts if a.ended and not metrics.is_answered(a.code)
        )
        found.append(
            CallRecord(call.call_id, call.customer, call.start_ms, None, -1, attempts=failed)
        )
    return found


# Step N takes a database from version N-1 to N; step 1 (creating one) is never run as a step.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _create, _v2_carrier_money, _v3_reads_by_time_and_rejects_by_route, _v4_capped_calls,
    _v5_event_log_by_frame, _v6_ended_hours_and_days, _v7_pdd_in_seconds]
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
