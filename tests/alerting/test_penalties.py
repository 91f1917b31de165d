"""Penalties: the real simulator receives the disable and, on time, the re-enable, across a
restart of the writer too; and the timers' rules on a store with a clock the test moves."""

from __future__ import annotations

import contextlib
import sqlite3
import time

import pytest

from console.alerting.engine import AlertEngine
from store.actions import request_control
from store.alerting import AlertData
from store.database import prepare
from tests.alerting.kit import (
    T0_MS,
    Network,
    engine,
    rule,
    running_writer,
    settings,
    smtp_server,
)
from tests.feedkit import query, running_simulator, wait_until

# A re-enable comes at the penalty's end, never before; later by this at most, on a busy machine.
LATE_S = 10
CUSTOMER = "acme-telecom"  # a customer of the simulator, with a balance


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "noc.db"
    prepare(path)
    return path


def balance_rule(db, penalty_s: int):
    """Fires as soon as the customer's balance is known (it is positive), with a penalty."""
    return rule(db, title="Penalty drill", company=CUSTOMER, recipients=[], area="balance",
                operator=">", threshold=0, reset_threshold=None, sample_period=None,
                penalty=penalty_s)


def controls(sim, action: str) -> list:
    return [c for c in sim.controls if c.action == action and c.account == CUSTOMER]


def account_enabled(db) -> bool | None:
    rows = query(db, "SELECT enabled FROM account WHERE kind = 'customer' AND id = ?",
                 (CUSTOMER,))
    return bool(rows[0][0]) if rows else None


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def live_engine(db) -> AlertEngine:
    return AlertEngine(db, settings(interval=0.05))


async def test_the_simulator_receives_the_disable_and_the_re_enable_on_time(db):
    balance_rule(db, penalty_s=2)
    async with running_simulator(speed=1, cps=5) as (sim, url), \
            running_writer(db, url, live_engine(db)):
        [disable] = await wait_until(lambda: controls(sim, "disable"), what="the disable")
        await wait_until(lambda: account_enabled(db) is False, what="the account disabled")
        assert [p.account for p in AlertData(db).penalties(wall_ms())] == [CUSTOMER]
        [enable] = await wait_until(lambda: controls(sim, "enable"), what="the re-enable")
        enabled_at = time.time()
        await wait_until(lambda: account_enabled(db) is True, what="the account back")
        await wait_until(lambda: AlertData(db).penalties(wall_ms()) == [],
                         what="the penalty over")
    assert disable.until - 0.05 <= enabled_at < disable.until + LATE_S
    assert len(controls(sim, "disable")) == 1  # still firing, but penalised once
    events = [h.event for h in reversed(AlertData(db).history())]
    assert events == ["fired", "penalty", "penalty_end"]
    [penalty] = AlertData(db).penalty_history()
    assert (penalty.status, penalty.detail) == ("ended", "re-enabled")


async def test_a_restart_during_a_penalty_still_re_enables_on_time(db):
    balance_rule(db, penalty_s=3)
    async with running_simulator(speed=1, cps=5) as (sim, url):
        async with running_writer(db, url, live_engine(db)):
            [disable] = await wait_until(lambda: controls(sim, "disable"), what="disable")
            await wait_until(lambda: account_enabled(db) is False, what="disabled")
        assert controls(sim, "enable") == []  # the writer stopped before the penalty's end
        async with running_writer(db, url, live_engine(db)):
            await wait_until(lambda: controls(sim, "enable"), what="the re-enable")
            enabled_at = time.time()
            await wait_until(lambda: account_enabled(db) is True, what="the account back")
    assert disable.until - 0.05 <= enabled_at < disable.until + LATE_S
    assert len(controls(sim, "disable")) == 1


def acknowledge_requests(db) -> None:
    """What the writer does with the engine's control requests once the switch acks them."""
    query_write(db, "UPDATE control_request SET status = 'acked', done_ms = created_ms "
                "WHERE status = 'pending'")


def query_write(db, sql: str, params: tuple = ()) -> None:
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(sql, params)


def requests(db) -> list[tuple[str, int | None, str]]:
    return query(db, "SELECT action, until_ms, requested_by FROM control_request "
                     "ORDER BY created_ms, rowid")


@pytest.fixture
def network(db):
    net = Network(db)
    net.account("customer", CUSTOMER, balance=10.0)
    yield net
    net.close()


def test_an_overdue_penalty_is_lifted_at_once_when_the_engine_starts(db, network):
    balance_rule(db, penalty_s=60)
    engine(db).evaluate_round(T0_MS)
    acknowledge_requests(db)
    assert requests(db) == [("disable", T0_MS + 60_000, "alerts")]
    later = T0_MS + 3_600_000  # noc was down for an hour
    engine(db).evaluate_round(later)
    assert requests(db)[-1] == ("enable", None, "alerts")
    [penalty] = AlertData(db).penalties(later)
    assert penalty.status == "releasing"
    acknowledge_requests(db)
    engine(db).evaluate_round(later + 1000)
    assert AlertData(db).penalties(later) == []


def test_an_unacked_re_enable_is_asked_again(db, network):
    balance_rule(db, penalty_s=60)
    alerts = engine(db)
    alerts.evaluate_round(T0_MS)
    alerts.evaluate_round(T0_MS + 60_000)
    query_write(db, "UPDATE control_request SET status = 'failed', error = 'not connected', "
                "done_ms = ? WHERE action = 'enable'", (T0_MS + 60_000,))
    alerts.evaluate_round(T0_MS + 65_000)
    assert [r[0] for r in requests(db)] == ["disable", "enable"]
    alerts.evaluate_round(T0_MS + 71_000)
    assert [r[0] for r in requests(db)] == ["disable", "enable", "enable"]
    assert "not connected" in AlertData(db).penalties(T0_MS + 71_000)[0].detail


def test_overlapping_penalties_end_with_the_last(db, network):
    balance_rule(db, penalty_s=60)
    rule(db, title="Second drill", company=CUSTOMER, recipients=[], area="balance",
         operator=">", threshold=5, reset_threshold=None, sample_period=None, penalty=300)
    alerts = engine(db)
    alerts.evaluate_round(T0_MS)
    assert [r[:2] for r in requests(db)] == [("disable", T0_MS + 60_000),
                                             ("disable", T0_MS + 300_000)]
    alerts.evaluate_round(T0_MS + 61_000)
    assert [r[0] for r in requests(db)] == ["disable", "disable"]
    alerts.evaluate_round(T0_MS + 301_000)
    assert [r[0] for r in requests(db)] == ["disable", "disable", "enable"]


def test_an_account_disabled_by_hand_meanwhile_stays_disabled(db, network):
    balance_rule(db, penalty_s=60)
    alerts = engine(db)
    alerts.evaluate_round(T0_MS)
    request_control(db, action="disable", kind="customer", account=CUSTOMER,
                    requested_by="ana", reason="fraud", now_ms=T0_MS + 10_000)
    alerts.evaluate_round(T0_MS + 60_000)
    assert [r[0] for r in requests(db)] == ["disable", "disable"]
    [kept] = AlertData(db).history(event="penalty_kept")
    assert kept.detail == "left disabled: ana disabled it by hand during the penalty"


async def test_a_carrier_outage_is_alerted_mailed_penalised_and_restored(db):
    """The issue's story: a carrier outage fires a consecutive-failure alert, the mail arrives,
    the carrier is disabled for the penalty and comes back on time, and history shows it all."""
    rule(db, title="Carrier down", kind="carrier", company="*", recipients=["noc@example.com"],
         area="consecutive_failures", operator=">=", threshold=20, reset_threshold=0,
         sample_period=None, penalty=2, level="critical")
    with smtp_server() as server:
        alerts = AlertEngine(db, settings(interval=0.05, email=server.email_settings()))
        async with running_simulator(speed=10, cps=30, scenario="outage") as (sim, url), \
                running_writer(db, url, alerts):
            [mail] = await wait_until(lambda: server.mailbox.messages, what="the mail")
            [disable] = await wait_until(
                lambda: [c for c in sim.controls if c.action == "disable"], what="disable")
            await wait_until(lambda: [c for c in sim.controls if c.action == "enable"],
                             what="the carrier back")
            enabled_at = time.time()
            await wait_until(lambda: AlertData(db).penalties(wall_ms()) == [],
                             what="the penalty over")
    [outage] = [i for i in sim.traffic.incidents if i.kind == "outage"]
    assert disable.kind == "carrier" and disable.account == outage.target
    assert mail["Subject"].startswith("[CRITICAL] Carrier down: ")
    assert "Consecutive failures" in mail["Subject"]
    assert f"({outage.target})" in mail.get_payload()
    assert disable.until - 0.05 <= enabled_at < disable.until + LATE_S
    events = {h.event for h in AlertData(db).history()}
    assert {"fired", "sent", "penalty", "penalty_end"} <= events
