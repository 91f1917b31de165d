"""Rejects by route: the rollups equal matching every stored reject against its customer's routes
known today, whatever the order the routes and rejects came in, the flushes and a restart."""

from __future__ import annotations

import sqlite3
import tempfile
from collections import Counter, defaultdict
from contextlib import closing
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from console.feed.service import load_state
from store.metrics import breach_totals
from store.models import BUCKET_MS
from tests.test_ingest import Harness, ev

ROUTES = ("1", "4", "44", "441", "49", "4412")
CUSTOMERS = ("acme", "beta")
REASONS = ("channel_limit", "cps_limit", "balance", "no_route")
BREACHES = ("breach_channel", "breach_cps", "breach_other")
TABLES = {"minute": "rollup_minute", "hour": "rollup_hour", "day": "rollup_day"}

calls = st.tuples(st.just("call"), st.sampled_from(CUSTOMERS), st.sampled_from(ROUTES),
                  st.integers(0, 2 * 86_400))
rejects = st.tuples(st.just("reject"), st.sampled_from(CUSTOMERS),
                    st.sampled_from(ROUTES + ("", "9", "5")).flatmap(
                        lambda prefix: st.text("0123456789", max_size=3).map(prefix.__add__)),
                    st.integers(0, 2 * 86_400), st.sampled_from(REASONS))
steps = st.lists(st.one_of(calls, rejects, st.just(("flush",)), st.just(("restart",))),
                 max_size=40)


def events_of(step: tuple, seq: int) -> list[dict]:
    if step[0] == "reject":
        _, customer, dst, at, reason = step
        return [ev(seq, "call.reject", at, customer=customer, cli="1", dst=dst, code=503,
                   reason=reason)]
    _, customer, route, at = step
    call_id = f"c{seq}"
    return [
        ev(seq, "call.start", at, call_id=call_id, customer=customer, cli="1", dst=route + "0"),
        ev(seq + 1, "call.attempt", at, call_id=call_id, attempt=1, carrier="k", route=route),
        ev(seq + 2, "call.attempt_end", at + 1, call_id=call_id, attempt=1, code=404),
        ev(seq + 3, "call.end", at + 1, call_id=call_id, code=404, duration=0.0),
    ]


def ingest(path: Path, script: list[tuple]) -> None:
    harness, seq = Harness(path), 1
    for step in script:
        if step[0] in ("flush", "restart"):
            harness.flush()
            if step[0] == "restart":
                harness.writer.close_now()
                harness = Harness(path)
                harness.ingestor.restore(*load_state(harness.writer._connection))
            continue
        events = events_of(step, seq)
        harness.feed(events)
        seq += len(events)
    harness.flush()
    harness.writer.close_now()


def brute_force(db: sqlite3.Connection) -> tuple[dict, dict]:
    """Each reject's route (the longest of its customer's call routes prefixing its number),
    and the breaches per (period, customer, route, bucket) that gives."""
    known = defaultdict(set)
    for customer, route in db.execute("SELECT customer, route FROM call WHERE route != ''"):
        known[customer].add(route)
    routes, breaches = {}, Counter()
    for seq, customer, dst, ts_ms, reason in db.execute(
            "SELECT seq, customer, dst, ts_ms, reason FROM reject"):
        route = routes[seq] = max((r for r in known[customer] if dst.startswith(r)), key=len,
                                  default="")
        if route:
            for period in TABLES:
                bucket = ts_ms - ts_ms % BUCKET_MS[period]
                for name in BREACHES:
                    breaches[(period, customer, route, bucket, name)] += getattr(
                        breach_totals(reason), name)
    return routes, +breaches


@settings(max_examples=60, deadline=None)
@given(script=steps)
def test_rejects_count_for_the_longest_route_known_now(script):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "noc.db"
        ingest(path, script)
        with closing(sqlite3.connect(path)) as db:
            routes, breaches = brute_force(db)
            assert dict(db.execute("SELECT seq, route FROM reject")) == routes
            stored = Counter()
            for period, table in TABLES.items():
                for customer, route, bucket, *values in db.execute(
                        f"SELECT account, route, bucket, {', '.join(BREACHES)} FROM {table} "
                        "WHERE kind = 'customer' AND route != ''"):
                    for name, value in zip(BREACHES, values, strict=True):
                        assert value >= 0
                        stored[(period, customer, route, bucket, name)] += value
                # The customer's total (route '') still holds every breach.
                total = db.execute("SELECT count(*) FROM reject").fetchone()[0]
                assert db.execute(f"SELECT coalesce(sum({' + '.join(BREACHES)}), 0) FROM {table} "
                                  "WHERE route = ''").fetchone()[0] == total
        assert +stored == breaches
