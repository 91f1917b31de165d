"""Key to paint: from a key to the screen drawn with its data, while a writer ingests.

    python bench/keys.py [--rounds N] [--cps C] [--size 80x24]

`noc simulate` (real clock, `--cps` new calls a second: about 5,000 events/s at the default) and
`noc ingest` run as child processes on a fresh database; once the writer is current, a viewer
console (Textual's pilot, headless, the real app on the real clock) goes round the screens as a
person would: each global key (1-5, `?`, Esc), the tab keys (`>`) of a customer, a carrier and
the alerts, and opening a customer and a carrier from their lists (Enter).

A key counts as painted once the screen it leads to is current, has been fed the store's
snapshot of what it shows (the tab's own, on a tabbed screen), and the app has processed every
message that follows (the repaint included). Prints p50, p95 and max per kind of key against the
targets (p95 < 100 ms for global and tab keys, < 150 ms for opening an account), and the event
rate the writer kept up meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from console.feed.ingestor import now_ms
from console.testing import make_app
from screens.alerts import AlertsScreen
from screens.base import DataScreen
from screens.carrier import CarrierScreen
from screens.carriers import CarriersScreen
from screens.customer import CustomerScreen
from screens.customers import CustomersScreen
from screens.dashboard import DashboardScreen
from screens.help import HelpScreen
from screens.quarantine import QuarantineScreen

TARGETS_MS = {"global": 100.0, "tab": 100.0, "open": 150.0}
# One round: (key, kind, the screen it leads to).
ROUND = [
    ("2", "global", CustomersScreen),
    ("enter", "open", CustomerScreen),
    *[(">", "tab", CustomerScreen)] * 5,
    ("escape", "global", CustomersScreen),
    ("3", "global", CarriersScreen),
    ("enter", "open", CarrierScreen),
    *[(">", "tab", CarrierScreen)] * 3,
    ("escape", "global", CarriersScreen),
    ("4", "global", AlertsScreen),
    *[(">", "tab", AlertsScreen)] * 3,
    ("5", "global", QuarantineScreen),
    ("question_mark", "global", HelpScreen),
    ("escape", "global", QuarantineScreen),
    ("1", "global", DashboardScreen),
]


@contextlib.contextmanager
def writer(folder: Path, cps: float) -> Iterator[Path]:
    """`noc simulate` and `noc ingest` into a fresh database; yields the database's path."""
    db = folder / "noc.db"
    noc = [sys.executable, "-m", "console.shell.cli"]
    log = (folder / "simulate.log").open("wb")
    simulate = subprocess.Popen([*noc, "simulate", "--host", "127.0.0.1", "--port", "0",
                                 "--cps", str(cps), "--seed", "3"], stdout=log, stderr=log)
    ingest = None
    try:
        url = None
        while url is None:
            if simulate.poll() is not None:
                raise SystemExit(f"noc simulate exited: {(folder / 'simulate.log').read_text()}")
            found = re.search(r"serving (ws://\S+)", (folder / "simulate.log").read_text())
            url = found and found[1]
            time.sleep(0.05)
        ingest = subprocess.Popen([*noc, "ingest", "--feed", url, "--db", str(db)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while committed(db) < 20_000:  # a few seconds of traffic before the viewer starts
            time.sleep(0.2)
        yield db
    finally:
        for process in (ingest, simulate):
            if process is not None:
                process.terminate()
                process.wait(30)
        log.close()


def committed(db: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
            return connection.execute("SELECT last_seq FROM feed_state").fetchone()[0]
    except sqlite3.Error:
        return 0


def painted(app, screen_type: type, left_tab: str | None = None) -> bool:
    """The screen is current and fed its own snapshot (of a tab other than `left_tab`)."""
    screen = app.screen
    if not isinstance(screen, screen_type):
        return False
    if not isinstance(screen, DataScreen):
        return True
    snapshot = screen._last_snapshot
    if snapshot is None:
        return False
    tab = getattr(snapshot, "tab", None)
    return tab is None or (tab == screen.active and tab != left_tab)


async def drive(db: Path, rounds: int, size: tuple[int, int]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {kind: [] for kind in TARGETS_MS}
    app = make_app(db, clock=now_ms)
    async with app.run_test(size=size) as pilot:
        while not painted(app, DashboardScreen):
            await pilot.pause(0.05)
        for _ in range(rounds):
            for key, kind, screen_type in ROUND:
                left_tab = getattr(app.screen, "active", None) if kind == "tab" else None
                started = time.perf_counter()
                await pilot.press(key)
                while not painted(app, screen_type, left_tab):
                    await pilot.pause()
                await pilot.pause()
                timings[kind].append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--cps", type=float, default=1_100.0)
    parser.add_argument("--size", default="80x24")
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.split("x"))
    with tempfile.TemporaryDirectory() as folder, writer(Path(folder), args.cps) as db:
        seq_before, started = committed(db), time.monotonic()
        timings = asyncio.run(drive(db, args.rounds, size))
        rate = (committed(db) - seq_before) / (time.monotonic() - started)
    print(f"key to paint at {args.size}, {args.rounds} rounds, the writer storing "
          f"{rate:,.0f} events/s meanwhile")
    for kind, values in timings.items():
        p95 = percentile(values, 0.95)
        verdict = "met" if p95 < TARGETS_MS[kind] else "NOT met"
        print(f"  {kind:6} {len(values):4} keys: p50 {statistics.median(values):6.1f} ms, "
              f"p95 {p95:6.1f} ms, max {max(values):6.1f} ms "
              f"(target p95 < {TARGETS_MS[kind]:.0f} ms: {verdict})")


if __name__ == "__main__":
    main()
