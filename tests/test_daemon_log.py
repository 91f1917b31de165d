"""`noc ingest` left alone: every change of the feed's state is one line of its log, as a real
process run against the simulator shows it (the store's troubles: tests/test_store_faults.py; a
refused token: tests/test_cli.py)."""

from __future__ import annotations

import re
import signal
import time

from websockets.datastructures import Headers
from websockets.http11 import Response

from store.actions import request_control
from tests.feedkit import paced_by_store, running_simulator, stored_seq, wait_until


async def test_noc_ingest_logs_each_change_of_the_feeds_state_in_one_line(db, processes):
    refusing = False

    def restarting(_connection, _request):
        if refusing:
            return Response(503, "Service Unavailable", Headers(), b"restarting\n")
        return None

    async with (running_simulator(speed=20, cps=60, refuse=restarting) as (sim, url),
                paced_by_store(sim, db)):
        ingest = processes.noc("ingest", "--feed", url, "--db", str(db))
        await wait_until(lambda: stored_seq(db) > 500, what="ingest to store")
        sim.inject_raw("{not json")
        await wait_until(lambda: "quarantined" in ingest.stderr, what="the frame quarantined")
        request = request_control(db, action="disable", kind="customer", account="acme-telecom",
                                  reason="test", requested_by="test",
                                  now_ms=int(time.time() * 1000))
        await wait_until(lambda: "acknowledged" in ingest.stderr, what="the control acked")
        # The switch goes away and comes back having forgotten some of what it sent meanwhile.
        sim.pause()
        await wait_until(lambda: stored_seq(db) == sim.head, what="ingest to catch up")
        held = sim.head
        refusing = True
        sim.drop_connections()
        await wait_until(lambda: "answered HTTP 503" in ingest.stderr, what="a refused retry")
        sim.resume()
        await wait_until(lambda: sim.head > held + 1_000, what="traffic while away")
        sim.pause()
        forgotten = sim.head - 200
        sim.forget(forgotten)
        refusing = False
        await wait_until(lambda: stored_seq(db) == sim.head, what="ingest to resume")
        ingest.process.send_signal(signal.SIGTERM)
        assert await ingest.wait() == 0, ingest.stderr
    expected = [
        r"INFO feed: connected to ws://\S+, from seq 0",
        r"WARNING feed: quarantined a frame: not JSON: .*",
        rf"INFO control: sent disable customer acme-telecom \({request}\)",
        r"INFO control: disable customer acme-telecom acknowledged",
        r"WARNING feed: dropped: connection closed \(no close frame\); reconnecting in [\d.]+ s",
        r"WARNING feed: cannot connect: the feed at \S+ answered HTTP 503: is the URL right\?; "
        r"reconnecting in [\d.]+ s",
        rf"INFO feed: connected to ws://\S+, from seq {held}",
        rf"WARNING feed: gap {held + 1}..{forgotten}: {forgotten - held} events lost for good "
        r"\(announced by the server\)",
    ]
    lines = [line.split(" ", 2)[2] for line in ingest.stderr.splitlines()]
    found = [next((line for line in lines if re.fullmatch(pattern, line)), None)
             for pattern in expected]
    assert None not in found, ingest.stderr
    assert [lines.index(line) for line in found] == sorted(lines.index(line) for line in found)
