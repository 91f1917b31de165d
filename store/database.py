"""Opening a noc database: checks that it is noc's, migrates it, sets SQLite up for WAL.

A database is a SQLite file (a path: the embedded default) or a PostgreSQL server's database (a
`postgresql://` URL: store/postgres.py, imported only then). Both are opened here and behave
alike to the rest of noc: the same SQL (with `?` and `:name` parameters), the same transactions,
the same one-line StoreError for every failure a user can cause, and errors of either engine
caught as STORE_ERRORS.

Every connection to a database comes from `connect`, so that all of them agree on how a path is
named (a file: URI, escaped: a `#` or `?` in a folder name is part of the path), on the busy
timeout and on transactions (autocommit; a write takes `BEGIN IMMEDIATE` itself). Every failure a
user can cause (wrong file, newer schema, locked file, second writer) raises StoreError with one
line saying what is wrong and what to do. The files noc creates are private: 0600, in a 0700
folder where noc makes the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

APP_ID = "noc"
BUSY_TIMEOUT_MS = 5000
PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
STATUS_PAGE = 4096  # the writer lock file: its holder's pid, then its store's status


POSTGRES_SCHEMES = ("postgresql://", "postgres://")

Target = Path | str  # a SQLite file, or a postgresql:// URL


class StoreError(Exception):
    """A problem with the database that the user must act on; str() is the message."""


class WriterTaken(StoreError):
    """The database already has a writer: another process holds its writer lock."""


class ServerUnreachable(StoreError):
    """A database server that cannot be reached now (down, restarting, starting up): waiting
    may mend it. `code` is the server's SQLSTATE, or "08001" when none was reached."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or "08001"


class BackendError(Exception):
    """An error of a database engine other than SQLite (a PostgreSQL server's), carrying the
    engine's code (SQLSTATE) so that store.health can tell a passing cause from a lasting one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


# A LIMIT that never binds, in both engines (PostgreSQL refuses SQLite's -1).
NO_LIMIT = 1 << 62

# What a failed read or write of either engine raises.
STORE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, BackendError)


def is_postgres(target: Target) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def locate(target: str | Path) -> Target:
    """`--db`, `[store]` or a caller's value as a target: a postgresql:// URL stays a string
    (a Path would fold its `//`), anything else is a file's path."""
    if isinstance(target, str) and target.startswith(POSTGRES_SCHEMES):
        return target
    return Path(target)


def describe(target: Target) -> str:
    """The target as messages name it: a path, or a URL with its password hidden."""
    if is_postgres(target):
        from store.postgres import masked

        return masked(target)
    return str(target)


def configure(connection: sqlite3.Connection, *, writer: bool) -> None:
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA foreign_keys = OFF")
    connection.execute("PRAGMA cache_size = -65536")
    connection.execute("PRAGMA temp_store = MEMORY")
    if writer:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")


def connect(path: Target, *, mode: Literal["ro", "rw", "rwc"] = "ro", writer: bool = False,
            **options) -> sqlite3.Connection:
    """A connection to the database at `path`: read-only ("ro"), read-write to an existing file
    ("rw", never creates an empty one by mistake) or creating it ("rwc"); `writer` sets up WAL.

    Autocommit: reads take their snapshot with BEGIN, writes with BEGIN IMMEDIATE. Raises
    StoreError saying which file could not be opened and why. A postgresql:// URL gets a
    connection that speaks the same SQL and transactions (store/postgres.py)."""
    if is_postgres(path):
        from store import postgres

        return postgres.connect(path, mode=mode, writer=writer)
    uri = f"{Path(path).resolve().as_uri()}?mode={mode}"
    try:
        connection = sqlite3.connect(uri, uri=True, isolation_level=None,
                                     check_same_thread=False, **options)
    except sqlite3.Error as error:
        raise StoreError(f"cannot open {path}: {error}") from error
    try:
        configure(connection, writer=writer)
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def private_folder(path: str | Path) -> Path:
    """Make the folder `path` (and missing parents) if it does not exist; the folder noc makes
    for its own files is 0700. An existing folder is left as its owner set it."""
    path = Path(path)
    if not path.is_dir():
        path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    return path


def create_private(path: Path) -> None:
    """Create the empty file `path` as 0600 if it does not exist (SQLite then gives its WAL and
    shared-memory files the same mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def prepare(path: Target, *, create: bool = True) -> int:
    """Make sure `path` is a current noc database (creating or migrating it); return its version."""
    if is_postgres(path):
        from store import postgres

        return postgres.prepare(path, create=create)
    from store.migrations import LATEST_VERSION, migrate  # the schema, in SQLModel: not small

    path = Path(path)
    if not path.exists():
        if not create:
            raise StoreError(
                f"{path} does not exist: start `noc ingest` or `noc demo` to create it"
            )
        if not path.parent.exists():
            raise StoreError(f"cannot create {path}: the folder {path.parent} does not exist")
        try:
            create_private(path)
        except OSError as error:
            raise StoreError(f"cannot create {path}: {error.strerror}") from error
    connection = None
    try:
        connection = connect(path, mode="rw", writer=True)
        version = _version(connection, path)
        if version > LATEST_VERSION:
            raise StoreError(
                f"{path} was written by a newer noc (schema {version}; this one knows up to "
                f"{LATEST_VERSION}): upgrade noc to open it"
            )
        if version < LATEST_VERSION:
            migrate(connection, version)
        return LATEST_VERSION
    except sqlite3.OperationalError as error:
        if "locked" in str(error):
            raise StoreError(
                f"{path} is locked by another process: "
                "wait for it, or stop the process that holds it"
            ) from error
        raise StoreError(f"cannot use {path}: {error}") from error
    except sqlite3.DatabaseError as error:
        raise StoreError(
            f"{path} is not a SQLite database ({error}): check the --db path"
        ) from error
    finally:
        if connection is not None:
            connection.close()


def _version(connection: sqlite3.Connection, path: Path) -> int:
    tables = {
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    if not tables:
        return 0
    if "noc_meta" not in tables:
        raise StoreError(
            f"{path} is a SQLite database but not noc's: "
            "give --db a noc database or a new file name"
        )
    rows = dict(connection.execute("SELECT key, value FROM noc_meta"))
    if rows.get("app") != APP_ID:
        raise StoreError(f"{path} is not a noc database (noc_meta says app={rows.get('app')!r})")
    return int(rows.get("schema_version", "0"))


def sync_engine(path: str | Path) -> Engine:
    """A SQLAlchemy engine for SQLModel sessions that read the database."""
    from sqlalchemy import create_engine

    return create_engine("sqlite://", creator=lambda: connect(path))


def day_partitions(target: Target):
    """The writer's partitions by day (store.postgres.DayPartitions), or None: a SQLite file
    has none, and deletes old rows instead."""
    if is_postgres(target):
        from store import postgres

        return postgres.DayPartitions()
    return None


class ChangeProbe:
    """Whether a database may have changed since the last look, for a viewer that reads nothing
    when nothing changed: SQLite's data_version (any other connection's commit), the feed
    state's last update, and the writer's lock file (rewritten when its commits fail)."""

    def __init__(self, path: Path) -> None:
        self._db = connect(path)
        self._lock_file = WriterLock.for_database(path).path

    def marker(self) -> object:
        """A value that differs from the last one when something may have changed."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        feed_updated = self._db.execute("SELECT updated_ms FROM feed_state").fetchone()
        with contextlib.suppress(OSError):
            feed_updated = (feed_updated, os.stat(self._lock_file).st_mtime_ns)
        return version, feed_updated

    def close(self) -> None:
        self._db.close()


def file_marker(target: Target) -> object | None:
    """A look at a SQLite file that takes no query and no thread: its and its write-ahead log's
    size and time of change, which every commit moves. Two commits in one tick of the clock may
    leave it as it was, so a caller still reads now and then. None for PostgreSQL: no file."""
    if is_postgres(target):
        return None
    marker = []
    for path in (str(target), f"{target}-wal"):
        try:
            found = os.stat(path)
        except OSError:
            marker.append(None)
        else:
            marker.append((found.st_ino, found.st_size, found.st_mtime_ns))
    return tuple(marker)


def change_probe(target: Target) -> ChangeProbe:
    """The probe for a database: PostgreSQL's listens for the writers' notifications."""
    if is_postgres(target):
        from store import postgres

        return postgres.ServerChangeProbe(target)
    return ChangeProbe(Path(target))


@dataclass
class WriterLock:
    """Only one process ingests into a database: the writer holds an exclusive lock file.

    The lock is the kernel's (flock), so it is released when the writer dies, kill -9 included.
    The file also says who holds it and how the writer's store is (`publish`): when commits fail
    (a full disk, a lock held by another program) the writer cannot say so in the database, so it
    says so here, where every console looks. The file is one page, written whole when the lock
    is taken and rewritten in place after, which needs no new disk block: it works on a full disk.
    """

    path: Path
    _fd: int | None = None

    @classmethod
    def for_database(cls, database: Target) -> WriterLock:
        """The lock of a database: a file beside a SQLite file, an advisory lock in PostgreSQL
        (store.postgres.ServerWriterLock, which behaves the same)."""
        if is_postgres(database):
            from store import postgres

            return postgres.ServerWriterLock(database)
        return cls(Path(f"{database}.writer"))

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").split("\n")[0].strip()
            os.close(fd)
            database = str(self.path)[: -len(".writer")]
            raise WriterTaken(
                f"{database} already has a writer ({holder or 'another process'}); a second one "
                f"is refused: run `noc` (a viewer) against it, or stop that writer first"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, _status_page({}))
        except OSError as error:
            os.close(fd)
            raise StoreError(f"cannot write {self.path}: {error.strerror}") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def publish(self, status: dict) -> None:
        """Say how the writer's store is (a JSON object) to every console, in place. Best
        effort: a status that cannot be written is no reason to stop writing the feed."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.pwrite(self._fd, _status_page(status), 0)

    def held_by_other(self) -> bool:
        """True when some other process is writing (used by a console to decide its role)."""
        return self.inspect()[0]

    def inspect(self) -> tuple[bool, dict]:
        """(another process holds the lock, the status its holder last published: {} if none)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False, {}
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                held = False
            except BlockingIOError:
                held = True
            page = os.pread(fd, STATUS_PAGE, 0)
        finally:
            os.close(fd)
        _, _, status = page.partition(b"\n")
        try:
            found = json.loads(status)
        except ValueError:  # an older noc's file, or caught half rewritten: the next look tells
            found = {}
        return held, found if isinstance(found, dict) else {}


def _status_page(status: dict) -> bytes:
    page = f"noc pid {os.getpid()}\n{json.dumps(status)}\n".encode()
    if len(page) > STATUS_PAGE:
        page = f"noc pid {os.getpid()}\n{{}}\n".encode()
    return page.ljust(STATUS_PAGE)
