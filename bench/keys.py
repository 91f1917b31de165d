"""Key to paint: from a key to the screen drawn with its data, while a writer ingests.

    python bench/keys.py [--rounds N] [--cps C] [--size 80x24]

`noc simulate` (real clock, `--cps` new calls a second: about 5,000 events/s at the default) and
`noc ingest` run as child processes on a fresh database; once the writer is current, a viewer
console (the real app on the real clock, frames rendered as for a terminal) goes round as a
person would: each global key (1-5, `?`, Esc), the tab keys (`>`) of a customer, a carrier and
the alerts, and opening a customer and a carrier from their lists (Enter).

A key counts as painted at the first frame written to the terminal (see bench/painting.py)
that shows the screen it leads to with data read from the store after the key (the tab's own,
on a tabbed screen): a screen shown again with what it read a minute ago is not painted yet.
Prints p50, p95 and max per kind of key against the targets (p95 < 100 ms for global and tab
keys, < 150 ms for opening an account), and the event rate the writer kept up meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from painting import FrameClock, fresh, percentile, send_key, until_painted, use_frame_clock

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
def writer(folder: Path, cps: float, *, limit: int | None = None,
           ready: int = 20_000) -> Iterator[tuple[Path, subprocess.Popen]]:
    """`noc simulate` (serving `limit` events at most, then heartbeats only) and `noc ingest`
    into a fresh database; yields the database's path and the ingest process once `ready`
    events are stored."""
    db = folder / "noc.db"
    noc = [sys.executable, "-m", "console.shell.cli"]
    log = (folder / "simulate.log").open("wb")
    limited = ["--limit", str(limit)] if limit is not None else []
    simulate = subprocess.Popen([*noc, "simulate", "--host", "127.0.0.1", "--port", "0",
                                 "--cps", str(cps), "--seed", "3", *limited],
                                stdout=log, stderr=log)
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
        while committed(db) < ready:
            time.sleep(0.2)
        yield db, ingest
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


def reached(app, screen_type: type, since: float, left_tab: str | None) -> bool:
    """The screen is current and shows data read after the key (of a tab other than
    `left_tab`, on a tabbed screen)."""
    screen = app.screen
    if not isinstance(screen, screen_type) or not fresh(screen, since):
        return False
    tab = getattr(getattr(screen, "_last_snapshot", None), "tab", None)
    return tab is None or (tab == screen.active and tab != left_tab)


class Tracer:
    """Where a key's time goes: each read's start and end (worker thread) and each delivery's
    start and end with the event loop's CPU time (UI thread), noted as they happen; `phases`
    splits a key's time by the read that painted it."""

    PHASES = ("to read", "read", "to show", "show", "to frame")

    def __init__(self) -> None:
        self.reads: dict[int, tuple[float, float]] = {}  # id(snapshot) -> the read's start, end
        self.keys: list[tuple] = []  # key, kind, screen, tab, ms, phases
        # read_at, the read's start and end, the delivery's start and end, the event loop's CPU
        # time in it and at its end
        self.shown: list[tuple[float, float, float, float, float, float, float]] = []

    def install(self) -> None:
        for screen_type in {screen_type for _, _, screen_type in ROUND
                            if issubclass(screen_type, DataScreen)}:
            screen_type.gather = self._timed_gather(screen_type.gather)
        deliver = DataScreen.deliver

        def timed_deliver(screen, snapshot, read_at, *args, **kwargs):
            begun, cpu = time.monotonic(), time.thread_time()
            deliver(screen, snapshot, read_at, *args, **kwargs)
            start, end = self.reads.get(id(snapshot), (read_at, read_at))
            self.shown.append((read_at, start, end, begun, time.monotonic(),
                               time.thread_time() - cpu, time.thread_time()))

        DataScreen.deliver = timed_deliver

    def _timed_gather(self, gather):
        def timed(screen, data, now):
            start = time.monotonic()
            snapshot = gather(screen, data, now)
            self.reads[id(snapshot)] = (start, time.monotonic())
            return snapshot
        return timed

    def phases(self, sent: float, painted_ms: float) -> dict[str, float]:
        """The key's time split at the delivery that painted it: the last begun before the
        frame of a read begun after the key."""
        painted = sent + painted_ms / 1000
        mine = [s for s in self.shown if s[0] >= sent and s[3] <= painted]
        if not mine:
            return {}
        _, start, end, begun, ended, cpu, cpu_ended = mine[-1]
        ms = [(start - sent), (end - start), (begun - end), (ended - begun), (painted - ended)]
        return {**dict(zip(self.PHASES, (1000 * m for m in ms), strict=True)),
                "show cpu": 1000 * cpu, "draw cpu": 1000 * (FrameClock.painted_cpu - cpu_ended)}


async def drive(db: Path, rounds: int, size: tuple[int, int], profile: Path | None,
                warm: bool = True, tracer: Tracer | None = None,
                cpu_ms: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Each key's milliseconds to paint, by kind; its CPU time (the viewer's, every thread)
    into `cpu_ms`."""
    timings: dict[str, list[float]] = {kind: [] for kind in TARGETS_MS}
    cpu_ms = {kind: [] for kind in TARGETS_MS} if cpu_ms is None else cpu_ms
    app = make_app(db, clock=now_ms, warm_screens=warm)
    use_frame_clock(app)
    async with app.run_test(size=size, headless=False):
        await until_painted(lambda: reached(app, DashboardScreen, 0.0, None), 0.0)
        while warm and not app.warmed:  # as a person's console is, a second or two after it starts
            await asyncio.sleep(0.05)
        with profiled(profile):
            for _ in range(rounds):
                for key, kind, screen_type in ROUND:
                    left_tab = getattr(app.screen, "active", None) if kind == "tab" else None
                    cpu = time.process_time()
                    sent = send_key(app, key)
                    try:
                        timings[kind].append(await until_painted(
                            lambda: reached(app, screen_type, sent, left_tab), sent))  # noqa: B023
                        cpu_ms[kind].append((time.process_time() - cpu) * 1000)
                        if tracer is not None:
                            tracer.keys.append((key, kind, screen_type.__name__,
                                                getattr(app.screen, "active", ""),
                                                timings[kind][-1],
                                                tracer.phases(sent, timings[kind][-1])))
                    except TimeoutError:
                        raise SystemExit(f"{key!r} never painted {screen_type.__name__}: "
                                         f"the app shows {app.screen!r}") from None
    return timings


@contextlib.contextmanager
def profiled(path: Path | None) -> Iterator[None]:
    """Profile the rounds with pyinstrument into `path`, if asked."""
    if path is None:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001, async_mode="disabled")
    with profiler:
        yield
    if path.suffix == ".pyisession":  # pyinstrument --load PATH -r text|html ...
        profiler.last_session.save(path)
    else:
        path.write_text(profiler.output_text(unicode=True) if path.suffix == ".txt"
                        else profiler.output_html())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--cps", type=float, default=1_100.0)
    parser.add_argument("--size", default="80x24")
    parser.add_argument("--cold", action="store_true",
                        help="mount each screen when a key first leads to it (no warm_screens)")
    parser.add_argument("--profile", type=Path,
                        help="write a pyinstrument profile here (.html, .txt, .pyisession)")
    parser.add_argument("--trace", action="store_true",
                        help="split the slowest 5 %% of keys into read and draw phases")
    args = parser.parse_args()
    tracer = Tracer() if args.trace else None
    if tracer is not None:
        tracer.install()
    size = tuple(int(n) for n in args.size.split("x"))
    # A few seconds of traffic stored before the viewer starts.
    with tempfile.TemporaryDirectory() as folder, writer(Path(folder), args.cps) as (db, _):
        seq_before, started = committed(db), time.monotonic()
        cpu_ms: dict[str, list[float]] = {kind: [] for kind in TARGETS_MS}
        timings = asyncio.run(drive(db, args.rounds, size, args.profile, not args.cold,
                                    tracer, cpu_ms))
        rate = (committed(db) - seq_before) / (time.monotonic() - started)
    print(f"key to paint at {args.size}, {args.rounds} rounds{' (cold)' if args.cold else ''}, "
          f"the writer storing {rate:,.0f} events/s meanwhile, load average "
          f"{os.getloadavg()[0]:.1f}")
    for kind, values in timings.items():
        p95 = percentile(values, 0.95)
        verdict = "met" if p95 < TARGETS_MS[kind] else "NOT met"
        print(f"  {kind:6} {len(values):4} keys: p50 {statistics.median(values):6.1f} ms, "
              f"p95 {p95:6.1f} ms, max {max(values):6.1f} ms "
              f"(target p95 < {TARGETS_MS[kind]:.0f} ms: {verdict}); CPU a key p50 "
              f"{statistics.median(cpu_ms[kind]):5.1f}, "
              f"p95 {percentile(cpu_ms[kind], 0.95):5.1f} ms")
    if tracer is not None:
        print_slowest(tracer)


def print_slowest(tracer: Tracer) -> None:
    """The slowest 5 % of keys, each split into its phases (ms; `show cpu` the event loop's)."""
    slowest = sorted(tracer.keys, key=lambda k: -k[4])[:max(1, len(tracer.keys) // 20)]
    print("  slowest 5 %: key, screen (tab), ms = " + " + ".join(Tracer.PHASES)
          + " (the event loop's CPU in show, and from show to the frame)")
    for key, _, screen, tab, ms, phases in slowest:
        split = " + ".join(f"{phases.get(p, 0):.0f}" for p in Tracer.PHASES)
        print(f"    {key:>13} {screen}({tab}) {ms:6.1f} = {split} "
              f"(cpu {phases.get('show cpu', 0):.0f}, {phases.get('draw cpu', 0):.0f})")


if __name__ == "__main__":
    main()
