"""The engine on a real store, with calls ingested by the real path and a clock the test moves."""

from __future__ import annotations

import json

import pytest

from console.alerting.settings import ReportSettings
from store import alerting as store
from store.alerting import AlertData
from tests.alerting.kit import MINUTE_MS, T0_MS, Network, engine, rule
from tests.conftest import STORES, database_of


@pytest.fixture(params=STORES)
def db(request, tmp_path):
    """The engine's tests run against a SQLite file and a PostgreSQL database."""
    return database_of(request, tmp_path)


@pytest.fixture
def network(db):
    net = Network(db)
    net.account("customer", "acme", name="Acme Telecom", balance=100.0, currency="USD")
    yield net
    net.close()


def minute(n: int, second: int = 30) -> int:
    return T0_MS + n * MINUTE_MS + second * 1000


def asr_minute(network: Network, n: int, answered: int, attempts: int,
               customer: str = "acme") -> int:
    """`attempts` calls of `customer` ending in minute n, `answered` of them answered; the time
    a second later, when the engine evaluates."""
    network.traffic(customer, answered=answered, failed=attempts - answered, end_ms=minute(n))
    return minute(n) + 1000


def state_of(db, account="acme"):
    [state] = AlertData(db).states(account=account)
    return state


def messages(db):
    return [(m.event, m.recipient) for m in reversed(AlertData(db).outbox())]


def test_the_seeds_asr_example_step_by_step(db, network):
    rule(db)  # ASR <= 30, reset 31, over the last minute
    alerts = engine(db)
    for n, (answered, attempts, expected_state, expected_value) in enumerate([
        (7, 20, "ok", 35.0),
        (3, 10, "firing", 30.0),
        (61, 200, "firing", 30.5),
        (31, 100, "ok", 31.0),
    ], start=1):
        alerts.evaluate_round(asr_minute(network, n, answered, attempts))
        state = state_of(db)
        assert (state.state, state.value) == (expected_state, expected_value), f"minute {n}"
    assert messages(db) == [("fired", "noc@example.com"), ("resolved", "noc@example.com")]
    fired, resolved = reversed(AlertData(db).outbox())
    assert fired.subject == (
        "[WARNING] Low ASR Warning: Acme Telecom, ASR 30.0% ≤ 30%, clears at ≥ 31%")
    assert "ASR 30.0% ≤ 30%, clears at ≥ 31%, over 10 attempts in the last 1 minute" in (
        fired.body)
    assert resolved.subject == "[RESOLVED] Low ASR Warning: Acme Telecom, ASR 31.0% > 30%"
    assert [(h.event, h.detail) for h in AlertData(db).history()] == [
        ("resolved", "ASR 31.0% > 30%"), ("fired", "ASR 30.0% ≤ 30%, clears at ≥ 31%")]


def test_a_flapping_asr_sends_one_message(db, network):
    rule(db)
    alerts = engine(db)
    # 29%, 30.5%, 28%, 30%, 30.5%, 29%, 30.5%: about the threshold, never up to the reset
    for n, answered in enumerate([58, 61, 56, 60, 61, 58, 61], start=1):
        alerts.evaluate_round(asr_minute(network, n, answered, 200))
    assert messages(db) == [("fired", "noc@example.com")]


def test_a_pending_period_must_be_held(db, network):
    rule(db, pending="2m")
    alerts = engine(db)
    states = []
    for n in range(1, 5):
        alerts.evaluate_round(asr_minute(network, n, 1, 10))
        states.append(state_of(db).state)
    assert states == ["pending", "pending", "firing", "firing"]
    assert messages(db) == [("fired", "noc@example.com")]


def test_below_the_minimum_sample_neither_fires_nor_clears(db, network):
    rule(db, minimum_sample=20)
    alerts = engine(db)
    states = []
    for n, (answered, attempts) in enumerate([(0, 10), (4, 40), (5, 5), (20, 40)], start=1):
        alerts.evaluate_round(asr_minute(network, n, answered, attempts))
        states.append((state_of(db).state, state_of(db).sample))
    assert states == [("insufficient", 10), ("firing", 40), ("firing", 5), ("ok", 40)]
    assert messages(db) == [("fired", "noc@example.com"), ("resolved", "noc@example.com")]


def test_repeats_until_acknowledged_by_someone(db, network):
    low = rule(db, repeat="5m")
    alerts = engine(db)
    network.traffic("acme", answered=1, failed=9, end_ms=minute(0))
    # Five minutes of window, so the calls stay in it while the clock moves.
    store_rule = AlertData(db).rule("Low ASR Warning")
    assert store_rule is not None and store_rule.repeat_s == 300
    for offset_s in (1, 100, 301, 500):
        alerts.evaluate_round(minute(0) + offset_s * 1000)
    assert [e for e, _ in messages(db)] == ["fired", "repeat"]
    assert store.acknowledge(db, low.id, "customer", "acme", by="ana", comment="on it",
                             now_ms=minute(0) + 550_000)
    alerts.evaluate_round(minute(0) + 700_000)
    assert [e for e, _ in messages(db)] == ["fired", "repeat"]
    assert state_of(db).acked_by == "ana"
    assert [h.event for h in AlertData(db).history()][:1] == ["acked"]


def test_a_restarted_engine_goes_on_where_the_last_one_stopped(db, network):
    rule(db)
    engine(db).evaluate_round(asr_minute(network, 1, 1, 10))
    assert state_of(db).state == "firing"
    restarted = engine(db)
    restarted.evaluate_round(asr_minute(network, 2, 2, 10))
    assert messages(db) == [("fired", "noc@example.com")]  # not announced twice
    restarted.evaluate_round(asr_minute(network, 3, 8, 10))
    assert messages(db) == [("fired", "noc@example.com"), ("resolved", "noc@example.com")]


def test_a_silence_mutes_then_the_alert_is_announced(db, network):
    low = rule(db, penalty="1m")
    alerts = engine(db)
    silence = store.add_silence(db, rule_id=low.id, until_ms=minute(3), now_ms=minute(0),
                                comment="maintenance", created_by="ana")
    alerts.evaluate_round(asr_minute(network, 1, 1, 10))
    assert state_of(db).status == "silenced"
    assert messages(db) == [] and AlertData(db).penalties(minute(1)) == []
    store.end_silence(db, silence, now_ms=minute(2), by="ana")
    alerts.evaluate_round(asr_minute(network, 2, 1, 10))
    assert messages(db) == [("notified", "noc@example.com")]
    assert [p.account for p in AlertData(db).penalties(minute(3))] == ["acme"]


def test_windowed_values_are_summed_over_whole_minutes(db, network):
    rule(db, sample_period=150)  # ceil(150 / 60) = 3 minutes: this one and the two before
    alerts = engine(db)
    for n, answered in ((1, 10), (2, 0), (3, 0), (4, 0)):
        network.traffic("acme", answered=answered, failed=10 - answered, end_ms=minute(n))
    alerts.evaluate_round(minute(3) + 1000)
    assert (state_of(db).value, state_of(db).sample) == (pytest.approx(100 / 3), 30)
    alerts.evaluate_round(minute(4) + 1000)
    assert (state_of(db).value, state_of(db).sample) == (0.0, 30)


def test_every_area_is_read_in_bulk(db, network, tmp_path):
    plugin = tmp_path / "alert_scripts.py"
    plugin.write_text(
        "def calls_ended(context):\n"
        "    (count,) = context.db.execute(\n"
        "        'SELECT count(*) FROM call WHERE customer = ?', (context.account,)).fetchone()\n"
        "    return count\n")
    network.account("customer", "quiet", balance=3.0)
    network.account("carrier", "carrier-a")
    network.traffic("acme", answered=2, failed=8, end_ms=minute(1), failure_code=503)
    network.apply([network._event("call.reject", minute(1), customer="acme", cli="1",
                                  dst="44", code=503, reason="channel_limit")])
    network.apply([network._event("call.start", minute(1), call_id="open-1", customer="acme",
                                  cli="1", dst="44")])
    network.now_ms = minute(1)  # when the bad frame is received
    network.ingestor.apply_frame("not json")
    network.writer.write_now(network.ingestor.take_batch())
    for title, fields in {
        "Low balance": dict(area="balance", company="*", operator="<", threshold=10,
                            reset_threshold=None, sample_period=None),
        "No traffic": dict(area="no_traffic", company="*", sample_period="5m"),
        "Failing carrier": dict(kind="carrier", area="consecutive_failures", company="*",
                                operator=">=", threshold=8, reset_threshold=0,
                                sample_period=None),
        "Channel breaches": dict(area="channel_breaches", operator=">", threshold=0,
                                 reset_threshold=None),
        "Busy": dict(area="channels", operator=">=", threshold=1, reset_threshold=None,
                     sample_period=None),
        "Bad input": dict(area="quarantined", kind=None, company=None, operator=">",
                          threshold=0, reset_threshold=None),
        "Scripted": dict(area="script", script="calls_ended", operator=">=", threshold=10,
                         reset_threshold=None, sample_period=None),
    }.items():
        rule(db, title=title, **fields)
    report = engine(db, script_module=str(plugin)).evaluate_round(minute(1) + 1000)
    firing = {(s.title, s.account): s.value for s in AlertData(db).states(state="firing")}
    assert firing == {
        ("Low balance", "quiet"): 3.0,
        ("No traffic", "quiet"): 0,
        ("Failing carrier", "carrier-a"): 8,
        ("Channel breaches", "acme"): 1,
        ("Busy", "acme"): 1,
        ("Bad input", ""): 1,
        ("Scripted", "acme"): 10,
    }
    assert report.subjects == 2 + 2 + 1 + 1 + 1 + 1 + 1


def test_a_tag_scopes_a_rule_to_its_accounts(db, network):
    network.account("customer", "bolt")
    network.account("customer", "zeta")
    store.set_tags(db, "customer", "bolt", ["gold"])
    store.set_tags(db, "customer", "zeta", ["gold", "emea"])
    rule(db, company=None, tag="gold", area="no_traffic")
    alerts = engine(db)
    alerts.evaluate_round(minute(1))
    assert {s.account for s in AlertData(db).states()} == {"bolt", "zeta"}
    store.set_tags(db, "customer", "zeta", ["emea"])  # the engine sees the change next round
    alerts.evaluate_round(minute(2))
    assert {s.account for s in AlertData(db).states()} == {"bolt"}


def test_a_disabled_rule_is_not_evaluated(db, network):
    low = rule(db)
    alerts = engine(db)
    alerts.evaluate_round(asr_minute(network, 1, 1, 10))
    store.set_rule_enabled(db, low.id, False, now_ms=minute(1))
    alerts.evaluate_round(asr_minute(network, 2, 1, 10))
    assert AlertData(db).states() == []
    assert [o.status for o in AlertData(db).overview()] == ["disabled"]


def test_a_quiet_round_writes_nothing(db, network):
    rule(db)
    alerts = engine(db)
    assert alerts.evaluate_round(asr_minute(network, 1, 5, 10)).wrote
    assert not alerts.evaluate_round(minute(1) + 2000).wrote


def test_the_daily_report_is_queued_once_a_day(db, network):
    network.traffic("acme", answered=3, failed=1, end_ms=minute(1))
    report = ReportSettings(title="Daily Balance", recipients=["noc@example.com"], at="06:00")
    day = T0_MS - T0_MS % 86_400_000 + 86_400_000  # the day after the traffic
    alerts = engine(db, report=[report])
    alerts.evaluate_round(day + 5 * 3_600_000)
    assert AlertData(db).outbox() == []
    for hour in (6, 7, 23):
        alerts.evaluate_round(day + hour * 3_600_000)
    [message] = AlertData(db).outbox()
    assert message.subject.startswith("Daily Balance: Acme Telecom")
    assert "Balance now: 100.00 USD" in message.body
    assert "Attempts: 4   Connected: 3" in message.body and "ASR: 75.0%" in message.body
    engine(db, report=[report]).evaluate_round(day + 86_400_000 + 6 * 3_600_000 + 1)
    assert len(AlertData(db).outbox()) == 2


def test_history_is_searchable_and_complete(db, network):
    rule(db)
    alerts = engine(db)
    alerts.evaluate_round(asr_minute(network, 1, 1, 10))
    alerts.evaluate_round(asr_minute(network, 2, 9, 10))
    data = AlertData(db)
    assert [h.event for h in data.history(search="acme")] == ["resolved", "fired"]
    assert [h.event for h in data.history(search="ACME")] == ["resolved", "fired"]  # case-blind
    assert [h.event for h in data.history(event="fired")] == ["fired"]
    assert data.history(search="nobody") == []
    exported = [dict(zip(store.HISTORY_COLUMNS, (getattr(h, c) for c in store.HISTORY_COLUMNS),
                         strict=True)) for h in data.history(limit=None)]
    assert json.dumps(exported)  # plain values, ready for CSV or JSON export
