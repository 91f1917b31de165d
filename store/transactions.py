"""Write transactions, the one way every writer of the store takes them."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction, taken at once (IMMEDIATE) so that it never fails half way on a lock.

    On any failure what it wrote is rolled back (if SQLite has not already: a full disk may end
    the transaction itself) and the failure itself is raised, never a failed ROLLBACK's."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
