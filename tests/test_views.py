"""The console's read models on one hand-written day of traffic, ingested through the real path.

The clock is fixed at 04:10:00 UTC. Acme's traffic, hour by hour: an old call in October, one two
days ago, one at 03:30, then at 04:00 an answered call, a failover (503 on c1, answered on c2), a
404, three rejects, and two calls still in progress. Gamma's one call fails 200 times on c3.
"""

from __future__ import annotations

import pytest

from store.actions import request_control
from store.database import StoreError, WriterLock
from store.views import (
    SUMMARY_COLUMNS,
    AttemptRow,
    CodeConsistency,
    CodeCount,
    ConsoleData,
    GapRow,
    RouteStat,
    failures_severity,
    summary_cells,
    summary_total,
)
from tests.conftest import STORES
from tests.pgkit import Cluster
from tests.test_ingest import T0, Harness, answered_call, ev, failover_call

HOUR0 = T0 - T0% 3600  # 2025-11-21 04:00:00 UTC
NOW_MS = round((HOUR0 + 600) * 1000)
DAY_S = 86_400


def at(seconds: float) -> float:
    """An `ev` time offset for a moment `seconds` after 04:00:00."""
    return HOUR0 - T0 + seconds


def ms(seconds: float) -> int:
    return round((HOUR0 + seconds) * 1000)


def account(kind, id_, name, **fields):
    return ev(0, "account", at(-41 * DAY_S), kind=kind, id=id_, name=name, **fields)


def failed_call(call_id, start, *, customer, carrier, route, dst, code, tries=1):
    events = [ev(0, "call.start", start, call_id=call_id, customer=customer, cli="7", dst=dst)]
    for n in range(1, tries + 1):
        events += [
            ev(0, "call.attempt", start, call_id=call_id, attempt=n, carrier=carrier, route=route),
            ev(0, "call.attempt_end", start + 1, call_id=call_id, attempt=n, code=code),
        ]
    return events + [ev(0, "call.end", start + 1, call_id=call_id, code=code, duration=0.0)]


def reject(seconds, dst, reason):
    return ev(0, "call.reject", at(seconds), customer="acme", cli="7", dst=dst, code=503,
              reason=reason)


def open_call(call_id, seconds, *, carrier, route, dst, ringing):
    events = [
        ev(0, "call.start", at(seconds), call_id=call_id, customer="acme", cli="9", dst=dst),
        ev(0, "call.attempt", at(seconds + 0.5), call_id=call_id, attempt=1, carrier=carrier,
           route=route),
    ]
    if ringing:
        events.append(ev(0, "call.progress", at(seconds + 2), call_id=call_id, attempt=1,
                         code=180))
    return events


ACCOUNTS = [
    account("customer", "acme", "Acme Ltd", channels=10, cps=5, balance=100, currency="USD"),
    account("customer", "beta", "Beta", balance=0, currency="USD"),
    account("customer", "delta", "Delta", balance=20, currency="EUR", enabled=False),
    account("customer", "idle", "Idle", balance=1000, currency="USD"),
    account("carrier", "c1", "Carrier One"),
    account("carrier", "c2", "Carrier Two"),
    account("carrier", "c3", "Carrier Three"),
]
TRAFFIC = [
    *answered_call(0, "old", at(-40 * DAY_S)),
    *answered_call(0, "d2", at(-2 * DAY_S + 100)),
    *answered_call(0, "p", at(-1800)),
    *answered_call(0, "a", at(0)),
    *failover_call(0, "b", at(10)),
    *failed_call("c", at(70), customer="acme", carrier="c2", route="441", dst="44111", code=404),
    reject(120, "44123", "channel_limit"),
    reject(130, "999", "cps_limit"),
    reject(140, "4912", "cps_limit"),
    *failed_call("g", at(200), customer="gamma", carrier="c3", route="1", dst="1555", code=503,
                 tries=200),
    *open_call("o1", 580, carrier="c2", route="44", dst="4455", ringing=True),
    *open_call("o2", 590, carrier="c1", route="49", dst="4966", ringing=False),
]
LOST = (len(ACCOUNTS) + 1, len(ACCOUNTS) + 3)  # the gap announced after the accounts


def numbered(events, first):
    return [{**event, "seq": seq} for seq, event in enumerate(events, first)]


@pytest.fixture(scope="module", params=STORES)
def db_path(request, tmp_path_factory):
    """The same traffic stored in a SQLite file and in a PostgreSQL database: every view of
    either reads the same."""
    if request.param == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        if not isinstance(cluster, Cluster):
            pytest.skip(cluster)
        path = cluster.database()
    else:
        path = tmp_path_factory.mktemp("views") / "noc.db"
    harness = Harness(path)
    harness.feed(
        numbered(ACCOUNTS, 1),
        "not json at all",
        {"type": "gap", "from": LOST[0], "to": LOST[1]},
        numbered(TRAFFIC, LOST[1] + 1),
    )
    harness.flush()
    harness.writer._connection.close()  # read as a viewer of a database nobody writes
    request_control(path, action="disable", kind="customer", account="beta",
                    until_ms=NOW_MS + 60_000, reason="ASR penalty", requested_by="alerts",
                    now_ms=NOW_MS - 5000)
    request_control(path, action="disable", kind="customer", account="delta",
                    until_ms=NOW_MS + 60_000, now_ms=NOW_MS - 4000)
    request_control(path, action="enable", kind="customer", account="delta", now_ms=NOW_MS - 3000)
    return path


@pytest.fixture(scope="module")
def data(db_path):
    return ConsoleData(db_path)


def test_feed(data):
    feed = data.feed()
    assert (feed.status, feed.writer_running) == ("never connected", False)
    assert feed.last_seq == LOST[1] + len(TRAFFIC)
    assert (feed.events, feed.quarantined, feed.gaps, feed.duplicates) == (
        len(ACCOUNTS) + len(TRAFFIC), 1, 1, 0)
    assert feed.newest_ms == ms(590.5)


def test_feed_knows_when_a_writer_holds_the_database(data, db_path):
    lock = WriterLock.for_database(db_path)
    lock.acquire()
    try:
        assert data.feed().writer_running
        assert data.dashboard(NOW_MS).checks[0].text == "feed never connected"
    finally:
        lock.release()


def test_dashboard(data):
    view = data.dashboard(NOW_MS)
    assert (view.channels, view.channel_limit, view.cps) == (2, 10, 1)
    assert [(b.id, b.balance, b.low) for b in view.balances] == [
        ("beta", 0, True), ("delta", 20, True), ("acme", 100, False), ("gamma", None, False),
        ("idle", 1000, False)]
    assert [(c.id, c.consecutive_failures, c.channels) for c in view.carriers] == [
        ("c3", 200, 0), ("c1", 1, 1), ("c2", 0, 1)]
    assert [(c.severity, c.subject) for c in view.checks] == [
        ("error", ("feed", "")),
        ("error", ("carrier", "c3")),
        ("error", ("customer", "beta")),
        ("warning", ("feed", "gaps")),
        ("warning", ("feed", "quarantine")),
        ("warning", ("customer", "delta")),
        ("warning", ("customer", "beta")),
        ("warning", ("customer", "delta")),
    ]
    assert view.checks[1].text == "carrier Carrier Three: 200 consecutive failures"
    assert view.checks[3].text == "1 gap(s) in the feed: 3 events lost for good"
    # c3 fails every attempt (503): down, not suspect of answering dead numbers.
    assert not any("not one 404" in check.text for check in view.checks)
    # Beta's penalty stands (the switch has not disabled it yet); Delta's ended early.
    assert view.checks[-2].text == "customer Beta: in penalty, 1 min left: ASR penalty"
    assert view.checks[-1].text == "customer Delta is disabled"


def test_a_low_balance_is_one_below_an_hour_of_spend(db_path):
    balances = ConsoleData(db_path, low_balance=0).dashboard(NOW_MS).balances
    assert [b.id for b in balances if b.low] == ["beta"]


def test_consecutive_failures_severity_grows_with_the_count():
    assert [failures_severity(n) for n in (49, 50, 199, 200, 999, 1000)] == [
        None, "warning", "warning", "error", "error", "critical"]


def test_series_of_the_last_hour_by_minute(data):
    """Calls count in the minute they ended: a (04:00:00 to 04:00:33) at 04:00; b (04:00:10 to
    04:01:14, answered) and c (a 404 at 04:01:11) at 04:01. Peaks, in the minute they were."""
    view = data.series("customer", "acme", "hour", NOW_MS)
    assert len(view.times) == 60
    assert (view.times[0], view.times[-1]) == (HOUR0 - 49 * 60, HOUR0 + 600)
    asr, attempts = view.series["asr"], view.series["attempts"]
    at_0330, at_0400, at_0401, at_0402, at_0409 = 19, 49, 50, 51, 58
    assert asr[at_0330] == asr[at_0400] == 100.0
    assert asr[at_0401] == 50.0  # b answered, c a 404
    assert asr.count(None) == 57
    assert (attempts[at_0400], attempts[at_0401], attempts[at_0402]) == (1, 2, 0)
    assert view.series["acd"][at_0400] == 30.0
    assert view.series["acd"][at_0401] == 60.0
    assert view.series["pdd"][at_0400] == 2.0  # seconds
    assert view.series["minutes"][at_0400] == 0.5
    breaches = view.series["channel_breaches"][at_0402], view.series["cps_breaches"][at_0402]
    assert breaches == (1, 2)
    assert (view.series["channels"][at_0409], view.series["cps"][at_0409]) == (2, 1)
    assert view.per_account == {}


def test_series_per_carrier(data):
    view = data.series(None, None, "day", NOW_MS, per="carrier")
    assert len(view.times) == 24 and view.times[-1] == HOUR0
    assert view.series["attempts"][-1] == 204
    per_carrier = view.per_account["attempts"]
    assert list(per_carrier) == ["c3", "c1", "c2"]
    assert (per_carrier["c1"][-2:], per_carrier["c2"][-1]) == ((1, 2), 2)
    assert view.per_account["asr"]["c1"][-1] == 50.0
    assert view.per_account["asr"]["c3"][:-1] == (None,) * 23
    with pytest.raises(ValueError):
        data.series("customer", "acme", "day", NOW_MS, per="carrier")


def test_series_segments(data):
    assert len(data.series(None, None, "week", NOW_MS).times) == 168
    month = data.series(None, None, "month", NOW_MS)
    assert len(month.times) == 30
    assert month.series["attempts"][-1] == 5 and month.series["attempts"][-3] == 1
    assert data.series(None, None, "day", NOW_MS).series["attempts"][-2:] == (1, 4)


def test_codes(data):
    assert data.codes("customer", "acme", "day", NOW_MS) == [
        CodeCount(200, 3, 75.0), CodeCount(404, 1, 25.0)]
    assert data.codes("carrier", "c3", "hour", NOW_MS) == [CodeCount(503, 200, 100.0)]
    assert [c.code for c in data.codes(None, None, "day", NOW_MS)] == [200, 404, 503]


def test_customer_accounts(data):
    rows = {row.id: row for row in data.accounts("customer", NOW_MS)}
    assert list(rows) == ["acme", "beta", "delta", "gamma", "idle"]
    assert {id_: row.status for id_, row in rows.items()} == {
        "acme": "active", "beta": "penalty", "delta": "disabled", "gamma": "active",
        "idle": "inactive"}
    acme = rows["acme"]
    assert (acme.channels, acme.channel_limit, acme.cps, acme.cps_limit) == (2, 10, 1, 5.0)
    assert (acme.attempts, acme.asr, acme.acd, acme.pdd_ms) == (4, 75.0, 40.0, 2500.0)
    assert acme.last_call_ms == ms(590)  # the call in progress
    assert (acme.low_balance, acme.consecutive_failures) == (False, None)
    assert rows["beta"].penalty_until_ms == NOW_MS + 60_000
    assert (rows["beta"].low_balance, rows["delta"].low_balance) == (True, True)
    assert (rows["gamma"].attempts, rows["gamma"].asr, rows["gamma"].last_call_ms) == (
        1, 0.0, ms(200))
    assert rows["idle"].last_call_ms is None


def test_carrier_accounts(data):
    rows = {row.id: row for row in data.accounts("carrier", NOW_MS)}
    assert {id_: (row.consecutive_failures, row.channels, row.attempts)
            for id_, row in rows.items()} == {"c1": (1, 1, 3), "c2": (0, 1, 2), "c3": (200, 0, 200)}
    assert (rows["c1"].last_call_ms, rows["c2"].last_call_ms) == (ms(590.5), ms(580.5))
    assert rows["c2"].pdd_ms == 2500.0


def test_summary_live(data):
    rows = data.summary("customer", "acme", "live", NOW_MS)
    assert len(rows) == 24
    assert [row.label for row in rows[:2]] == ["2025-11-21 04:00", "2025-11-21 03:00"]
    assert rows[-1].label == "2025-11-20 05:00"
    assert [row.totals.attempts for row in rows[:3]] == [3, 1, 0]
    assert len(SUMMARY_COLUMNS) == len(summary_cells(rows[0]))
    # 04:00 is open (o1 and o2 go on): its sums so far, not its ratios, which would read low.
    assert rows[0].in_progress == 2
    assert summary_cells(rows[0]) == ("2025-11-21 04:00", 3, 2, 2, "open", "open", 1.5, 1.5,
                                      0.15, 0.1, pytest.approx(0.05), "open", "open", "open")
    assert summary_cells(rows[1]) == pytest.approx(
        ("2025-11-21 03:00", 1, None, 1, 100.0, 30.0, 0.5, 0.5, 0.05, 0.03, 0.02, 40.0, 2.0,
         100.0))
    assert summary_cells(rows[2])[1:] == (0, None, 0, None, None, 0, 0, 0, 0, 0, None, None,
                                          None)
    total = summary_total(rows)
    assert (total.label, total.totals.attempts, total.totals.answered) == ("Total", 4, 3)
    assert total.in_progress == 2
    everyone = data.summary("customer", None, "live", NOW_MS)
    assert everyone[0].totals.attempts == 4
    c1 = data.summary("carrier", "c1", "live", NOW_MS)[0]
    assert (c1.totals.attempts, c1.totals.answered, c1.totals.failover,
            c1.totals.failover_answered, c1.in_progress) == (2, 1, 1, 1, 1)  # o2 rings on c1
    daily = data.summary("customer", "acme", "daily", NOW_MS)
    monthly = data.summary("customer", None, "monthly", NOW_MS)
    assert (daily[0].in_progress, daily[1].in_progress, monthly[0].in_progress) == (2, 0, 2)


def test_a_carriers_money_is_that_of_the_calls_it_answered(data):
    """c2 answered call b (billed 60 s, charged 0.10, cost 0.07) and failed call c: its billed
    time and revenue are b's, its profit b's charge less b's cost."""
    c2 = data.summary("carrier", "c2", "live", NOW_MS)[0]
    cells = dict(zip(SUMMARY_COLUMNS, summary_cells(c2), strict=True))
    assert (cells["In progress"], cells["ASR"]) == (1, "open")  # o1 rings on c2
    assert (cells["Attempts"], cells["Connected"]) == (2, 1)
    assert (cells["Billed"], cells["Revenue"], cells["Cost"]) == (1.0, 0.1, 0.07)
    assert cells["Profit"] == pytest.approx(0.03)
    c3 = data.summary("carrier", "c3", "live", NOW_MS)[0].totals  # 200 failures: no money
    assert (c3.attempts, c3.billed_ms, c3.revenue_micro, c3.cost_micro) == (200, 0, 0, 0)


def test_summary_daily_and_monthly(data):
    daily = data.summary("customer", "acme", "daily", NOW_MS)
    assert len(daily) == 31 and daily[0].label == "2025-11-21"
    assert [row.totals.attempts for row in daily[:3]] == [4, 0, 1]
    monthly = data.summary("customer", "acme", "monthly", NOW_MS)
    assert [row.label for row in monthly[:2]] + [monthly[-1].label] == [
        "2025-11", "2025-10", "2024-12"]
    assert [row.totals.attempts for row in monthly[:3]] == [5, 1, 0]
    with pytest.raises(ValueError):
        data.summary("customer", None, "yearly", NOW_MS)


def test_route_stats_attribute_rejects_to_the_longest_known_route(data):
    assert data.route_stats("acme", NOW_MS) == [
        RouteStat("44", 1, 2, 2, 100.0, 30.0, 0, 0, 0),
        RouteStat("49", 1, 1, 1, 100.0, 60.0, 0, 1, 0),
        RouteStat("441", 0, 1, 0, 0.0, None, 1, 0, 0),
        RouteStat("", 0, 0, 0, None, None, 0, 1, 0),
    ]
    assert data.route_stats("idle", NOW_MS) == []


def test_latest_calls_merge_calls_and_rejects(data):
    rows = data.latest_calls("acme", NOW_MS)
    assert [(row.dst, row.rejected) for row in rows] == [
        ("4912", True), ("999", True), ("44123", True), ("44111", False), ("491", False),
        ("441", False), ("441", False), ("441", False)]  # old is out of the 7 days
    assert (rows[0].reason, rows[0].code, rows[0].carrier, rows[0].start_ms) == (
        "cps_limit", 503, "", ms(140))
    b = rows[4]
    assert (b.call_id, b.carrier, b.route, b.code, b.attempts, b.duration_s, b.charge,
            b.pdd_ms, b.hangup) == ("b", "c2", "49", 200, 2, 60.0, 0.1, 3500, "callee")


def test_latest_calls_filters(data):
    def dsts(**search):
        return [row.dst for row in data.latest_calls("acme", NOW_MS, **search)]

    assert dsts(number="491") == ["4912", "491"]
    assert dsts(code=404) == ["44111"]
    assert dsts(carrier="c2") == ["44111", "491"]
    assert dsts(limit=2) == ["4912", "999"]
    assert dsts(window_ms=60 * DAY_S * 1000)[-1] == "441"
    assert len(dsts(window_ms=60 * DAY_S * 1000)) == 9
    everyone = data.latest_calls(None, NOW_MS, limit=3)
    assert [(row.customer, row.dst) for row in everyone] == [
        ("gamma", "1555"), ("acme", "4912"), ("acme", "999")]
    assert [row.dst for row in data.latest_calls(None, NOW_MS, number="99")] == ["999"]


def test_carrier_calls(data):
    rows = data.carrier_calls("c1", NOW_MS)
    assert [(row.call_id, row.attempt, row.code, row.call_code) for row in rows] == [
        ("b", 1, 503, 200), ("a", 1, 200, 200), ("p", 1, 200, 200), ("d2", 1, 200, 200)]
    assert (rows[1].duration_s, rows[1].pdd_ms, rows[1].cost) == (30.0, 1990, 0.03)
    assert [row.call_id for row in data.carrier_calls("c1", NOW_MS, code=503)] == ["b"]
    assert [row.call_id for row in data.carrier_calls("c1", NOW_MS, number="49")] == ["b"]


def test_call_attempts_of_an_ended_call_and_of_one_in_progress(data):
    b = next(row for row in data.latest_calls("acme", NOW_MS) if row.call_id == "b")
    assert data.call_attempts(b.seq) == [
        AttemptRow(1, "c1", "49", ms(10), ms(11), 503, "", None, 0.0, True),
        AttemptRow(2, "c2", "49", ms(11), ms(74), 200, "", 2500, 60.0, True),
    ]
    o1 = next(row for row in data.dialogs("acme", NOW_MS) if row.call_id == "o1")
    assert data.call_attempts(o1.seq) == [
        AttemptRow(1, "c2", "44", ms(580.5), None, None, "", 1500, 0.0, False)]
    assert data.call_attempts(10**9) == []


def test_dialogs(data):
    rows = data.dialogs("acme", NOW_MS)
    assert [(r.call_id, r.state, r.age_s, r.carrier, r.route, r.attempt, r.dst, r.cli)
            for r in rows] == [
        ("o2", "trying", 10.0, "c1", "49", 1, "4966", "9"),
        ("o1", "ringing", 20.0, "c2", "44", 1, "4455", "9"),
    ]
    assert rows[0].answered_s is None
    assert [r.call_id for r in data.dialogs(None, NOW_MS)] == ["o2", "o1"]
    assert data.dialogs("beta", NOW_MS) == []


def test_carrier_main(data):
    c1 = data.carrier_main("c1", NOW_MS)
    assert (c1.name, c1.consecutive_failures, c1.channels) == ("Carrier One", 1, 1)
    assert c1.codes_24h == CodeConsistency(2, 0, 0.0)
    assert c1.codes_all_time == CodeConsistency(4, 0, 0.0)
    assert (c1.never_404, c1.failover, c1.failover_answered) == (False, 1, 1)
    assert (c1.last_24h.attempts, c1.last_24h.answered) == (3, 2)
    assert data.carrier_main("c2", NOW_MS).codes_24h == CodeConsistency(1, 1, 50.0)
    c3 = data.carrier_main("c3", NOW_MS)
    assert (c3.never_404, c3.consecutive_failures, c3.failover, c3.failover_answered) == (
        False, 200, 199, 0)


def test_failovers(data):
    rows = data.failovers("c1", NOW_MS)
    assert [(r.call_id, r.dst, r.route, r.failed_code, r.answered_by, r.duration_s, r.start_ms)
            for r in rows] == [("b", "491", "49", 503, "c2", 60.0, ms(10))]
    assert data.failovers("c3", NOW_MS) == data.failovers("c2", NOW_MS) == []


def test_quarantine_and_gaps(data):
    rows = data.quarantine()
    assert data.quarantine_count() == len(rows) == 1
    assert rows[0].seq is None and rows[0].reason.startswith("not JSON")
    assert rows[0].preview == data.quarantine_raw(rows[0].id) == "not json at all"
    assert data.quarantine_raw(rows[0].id + 1) is None
    assert data.quarantine(offset=1) == []
    assert data.gaps() == [GapRow(1, LOST[0], LOST[1], 3, 0, True)]


def test_control_requests(data):
    rows = data.control_requests(NOW_MS)
    assert [(r.action, r.account, r.status, r.penalty) for r in rows] == [
        ("enable", "delta", "pending", False),
        ("disable", "delta", "pending", False),
        ("disable", "beta", "pending", True),
    ]
    assert (rows[2].reason, rows[2].requested_by, rows[2].kind) == ("ASR penalty", "alerts",
                                                                     "customer")
    assert len(rows[0].id) == 32
    days_later = data.control_requests(NOW_MS + 2 * DAY_S * 1000)
    assert [(r.account, r.penalty) for r in days_later] == [  # still pending, no longer in force
        ("delta", False), ("delta", False), ("beta", False)]


def test_request_control_refuses_bad_requests(tmp_path, db_path):
    with pytest.raises(ValueError):
        request_control(db_path, action="disable", account="acme", now_ms=NOW_MS)
    with pytest.raises(ValueError):
        request_control(db_path, action="hangup", now_ms=NOW_MS)
    with pytest.raises(ValueError):
        request_control(db_path, action="reboot", now_ms=NOW_MS)
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError):
        request_control(missing, action="hangup", call_id="x", now_ms=NOW_MS)
    assert not missing.exists()


def test_an_alert_held_by_its_reset_says_when_it_clears():
    """Firing at ASR <= 30 with reset 35, at 33.31 it still fires: `33.31 ≤ 30` would be false;
    CPS breaches > 5 with reset 0 at 5 and at 4: `5 > 5` and `4 > 5` would be too."""
    from store.views import _alert_checks

    low_asr = ("Low ASR", "asr", "warning", "<=", 30.0, 35.0, "customer")
    breaches = ("CPS limit breached", "cps_breaches", "warning", ">", 5.0, 0.0, "customer")
    low_balance = ("Low balance", "balance", "error", "<", 100.0, 200.0, "customer")
    rows = [(*low_asr, "nova", "firing", 33.3135, 0, None),
            (*low_asr, "acme", "firing", 12.5, 0, None),
            (*breaches, "acme", "firing", 5.0, 0, None),
            (*breaches, "nova", "firing", 7.0, 0, "ana"),
            (*low_balance, "acme", "firing", 45.2, 1, None),
            (*low_asr, "beta", "ok", 80.0, 0, None)]
    names = {("customer", "nova"): "Nova Mobile"}
    currencies = {("customer", "acme"): "USD"}
    texts = [check.text for check in _alert_checks(rows, names, currencies)]
    assert texts == [
        "customer Nova Mobile: Low ASR, ASR 33.3%, fired at ≤ 30%, clears at ≥ 35%",
        "customer acme: Low ASR, ASR 12.5% ≤ 30%, clears at ≥ 35%",
        "customer acme: CPS limit breached, CPS breaches 5, fired at > 5, clears at ≤ 0",
        "customer Nova Mobile: CPS limit breached, CPS breaches 7 > 5, clears at ≤ 0"
        " · acknowledged by ana",
        "customer acme: Low balance, Balance 45.20 USD < 100 USD, clears at ≥ 200 USD"
        " · silenced",
    ]


def test_a_viewer_reading_again_sees_each_change_of_a_call_in_progress(tmp_path):
    """A viewer keeps the calls in progress it decoded, and decodes again those that moved."""
    harness = Harness(tmp_path / "noc.db")
    calls = numbered([ACCOUNTS[0], *open_call("o1", 580, carrier="c2", route="44", dst="4455",
                                              ringing=False),
                      *open_call("o2", 590, carrier="c1", route="49", dst="4966",
                                 ringing=False)], 1)
    harness.feed(calls)
    harness.flush()
    data = ConsoleData(tmp_path / "noc.db")
    assert [(r.call_id, r.state) for r in data.dialogs("acme", NOW_MS)] == [
        ("o2", "trying"), ("o1", "trying")]
    harness.feed(numbered([ev(0, "call.progress", at(595), call_id="o1", attempt=1, code=180)],
                          len(calls) + 1))
    harness.flush()
    harness.writer._connection.close()
    assert [(r.call_id, r.state) for r in data.dialogs("acme", NOW_MS)] == [
        ("o2", "trying"), ("o1", "ringing")]
    assert [(r.call_id, r.state) for r in data.dialogs(None, NOW_MS)] == [
        ("o2", "trying"), ("o1", "ringing")]
    assert data.account("customer", "acme", NOW_MS).last_call_ms == ms(590)
