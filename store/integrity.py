"""The start-up check: every seq the store has passed is accounted for.

Each seq up to the stored feed position is an event in the event log, an input in the quarantine,
or inside a gap (events lost for good, and said so). A seq that is none of these was lost without
a trace: a bug, which the writer reports loudly if this ever finds one. Only the span the event
log still keeps is checked (older events are pruned after `event_log_days`).
"""

from __future__ import annotations

import sqlite3

import msgspec

HOLES_SHOWN = 5

# Where the event log skips seqs between its rows (a frame's events each): its rows in primary
# key order, each with the next one.
LOG_SKIPS = """
SELECT last_seq + 1, next - 1 FROM (
    SELECT last_seq, lead(first_seq) OVER (ORDER BY first_seq) AS next FROM event_log
) AS log WHERE next > last_seq + 1
"""
# Rows that skip seqs within: frames with an item quarantined, or a hole in their seqs.
SPARSE_ROWS = "SELECT raw FROM event_log WHERE events < last_seq - first_seq + 1"


class _Seq(msgspec.Struct):
    seq: int


_seqs = msgspec.json.Decoder(list[_Seq] | _Seq)


def seq_holes(db: sqlite3.Connection, last_seq: int) -> list[tuple[int, int]]:
    """The seq ranges up to `last_seq` held by no event, quarantined input or gap (at most
    HOLES_SHOWN of them, oldest first)."""
    newest = db.execute("SELECT max(last_seq) FROM event_log").fetchone()[0]
    if newest is None:
        return []  # nothing kept to check against
    candidates = list(db.execute(LOG_SKIPS))
    for (raw,) in db.execute(SPARSE_ROWS):
        candidates += _skips_within(raw)
    if newest < last_seq:
        candidates.append((newest + 1, last_seq))
    if not candidates:
        return []
    candidates.sort()
    explained = [(first, last) for first, last in db.execute("SELECT from_seq, to_seq FROM gap")]
    explained += [(seq, seq) for (seq,) in db.execute(
        "SELECT DISTINCT seq FROM quarantine WHERE seq IS NOT NULL")]
    holes: list[tuple[int, int]] = []
    for first, last in candidates:
        holes += _unexplained(first, last, explained)
        if len(holes) >= HOLES_SHOWN:
            break
    return holes[:HOLES_SHOWN]


def _skips_within(raw: bytes) -> list[tuple[int, int]]:
    """The seq ranges a row's events skip between the first and the last."""
    events = _seqs.decode(raw)
    seqs = [event.seq for event in events] if isinstance(events, list) else [events.seq]
    return [(seq + 1, following - 1) for seq, following in zip(seqs, seqs[1:], strict=False)
            if following > seq + 1]


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
