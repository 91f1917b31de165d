"""`noc demo`'s alerting, as the demo runs it: its starter rules on a fresh database, its own SMTP
server on loopback keeping mail in a Maildir, and the engine wired to it, against the real
simulator in an outage."""

from __future__ import annotations

import time

from console.alerting import exchange
from console.alerting.demo import DemoAlerting
from console.alerting.rules import rule_fields, save_rule
from console.alerting.settings import AlertSettings
from store.alerting import AlertData
from store.database import prepare
from tests.alerting.kit import running_writer
from tests.feedkit import running_simulator, wait_until


def test_the_demo_rules_import_cleanly(tmp_path):
    db = tmp_path / "demo.db"
    prepare(db)
    result = exchange.import_demo_rules(db, now_ms=0)
    assert result.created == len(AlertData(db).rules()) >= 7
    titles = {rule.title for rule in AlertData(db).rules()}
    assert {"Carrier down", "Low ASR", "Low balance", "Feed quarantine"} <= titles


async def test_an_outage_in_the_demo_mails_and_penalises_then_restores(tmp_path):
    db = tmp_path / "demo.db"
    prepare(db)
    alerting = DemoAlerting.prepare(AlertSettings(interval=0.05), db, own_mail=True)
    data = AlertData(db)
    carrier_down = data.rule("Carrier down")
    # The demo's penalty is a minute: two seconds tell the same story here.
    save_rule(db, rule_fields(carrier_down) | {"penalty": 2}, now_ms=0, rule_id=carrier_down.id)
    engine = await alerting.start()
    assert "demo-mail" in alerting.notice
    try:
        async with running_simulator(speed=10, cps=30, scenario="outage") as (sim, url), \
                running_writer(db, url, engine):
            [mail] = await wait_until(alerting.mail.messages, what="the mail in the Maildir")
            await wait_until(lambda: [c for c in sim.controls if c.action == "enable"],
                             what="the carrier back")
            back_at = time.time()
    finally:
        await alerting.stop()
    [outage] = [i for i in sim.traffic.incidents if i.kind == "outage"]
    [disable] = [c for c in sim.controls if c.action == "disable"]
    assert (disable.kind, disable.account) == ("carrier", outage.target)
    assert disable.until - 0.05 <= back_at < disable.until + 1.5
    assert mail["Subject"].startswith("[CRITICAL] Carrier down: ")
    events = {h.event for h in data.history(rule_id=carrier_down.id)}
    assert {"fired", "sent", "penalty", "penalty_end"} <= events
