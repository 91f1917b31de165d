"""The engine's rounds wait while its writer catches up a backlog: values read from half-stored
minutes would fire and clear rules on numbers that never were."""

from __future__ import annotations

import asyncio

from console.alerting.engine import AlertEngine
from console.alerting.settings import AlertSettings
from store.database import prepare
from tests.alerting.kit import running_writer
from tests.feedkit import running_simulator, wait_until


async def test_rounds_wait_until_the_backlog_is_stored(tmp_path):
    db = tmp_path / "noc.db"
    prepare(db)
    engine = AlertEngine(db, AlertSettings(interval=0.02))
    rounds: list[tuple[int, int]] = []  # (committed seq, the feed's head) at each round
    writer = []
    evaluate = engine.evaluate_round

    def recorded(now_ms=None):
        rounds.append((writer[0].committed_seq, backlog))
        return evaluate(now_ms)

    engine.evaluate_round = recorded
    async with running_simulator(speed=1, cps=40, backfill=300, start=None) as (sim, url):
        # The backfill, generated before the writer connects: it has all of it to catch up.
        await wait_until(lambda: sim.head > 20_000, what="the backfill")
        backlog = sim.head
        async with running_writer(db, url, engine) as service:
            writer.append(service)
            await wait_until(lambda: len(rounds) >= 3, what="three rounds")
    assert all(committed >= head for committed, head in rounds), rounds[:3]


async def test_rounds_wait_while_the_feed_is_down(tmp_path):
    db = tmp_path / "noc.db"
    prepare(db)
    engine = AlertEngine(db, AlertSettings(interval=0.02))
    async with running_simulator(speed=1, cps=5) as (sim, url), \
            running_writer(db, url, engine) as service:
        await wait_until(service.caught_up, what="caught up")
        await sim.stop()
        await wait_until(lambda: not service.caught_up(), what="the feed seen down")


async def test_a_live_feed_stays_current_between_heartbeats_and_commits(tmp_path):
    """Steady traffic, all of it stored as it comes: the rounds never stop for the moment
    between a heartbeat naming a new seq and the commit that stores it."""
    db = tmp_path / "noc.db"
    prepare(db)
    engine = AlertEngine(db, AlertSettings(interval=0.02))
    seen: list[bool] = []

    async def sample(service) -> None:
        while True:
            seen.append(service.caught_up())
            await asyncio.sleep(0.005)

    async with running_simulator(speed=1, cps=40) as (_sim, url), \
            running_writer(db, url, engine) as service:
        await wait_until(service.caught_up, what="caught up")
        start = service.committed_seq
        sampling = asyncio.create_task(sample(service))
        await wait_until(lambda: service.committed_seq > start + 600, what="600 events stored")
        sampling.cancel()
    assert seen and all(seen), f"{seen.count(False)} of {len(seen)} looks read as behind"
