"""A PostgreSQL database as noc's store: the same schema, SQL and transactions as the SQLite file.

Imported only for a `postgresql://` target (store/database.py). `Connection` takes the SQL the
rest of noc writes for SQLite (`?` and `:name` parameters, `BEGIN IMMEDIATE`, `temp.` tables,
`json_each`, `instr`) and hands PostgreSQL its equivalent; integers are 64-bit
as in SQLite, booleans are stored as 0/1, sums come back as int (or float when not whole). Every
failure a user can cause (a wrong URL, a server down, another application's database, a schema
from a newer noc, a second writer) is a one-line StoreError that names the database with its
password hidden; errors of statements are BackendError with the server's SQLSTATE.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import adapt, pq
from sqlalchemy import BigInteger, Boolean, Integer, MetaData, Table
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.schema import CreateIndex, CreateTable

from store import models
from store.database import APP_ID, BackendError, ServerUnreachable, StoreError, WriterTaken

CONNECT_TIMEOUT_S = 5
# The advisory lock a writer holds for as long as it runs: one writer per database.
WRITER_LOCK_KEY = 0x6E6F6377  # "nocw"
WRITER_NAME = "noc writer"


def masked(url: str) -> str:
    """The URL with its password (if any) shown as ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


# SQL ------------------------------------------------------------------------------------------

_TOKENS = re.compile(
    r"'(?:[^']|'')*'"  # a string literal: left as it is
    r"|\?"  # a positional parameter
    r"|(?<![:\w]):([A-Za-z_]\w*)"  # a named parameter
    r"|\bjson_each\((\?|:[A-Za-z_]\w*)\)"
    r"|\binstr\("
    r"|\bcasefold\("
    r"|\btemp\."
)


# A statement longer than this (the writer's many-row inserts) is neither kept translated nor
# prepared in the server: each size of each would hold memory for good, for little gain.
LONG_STATEMENT = 4096


def translate(sql: str) -> tuple[str, tuple[str, ...] | None]:
    return _translate(sql) if len(sql) > LONG_STATEMENT else _translate_cached(sql)


def _translate(sql: str) -> tuple[str, tuple[str, ...] | None]:
    """SQLite's SQL as noc writes it in PostgreSQL's words, with the server's own parameters
    ($1, $2: psycopg's raw cursor sends them as they are, where it would parse a long many-row
    statement again at each run); and the names of a named statement's parameters, in order."""
    stripped = sql.strip()
    if stripped == "BEGIN":  # a read: one snapshot for every statement until COMMIT
        return "BEGIN ISOLATION LEVEL REPEATABLE READ", None
    if stripped == "BEGIN IMMEDIATE":
        return "BEGIN", None
    names: dict[str, int] = {}
    positional = 0

    def parameter(token: str) -> str:
        nonlocal positional
        if token == "?":
            positional += 1
            return f"${positional}"
        return f"${names.setdefault(token[1:], len(names) + 1)}"

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token.startswith("'"):
            return token
        if token == "?" or match.group(1):
            return parameter(token)
        if match.group(2):
            return f"json_array_elements_text(CAST({parameter(match.group(2))} AS json))"
        return {"instr(": "strpos(", "casefold(": "lower(", "temp.": "pg_temp."}[token]

    translated = _TOKENS.sub(replace, sql)
    return translated, tuple(names) if names else None


_translate_cached = functools.lru_cache(maxsize=512)(_translate)


def _values(names: tuple[str, ...] | None, params: Sequence | Mapping | None) -> Sequence:
    if names is None:  # (a mapping here names nothing: SQLite ignores it too)
        return () if params is None or isinstance(params, Mapping) else params
    return [params[name] for name in names]


class BoolAsInteger(adapt.Dumper):
    """Booleans as 0/1, as SQLite stores them (the columns are BIGINT here)."""

    oid = psycopg.postgres.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class WholeNumber(adapt.Loader):
    """numeric (what sum() of BIGINT gives) as int when whole, else float, as SQLite's."""

    def load(self, data) -> int | float:
        text = bytes(data)
        return float(text) if b"." in text or b"e" in text.lower() else int(text)


class Connection:
    """A connection to a PostgreSQL database that speaks to noc as a sqlite3.Connection does:
    autocommit, transactions by BEGIN/COMMIT statements, rows as tuples."""

    def __init__(self, raw: psycopg.Connection, url: str, *, reusable: bool = False,
                 reused: bool = False) -> None:
        self.raw = raw
        self.url = url
        self.reusable = reusable  # a viewer's: kept open for the next read when closed
        self._reused = reused  # kept from an earlier read, not yet used for this one

    def execute(self, sql: str, params: Sequence | Mapping = ()) -> psycopg.RawCursor:
        cursor = psycopg.RawCursor(self.raw)
        if sql.lstrip().upper().startswith("PRAGMA"):
            return cursor  # SQLite's settings: nothing to do here
        query, names = translate(sql)
        try:
            return cursor.execute(query, _values(names, params),
                                  prepare=False if len(query) > LONG_STATEMENT else None)
        except psycopg.OperationalError as error:
            if not self._reused:
                raise backend_error(error) from None
            # A kept connection the server has since ended (a restart, an idle timeout): this
            # read's first statement, so a new connection may run it as well.
            self.raw.close()
            self.raw, self._reused = _open_viewer(self.url), False
            return self.execute(sql, params)
        except psycopg.Error as error:
            raise backend_error(error) from None
        finally:
            self._reused = False

    def executemany(self, sql: str, rows) -> psycopg.RawCursor:
        cursor = psycopg.RawCursor(self.raw)
        query, names = translate(sql)
        try:
            cursor.executemany(query, [_values(names, row) for row in rows])
        except psycopg.Error as error:
            raise backend_error(error) from None
        return cursor

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != pq.TransactionStatus.IDLE

    def create_function(self, *args, **kwargs) -> None:
        """SQLite's Python functions have PostgreSQL equivalents (see translate)."""

    def interrupt(self) -> None:
        self.raw.cancel()

    def close(self) -> None:
        if not (self.reusable and _keep_idle(self.url, self.raw)):
            self.raw.close()

    @property
    def lost(self) -> bool:
        """The server ended this connection (a restart, an administrator): open another."""
        return self.raw.closed or self.raw.broken


def backend_error(error: psycopg.Error) -> BackendError:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    # No SQLSTATE on an OperationalError: the connection itself failed (lost, closed).
    lost = "08006" if isinstance(error, psycopg.OperationalError) else ""
    return BackendError(message, error.sqlstate or lost)


def _open(url: str, *, application: str = "noc") -> psycopg.Connection:
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                              application_name=application)
    except psycopg.OperationalError as error:
        raise ServerUnreachable(f"cannot open {masked(url)}: {_reason(error)}",
                                error.sqlstate) from None
    except psycopg.ProgrammingError as error:  # a URL libpq cannot read
        raise StoreError(f"cannot open {masked(url)}: not a valid PostgreSQL URL ({error})"
                         ) from None
    raw.adapters.register_dumper(bool, BoolAsInteger)
    raw.adapters.register_loader("numeric", WholeNumber)
    return raw


def _reason(error: psycopg.Error) -> str:
    """libpq's words for a failed connection, on one line, its password never included."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    found = next((line for line in lines if "FATAL" in line or "refused" in line
                  or "timeout" in line or "could not" in line), lines[0] if lines else "")
    return found.removeprefix("connection failed: ")


def connect(url: str, *, mode: str = "ro", writer: bool = False) -> Connection:
    """A connection to the database at `url`; "ro" refuses every write in the server. A
    viewer reads by short connections, one per read: those are reused (a connection to a server
    on another host costs a round trip or more, and its authentication)."""
    if mode == "ro" and not writer:
        with _IDLE_LOCK:
            idle = _IDLE.get(url)
            raw = idle.pop() if idle else None
        return Connection(raw or _open_viewer(url), url, reusable=True, reused=raw is not None)
    return Connection(_open(url, application=WRITER_NAME if writer else "noc"), url)


def _open_viewer(url: str) -> psycopg.Connection:
    raw = _open(url)
    raw.execute("SET default_transaction_read_only = on")
    return raw


IDLE_PER_DATABASE = 4  # read-only connections kept open for reuse, per database and process
_IDLE: dict[str, list[psycopg.Connection]] = {}
_IDLE_LOCK = threading.Lock()


def _keep_idle(url: str, raw: psycopg.Connection) -> bool:
    """Keep a viewer's connection for the next read, its transaction ended; False if it is not
    worth keeping (broken, or enough kept)."""
    status = raw.info.transaction_status
    if raw.closed or status == pq.TransactionStatus.UNKNOWN:
        return False
    if status != pq.TransactionStatus.IDLE:
        try:
            raw.execute("ROLLBACK")
        except psycopg.Error:
            return False
    with _IDLE_LOCK:
        idle = _IDLE.setdefault(url, [])
        if len(idle) >= IDLE_PER_DATABASE:
            return False
        idle.append(raw)
    return True


# Schema ---------------------------------------------------------------------------------------

def server_metadata() -> MetaData:
    """The SQLModel schema with SQLite's 64-bit INTEGER as BIGINT and booleans as 0/1 BIGINT."""
    from sqlmodel import SQLModel

    metadata = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        copy: Table = table.to_metadata(metadata)
        for column in copy.columns:
            if isinstance(column.type, Integer | Boolean) and not isinstance(
                    column.type, BigInteger):
                column.type = BigInteger()
    return metadata


def create_statements() -> list[str]:
    dialect = postgresql_dialect.dialect()
    metadata = server_metadata()
    statements = [_partitioned(table.name, str(CreateTable(table).compile(dialect=dialect)))
                  for table in metadata.sorted_tables]
    statements += [str(CreateIndex(index).compile(dialect=dialect))
                   for table in metadata.sorted_tables for index in table.indexes]
    return statements + SQLITE_FUNCTIONS


# Retention at a big site's size: the event log and the call tables are partitioned by day (of
# the column named), so that dropping an old day is one DROP TABLE, not a DELETE of millions of
# rows. The writer makes each day's partitions as it first writes into that day.
DAY_MS = 86_400_000
PARTITIONED = models.DAY_COLUMNS


def _partitioned(table: str, create: str) -> str:
    """The CREATE TABLE of `table`, partitioned by day if it is one of PARTITIONED (whose
    primary key then holds the day's column too, as PostgreSQL requires)."""
    column = PARTITIONED.get(table)
    if column is None:
        return create
    create = re.sub(r"PRIMARY KEY \(([^)]*)\)", rf"PRIMARY KEY (\1, {column})", create)
    return f"{create.rstrip()} PARTITION BY RANGE ({column})"


def partition_name(table: str, day_ms: int) -> str:
    return f"{table}_{time.strftime('%Y%m%d', time.gmtime(day_ms // 1000))}"


class DayPartitions:
    """The writer's knowledge of the days that have partitions, and their making and dropping.
    A table made before noc partitioned it (an early PostgreSQL store) is left as it is: its
    rows are deleted by the writer's retention as in SQLite."""

    def __init__(self) -> None:
        self._known: set[tuple[str, int]] | None = None
        self._partitioned: set[str] = set()

    def forget(self) -> None:
        """After a failed transaction (whose partitions were rolled back too): read them again."""
        self._known = None

    def _days(self, db: Connection) -> set[tuple[str, int]]:
        if self._known is None:
            self._partitioned = {row[0] for row in db.execute(
                "SELECT c.relname FROM pg_partitioned_table t JOIN pg_class c "
                "ON c.oid = t.partrelid WHERE c.relnamespace = current_schema()::regnamespace")}
            self._known = set()
            for table, bound in db.execute(
                    "SELECT p.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                    "WHERE p.relnamespace = current_schema()::regnamespace"):
                found = table in PARTITIONED and re.search(r"FROM \('?(-?\d+)'?\)", bound)
                if found:  # (pg_inherits holds the partitions of indexes too: no bounds)
                    self._known.add((table, int(found.group(1))))
        return self._known

    def ensure(self, db: Connection, table: str, times: Iterable[int]) -> None:
        """Make the partitions of `table` for the days of `times` (ms) that have none yet."""
        known = self._days(db)
        if table not in self._partitioned:
            return
        for day in {ms - ms % DAY_MS for ms in times}:
            if (table, day) not in known:
                db.execute(f"CREATE TABLE IF NOT EXISTS {partition_name(table, day)} PARTITION "
                           f"OF {table} FOR VALUES FROM ({day}) TO ({day + DAY_MS})")
                known.add((table, day))

    def drop_before(self, db: Connection, table: str, cutoff_ms: int) -> int:
        """Drop the partitions of `table` whose whole day is older than `cutoff_ms`; how many."""
        known = self._days(db)
        old = sorted(day for name, day in known if name == table and day + DAY_MS <= cutoff_ms)
        for day in old:
            db.execute(f"DROP TABLE IF EXISTS {partition_name(table, day)}")
            known.discard((table, day))
        return len(old)


# What SQLite does that PostgreSQL does not, for the SQL noc shares between them: sum() of a
# condition counts the rows where it holds (NULL over no rows, as every sum).
SQLITE_FUNCTIONS = [
    "CREATE FUNCTION noc_count_true(bigint, boolean) RETURNS bigint LANGUAGE sql IMMUTABLE "
    "AS 'SELECT CASE WHEN $2 IS NULL THEN $1 ELSE coalesce($1, 0) + $2::int END'",
    "CREATE AGGREGATE sum(boolean) (SFUNC = noc_count_true, STYPE = bigint)",
]


def prepare(url: str, *, create: bool = True) -> int:
    from store.migrations import LATEST_VERSION, create_rows, migrate

    with closing(connect(url, mode="rw")) as db:
        try:
            db.execute("BEGIN")
            db.execute("SELECT pg_advisory_xact_lock(?)", (WRITER_LOCK_KEY + 1,))  # one at a time
            version = _version(db, url)
            if version > LATEST_VERSION:
                raise StoreError(
                    f"{masked(url)} was written by a newer noc (schema {version}; this one knows "
                    f"up to {LATEST_VERSION}): upgrade noc to open it")
            if version == 0:
                if not create:
                    raise StoreError(f"{masked(url)} holds no noc database yet: start `noc "
                                     "ingest` with it to create one")
                for statement in create_statements():
                    db.execute(statement)
                create_rows(db)
                _set_version(db, LATEST_VERSION)
            db.execute("COMMIT")
            if version and version < LATEST_VERSION:
                migrate(db, version)
        except BackendError as error:
            raise StoreError(f"cannot use {masked(url)}: {error}") from None
    return LATEST_VERSION


def _set_version(db: Connection, version: int) -> None:
    db.execute("INSERT INTO noc_meta (key, value) VALUES ('schema_version', ?) "
               "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(version),))


def _version(db: Connection, url: str) -> int:
    tables = {row[0] for row in db.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
    if not tables:
        return 0
    if "noc_meta" not in tables:
        raise StoreError(f"{masked(url)} is a PostgreSQL database but not noc's (it holds other "
                         "tables): give --db an empty database or a noc one")
    rows = dict(db.execute("SELECT key, value FROM noc_meta").fetchall())
    if rows.get("app") != APP_ID:
        raise StoreError(f"{masked(url)} is not a noc database "
                         f"(noc_meta says app={rows.get('app')!r})")
    return int(rows.get("schema_version", "0"))


# One writer, many viewers -------------------------------------------------------------------

class ServerWriterLock:
    """WriterLock for a server database: a session advisory lock, held by the writer's own
    connection, so the server releases it when the writer dies (kill -9 included).

    Its status (`publish`) travels as that connection's last statement, a comment the server
    shows every session of the same role in pg_stat_activity: like the lock file's page, it needs
    no write to the database, so it still tells when the writer cannot commit there."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = None  # no lock file
        self._raw: psycopg.Connection | None = None

    def acquire(self) -> None:
        raw = _open(self.url, application=f"{WRITER_NAME} pid {os.getpid()} on "
                                           f"{socket.gethostname()}")
        (taken,) = raw.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK_KEY,)).fetchone()
        if not taken:
            holder, _ = writer_of(Connection(raw, self.url))
            raw.close()
            raise WriterTaken(
                f"{masked(self.url)} already has a writer ({holder or 'another process'}); a "
                "second one is refused: run `noc` (a viewer) against it, or stop that writer "
                "first")
        self._raw = raw

    def release(self) -> None:
        if self._raw is not None:
            with suppress(psycopg.Error):  # at once: the server ends a closed session later
                self._raw.execute("SELECT pg_advisory_unlock_all()")
            self._raw.close()
            self._raw = None

    def publish(self, status: dict) -> None:
        """The writer's store status for every console (best effort, like the lock file)."""
        if self._raw is not None:
            text = json.dumps(status).replace("/", "\\/")  # no */ nor /* in a comment
            with suppress(psycopg.Error):
                self._raw.execute(f"SELECT 1 /* {STATUS_MARK}{text} */".encode())

    def held_by_other(self) -> bool:
        return self.inspect()[0]

    def inspect(self) -> tuple[bool, dict]:
        """(a writer holds the lock, the status it last published: {} if none)."""
        with closing(connect(self.url)) as db:
            holder, status = writer_of(db)
        return bool(holder), status


STATUS_MARK = "noc writer status "


def writer_of(db: Connection) -> tuple[str, dict]:
    """Who holds the writer lock of the database ("" if none) and the status it published."""
    row = db.execute(
        "SELECT a.application_name, a.client_addr, a.query FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
        "AND l.objid = ? AND l.granted AND l.database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())",
        (WRITER_LOCK_KEY,)).fetchone()
    if row is None:
        return "", {}
    name, address, query = row
    holder = name.removeprefix(f"{WRITER_NAME} ") + (f" from {address}" if address else "")
    _, marked, text = (query or "").partition(STATUS_MARK)
    try:
        status = json.loads(text.removesuffix(" */")) if marked else {}
    except ValueError:  # cut short by the server (track_activity_query_size): the next tells
        status = {}
    return holder, status if isinstance(status, dict) else {}


class ServerChangeProbe:
    """What changes when the database may have: the server's WAL position moves with every
    commit (of any writer, a viewer's action included), the feed state's last update, and the
    status the writer publishes (which changes when it cannot commit)."""

    def __init__(self, url: str) -> None:
        self._db = connect(url)

    def marker(self) -> object:
        row = self._db.execute(
            "SELECT pg_current_wal_insert_lsn()::text, (SELECT updated_ms FROM feed_state)"
        ).fetchone()
        return row, writer_of(self._db)

    def close(self) -> None:
        self._db.close()


@contextmanager
def raw_connection(url: str) -> Iterator[psycopg.Connection]:
    """psycopg's own connection (COPY in the benchmark, set-up in tests)."""
    with closing(_open(url)) as raw:
        yield raw
