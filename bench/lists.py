"""Long lists: 10,000 customers and 10,000 carriers, listed, sorted and searched.

    python bench/lists.py [--accounts N] [--rounds N] [--size 80x24]

A database holding `--accounts` customers and as many carriers, with an hour of traffic on a
tenth of them, is built through the real ingest path (Ingestor, StoreWriter). A viewer console
(the real app, frames rendered as for a terminal: see bench/painting.py), started afresh each
round, then: opens the list (`2`, then `3`), cycles its sorts (`s`), and searches (`/`, a name
typed a character at a time, then cleared). A key counts at the first frame written that shows
its list in the sort and search asked for, read from the store after the key. Prints p50, p95
and max per action against the targets (show < 300 ms, sort and search < 100 ms) with the
viewer's CPU time a key (all its threads), and the viewer's peak memory (target < 200 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

from painting import fresh, percentile, send_key, until_painted, use_frame_clock
from textual.widgets import Input

from console.feed.ingestor import Ingestor
from console.testing import fixed_clock, make_app
from screens.accounts import AccountListScreen
from screens.carriers import CarriersScreen
from screens.customers import CustomersScreen
from store.database import prepare
from store.writer import StoreWriter

TARGETS_MS = {"show": 300.0, "sort": 100.0, "search": 100.0}
TARGET_MB = 200.0
NOW_MS = 1_763_700_000_000 + 3_600_000
FRAME = 1_000


def build(path: Path, accounts: int) -> None:
    """The accounts, then an hour of calls (one a second) spread over a tenth of them."""
    prepare(path)
    ingestor = Ingestor(clock=fixed_clock(NOW_MS))
    writer = StoreWriter(path)
    writer.open_now()
    seq = 0
    start_s = NOW_MS / 1000 - 3600

    def event(**fields) -> dict:
        nonlocal seq
        seq += 1
        return {"seq": seq, **fields}

    events = []
    for n in range(accounts):
        events.append(event(type="account", ts=start_s, kind="customer", id=f"c{n:05d}",
                            name=f"Customer {n:05d} Telecom", channels=100, cps=10,
                            balance=1_000.0 + n, currency="USD", enabled=True))
        events.append(event(type="account", ts=start_s, kind="carrier", id=f"k{n:05d}",
                            name=f"Carrier {n:05d} Voice", channels=500, enabled=True))
    for second in range(3600):
        ts, call = start_s + second, f"call-{second}"
        busy = second % max(1, accounts // 10)
        answered = second % 3 != 0
        events += [
            event(type="call.start", ts=ts, call_id=call, customer=f"c{busy:05d}",
                  cli="15550001111", dst="4420700000"),
            event(type="call.attempt", ts=ts, call_id=call, attempt=1, carrier=f"k{busy:05d}",
                  route="44"),
            event(type="call.attempt_end", ts=ts + 30, call_id=call, attempt=1,
                  code=200 if answered else 503),
            event(type="call.end", ts=ts + 30, call_id=call, code=200 if answered else 503,
                  duration=30 if answered else 0),
        ]
    try:
        for at in range(0, len(events), FRAME):
            ingestor.apply_frame(json.dumps(events[at:at + FRAME]))
        writer.write_now(ingestor.take_batch())
    finally:
        writer.close_now()


def reached(app, screen_type: type, since: float, sort: str | None, search: str) -> bool:
    """The list is current and shows what the store read after the key, in this sort (or any)
    and this search."""
    screen = app.screen
    if not isinstance(screen, screen_type) or not fresh(screen, since):
        return False
    if not isinstance(screen, AccountListScreen):
        return True
    shown = screen._last_snapshot
    return shown is not None and (sort is None or shown.query.sort == sort) and (
        shown.query.search == search)


def started(app) -> bool:
    return fresh(app.screen, 0.0) and app.screen.has_data


async def timed(app, key: str, screen_type: type, sort: str | None = None,
                search: str = "") -> tuple[float, float]:
    """Milliseconds from the key to the first frame that shows its list, and the viewer's CPU
    time meanwhile (every thread: reading, drawing, rendering the frame)."""
    cpu = time.process_time()
    sent = send_key(app, key)
    painted = await until_painted(
        lambda: reached(app, screen_type, sent, sort, search), sent)
    return painted, (time.process_time() - cpu) * 1000


async def drive(db: Path, rounds: int, size: tuple[int, int]) -> dict[str, list[tuple]]:
    """Each round on a console started afresh, so that each list is shown for the first time
    (a list shown again with the store unchanged has nothing to read)."""
    timings: dict[str, list[tuple[float, float]]] = {action: [] for action in TARGETS_MS}
    for _ in range(rounds):
        app = make_app(db, clock=fixed_clock(NOW_MS))
        use_frame_clock(app)
        async with app.run_test(size=size, headless=False):
            await until_painted(partial(started, app), 0.0)
            for key, screen_type, typed in (("2", CustomersScreen, "customer 0042"),
                                            ("3", CarriersScreen, "carrier 0042")):
                timings["show"].append(await timed(app, key, screen_type))
                screen: AccountListScreen = app.screen
                for _ in screen.sorts:
                    following = screen.sorts[(screen.sorts.index(screen.sort) + 1)
                                             % len(screen.sorts)]
                    timings["sort"].append(await timed(app, "s", screen_type, following))
                send_key(app, "slash")
                while not isinstance(app.focused, Input):
                    await asyncio.sleep(0.001)
                for at, character in enumerate(typed, 1):
                    timings["search"].append(await timed(app, character, screen_type,
                                                         search=typed[:at]))
                timings["search"].append(await timed(app, "ctrl+u", screen_type))
                send_key(app, "escape")
                while isinstance(app.focused, Input):
                    await asyncio.sleep(0.001)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="80x24")
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "noc.db"
        builder = multiprocessing.Process(target=build, args=(db, args.accounts))
        builder.start()  # in a child, so that the peak memory below is the viewer's own
        builder.join()
        load_before = os.getloadavg()[0]
        timings = asyncio.run(drive(db, args.rounds, size))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.accounts:,} customers and {args.accounts:,} carriers at {args.size}, "
          f"{args.rounds} rounds, load average {load_before:.1f} before and "
          f"{os.getloadavg()[0]:.1f} after")
    for action, measured in timings.items():
        values = [painted for painted, _ in measured]
        p95 = percentile(values, 0.95)
        verdict = "met" if p95 < TARGETS_MS[action] else "NOT met"
        print(f"  {action:6} {len(values):4} keys: p50 {statistics.median(values):7.1f} ms, "
              f"p95 {p95:7.1f} ms, max {max(values):7.1f} ms "
              f"(target p95 < {TARGETS_MS[action]:.0f} ms: {verdict}); CPU a key p50 "
              f"{statistics.median(cpu for _, cpu in measured):5.1f} ms")
    verdict = "met" if peak_mb < TARGET_MB else "NOT met"
    print(f"  peak memory of the viewer: {peak_mb:,.0f} MB "
          f"(target < {TARGET_MB:.0f} MB: {verdict})")


if __name__ == "__main__":
    main()
