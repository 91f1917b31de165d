"""Delivery to real servers on loopback: mail by SMTP (aiosmtpd), webhooks by HTTP (apprise); and
what the engine does when the store cannot take its writes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from console.alerting.messages import send_test
from console.alerting.settings import EmailSettings
from store.alerting import AlertData
from tests.alerting.kit import (
    MINUTE_MS,
    T0_MS,
    Network,
    delivered,
    engine,
    rule,
    smtp_server,
    webhook_server,
)
from tests.feedkit import free_port, wait_until


@pytest.fixture
def clock():
    return [T0_MS]


def low_asr_fires(network: Network, alerts, clock: list[int]) -> None:
    """Ingest a minute of ASR 10% and evaluate: the rule fires (and the clock is then)."""
    clock[0] = T0_MS + MINUTE_MS + 30_000
    network.traffic("acme", answered=1, failed=9, end_ms=clock[0])
    alerts.evaluate_round()


async def test_a_real_smtp_server_receives_the_alert(db, network, clock):
    with smtp_server() as server:
        rule(db, recipients=["noc@example.com", "oncall@example.com"])
        alerts = engine(db, clock, email=server.email_settings())
        low_asr_fires(network, alerts, clock)
        await delivered(alerts, lambda: len(server.mailbox.messages) == 2)
        await alerts.close()
    mail = server.mailbox.messages[0]
    assert str(make_header(decode_header(mail["Subject"]))) == (
        "[WARNING] Low ASR Warning: Acme Telecom, ASR 10.0% ≤ 30%, clears at ≥ 31%")
    assert mail["From"] == "noc@localhost"
    assert {m["To"] for m in server.mailbox.messages} == {"noc@example.com",
                                                          "oncall@example.com"}
    body = mail.get_payload(decode=True).decode()
    assert "ASR 10.0% ≤ 30%, clears at ≥ 31%, over 10 attempts" in body
    assert "Rule: ASR ≤ 30%, clears at ≥ 31%" in body
    assert mail["Message-ID"].endswith("@noc>")
    assert AlertData(db).outbox_counts() == {"sent": 2}
    assert sorted(h.event for h in AlertData(db).history()) == ["fired", "sent", "sent"]


async def test_the_mail_server_down_then_up_delivers_once(db, network, clock):
    port = free_port()
    rule(db)
    alerts = engine(db, clock, email=EmailSettings(host="127.0.0.1", port=port, timeout=60))
    low_asr_fires(network, alerts, clock)
    assert await alerts.deliver_due() == 1  # refused: nobody listens
    [queued] = AlertData(db).outbox()
    assert (queued.status, queued.attempts) == ("pending", 1)
    assert queued.next_attempt_ms == clock[0] + 10_000 and "Connect" in queued.last_error
    assert await alerts.deliver_due() == 0  # backing off
    clock[0] += 10_000
    await alerts.deliver_due()
    assert AlertData(db).outbox()[0].next_attempt_ms == clock[0] + 20_000  # doubling
    with smtp_server(port) as server:
        clock[0] += 20_000
        assert await alerts.deliver_due() == 1
        for _ in range(3):
            clock[0] += 3_600_000
            assert await alerts.deliver_due() == 0
        await alerts.close()
    assert len(server.mailbox.messages) == 1
    [sent] = AlertData(db).outbox()
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 3, "")


async def test_a_message_not_delivered_within_a_day_is_failed(db, network, clock):
    rule(db)
    alerts = engine(db, clock, email=EmailSettings(host="127.0.0.1", port=free_port(),
                                                   timeout=5))
    low_asr_fires(network, alerts, clock)
    await alerts.deliver_due()
    clock[0] += 86_400_000
    await alerts.deliver_due()
    await alerts.close()
    [failed] = AlertData(db).outbox()
    assert (failed.status, failed.attempts) == ("failed", 2)
    assert AlertData(db).history(event="failed")[0].detail.startswith("gave up after 2 tries")


async def test_a_webhook_on_loopback_receives_the_alert_through_apprise(db, network, clock):
    with webhook_server() as hook:
        rule(db, recipients=[hook.url], level="critical")
        alerts = engine(db, clock)
        low_asr_fires(network, alerts, clock)
        await delivered(alerts, lambda: hook.received)
        await alerts.close()
    [request] = hook.received
    assert request["path"] == "/hooks/noc"
    assert request["json"]["title"] == (
        "[CRITICAL] Low ASR Warning: Acme Telecom, ASR 10.0% ≤ 30%, clears at ≥ 31%")
    assert request["json"]["type"] == "failure"
    assert "Customer: Acme Telecom (acme)" in request["json"]["message"]


async def test_sms_without_a_gateway_fails_at_once_and_says_why(db, network, clock):
    rule(db, recipients=["+44 7700 900123"])
    alerts = engine(db, clock)
    low_asr_fires(network, alerts, clock)
    await alerts.deliver_due()
    await alerts.close()
    [message] = AlertData(db).outbox()
    assert (message.status, message.last_error) == ("failed",
                                                     "no SMS gateway: set [alerts] sms_url")


async def test_a_test_message_goes_to_the_rules_recipients_now(db, network):
    with smtp_server() as server:
        rule(db, recipients=["noc@example.com"])
        ids = send_test(db, "Low ASR Warning", now_ms=T0_MS, by="ana")
        alerts = engine(db, email=server.email_settings())
        await delivered(alerts, lambda: server.mailbox.messages)
        await alerts.close()
    assert len(ids) == 1
    [mail] = server.mailbox.messages
    assert mail["Subject"].startswith("[TEST] [WARNING] Low ASR Warning")
    assert "(a test message)" in mail.get_payload()
    [test] = AlertData(db).history(event="test")
    assert (test.actor, test.detail) == ("ana", "test message to 1 recipients")


@pytest.mark.parametrize(("reply", "outcome"), [
    ("450 4.2.0 Greylisted, try again later", "sent"),
    ("550 5.1.1 No such user", "failed"),
])
async def test_a_4xx_at_rcpt_is_temporary_a_5xx_final(db, network, clock, reply, outcome):
    """Greylisting answers 450 at RCPT: the mail waits and goes out at the retry (it was marked
    failed for good, and lost); a 550 there is final."""
    with smtp_server(refusals=1, reply=reply) as server:
        rule(db)
        alerts = engine(db, clock, email=server.email_settings())
        low_asr_fires(network, alerts, clock)
        assert await alerts.deliver_due() == 1
        [first] = AlertData(db).outbox()
        assert reply.split()[0] in first.last_error
        clock[0] += 10_000
        await alerts.deliver_due()
        await alerts.close()
    [message] = AlertData(db).outbox()
    assert message.status == outcome
    assert len(server.mailbox.messages) == (outcome == "sent")


async def test_a_name_with_line_breaks_stays_on_the_subject_line(db, network, clock):
    """A name from the feed holding CR LF cannot add a mail header."""
    network.account("customer", "acme", name="Acme\r\nBcc: victim@example.com\r\n\r\nHi")
    with smtp_server() as server:
        rule(db)
        alerts = engine(db, clock, email=server.email_settings())
        low_asr_fires(network, alerts, clock)
        await delivered(alerts, lambda: server.mailbox.messages)
        await alerts.close()
    [mail] = server.mailbox.messages
    assert str(make_header(decode_header(mail["Subject"]))) == (
        "[WARNING] Low ASR Warning: Acme Bcc: victim@example.com Hi, ASR 10.0% ≤ 30%, clears "
        "at ≥ 31%")
    assert mail["Bcc"] is None


# The store failing under the engine: it says why, takes nothing unwritten for done, and sends
# nothing twice -----------------------------------------------------------------------------------

@contextlib.contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another connection holds the database's write lock for the block."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        yield
        other.execute("COMMIT")


def impatient(alerts) -> None:
    """The engine's connection gives up on a lock at once, not after 5 s (the test's time)."""
    alerts.database.connection.execute("PRAGMA busy_timeout = 50")


async def test_a_round_that_cannot_write_says_why_and_the_next_decides_it_again(
        db, network, caplog):
    clock = [T0_MS + MINUTE_MS + 30_000]
    with smtp_server() as server:
        rule(db)
        alerts = engine(db, clock, email=server.email_settings(), interval=0.05)
        impatient(alerts)
        network.traffic("acme", answered=1, failed=9, end_ms=clock[0])
        with write_lock_held(db):
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                alerts.evaluate_round()  # the lock's own error, not a failed rollback's
            assert AlertData(db).outbox() == [] and AlertData(db).history() == []
            running = asyncio.create_task(alerts.run())
            await wait_until(lambda: any("alert engine could not write" in r.getMessage()
                                         for r in caplog.records), what="the trouble logged")
        # The sending is recorded just after the server took the mail: wait for the record.
        await wait_until(lambda: "sent" in {h.event for h in AlertData(db).history()},
                         what="the alert mailed and its sending recorded")
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    said = [r.getMessage() for r in caplog.records if r.name == "store.health"]
    assert said[0].startswith("store: database locked by another process, retrying in")
    assert said[-1].startswith("store: alert engine writes again")
    assert sorted(h.event for h in AlertData(db).history()) == ["fired", "sent"]
    assert len(server.mailbox.messages) == 1


async def test_a_mail_sent_while_the_store_cannot_record_it_is_not_sent_again(db, network):
    clock = [T0_MS + MINUTE_MS + 30_000]
    with smtp_server() as server:
        rule(db)
        alerts = engine(db, clock, email=server.email_settings())
        network.traffic("acme", answered=1, failed=9, end_ms=clock[0])
        alerts.evaluate_round()
        impatient(alerts)
        with write_lock_held(db):
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                await alerts.deliver_due()  # sent, but its sending cannot be recorded
            assert len(server.mailbox.messages) == 1
            for _ in range(3):
                clock[0] += 60_000
                with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                    await alerts.deliver_due()
            assert len(server.mailbox.messages) == 1  # not sent again meanwhile
            assert AlertData(db).outbox()[0].status == "pending"
        assert await alerts.deliver_due() == 0  # the outcome stored first thing
        await alerts.close()
    [sent] = AlertData(db).outbox()
    assert (sent.status, sent.attempts) == ("sent", 1)
    assert len(server.mailbox.messages) == 1
