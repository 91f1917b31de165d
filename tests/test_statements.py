"""Many-row statements against executemany: the same rows, upserts and deletes, at any count."""

from __future__ import annotations

import sqlite3

import pytest

from store.statements import MAX_PARAMETERS, RowsInsert, chunks, delete_seqs

COUNTS = (0, 1, 7, 8, 9, 255, 1023, 1024, 1025, 3000)


@pytest.mark.parametrize("total", COUNTS)
@pytest.mark.parametrize("largest", (1, 8, 1024))
def test_chunks_cover_every_row_once_in_power_of_two_sizes(total, largest):
    pieces = list(chunks(total, largest))
    assert [start for start, _ in pieces] == [sum(size for _, size in pieces[:i])
                                              for i in range(len(pieces))]
    assert sum(size for _, size in pieces) == total
    assert all(size & (size - 1) == 0 and size <= largest for _, size in pieces)


def table(tail: str = "") -> tuple[sqlite3.Connection, RowsInsert]:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, a TEXT, n INTEGER, b BLOB)")
    return db, RowsInsert("INSERT INTO t (k, a, n, b)", 4, tail)


@pytest.mark.parametrize("total", COUNTS)
def test_rows_insert_stores_what_executemany_stores(total):
    rows = [(k, f"a{k}", k * 3 if k % 5 else None, bytes([k % 256]) * 3) for k in range(total)]
    ours, insert = table()
    insert.run(ours, rows)
    theirs, _ = table()
    theirs.executemany("INSERT INTO t (k, a, n, b) VALUES (?, ?, ?, ?)", rows)
    dump = "SELECT * FROM t ORDER BY k"
    assert ours.execute(dump).fetchall() == theirs.execute(dump).fetchall()


def test_rows_insert_upserts_and_keeps_to_the_parameter_limit():
    db, insert = table(" ON CONFLICT(k) DO UPDATE SET n = n + excluded.n")
    assert insert.width * 1024 <= MAX_PARAMETERS
    insert.run(db, [(k, "x", 1, b"") for k in range(2000)])
    insert.run(db, [(k, "x", 10, b"") for k in range(1000, 3000)])
    counts = dict(db.execute("SELECT n, count(*) FROM t GROUP BY n").fetchall())
    assert counts == {1: 1000, 11: 1000, 10: 1000}


@pytest.mark.parametrize("total", (0, 1, 5000))
def test_delete_seqs_removes_exactly_those_rows(total):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE open_call (seq INTEGER PRIMARY KEY)")
    db.executemany("INSERT INTO open_call VALUES (?)", [(seq,) for seq in range(10_000)])
    gone = list(range(0, 2 * total, 2))
    delete_seqs(db, "open_call", gone)
    left = {seq for (seq,) in db.execute("SELECT seq FROM open_call")}
    assert left == set(range(10_000)) - set(gone)
