"""Versioned schema migrations, so that a later noc opens a database an older one wrote.

Each step takes the database from version N-1 to N inside one transaction. Version 1 is the
SQLModel metadata as first released; later steps are plain SQL (ALTER TABLE ...), appended below.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

from store import models


def _create_v1(connection: sqlite3.Connection) -> None:
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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create_v1]
LATEST_VERSION = len(MIGRATIONS)


def migrate(connection: sqlite3.Connection, from_version: int) -> None:
    for version in range(from_version + 1, LATEST_VERSION + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version - 1](connection)
            connection.execute(
                "INSERT INTO noc_meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(version),),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
