"""Reports and summaries on a big store: flat with history, or not.

    python bench/report.py [--events N] [--keep PATH] [--repeat N]

A store of `--events` events (10 million by default: about seventeen days of traffic at one new
call a second) is built through the real offline ingest path (traffic model, Ingestor,
StoreWriter), or reused from `--keep` if a store of that size is there already (building 10M
events takes minutes). Then each read is timed `--repeat` times on a fresh connection each:
`noc report` over everything, over the last 24 hours ending on the hour and at the newest
moment, over the last hour (ragged at both ends), over a day ragged at both ends nine days back
(older than the minute rollups keep: its edges are summed from the records); and the console's
summaries of the busiest
customer and carrier (Live, Daily, Monthly), its route stats, the account lists and the
dashboard. Prints p50, p95 and max of each against the target (< 10 ms each), and the median
CPU time of the reading thread (what a busy machine does not inflate).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from console.feed.ingestor import Ingestor
from console.feed.traffic import Traffic
from store.database import connect, prepare
from store.queries import Reader
from store.views import ConsoleData
from store.writer import StoreWriter

TARGET_MS = 10.0
START_TS = 1_760_000_000.0  # a fixed simulated start: the same store every build
FRAME, BATCH = 1_000, 50_000


def build(path: Path, events: int) -> None:
    """`events` events of default traffic at one new call a second, as a writer stores them."""
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    prepare(path)
    traffic = Traffic(1, cps=1.0, scenario="default", start_ts=START_TS)
    ingestor = Ingestor(clock=lambda: int(traffic.now * 1000))
    writer = StoreWriter(path)
    writer.open_now()
    seq, frame = 0, []
    try:
        while seq < events:
            for event in traffic.advance_to(traffic.now + 60):
                seq += 1
                frame.append({**event, "seq": seq})
                if len(frame) == FRAME:
                    ingestor.apply_frame(json.dumps(frame))
                    frame.clear()
                    if len(ingestor.batch) >= BATCH:
                        writer.write_now(ingestor.take_batch())
        ingestor.apply_frame(json.dumps(frame))
        writer.write_now(ingestor.take_batch())
        writer.checkpoint_now()
    finally:
        writer.close_now()


def stored_events(path: Path) -> int:
    if not path.exists():
        return 0
    with connect(path) as db:
        return db.execute("SELECT last_seq FROM feed_state").fetchone()[0]


def timed(read: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each of `repeat` reads."""
    timings, cpu = [], []
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), time.thread_time()
        read()
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - cpu_started) * 1000)
    return timings, cpu


def busiest(path: Path, kind: str) -> str:
    with connect(path) as db:
        return db.execute("SELECT account FROM rollup_day WHERE kind = ? GROUP BY account "
                          "ORDER BY sum(attempts) DESC LIMIT 1", (kind,)).fetchone()[0]


def reads(path: Path) -> dict[str, Callable[[], object]]:
    reader, data = Reader(path), ConsoleData(path)
    newest_ms = reader.feed_state().newest_ms
    hour_ms, day_ms = 3_600_000, 86_400_000
    on_the_hour = newest_ms - newest_ms % hour_ms
    customer, carrier = busiest(path, "customer"), busiest(path, "carrier")
    found = {
        "report, everything": lambda: reader.report(),
        "report, 24 h on the hour": lambda: reader.report(on_the_hour - day_ms, on_the_hour),
        "report, 24 h to now": lambda: reader.report(newest_ms - day_ms, newest_ms),
        "report, 1 h ragged": lambda: reader.report(newest_ms - hour_ms - 12_345,
                                                    newest_ms - 6_789),
        "report, 24 h ragged, 9 d back": lambda: reader.report(
            newest_ms - 10 * day_ms - 59 * 60_000 - 1_234, newest_ms - 9 * day_ms - 1_234),
        "route stats": lambda: data.route_stats(customer, newest_ms),
    }
    for kind, account in (("customer", customer), ("carrier", carrier)):
        for mode in ("live", "daily", "monthly"):
            found[f"{kind} summary, {mode}"] = (
                lambda kind=kind, account=account, mode=mode: data.summary(kind, account, mode,
                                                                           newest_ms))
    return found


def context_reads(path: Path) -> dict[str, Callable[[], object]]:
    """Reads with no target of their own here (their screens have one), shown for scale."""
    data = ConsoleData(path)
    newest_ms = Reader(path).feed_state().newest_ms
    return {
        "account lists": lambda: (data.accounts("customer", newest_ms),
                                  data.accounts("carrier", newest_ms)),
        "dashboard": lambda: data.dashboard(newest_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, help="Build the store here, or reuse it.")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.keep or Path(folder) / "noc.db"
        if stored_events(path) < args.events:
            started = time.monotonic()
            build(path, args.events)
            print(f"built {stored_events(path):,} events in {time.monotonic() - started:,.0f} s "
                  f"({path.stat().st_size / 2**20:,.0f} MiB)")
        print(f"{stored_events(path):,} events stored; each read {args.repeat} times")
        failed = 0
        targeted = reads(path)
        for name, read in {**targeted, **context_reads(path)}.items():
            timings, cpu = timed(read, args.repeat)
            p95 = sorted(timings)[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
            verdict = ("" if p95 < TARGET_MS else "  NOT met") if name in targeted else \
                "  (no target: for scale)"
            failed += bool(verdict.strip() == "NOT met")
            print(f"  {name:29} p50 {statistics.median(timings):7.2f} ms, p95 {p95:7.2f} ms, "
                  f"max {max(timings):7.2f} ms, CPU p50 {statistics.median(cpu):6.2f} ms{verdict}")
        print(f"target: every read p95 < {TARGET_MS:.0f} ms: "
              f"{'met' if not failed else f'NOT met by {failed}'} "
              f"(load average over the last minute: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
