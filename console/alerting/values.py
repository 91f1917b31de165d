"""One round's values, read in bulk: a query per source, grouped by account, whatever the number
of rules. Rules then look their subject up in a dict.

Windowed totals come from rollup_ended_minute, probed account by account along its primary key
(kind, account, route, bucket) through the account table. They are kept incrementally (see
WindowSums): a round reads only the minutes in which calls still end, not whole windows.
"""

from __future__ import annotations

import operator
import sqlite3
from collections import namedtuple
from collections.abc import Iterable
from dataclasses import dataclass, field

from console.alerting.areas import AREAS, INSTANT, QUARANTINE, WINDOW, window_minutes

MINUTE_MS = 60_000
Reading = tuple[float | None, int | None]  # (value, sample)

WINDOW_SUMS = ("attempts", "answered", "ner_answered", "duration_ms", "pdd_sum_ms", "pdd_count",
               "failover", "breach_channel", "breach_cps")
WINDOW_WHERE = ("FROM rollup_ended_minute WHERE kind = :kind "
                "AND account IN (SELECT id FROM account WHERE kind = :kind) AND route = '' "
                "AND bucket >= :first AND bucket < :end")
SUMS_SQL = (f"SELECT account, {', '.join(f'sum({name})' for name in WINDOW_SUMS)} "
            f"{WINDOW_WHERE} GROUP BY account")
MINUTES_SQL = f"SELECT account, bucket, {', '.join(WINDOW_SUMS)} {WINDOW_WHERE}"
# The counters a window needs, named as in store.metrics.Totals, so its ratio functions apply.
WindowTotals = namedtuple("WindowTotals", WINDOW_SUMS)
NO_TOTALS = WindowTotals._make([0] * len(WINDOW_SUMS))
Window = dict[str, WindowTotals]  # account -> its totals
HOT_MINUTES = 2  # the current minute and the one before: where calls still end
FULL_READ_MS = 10 * MINUTE_MS
NO_READING: Reading = (None, None)
Sums = dict[str, tuple[int, ...]]  # account -> WINDOW_SUMS


@dataclass
class Needs:
    """What the enabled rules read: (kind, window minutes) pairs, quarantine windows (ms),
    and which instantaneous sources."""

    windows: set[tuple[str, int]] = field(default_factory=set)
    quarantine_ms: set[int] = field(default_factory=set)
    instant: set[str] = field(default_factory=set)

    def add(self, area_name: str, kind: str, sample_period_s: int | None) -> None:
        area = AREAS[area_name]
        if area.source == WINDOW:
            self.windows.add((kind, window_minutes(sample_period_s or 60)))
        elif area.source == QUARANTINE:
            self.quarantine_ms.add((sample_period_s or 60) * 1000)
        elif area.source == INSTANT:
            self.instant.add(area_name)


@dataclass
class Account:
    name: str
    balance: float | None


Table = dict[str, Reading]  # account -> reading, for one kind


class RoundValues:
    """The values of one round, and lookup tables per (area, kind, sample period) built on
    demand, keyed by account."""

    def __init__(self, accounts: dict[str, dict[str, Account]],
                 windows: dict[tuple[str, int], Window], quarantined: dict[int, int],
                 instant: dict[tuple[str, str], Table],
                 window_changes: dict[tuple[str, int], set[str] | None] | None = None) -> None:
        self.accounts = accounts  # kind -> account -> Account
        self._windows = windows
        self._window_changes = window_changes or {}
        self._quarantined = quarantined
        self._instant = instant
        self._tables: dict[tuple[str, str, int | None], tuple[Table, Reading]] = {}

    def accounts_of(self, kind: str) -> tuple[str, ...]:
        return tuple(self.accounts.get(kind, ()))

    def name(self, kind: str, account: str) -> str:
        found = self.accounts.get(kind, {}).get(account)
        return found.name if found else account

    def changed_accounts(self, area_name: str, kind: str,
                         sample_period_s: int | None) -> set[str] | None:
        """The accounts whose reading may differ from the last round's, when known (windowed
        areas, from WindowSums); None when not known."""
        if AREAS[area_name].source != WINDOW:
            return None
        return self._window_changes.get((kind, window_minutes(sample_period_s or 60)))

    def table(self, area_name: str, kind: str,
              sample_period_s: int | None) -> tuple[Table, Reading]:
        """(account -> reading, the reading of an account absent from the table)."""
        key = (area_name, kind, sample_period_s)
        found = self._tables.get(key)
        if found is None:
            found = self._tables[key] = self._build(area_name, kind, sample_period_s)
        return found

    def _build(self, area_name: str, kind: str,
               sample_period_s: int | None) -> tuple[Table, Reading]:
        area = AREAS[area_name]
        if area.source == WINDOW:
            totals = self._windows.get((kind, window_minutes(sample_period_s or 60)), {})
            metric = area.metric
            assert metric is not None
            if area.has_sample:
                return ({account: (metric(t), t.attempts) for account, t in totals.items()},
                        (metric(NO_TOTALS), 0))
            return ({account: (metric(t), None) for account, t in totals.items()},
                    (metric(NO_TOTALS), None))
        if area.source == QUARANTINE:
            count = self._quarantined.get((sample_period_s or 60) * 1000, 0)
            return {"": (count, None)}, (count, None)
        if area_name == "balance":
            return ({account: (found.balance, None) for account, found in
                     self.accounts.get(kind, {}).items()}, NO_READING)
        return self._instant.get((area_name, kind), {}), (0, None)


class WindowSums:
    """Windowed totals per (kind, window length), kept incrementally across rounds.

    A window of W minutes is its cold minutes, summed once and then shifted as time goes by (add
    the minute that cools, drop the one that leaves the window: a query of one minute each), plus
    its hot minutes, read every round: the current minute and the one before, or everything
    since the feed's position when the feed lags behind the clock (a backlog being ingested
    lands in those minutes). Every FULL_READ_MS the cold sums are read afresh, which catches
    the rare event that ends in a minute already cold.
    """

    def __init__(self) -> None:
        # (kind, minutes) -> the cold minutes' first and end (split), their sums and totals
        self._cold: dict[tuple[str, int], tuple[int, int, Sums, Window]] = {}
        # (kind, minutes) -> last round's cold totals, hot sums and window totals
        self._last: dict[tuple[str, int], tuple[Window, dict[str, tuple[int, ...]], Window]] = {}
        self._read_ms: int | None = None
        # Per window, the accounts whose totals changed in the last read; None: all may have.
        self.changed: dict[tuple[str, int], set[str] | None] = {}

    def read(self, db: sqlite3.Connection, now_ms: int, feed_ms: int,
             wanted: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Window]:
        if self._read_ms is None or not 0 <= now_ms - self._read_ms < FULL_READ_MS:
            self._cold.clear()
            self._read_ms = now_ms
        last = now_ms - now_ms % MINUTE_MS
        position = min(now_ms, feed_ms or now_ms)
        hot = min(last, position - position % MINUTE_MS) - (HOT_MINUTES - 1) * MINUTE_MS
        wanted = sorted(set(wanted))
        firsts = {key: last - (key[1] - 1) * MINUTE_MS for key in wanted}
        hot_rows = {kind: db.execute(MINUTES_SQL, {
            "kind": kind, "end": last + MINUTE_MS,
            "first": min(max(hot, first) for (k, _), first in firsts.items() if k == kind),
        }).fetchall() for kind in {kind for kind, _ in wanted}}
        found = {}
        recent_by: dict[tuple[str, int], dict[str, tuple[int, ...]]] = {}
        for key, first in firsts.items():
            kind = key[0]
            split = max(hot, first)
            recent = recent_by.get((kind, split))
            if recent is None:
                recent = recent_by[(kind, split)] = _recent(hot_rows[kind], split)
            cold = self._cold_totals(db, key, first, split)
            found[key] = self._window(key, cold, recent)
        return found

    def _window(self, key: tuple[str, int], cold: Window,
                recent: dict[str, tuple[int, ...]]) -> Window:
        """Cold totals plus hot sums; only the accounts whose hot sums moved are computed
        again when the cold part is the same as last round's."""
        last = self._last.get(key)
        if last is not None and last[0] is cold and last[1].keys() <= recent.keys():
            totals = dict(last[2])
            changed = {account for account, values in recent.items()
                       if last[1].get(account) != values}
        else:
            totals, changed = dict(cold), set(recent)
        for account in changed:
            values, cold_values = recent[account], cold.get(account)
            totals[account] = WindowTotals._make(
                values if cold_values is None else map(operator.add, values, cold_values))
        self.changed[key] = changed if last is not None and last[0] is cold else None
        self._last[key] = (cold, recent, totals)
        return totals

    def _cold_totals(self, db: sqlite3.Connection, key: tuple[str, int], first: int,
                     split: int) -> Window:
        kind = key[0]
        cached = self._cold.get(key)
        if cached is not None and (cached[0], cached[1]) == (first, split):
            return cached[3]
        if cached is not None and cached[0] <= first and cached[1] <= split:
            old_first, old_split, sums, _ = cached
            sums = dict(sums)
            _shift(sums, _sums(db, kind, old_split, split), 1)
            _shift(sums, _sums(db, kind, old_first, first), -1)
        else:
            sums = _sums(db, kind, first, split)
        totals = {account: WindowTotals._make(values) for account, values in sums.items()}
        self._cold[key] = (first, split, sums, totals)
        return totals


def _sums(db: sqlite3.Connection, kind: str, first: int, end: int) -> Sums:
    """Per account, the sums of the minutes [first, end)."""
    if end <= first:
        return {}
    return {account: tuple(values) for account, *values in
            db.execute(SUMS_SQL, {"kind": kind, "first": first, "end": end})}


def _shift(sums: Sums, change: Sums, sign: int) -> None:
    for account, values in change.items():
        old = sums.get(account, (0,) * len(WINDOW_SUMS))
        sums[account] = tuple(a + sign * b for a, b in zip(old, values, strict=True))


def _recent(rows: list[tuple], split: int) -> dict[str, tuple[int, ...]]:
    """Per account, the sums of the hot minute rows from `split` on."""
    found: dict[str, tuple[int, ...]] = {}
    for account, bucket, *values in rows:
        if bucket >= split:
            old = found.get(account)
            found[account] = tuple(values) if old is None else tuple(
                map(operator.add, old, values))
    return found


def collect(db: sqlite3.Connection, now_ms: int, needs: Needs,
            windows: WindowSums) -> RoundValues:
    """Read everything a round needs, in one read transaction (one consistent snapshot)."""
    db.execute("BEGIN")
    try:
        accounts: dict[str, dict[str, Account]] = {}
        for kind, account, name, balance in db.execute(
                "SELECT kind, id, name, balance FROM account ORDER BY kind, id"):
            accounts.setdefault(kind, {})[account] = Account(name or account, balance)
        (feed_ms,) = db.execute("SELECT newest_ms FROM feed_state").fetchone()
        totals = windows.read(db, now_ms, feed_ms, needs.windows)
        quarantined = {period: db.execute(
            "SELECT count(*) FROM quarantine WHERE received_ms > ? AND received_ms <= ?",
            (now_ms - period, now_ms)).fetchone()[0] for period in needs.quarantine_ms}
        instant = _instant(db, needs.instant)
    finally:
        db.execute("COMMIT")
    return RoundValues(accounts, totals, quarantined, instant, dict(windows.changed))


def _instant(db: sqlite3.Connection, names: Iterable[str]) -> dict[tuple[str, str], Table]:
    """(area, kind) -> account -> reading, for the instantaneous areas wanted."""
    names = set(names)
    found: dict[tuple[str, str], Table] = {}
    if names & {"channels", "cps"}:
        for kind, account, channels, cps in db.execute(
                "SELECT kind, id, channels, cps FROM live_account"):
            found.setdefault(("channels", kind), {})[account] = (channels, None)
            found.setdefault(("cps", kind), {})[account] = (cps, None)
    if "consecutive_failures" in names:
        found[("consecutive_failures", "carrier")] = {
            carrier: (count, None) for carrier, count in
            db.execute("SELECT carrier, consecutive_failures FROM carrier_state")}
    return found
