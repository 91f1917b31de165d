"""The carrier list and a carrier's tabs on the seeded network, where ember-link is down: how they
look, and what they show and do (consecutive failures, never-404, failovers, a failed-over call,
tab keys, the palette's jump)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static

from console import testing
from console.feed.ingestor import Ingestor
from console.feed.service import load_state
from screens.call_detail import CallDetail
from screens.carrier import CarrierScreen, FailoverPane, MainPane, failover_summary_table
from screens.carriers import CarriersScreen
from store.actions import request_control
from store.views import ConsoleData, failures_severity
from store.writer import StoreWriter
from widgets.big_number import BigNumber
from widgets.live_table import LiveTable

SIZES = [(80, 24), (120, 40)]
TABS = ["main", "failover", "stats", "alerts"]
DOWN = "ember-link"  # the carrier in an outage in the seeded network
size_ids = pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")


def ingest(path: Path, frames: Callable[[int, float], Iterable[object]]) -> None:
    """Feed more frames into a seeded database through the real path, as its writer would after
    a restart. `frames(last_seq, now_s)` makes them; the clock stays the fixed one."""
    with sqlite3.connect(path) as db:
        state = load_state(db)
    ingestor = Ingestor(clock=testing.fixed_clock())
    ingestor.restore(*state)
    for frame in frames(ingestor.last_seq, testing.FIXED_NOW_MS / 1000):
        ingestor.apply_frame(frame if isinstance(frame, str) else json.dumps(frame))
    writer = StoreWriter(path)
    writer.open_now()
    try:
        writer.write_now(ingestor.take_batch())
    finally:
        writer.close_now()


def keys(table: LiveTable) -> list[str]:
    return [row.key.value for row in table.ordered_rows]


def showing(screen: CarrierScreen, tab: str) -> bool:
    """The tab's own read has reached the screen (the one under way may be the last tab's)."""
    return screen.has_data and screen._last_snapshot.tab == tab


async def open_carrier(pilot, settle, carrier: str = DOWN, tab: str = "main") -> CarrierScreen:
    await settle(pilot)
    pilot.app.open_account("carrier", carrier)
    await settle(pilot)
    screen = pilot.app.screen
    for _ in range(TABS.index(tab)):
        await pilot.press("greater_than_sign")
    await testing.until(pilot, lambda: showing(screen, tab))
    await settle(pilot)
    return screen


async def open_failed_over_call(pilot, settle) -> CallDetail:
    await open_carrier(pilot, settle, tab="failover")
    await pilot.press("enter")
    app = pilot.app
    await testing.until(pilot, lambda: isinstance(app.screen, CallDetail)
                and app.screen.query_one(LiveTable).row_count > 0)
    return app.screen


# How it looks ---------------------------------------------------------------------------------

@size_ids
def test_carrier_list(noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await noc_settle(pilot)
        await pilot.press("3")
        await noc_settle(pilot)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


@size_ids
@pytest.mark.parametrize("tab", TABS)
def test_carrier_tab(noc_app, noc_settle, snap_compare, size, tab):
    async def run_before(pilot):
        await open_carrier(pilot, noc_settle, tab=tab)

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


@pytest.fixture
def penalised(noc_db):
    """ember-link disabled for an hour from ten minutes ago, and a re-enable that failed."""
    now = testing.FIXED_NOW_MS
    request_control(noc_db, action="disable", kind="carrier", account=DOWN,
                    until_ms=now + 3_000_000, reason="2,000 consecutive failures",
                    requested_by="console pid 4242", now_ms=now - 600_000)
    failed = request_control(noc_db, action="enable", kind="carrier", account="atlas-voice",
                             reason="back from maintenance", requested_by="console pid 4242",
                             now_ms=now - 120_000)
    with sqlite3.connect(noc_db) as db:
        db.execute("UPDATE control_request SET status = 'acked', done_ms = created_ms + 400 "
                   "WHERE action = 'disable'")
        db.execute("UPDATE control_request SET status = 'failed', error = 'unknown account', "
                   "done_ms = created_ms + 300 WHERE id = ?", (failed,))
    return noc_db


@size_ids
def test_carrier_alerts_with_a_penalty(penalised, noc_app, noc_settle, snap_compare, size):
    async def run_before(pilot):
        await open_carrier(pilot, noc_settle, tab="alerts")

    assert snap_compare(noc_app(), terminal_size=size, run_before=run_before)


def test_failed_over_call(noc_app, noc_settle, snap_compare):
    async def run_before(pilot):
        await open_failed_over_call(pilot, noc_settle)

    assert snap_compare(noc_app(), terminal_size=(80, 24), run_before=run_before)


# What it shows and does -----------------------------------------------------------------------

async def test_main_shows_the_consecutive_failures_by_severity(noc_app, noc_settle, noc_db):
    view = ConsoleData(noc_db).carrier_main(DOWN, testing.FIXED_NOW_MS)
    severity = failures_severity(view.consecutive_failures)
    assert view.consecutive_failures >= 200 and severity in ("error", "critical")
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_carrier(pilot, noc_settle)
        big = screen.query_one(BigNumber)
        assert big._value == view.consecutive_failures
        assert big.has_class(f"-{severity}")
        assert "consecutive failures" in big._caption
        note = str(screen.query_one("#failures-note", Static).render())
        assert "(408, 5xx)" in note and "does not count" in note
        assert not screen.query_one("#never-404").display  # ember-link does return 404s
        header = str(screen.query_one("#where", Static).render())
        assert header == "noc › Carriers › Ember Link"


def answering_everything(carrier: str, calls: int) -> Callable[[int, float], list[dict]]:
    """A carrier that answers every call, wrong numbers included: it never returns 404."""
    def frames(last_seq: int, now_s: float) -> list[dict]:
        events = [{"type": "account", "ts": now_s - 7200, "kind": "carrier", "id": carrier,
                   "name": "Mute Telecom"}]
        for n in range(calls):
            at, call = now_s - 7000 + 20 * n, f"mute-{n}"
            events += [
                {"type": "call.start", "ts": at, "call_id": call, "customer": "acme-telecom",
                 "cli": "441000", "dst": f"9199{n:05d}"},
                {"type": "call.attempt", "ts": at, "call_id": call, "attempt": 1,
                 "carrier": carrier, "route": "91"},
                {"type": "call.answer", "ts": at + 1, "call_id": call, "attempt": 1},
                {"type": "call.attempt_end", "ts": at + 4, "call_id": call, "attempt": 1,
                 "code": 200},
                {"type": "call.end", "ts": at + 4, "call_id": call, "code": 200, "duration": 3,
                 "charge": 0.01, "cost": 0.008, "hangup": "caller"},
            ]
        return [[{**event, "seq": seq} for seq, event in enumerate(events, last_seq + 1)]]

    return frames


async def test_never_404_warning_for_a_busy_carrier_that_never_returns_404(noc_app, noc_settle,
                                                                           noc_db):
    ingest(noc_db, answering_everything("mute-tel", 250))
    assert ConsoleData(noc_db).carrier_main("mute-tel", testing.FIXED_NOW_MS).never_404
    app = noc_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_carrier(pilot, noc_settle, "mute-tel")
        warning = screen.query_one("#never-404", Static)
        assert warning.display
        assert "WARNING" in str(warning.render()) and "false answer supervision" in str(
            warning.render())


async def test_failover_lists_the_calls_answered_elsewhere(noc_app, noc_settle, noc_db):
    failovers = ConsoleData(noc_db).failovers(DOWN, testing.FIXED_NOW_MS)
    assert failovers and all(row.answered_by != DOWN for row in failovers)
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_carrier(pilot, noc_settle, tab="failover")
        table = screen.query_one(FailoverPane).query_one(LiveTable)
        assert keys(table) == [str(row.call_seq) for row in failovers]  # newest first
        first = failovers[0]
        names = {id_: name for _, id_, name in ConsoleData(noc_db).account_names()}
        # Accounts by name, not by id; the carrier's failure marked, not only coloured red.
        assert str(table.get_cell(str(first.call_seq), "answered_by")) == names[
            first.answered_by]
        assert str(table.get_cell(str(first.call_seq), "customer")) == names[first.customer]
        assert str(table.get_cell(str(first.call_seq), "failed")).startswith(
            f"{first.failed_code} ✖")


async def test_a_tall_failover_tab_sums_the_list_up_by_code_and_answering_carrier(
        noc_app, noc_settle, noc_db):
    data = ConsoleData(noc_db)
    every = data.failovers(DOWN, testing.FIXED_NOW_MS, limit=1_000_000)
    counted = Counter((row.failed_code, row.answered_by) for row in every)
    summary = data.failover_summary(DOWN, testing.FIXED_NOW_MS)
    assert summary == sorted(((code, by, n) for (code, by), n in counted.items()),
                             key=lambda s: (-s[2], s[0], s[1]))
    assert sum(n for *_, n in summary) == len(every) > 200  # more than the list holds
    names = {id_: name for _, id_, name in data.account_names()}
    for size, shown in (((120, 40), True), ((80, 24), False)):
        async with noc_app().run_test(size=size) as pilot:
            screen = await open_carrier(pilot, noc_settle, tab="failover")
            box = screen.query_one("#failover-summary", Static)
            assert box.display is shown
    console = Console(width=116, record=True)
    console.print(failover_summary_table(summary, {("carrier", k): v for k, v in names.items()}))
    lines = console.export_text().splitlines()
    code, by, count = summary[0]
    assert lines[0].split() == ["Failed", "here", "with", "Answered", "by", "Calls,", "7", "days"]
    assert lines[1].split()[:2] == [str(code), "✖"] and names[by] in lines[1]
    assert lines[1].split()[-1] == f"{count:,}"


def test_the_last_24_h_of_a_carrier_give_money_with_its_currency():
    from screens.carrier import day_facts
    from store.metrics import Totals

    facts = day_facts(Totals(), "USD")
    assert {"revenue 0.00 USD", "cost 0.00 USD", "profit 0.00 USD", "PDD –"} <= set(facts)


async def test_enter_on_a_failover_opens_the_call_and_its_attempts(noc_app, noc_settle, noc_db):
    first = ConsoleData(noc_db).failovers(DOWN, testing.FIXED_NOW_MS)[0]
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        detail = await open_failed_over_call(pilot, noc_settle)
        assert detail.call.seq == first.call_seq
        assert [a.carrier for a in app.data.call_attempts(first.call_seq)][-2:] == [
            DOWN, first.answered_by]
        await pilot.press("escape")
        assert isinstance(app.screen, CarrierScreen)


async def test_tab_keys_switch_tabs_and_escape_goes_back(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_carrier(pilot, noc_settle)
        await pilot.press("greater_than_sign")
        await testing.until(pilot, lambda: showing(screen, "failover"))
        await pilot.press("less_than_sign", "less_than_sign")  # typed quickly: none is lost
        await testing.until(pilot, lambda: screen.active == "alerts")
        await pilot.press("escape")
        assert isinstance(app.screen, CarriersScreen)


async def test_an_unchanged_tab_is_not_drawn_again(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_carrier(pilot, noc_settle)
        pane = screen.query_one(MainPane)
        drawn = []
        pane.show = drawn.append
        screen.refresh_now()  # reads again: the same figures
        await noc_settle(pilot)
        assert drawn == []


async def test_the_palette_jumps_to_a_carrier_by_name(noc_app, noc_settle):
    app = noc_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await noc_settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"ember")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await noc_settle(pilot)
        assert isinstance(app.screen, CarrierScreen) and app.screen.carrier == DOWN
        assert app.current_mode == "carriers"
