"""What a test of noc needs, public and documented: a seeded database, a fixed clock, an app
factory and a scripted feed. The pytest fixtures in `console.pytest_plugin` wrap these.

The seeded database is built by the real path (traffic model -> Ingestor -> StoreWriter), offline
and deterministic: the same seed and clock give the same file, so snapshots do not drift.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from console.feed.ingestor import Ingestor
from console.feed.simulator import Simulator
from console.feed.traffic import Traffic
from store.database import WriterLock, prepare
from store.writer import StoreWriter

FIXED_NOW_MS = int(datetime(2026, 11, 20, 11, 58, 30, tzinfo=UTC).timestamp() * 1000)
FRAME_EVENTS = 1_000  # well under the protocol's 1 MiB a frame
BATCH_EVENTS = 20_000


def fixed_clock(now_ms: int = FIXED_NOW_MS) -> Callable[[], int]:
    """A clock that always says `now_ms` (Unix milliseconds)."""
    return lambda: now_ms


def seed_events(now_ms: int = FIXED_NOW_MS, *, seed: int = 7, history_days: float = 3,
                history_cps: float = 0.05, busy_hours: float = 2) -> Iterable[dict]:
    """Protocol events: `history_days` of light traffic (`history_cps` calls a second), then
    `busy_hours` up to `now_ms` of busy traffic during a carrier outage (so a failing carrier
    shows), renumbered as one feed."""
    now = now_ms / 1000
    busy_start = now - busy_hours * 3600
    phases = (
        Traffic(seed, cps=history_cps, scenario="calm",
                start_ts=busy_start - history_days * 86400),
        Traffic(seed + 1, cps=2.0, scenario="outage", start_ts=busy_start),
    )
    seq = 0
    for traffic, until in zip(phases, (busy_start, now), strict=True):
        while traffic.now < until:
            for event in traffic.advance_to(min(until, traffic.now + 600)):
                seq += 1
                yield {**event, "seq": seq}


def seed_database(path: str | Path, *, now_ms: int = FIXED_NOW_MS, seed: int = 7,
                  history_days: float = 3, history_cps: float = 0.05,
                  busy_hours: float = 2) -> Path:
    """Create (or replace) a database at `path` holding `seed_events`, as a writer would store it,
    with the feed shown as connected at `now_ms`."""
    path = Path(path)
    for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    prepare(path)
    ingestor = Ingestor(clock=fixed_clock(now_ms))
    writer = StoreWriter(path)
    writer.open_now()
    try:
        frame: list[dict] = []
        for event in seed_events(now_ms, seed=seed, history_days=history_days,
                                 history_cps=history_cps, busy_hours=busy_hours):
            frame.append(event)
            if len(frame) >= FRAME_EVENTS:
                ingestor.apply_frame(json.dumps(frame))
                frame.clear()
                if len(ingestor.batch) >= BATCH_EVENTS:
                    writer.write_now(ingestor.take_batch())
        ingestor.apply_frame(json.dumps(frame))
        ingestor.set_feed_status(status="connected", detail="ws://127.0.0.1:8765/feed",
                                 feed_url="ws://127.0.0.1:8765/feed",
                                 connected_since_ms=now_ms - 3_600_000, last_frame_ms=now_ms)
        writer.write_now(ingestor.take_batch())
        writer.checkpoint_now()
    finally:
        writer.close_now()
    seed_alerts(path, now_ms)
    return path


# When the seeded engine evaluated, seconds from now: at -1740 the first penalty is up.
ALERT_ROUNDS_S = (-1800, -1740, -1739, -600, -45, 0)
WATCH_RULE = """
[[rule]]
title = "Ember Link watch"
kind = "carrier"
company = "ember-link"
recipients = ["noc@example.net", "+15550001111"]
area = "consecutive_failures"
operator = ">="
threshold = 1000
reset_threshold = 0
penalty = "15m"
level = "critical"
"""


def seed_alerts(path: Path, now_ms: int = FIXED_NOW_MS) -> None:
    """The demo's alert rules, and one an engineer added a minute ago, evaluated by the real
    engine at a few moments up to `now_ms`; its emails delivered to a real SMTP server on
    loopback, its control requests acknowledged as a writer's feed would; a silence and an
    acknowledgement, so that every alerts view has something to show."""
    asyncio.run(_seed_alerts(Path(path), now_ms))


async def _seed_alerts(path: Path, now_ms: int) -> None:
    from console.alerting import exchange
    from console.alerting.demo import HOST, DemoMailServer
    from console.alerting.engine import AlertEngine
    from console.alerting.settings import AlertSettings, EmailSettings
    from store import alerting

    exchange.import_demo_rules(path, now_ms=now_ms + ALERT_ROUNDS_S[0] * 1000 - 60_000)
    with tempfile.TemporaryDirectory() as folder:
        mail = DemoMailServer(Path(folder, "mail"))
        settings = AlertSettings(email=EmailSettings(host=HOST, port=await mail.start()))
        moment = [now_ms]
        engine = AlertEngine(path, settings, clock=lambda: moment[0])
        try:
            for offset_s in ALERT_ROUNDS_S:
                moment[0] = now_ms + offset_s * 1000
                if offset_s == ALERT_ROUNDS_S[4]:
                    exchange.import_text(path, WATCH_RULE, now_ms=moment[0] - 60_000)
                engine.evaluate_round()
                with alerting.writing(path) as db:  # as the feed would, a moment later
                    db.execute("UPDATE control_request SET status = 'acked', done_ms = ? "
                               "WHERE status = 'pending'", (moment[0] + 40,))
                await engine.deliver_due()
                if offset_s == ALERT_ROUNDS_S[3]:
                    _silence_and_acknowledge(path, moment[0])
        finally:
            await engine.close()
            await mail.stop()


def _silence_and_acknowledge(path: Path, now_ms: int) -> None:
    from store import alerting

    data = alerting.AlertData(path)
    low_asr = data.rule("Low ASR")
    alerting.add_silence(path, rule_id=low_asr.id, kind="customer", account="nova-mobile",
                         until_ms=now_ms + 4 * 3_600_000, now_ms=now_ms,
                         comment="maintenance window at the customer", created_by="ana")
    for alert in data.firing():
        if alert.title == "Low ASR":
            alerting.acknowledge(path, alert.rule_id, alert.kind, alert.account, by="ana",
                                 comment="customer's own dialler fault", now_ms=now_ms + 5_000)


def copy_database(source: Path, target: Path) -> Path:
    """A private copy of a seeded database (each test may write to its own)."""
    shutil.copyfile(source, target)
    return target


def hold_writer_lock(path: Path) -> WriterLock:
    """Pretend a writer runs on `path`, so viewers show a healthy feed rather than 'stale'."""
    lock = WriterLock.for_database(path)
    lock.acquire()
    return lock


def make_app(db_path: Path, *, clock: Callable[[], int] | None = None, read_only: bool = False,
             timezone: str = "UTC", theme: str = "noc-dark", refresh: float = 1.0,
             feed_url: str | None = None, warm_screens: bool = False):
    """A console on `db_path` with no terminal watchdog, exporting by default beside it: a
    viewer with a fixed clock, or, given `feed_url`, the database's writer subscribed to that
    feed (on the real clock). `warm_screens` as a person's console (see ConsoleOptions)."""
    from console.feed.service import IngestService, IngestSettings
    from console.shell.app import NocApp
    from console.shell.options import ConsoleOptions

    service = None
    if feed_url is not None:
        prepare(db_path)
        service = IngestService(db_path, feed_url, token=None,
                                settings=IngestSettings(slice_events=2_000))
    options = ConsoleOptions(db_path=Path(db_path), read_only=read_only, timezone=timezone,
                             theme=theme, refresh=refresh, watchdog=False, cursor_blink=False,
                             warm_screens=warm_screens,
                             exports=Path(db_path).parent / "exports",
                             **({"clock": clock or fixed_clock()} if service is None else {}))
    return NocApp(options, service=service)


class ScriptedFeed:
    """A real feed server on loopback that sends only what the test tells it to.

    It is the simulator with its traffic paused: `send` publishes events (seqs assigned in
    order), `send_raw` a raw frame, `drop` cuts every connection; `controls` lists the control
    messages received.
    """

    def __init__(self, *, token: str | None = None) -> None:
        self.simulator = Simulator(speed=1.0, token=token, keep_history=True, heartbeat=1.0)
        self.simulator.pause()
        self.url = ""

    async def start(self) -> ScriptedFeed:
        port = await self.simulator.start("127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{port}/feed"
        return self

    async def stop(self) -> None:
        await self.simulator.stop()

    def send(self, events: Iterable[dict]) -> list[dict]:
        return self.simulator.inject_events(list(events))

    def send_raw(self, frame: str | bytes) -> None:
        self.simulator.inject_raw(frame)

    def drop(self) -> None:
        self.simulator.drop_connections()

    @property
    def controls(self) -> list:
        return self.simulator.controls


# The waits below have no deadline of their own: on a busy machine a screen may take long, and
# the test's own timeout (pytest-timeout) ends a wait that never ends, with its traceback.


async def settle(pilot) -> None:
    """Wait until the visible screen has been fed its first snapshot and every worker is done,
    so that a snapshot or an assertion sees data, not a loading state."""
    from screens.base import DataScreen

    app = pilot.app
    while True:
        await pilot.pause()
        screen = app.screen
        ready = not isinstance(screen, DataScreen) or screen.has_data
        if ready and not any(w.is_running for w in app.workers if w.group != "writer"):
            break
        await asyncio.sleep(0.02)
    await pilot.pause()


async def until(pilot, predicate: Callable[[], object]) -> None:
    """Let the app run until `predicate()` is true (e.g. a feed state reached the screen)."""
    while not predicate():
        await pilot.pause(0.1)
