"""Reads behind every summary: totals over a time range from the rollups, never a scan of CDRs.

A range is cut into whole days, hours and minutes read from the rollup tables; only the ragged
edges (seconds, or minutes older than the minute rollups keep) are summed from the call and
attempt records, a few minutes of rows at most.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from sqlmodel import Session, func, select

from store import metrics, models, rollups
from store.database import connect, sync_engine
from store.live import unpack
from store.metrics import AttemptRecord, CallRecord, Totals

Key = tuple[str, str]  # kind, account
MINUTE, HOUR, DAY = (models.BUCKET_MS[p] for p in ("minute", "hour", "day"))


def segments(start: int, end: int, minute_floor: int) -> Iterator[tuple[str, int, int]]:
    """Cut [start, end) ms into (source, from, to) pieces: 'day', 'hour', 'minute' or 'raw'.

    Minutes before `minute_floor` (pruned from the minute rollups) come from the records.
    """
    position = start
    while position < end:
        for period, size in (("day", DAY), ("hour", HOUR)):
            if position % size == 0 and position + size <= end:
                yield period, position, position + size
                position += size
                break
        else:
            if position % MINUTE == 0 and position + MINUTE <= end and position >= minute_floor:
                yield "minute", position, position + MINUTE
                position += MINUTE
            else:
                stop = min(end, position - position % MINUTE + MINUTE)
                yield "raw", position, stop
                position = stop


def _merge(pieces: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    merged: list[tuple[str, int, int]] = []
    for piece in pieces:
        if merged and merged[-1][0] == piece[0] and merged[-1][2] == piece[1]:
            merged[-1] = (piece[0], merged[-1][1], piece[2])
        else:
            merged.append(piece)
    return merged


class Reader:
    """Read-only questions to a noc database (any number of viewers may hold one)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.engine = sync_engine(self.path)

    def connection(self) -> sqlite3.Connection:
        return connect(self.path)

    def minute_floor(self, newest_ms: int, keep_days: int) -> int:
        """The oldest minute the minute rollups can still answer for."""
        with Session(self.engine) as session:
            oldest = session.exec(select(func.min(models.RollupMinute.bucket))).one()
        floor = newest_ms - keep_days * DAY
        return max(floor - floor % HOUR + HOUR, oldest or 0)

    def totals(
        self,
        start_ms: int,
        end_ms: int,
        *,
        minute_keep_days: int = 8,
        route: str = rollups.ALL_ROUTES,
    ) -> dict[Key, Totals]:
        """Totals per account over [start_ms, end_ms), from rollups plus the ragged edges."""
        feed = self.feed_state()
        floor = self.minute_floor(feed.newest_ms, minute_keep_days)
        found: dict[Key, list[int]] = defaultdict(rollups.zero)
        with closing(self.connection()) as connection:
            for source, lo, hi in _merge(list(segments(start_ms, end_ms, floor))):
                if source == "raw":
                    for key, values in self._raw_totals(connection, lo, hi).items():
                        rollups.add_into(found[key], values.as_tuple())
                    continue
                table = models.ROLLUP_TABLES[source].__tablename__
                rows = connection.execute(
                    f"SELECT kind, account, {', '.join(metrics.TOTALS_FIELDS)} FROM {table} "
                    "WHERE route = ? AND bucket >= ? AND bucket < ?",
                    (route, lo, hi),
                )
                for kind, account, *values in rows:
                    rollups.add_into(found[(kind, account)], values)
        return {key: rollups.to_totals(values) for key, values in found.items()}

    def _raw_totals(self, connection: sqlite3.Connection, lo: int, hi: int) -> dict[Key, Totals]:
        """Totals for a short span from the records, by the same rules as the rollups."""
        found: dict[Key, Totals] = defaultdict(Totals)
        for call in self._calls(connection, "start_ms >= ? AND start_ms < ?", (lo, hi)):
            found[("customer", call.customer)].add(metrics.call_totals(call))
        for reason, customer in connection.execute(
            "SELECT reason, customer FROM reject WHERE ts_ms >= ? AND ts_ms < ?", (lo, hi)
        ):
            found[("customer", customer)].add(metrics.breach_totals(reason))
        spans = "SELECT DISTINCT call_seq FROM attempt WHERE start_ms >= ? AND start_ms < ?"
        ended_calls = self._calls(connection, f"seq IN ({spans})", (lo, hi))
        for call in [*ended_calls, *self._open_calls(connection)]:
            for attempt in call.attempts:
                if lo <= attempt.start_ms < hi:
                    found[("carrier", attempt.carrier)].add(metrics.attempt_totals(attempt))
            if call.end_ms is not None:
                for failed, answered in metrics.call_failovers(call):
                    if lo <= failed.start_ms < hi:
                        found[("carrier", failed.carrier)].add(
                            metrics.failover_totals(failed, answered)
                        )
        return found

    def _calls(self, connection: sqlite3.Connection, where: str, params: tuple) -> list[CallRecord]:
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

    def _open_calls(self, connection: sqlite3.Connection) -> list[CallRecord]:
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

    def feed_state(self) -> models.FeedState:
        with Session(self.engine) as session:
            return session.get(models.FeedState, 1)

    def accounts(self) -> list[models.Account]:
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(models.Account).order_by(models.Account.kind, models.Account.id)
                )
            )

    def gaps(self) -> list[models.Gap]:
        with Session(self.engine) as session:
            return list(session.exec(select(models.Gap).order_by(models.Gap.from_seq)))

    def consecutive_failures(self) -> dict[str, int]:
        with Session(self.engine) as session:
            return {
                row.carrier: row.consecutive_failures
                for row in session.exec(select(models.CarrierState))
            }

    def report(self, time_from_ms: int | None = None, time_to_ms: int | None = None) -> dict:
        """The `noc report --json` object over [from, to) (default: everything stored)."""
        feed = self.feed_state()
        start = time_from_ms if time_from_ms is not None else 0
        end = (
            time_to_ms if time_to_ms is not None else feed.newest_ms - feed.newest_ms % 1000 + 1000
        )
        totals = self.totals(start, end) if end > start else {}
        failures = self.consecutive_failures()
        customers, carriers = {}, {}
        for account in self.accounts():
            t = totals.get((account.kind, account.id), Totals())
            if account.kind == "customer":
                customers[account.id] = metrics.customer_report(t)
            else:
                carriers[account.id] = metrics.carrier_report(t, failures.get(account.id, 0))
        return {
            "from": start / 1000,
            "to": end / 1000,
            "last_seq": feed.last_seq,
            "gaps": [[gap.from_seq, gap.to_seq] for gap in self.gaps()],
            "quarantined": feed.quarantined,
            "customers": customers,
            "carriers": carriers,
        }
