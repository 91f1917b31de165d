"""The start-up check: every seq the store has passed is accounted for.

Each seq up to the stored feed position is an event in the event log, an input in the quarantine,
or inside a gap (events lost for good, and said so). A seq that is none of these was lost without
a trace: a bug, which the writer reports loudly if this ever finds one. Only the span the event
log still keeps is checked (older events are pruned after `event_log_days`).
"""

from __future__ import annotations

import sqlite3

HOLES_SHOWN = 5

# Where the event log skips seqs: its rows in primary key order, each with the next one.
LOG_SKIPS = """
SELECT seq + 1, next - 1 FROM (
    SELECT seq, lead(seq) OVER (ORDER BY seq) AS next FROM event_log
) WHERE next > seq + 1
"""


def seq_holes(db: sqlite3.Connection, last_seq: int) -> list[tuple[int, int]]:
    """The seq ranges up to `last_seq` held by no event, quarantined input or gap (at most
    HOLES_SHOWN of them, oldest first)."""
    newest = db.execute("SELECT max(seq) FROM event_log").fetchone()[0]
    if newest is None:
        return []  # nothing kept to check against
    candidates = list(db.execute(LOG_SKIPS))
    if newest < last_seq:
        candidates.append((newest + 1, last_seq))
    if not candidates:
        return []
    explained = [(first, last) for first, last in db.execute("SELECT from_seq, to_seq FROM gap")]
    explained += [(seq, seq) for (seq,) in db.execute(
        "SELECT DISTINCT seq FROM quarantine WHERE seq IS NOT NULL")]
    holes: list[tuple[int, int]] = []
    for first, last in candidates:
        holes += _unexplained(first, last, explained)
        if len(holes) >= HOLES_SHOWN:
            break
    return holes[:HOLES_SHOWN]


def _unexplained(first: int, last: int,
                 explained: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [first, last] that no range of `explained` covers."""
    inside = sorted((max(a, first), min(b, last)) for a, b in explained if a <= last and b >= first)
    holes, position = [], first
    for a, b in inside:
        if a > position:
            holes.append((position, a - 1))
        position = max(position, b + 1)
    if position <= last:
        holes.append((position, last))
    return holes
