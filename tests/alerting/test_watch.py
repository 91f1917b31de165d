"""A round evaluates only the (rule, account) pairs whose reading changed or that move with time:
it must decide exactly what evaluating every pair would."""

from __future__ import annotations

import random

from console.alerting.engine import AlertEngine
from tests.alerting.kit import MINUTE_MS, T0_MS, Network, engine, query_all, rule

CUSTOMERS = ("acme", "bolt", "corex", "dyna")

RULES = {
    "ASR": dict(company="*", sample_period="3m", minimum_sample=5, pending="30s", repeat="2m"),
    "ASR acme": dict(company="acme", sample_period=60),
    "NER": dict(company="*", area="ner", operator="<", threshold=70, reset_threshold=75,
                sample_period="5m"),
    "PDD": dict(company="bolt", area="pdd", operator=">", threshold=1.5, reset_threshold=1,
                sample_period="2m"),
    "Quiet": dict(company="*", area="no_traffic", sample_period="2m"),
    "Busy": dict(company="*", area="channels", operator=">=", threshold=3,
                 reset_threshold=None, sample_period=None),
}


def build(path) -> tuple[Network, AlertEngine]:
    network = Network(path)
    for customer in CUSTOMERS:
        network.account("customer", customer)
    for title, fields in RULES.items():
        rule(path, title=title, **fields)
    return network, engine(path)


def test_evaluating_what_changed_decides_what_evaluating_everything_does(tmp_path):
    (lazy_net, lazy), (full_net, full) = build(tmp_path / "a.db"), build(tmp_path / "b.db")
    rng = random.Random(4)
    now = T0_MS + MINUTE_MS
    for _ in range(60):
        now += rng.choice((1_000, 5_000, 15_000, 40_000))
        if rng.random() < 0.6:
            customer = rng.choice(CUSTOMERS)
            answered, failed = rng.randint(0, 6), rng.randint(0, 6)
            for network in (lazy_net, full_net):
                network.now_ms = now
                network.traffic(customer, answered=answered, failed=failed, end_ms=now)
        lazy.evaluate_round(now)
        full.watch.full = True  # every pair, every round
        full.evaluate_round(now)
    history = ("SELECT ts_ms, event, rule_id, account, value FROM alert_history "
               "ORDER BY ts_ms, rule_id, account, event")
    states = "SELECT * FROM alert_state ORDER BY rule_id, kind, account"
    assert query_all(tmp_path / "a.db", history) == query_all(tmp_path / "b.db", history)
    assert len(query_all(tmp_path / "a.db", history)) > 20
    lazy.evaluate_round(now + 10_000)  # values are written every few seconds
    full.evaluate_round(now + 10_000)
    assert query_all(tmp_path / "a.db", states) == query_all(tmp_path / "b.db", states)
    for network in (lazy_net, full_net):
        network.close()
