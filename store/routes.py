"""Which route a reject counts for, kept in the rollups rather than worked out at each read.

A `call.reject` names no route: it counts for the longest of its customer's known routes that
prefixes the number dialled, or for none ('', the customer's total only). A customer's known
routes are those of its stored calls (the routes with rows of their own in the rollups). The
ingest matches each reject against the routes known so far; when a call brings a customer a new
route, the writer moves the stored rejects that the new route now matches better, in the same
transaction. So the rollups always hold what matching every reject against the routes known
today gives, which is what route stats showed when it matched them at each read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from store import metrics, rollups
from store.models import BUCKET_MS
from store.rollups import ALL_ROUTES

# A reject as the moves below need it: (seq, customer, ts_ms, reason, its route until now).
StoredReject = tuple[int, str, int, str, str]


class KnownRoutes:
    """Each customer's known routes, for matching rejects as they arrive."""

    def __init__(self) -> None:
        self._routes: dict[str, set[str]] = {}
        self._lengths: dict[str, list[int]] = {}  # the routes' distinct lengths, longest first

    def add(self, customer: str, route: str) -> bool:
        """Know `route` for `customer`; True if it was new."""
        routes = self._routes.setdefault(customer, set())
        if not route or route in routes:
            return False
        routes.add(route)
        lengths = self._lengths.setdefault(customer, [])
        if len(route) not in lengths:
            lengths.append(len(route))
            lengths.sort(reverse=True)
        return True

    def match(self, customer: str, dst: str) -> str:
        """The longest known route of `customer` that prefixes `dst`, or '' if none does."""
        routes = self._routes.get(customer)
        if routes:
            for length in self._lengths[customer]:
                if dst[:length] in routes:
                    return dst[:length]
        return ALL_ROUTES


def known_routes(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """(customer, route) of every route a stored call of a customer took (the days' rollups have
    a row for each, and far fewer rows than the hours')."""
    return db.execute("SELECT DISTINCT account, route FROM rollup_day "
                      "WHERE kind = 'customer' AND route > ''").fetchall()


def take_new_route(db: sqlite3.Connection, customer: str, route: str) -> None:
    """`route` has become known for `customer`: its stored rejects whose number `route` prefixes,
    counted so far for a shorter route (or none), now count for `route`."""
    matched = "customer = ? AND substr(dst, 1, ?) = ? AND length(route) < ?"
    params = (customer, len(route), route, len(route))
    rejects = db.execute(f"SELECT seq, customer, ts_ms, reason, route FROM reject WHERE {matched}",
                         params).fetchall()
    if rejects:
        move_rejects(db, ((reject, route) for reject in rejects))
        db.execute(f"UPDATE reject SET route = ? WHERE {matched}", (route, *params))


def move_rejects(db: sqlite3.Connection, moves: Iterable[tuple[StoredReject, str]]) -> None:
    """Move each reject's breach from its route's rollup rows to those of its new route (the
    customer's total, route '', stays as it is). Minutes already pruned are left pruned."""
    deltas: dict[str, dict[rollups.RollupKey, list[int]]] = {period: {} for period in BUCKET_MS}
    for (_, customer, ts_ms, reason, old), new in moves:
        breach = metrics.breach_totals(reason).as_tuple()
        taken = tuple(-value for value in breach)
        for period, rows in deltas.items():
            bucket = rollups.bucket_of(ts_ms, period)
            for route, values in ((new, breach), (old, taken)):
                if route != ALL_ROUTES:
                    rollups.add_into(rows.setdefault(("customer", customer, route, bucket),
                                                     rollups.zero()), values)
    oldest_minute = db.execute("SELECT min(bucket) FROM rollup_minute").fetchone()[0]
    deltas["minute"] = {key: values for key, values in deltas["minute"].items()
                        if oldest_minute is not None and key[3] >= oldest_minute}
    for period, rows in deltas.items():
        rollups.upsert(f"rollup_{period}").run(db, rollups.upsert_rows(rows))
