"""An idle writer: with no traffic it neither flushes, nor reads the store, nor runs alert rounds
(each woke the process several times a second for nothing), yet what a console stores, a
control request or a rule, is still carried out at once."""

from __future__ import annotations

import asyncio
import time

from console.alerting.engine import AlertEngine
from console.alerting.settings import AlertSettings
from console.feed import service as writer_service
from store.actions import request_control
from store.alerting import AlertData
from store.database import prepare
from tests.alerting.kit import rule, running_writer
from tests.feedkit import running_simulator, wait_until

CUSTOMER = "acme-telecom"  # a customer of the simulator, with a balance
QUIET_S = 2.0  # watched with no traffic; rounds every 0.05 s would be 40


async def test_an_idle_writer_reads_nothing_yet_carries_out_what_consoles_store(
        tmp_path, monkeypatch):
    db = tmp_path / "noc.db"
    prepare(db)
    engine = AlertEngine(db, AlertSettings(interval=0.05))
    rounds: list[int | None] = []
    reads: list[object] = []
    evaluate, pending = engine.evaluate_round, writer_service.pending_controls

    def counted_round(now_ms=None):
        rounds.append(now_ms)
        return evaluate(now_ms)

    def counted_read(connection):
        reads.append(connection)
        return pending(connection)

    engine.evaluate_round = counted_round
    monkeypatch.setattr(writer_service, "pending_controls", counted_read)
    async with running_simulator(speed=1, cps=20, limit=200, start=None) as (sim, url), \
            running_writer(db, url, engine) as service:
        await wait_until(lambda: sim.head == 200 and service.committed_seq == 200
                         and service.caught_up(), what="all 200 events stored")
        await wait_until(lambda: len(rounds) > 0, what="a round on what was stored")
        flushes, round_count, read_count = service.flushes, len(rounds), len(reads)
        await asyncio.sleep(QUIET_S)
        # A minute may turn meanwhile (windows slide: one round), and a heartbeat be noted (a
        # commit, read once), but nothing polls.
        assert service.flushes - flushes <= 1
        assert len(rounds) - round_count <= 2
        assert len(reads) - read_count <= 2

        request_control(db, action="disable", kind="customer", account=CUSTOMER,
                        reason="by hand", now_ms=time.time_ns() // 1_000_000)
        await wait_until(lambda: [c for c in sim.controls if c.account == CUSTOMER],
                         what="the console's request sent to the switch")
        rule(db, title="Balance known", company=CUSTOMER, recipients=[], area="balance",
             operator=">", threshold=0, reset_threshold=None, sample_period=None)
        await wait_until(lambda: [a for a in AlertData(db).firing() if a.account == CUSTOMER],
                         what="the new rule evaluated and firing")
