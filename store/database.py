"""Opening a noc database: checks that the file is noc's, migrates it, sets SQLite up for WAL.

Every failure a user can cause (wrong file, newer schema, locked file, second writer) raises
StoreError with one line saying what is wrong and what to do.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from store.migrations import LATEST_VERSION, migrate

APP_ID = "noc"
BUSY_TIMEOUT_MS = 5000


class StoreError(Exception):
    """A problem with the database file that the user must act on; str() is the message."""


def configure(connection: sqlite3.Connection, *, writer: bool) -> None:
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA foreign_keys = OFF")
    connection.execute("PRAGMA cache_size = -65536")
    connection.execute("PRAGMA temp_store = MEMORY")
    if writer:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")


def prepare(path: str | Path, *, create: bool = True) -> int:
    """Make sure `path` is a current noc database (creating or migrating it); return its version."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise StoreError(
                f"{path} does not exist: start `noc ingest` or `noc demo` to create it"
            )
        if not path.parent.exists():
            raise StoreError(f"cannot create {path}: the folder {path.parent} does not exist")
    try:
        connection = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as error:
        raise StoreError(f"cannot open {path}: {error}") from error
    try:
        configure(connection, writer=True)
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


def sync_engine(path: str | Path, *, writer: bool = False) -> Engine:
    """A SQLAlchemy engine for SQLModel sessions (reads, and the rare writes of viewers)."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001 - SQLAlchemy's signature
        configure(dbapi_connection, writer=writer)

    return engine


@dataclass
class WriterLock:
    """Only one process ingests into a database: the writer holds an exclusive lock file.

    The lock is the kernel's (flock), so it is released when the writer dies, kill -9 included.
    """

    path: Path
    _fd: int | None = None

    @classmethod
    def for_database(cls, database: str | Path) -> WriterLock:
        return cls(Path(f"{database}.writer"))

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            database = str(self.path)[: -len(".writer")]
            raise StoreError(
                f"{database} already has a writer ({holder}); a second one is refused: "
                f"run `noc` (a viewer) against it, or stop that writer first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"noc pid {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def held_by_other(self) -> bool:
        """True when some other process is writing (used by a console to decide its role)."""
        if not self.path.exists():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False
