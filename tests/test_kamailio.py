"""noc against a real switch: Kamailio from Debian with the shipped configuration, the bridge, and
`noc ingest`, on loopback, with SIP agents in Python as customers and carriers.

What the callers and carriers saw of each call is the reference: noc's report must say the same.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys

import pytest
from textual.widgets import TabbedContent

from console import testing
from screens.confirm import Confirm
from screens.customer import DialogsPane
from store.actions import request_control
from tests.feedkit import REPO, query, read_report, wait_until
from tests.kamailiokit import (
    KAMAILIO,
    Switch,
    account_enabled,
    assert_report_matches,
    calls_stored,
    needs_kamailio,
    now_ms,
    seen_events,
    stop_orphans,
)
from tests.reference import reference_report
from tests.sipkit import Answer, SipAgent
from widgets.live_table import LiveTable

pytestmark = [needs_kamailio, pytest.mark.slow, pytest.mark.timeout(120)]

RATES = {"44": (0.02, {"atlas": 0.01, "borealis": 0.012}),
         "33": (0.03, {"cobalt": 0.02, "borealis": 0.015}),
         "49": (0.05, {"silent": 0.03, "cobalt": 0.02})}
INCREMENT = 60  # billed by the minute: money is exact whatever the talk time


def atlas_plan(number: str) -> Answer:
    """Atlas: rings then answers, the callee pressing 5 on 441... numbers; 44486 is busy and
    44404 does not exist."""
    if number.startswith("44486"):
        return Answer(486)
    if number.startswith("44404"):
        return Answer(404, ring=183)
    return Answer(200, dtmf="5" if number.startswith("441") else "")


class Network:
    """The customers and carriers of the tests, and the bridge config that knows them."""

    def __init__(self) -> None:
        self.acme = SipAgent("acme")  # known by its source address; 2 channels
        self.blue = SipAgent("blue")  # known by its digest auth user
        self.cyan = SipAgent("cyan")  # 1 call a second
        self.atlas = SipAgent("atlas", plan=atlas_plan)
        self.borealis = SipAgent("borealis", plan=lambda _: Answer(200, ring=183))
        self.cobalt = SipAgent("cobalt", plan=lambda _: Answer(503, ring=None))  # down
        self.silent = SipAgent("silent", plan=lambda _: Answer(None, ring=None))  # says nothing

    @property
    def callers(self) -> dict[str, SipAgent]:
        return {"acme": self.acme, "blue": self.blue, "cyan": self.cyan}

    @property
    def carriers(self) -> dict[str, SipAgent]:
        return {"atlas": self.atlas, "borealis": self.borealis, "cobalt": self.cobalt,
                "silent": self.silent}

    async def start(self) -> Network:
        for agent in (*self.callers.values(), *self.carriers.values()):
            await agent.start()
        return self

    async def stop(self) -> None:
        for agent in (*self.callers.values(), *self.carriers.values()):
            await agent.stop()

    def config(self) -> str:
        routes = "".join(
            f'[[route]]\nprefix = "{prefix}"\ncarriers = {json.dumps(list(costs))}\n'
            f"price = {price}\ncost = {{ {', '.join(f'{c} = {v}' for c, v in costs.items())} }}\n"
            for prefix, (price, costs) in RATES.items())
        carriers = "".join(f'[[carrier]]\nid = "{name}"\nname = "{name.title()} Voice"\n'
                           f'address = "{agent.address}"\n'
                           for name, agent in self.carriers.items())
        return f"""
[billing]
increment = {INCREMENT}

[[customer]]
id = "acme"
name = "Acme Telecom"
addresses = ["{self.acme.address}"]
channels = 2

[[customer]]
id = "blue"
name = "Blue VoIP"
user = "blue"
password = "s3cret"

[[customer]]
id = "cyan"
name = "Cyan Networks"
addresses = ["{self.cyan.address}"]
cps = 1
""" + carriers + routes

    def expected_report(self) -> dict:
        return reference_report(seen_events(self.callers, self.carriers, RATES, INCREMENT))

    def calls(self) -> int:
        return sum(len(agent.records) for agent in self.callers.values())


@pytest.fixture
async def network():
    agents = await Network().start()
    yield agents
    await agents.stop()


@pytest.fixture
async def switch(tmp_path, processes, network):
    running = Switch(tmp_path / "switch", processes, network.config())
    try:
        yield await running.start()
    finally:
        running.stop()


async def test_calls_through_kamailio_are_reported_as_the_callers_saw_them(switch, network):
    proxy = switch.proxy
    acme, blue, cyan = network.acme, network.blue, network.cyan
    auth = ("blue", "s3cret")
    answered, busy, wrong = await asyncio.gather(
        acme.call(proxy, "4410001", talk=0.3), acme.call(proxy, "44486"),
        blue.call(proxy, "44404", auth=auth))
    failover = await blue.call(proxy, "3310", auth=auth, talk=0.2)
    all_down = await blue.call(proxy, "4900", auth=auth)
    no_route = await acme.call(proxy, "1555")
    # Over the channel limit: a third call while two are up.
    first, second = (asyncio.create_task(acme.call(proxy, f"441000{n}", talk=None))
                     for n in (2, 3))
    await wait_until(lambda: sum(r.answered is not None for r in network.atlas.records) >= 3,
                     what="two more calls answered")
    over = await acme.call(proxy, "4410004")
    for record in acme.records:
        record.hang_up()
    await asyncio.gather(first, second)
    # Over the CPS limit: five at once, one a second allowed.
    flood = await asyncio.gather(*(cyan.call(proxy, "44486") for _ in range(5)))

    assert (answered.code, busy.code, wrong.code) == (200, 486, 404)
    assert answered.dtmf == "5"
    assert (failover.code, [r.code for r in network.cobalt.records][:1]) == (200, [503])
    assert all_down.code == 503 and network.silent.records  # 408 from silence, then 503
    assert (no_route.code, no_route.reason) == (404, "No Route")
    assert (over.code, over.reason) == (503, "Channel limit")
    assert "CPS limit" in [call.reason for call in flood]

    await switch.stored(lambda report: calls_stored(report, network.calls()))
    printed = subprocess.run(
        [sys.executable, "-m", "console.shell.cli", "report", "--db", str(switch.db), "--json"],
        cwd=REPO, env=switch.processes.env, capture_output=True, text=True, check=True)
    report = json.loads(printed.stdout)
    assert (report["gaps"], report["quarantined"]) == ([], 0)
    assert_report_matches(report, network.expected_report())
    assert_answered_calls_accounted(switch, network)


def assert_answered_calls_accounted(switch: Switch, network: Network) -> None:
    """Kamailio's log accounts for every answered call and no other: acc's record of its 200
    and a CDR line with its customer, the carrier that answered and who hung up."""
    log = switch.kamailio.run_log()
    cdrs = {fields["call_id"]: fields for fields in (
        dict(pair.split("=", 1) for pair in line.split("CDR: ", 1)[1].strip().split(";"))
        for line in log.splitlines() if "CDR: " in line)}
    acc_answered = set(re.findall(r"ACC: transaction answered: .*?;method=INVITE;.*?"
                                  r"call_id=([^;]+);code=200", log))
    answered = {record.call_id: (customer, record) for customer, agent in network.callers.items()
                for record in agent.records if record.code == 200}
    assert cdrs.keys() == acc_answered == answered.keys()
    answering = {record.call_id: carrier for carrier, agent in network.carriers.items()
                 for record in agent.records if record.code == 200}
    for call_id, (customer, record) in answered.items():
        cdr = cdrs[call_id]
        assert (cdr["customer"], cdr["carrier"], cdr["hangup"]) == (
            customer, answering[call_id], record.hangup)
        assert abs(float(cdr["end"]) - float(cdr["answer"]) - record.duration) < 0.5


async def test_a_penalty_takes_the_failing_carrier_out_of_routing_until_it_ends(
        switch, network, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text("""
[[rule]]
title = "Carrier down"
kind = "carrier"
company = "cobalt"
recipients = []
area = "consecutive_failures"
operator = ">="
threshold = 2
reset_threshold = 0
penalty = "8s"
level = "critical"
""")
    subprocess.run([sys.executable, "-m", "console.shell.cli", "alerts", "import", str(rules),
                    "--db", str(switch.db)], cwd=REPO, env=switch.processes.env, check=True,
                   capture_output=True)
    for _ in range(2):  # cobalt fails, borealis takes the call
        assert (await network.blue.call(switch.proxy, "3310", auth=("blue", "s3cret"))).code \
            == 200
    await wait_until(lambda: account_enabled(switch.db, "carrier", "cobalt") is False,
                     what="the alert's penalty to disable cobalt")
    tried = len(network.cobalt.records)
    during = await network.blue.call(switch.proxy, "3311", auth=("blue", "s3cret"))
    assert during.code == 200
    assert len(network.cobalt.records) == tried, "a call was routed to a disabled carrier"
    until_ms = query(switch.db, "SELECT until_ms FROM control_request WHERE action = 'disable'"
                     )[0][0]
    await wait_until(lambda: account_enabled(switch.db, "carrier", "cobalt") is True,
                     what="the penalty to end")
    assert now_ms() >= until_ms  # lifted when it ended, not before
    after = await network.blue.call(switch.proxy, "3312", auth=("blue", "s3cret"))
    assert after.code == 200 and len(network.cobalt.records) == tried + 1


async def test_a_penalty_on_a_customer_refuses_its_next_call_with_403(switch, network):
    request_control(switch.db, action="disable", kind="customer", account="acme",
                    until_ms=now_ms() + 60_000, reason="test", now_ms=now_ms())
    await wait_until(lambda: account_enabled(switch.db, "customer", "acme") is False,
                     what="acme disabled")
    refused = await network.acme.call(switch.proxy, "4410001")
    assert (refused.code, refused.reason) == (403, "Forbidden")
    assert not network.atlas.records
    await switch.stored(lambda report: report["customers"].get("acme", {}).get(
        "breaches", {}).get("other") == 1)
    rows = query(switch.db, "SELECT code, reason FROM reject")
    assert rows == [(403, "disabled")]
    request_control(switch.db, action="enable", kind="customer", account="acme",
                    reason="test", now_ms=now_ms())
    await wait_until(lambda: account_enabled(switch.db, "customer", "acme") is True,
                     what="acme enabled")
    assert (await network.acme.call(switch.proxy, "4410001", talk=0.1)).code == 200


def test_the_shipped_configuration_is_valid_kamailio(tmp_path, processes):
    """`noc bridge kamailio-cfg` writes what `kamailio -c` accepts."""
    switch = Switch(tmp_path / "switch", processes, "")
    printed = subprocess.run(
        [sys.executable, "-m", "console.shell.cli", "bridge", "kamailio-cfg", "--config",
         str(switch.bridge_config)], cwd=REPO, env=processes.env, capture_output=True,
        text=True, check=True)
    assert f'#!substdef "!NOC_SIP_PORT!{switch.sip_port}!g"' in printed.stdout
    config = tmp_path / "noc.cfg"
    config.write_text(printed.stdout)
    checked = subprocess.run([KAMAILIO, "-c", "-f", str(config)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stderr[-2000:]


async def test_a_kamailio_left_by_a_killed_test_session_is_stopped_by_the_next(tmp_path,
                                                                             processes):
    """pytest killed with SIGKILL leaves its Kamailio running (it has a session of its own):
    the next session to start one stops it, and nothing that is not a dead session's own."""
    marks = tmp_path / "running"
    left, fresh = (Switch(tmp_path / name, processes, "") for name in ("left", "fresh"))
    left.kamailio.marks = fresh.kamailio.marks = marks
    strangers = [subprocess.Popen(["sleep", "120"], start_new_session=True) for _ in range(2)]
    try:
        await left.start_kamailio()
        killed = subprocess.Popen(["true"])
        killed.wait()
        left.kamailio.mark.write_text(json.dumps({"owner": killed.pid,
                                                  "config": str(left.kamailio.config)}))
        # a live session's process, and a pid now someone else's under a dead session's mark
        for stranger, owner in zip(strangers, (os.getpid(), killed.pid), strict=True):
            (marks / f"{stranger.pid}.json").write_text(json.dumps(
                {"owner": owner, "config": str(left.kamailio.config)}))

        await fresh.start_kamailio()

        assert left.kamailio.process.wait(10) == -9
        assert not left.kamailio.mark.exists() and fresh.kamailio.running()
        assert all(stranger.poll() is None for stranger in strangers)
        assert (marks / f"{strangers[0].pid}.json").exists()
        assert not (marks / f"{strangers[1].pid}.json").exists()  # a stale mark, forgotten
        fresh.kamailio.stop()
        assert stop_orphans(marks) == [] and [m.name for m in marks.iterdir()] == [
            f"{strangers[0].pid}.json"]
    finally:
        left.stop()
        fresh.stop()
        for stranger in strangers:
            stranger.kill()
            stranger.wait()


async def test_ending_a_call_from_the_dialogs_tab_sends_bye_to_both_sides(switch, network):
    call = asyncio.create_task(network.acme.call(switch.proxy, "4410001", talk=None))
    await wait_until(lambda: any(r.answered for r in network.atlas.records), what="an answer")
    await wait_until(lambda: query(switch.db, "SELECT count(*) FROM open_call") == [(1,)],
                     what="noc to hold the call in progress")
    app = testing.make_app(switch.db, clock=now_ms)
    async with app.run_test(size=(120, 40)) as pilot:
        await testing.settle(pilot)
        await pilot.press("2")
        await testing.settle(pilot)
        await pilot.press("enter")  # the first customer by name: Acme Telecom
        await testing.settle(pilot)
        pilot.app.screen.query_one(TabbedContent).active = "dialogs"
        table = pilot.app.screen.query_one(DialogsPane).query_one(LiveTable)
        await testing.until(pilot, lambda: table.highlighted_key is not None)
        await pilot.press("k")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause()
    caller = await call
    callee = network.atlas.records[-1]
    assert (caller.byes_received, callee.byes_received) == (1, 1)
    assert not caller.sent_bye and not callee.sent_bye
    await wait_until(lambda: query(switch.db, "SELECT hangup, code FROM call")
                     == [("switch", 200)], what="noc to store the call ended by the switch")
    assert query(switch.db, "SELECT status FROM control_request") == [("acked",)]


async def test_ending_a_ringing_call_cancels_it_at_the_carrier(switch, network):
    network.atlas.plan = lambda _: Answer(None, ring=180)  # rings until cancelled
    call = asyncio.create_task(network.acme.call(switch.proxy, "4420001"))
    await wait_until(lambda: query(switch.db, "SELECT call_id FROM open_call"),
                     what="noc to hold the ringing call")
    (call_id,), = query(switch.db, "SELECT call_id FROM open_call")
    request_control(switch.db, action="hangup", call_id=call_id, kind="customer",
                    account="acme", now_ms=now_ms())
    caller = await call
    assert (caller.code, network.atlas.records[-1].cancelled) == (487, True)
    assert not network.borealis.records  # no failover after noc ended it
    await wait_until(lambda: query(switch.db, "SELECT code, hangup FROM call")
                     == [(487, "switch")], what="noc to store the call ended by the switch")


async def test_a_bridge_restarted_mid_traffic_shows_noc_the_gap_and_no_more(switch, network):
    proxy, acme, blue = switch.proxy, network.acme, network.blue
    auth = ("blue", "s3cret")
    busy_later = asyncio.Event()  # Atlas answers 44480... with 486 once this is set
    network.atlas.plan = lambda number: (Answer(486, ring=180, release=busy_later)
                                         if number.startswith("44480") else atlas_plan(number))

    def answered(agent: SipAgent, count: int) -> bool:  # as the caller sees it: Kamailio has
        return sum(r.answered is not None for r in agent.records) == count  # said so

    await acme.call(proxy, "4420001", talk=0.1)
    straddling = asyncio.create_task(acme.call(proxy, "4420002", talk=None))
    # Two calls that will end while the bridge is away: one talking, one ringing.
    talking = asyncio.create_task(blue.call(proxy, "4420005", auth=auth, talk=None))
    ringing = asyncio.create_task(blue.call(proxy, "4448006", auth=auth))
    await wait_until(lambda: answered(acme, 2) and answered(blue, 1)
                     and any(r.progress for r in network.atlas.records if r.dst == "4448006"),
                     what="two calls answered and one ringing")
    await wait_until(lambda: switch.bridge_stored() == switch.kamailio_count(),
                     what="the bridge to store all Kamailio sent")
    switch.bridge.kill()  # kill -9: nothing to say goodbye with
    before = switch.kamailio_count()
    # While the bridge is away: a whole call, the start of one that ends once it is back, and
    # the ends of the talking and ringing calls.
    await acme.call(proxy, "4420003", talk=0.1)
    late = asyncio.create_task(acme.call(proxy, "4420004", talk=None))
    await wait_until(lambda: answered(acme, 4), what="the fourth call answered")
    next(r for r in blue.records if r.dst == "4420005").hang_up()
    busy_later.set()
    talked, rang = await asyncio.gather(talking, ringing)
    missed = switch.kamailio_count() - before
    await switch.start_bridge()
    # The calls that ended in the gap end in noc while the straddling one still talks.
    await switch.stored(lambda report: calls_stored(report, 3))
    for record in acme.records[1:]:
        record.hang_up()
    await asyncio.gather(straddling, late)
    await acme.call(proxy, "44486")

    await switch.stored(lambda report: report["gaps"] and calls_stored(report, 6))
    report = read_report(switch.db)
    (first, last), = report["gaps"]
    assert last - first + 1 == missed  # exactly what Kamailio sent while nobody listened
    # Every call but the one wholly inside the gap is there, the late one made from its end,
    # those that ended in the gap from what Kamailio kept of their ends.
    stored = dict(query(switch.db, "SELECT call_id, code FROM call"))
    whole_gap = acme.records[2].call_id
    assert stored == {r.call_id: r.code for r in (*acme.records, *blue.records)
                      if r.call_id != whole_gap}
    assert (stored[talked.call_id], stored[rang.call_id]) == (200, 486)
    assert query(switch.db, "SELECT count(*) FROM open_call") == [(0,)]  # no phantom channel
    (hangup, duration_ms), = query(switch.db, "SELECT hangup, duration_ms FROM call "
                                   "WHERE call_id = ?", (talked.call_id,))
    assert hangup == "caller"
    assert abs(duration_ms / 1000 - talked.duration) < 0.5
    assert report["quarantined"] == 0


async def test_a_call_that_outlives_a_kamailio_restart_ends_with_its_bye(switch, network):
    """Kamailio restarted during a call has forgotten its dialog: the caller's BYE, which
    still passes through it, ends the call in noc instead of leaving it a live channel."""
    call = asyncio.create_task(network.acme.call(switch.proxy, "4410001", talk=None))
    await wait_until(lambda: query(switch.db, "SELECT count(*) FROM open_call "
                                   "WHERE answer_ms IS NOT NULL") == [(1,)],
                     what="noc to hold the answered call")
    switch.kamailio.stop()
    await switch.start_kamailio()
    await wait_until(lambda: switch.bridge.stderr.count("kamailio: provisioned") == 2,
                     what="the bridge to follow the restarted Kamailio")
    network.acme.records[0].hang_up()
    caller = await call
    await wait_until(lambda: query(switch.db, "SELECT count(*) FROM call") == [(1,)],
                     what="noc to store the call's end")
    (code, hangup, duration_ms), = query(switch.db, "SELECT code, hangup, duration_ms FROM call")
    assert (code, hangup) == (200, "caller")
    assert abs(duration_ms / 1000 - caller.duration) < 0.5
    assert query(switch.db, "SELECT count(*) FROM open_call") == [(0,)]


async def test_noc_restarted_resumes_with_no_loss(switch, network):
    proxy, acme = switch.proxy, network.acme
    await acme.call(proxy, "4410001", talk=0.1)
    await switch.stored(lambda report: calls_stored(report, 1))
    switch.ingest.kill()
    await asyncio.gather(acme.call(proxy, "4410002", talk=0.1), acme.call(proxy, "44486"))
    await switch.start_ingest()
    await network.blue.call(proxy, "44404", auth=("blue", "s3cret"))
    await switch.stored(lambda report: calls_stored(report, network.calls()))
    report = read_report(switch.db)
    assert (report["gaps"], report["quarantined"]) == ([], 0)
    assert_report_matches(report, network.expected_report())
